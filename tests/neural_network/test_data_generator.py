"""DataGenerator: grid epochs, determinism across workers, inference-time augmentation."""

import math
import multiprocessing
import pickle

import keras
import numpy as np
from conftest import MemoryIO, blob_cases

from miseg.data_loading.data_io import Data_IO
from miseg.neural_network.architecture.unet import UNet_standard
from miseg.neural_network.data_generator import DataGenerator
from miseg.neural_network.model import Neural_Network
from miseg.processing.data_augmentation import Data_Augmentation
from miseg.processing.preprocessor import Preprocessor


def _coordinate_case(case, shape=(16, 16, 16)):
    """An image whose voxel values encode case and coordinates; labels = value mod 3."""
    grids = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    img = (case * 1_000_000 + grids[0] * 10_000 + grids[1] * 100 + grids[2]).astype(np.float32)
    return img, (img.astype(np.int64) % 3).astype(np.uint8)


def _patch_id(patch):
    v = int(patch[0, 0, 0, 0])
    return v // 1_000_000, (v // 10_000) % 100, (v // 100) % 100, v % 100


def _grid_pp(n_cases=2, batch_size=4, data_aug=None, **kwargs):
    cases = {f"case_{k}": _coordinate_case(k) for k in range(n_cases)}
    dio = Data_IO(MemoryIO(cases), "x", seed=4)
    pp = Preprocessor(dio, batch_size, data_aug=data_aug, analysis="patchwise-grid", patch_shape=(8, 8, 8),
                      **kwargs)
    return pp, list(cases)


def _epoch(gen):
    return [gen[i] for i in range(len(gen))]


def test_grid_training_covers_every_patch_once_per_epoch_in_a_seeded_shuffled_order():
    pp, cases = _grid_pp(patchwise_overlap=(4, 4, 4), patches_per_sample=1)
    gen = DataGenerator(cases, pp, training=True, shuffle=True)
    expected = sorted((c, x, y, z) for c in range(2) for x in (0, 4, 8) for y in (0, 4, 8) for z in (0, 4, 8))
    assert len(gen) == math.ceil(len(expected) / 4) == 14
    orders = []
    for epoch in range(2):
        gen.epoch = epoch
        batches = _epoch(gen)
        ids = [_patch_id(p) for img, _ in batches for p in img]
        assert sorted(ids) == expected  # every grid patch exactly once
        for img, seg in batches:  # labels travel with their patch
            np.testing.assert_array_equal(seg.argmax(-1), img[..., 0].astype(np.int64) % 3)
        orders.append(ids)
    assert orders[0] != orders[1] and orders[0] != sorted(orders[0])  # reshuffled every epoch
    assert {c for c, *_ in orders[0][:8]} == {0, 1}  # batches mix cases
    # Validation: fixed, unshuffled order in every epoch.
    val = DataGenerator(cases, pp, training=True, validation=True, shuffle=True)
    first = [_patch_id(p) for img, _ in _epoch(val) for p in img]
    val.on_epoch_end()
    assert [_patch_id(p) for img, _ in _epoch(val) for p in img] == first == expected
    # patchwise-crop keeps random crops: cases * patches_per_sample per epoch.
    pp.analysis = "patchwise-crop"
    assert len(DataGenerator(cases, pp, training=True)) == 1


def test_grid_batches_are_a_pure_function_of_seed_epoch_and_index_in_worker_processes():
    pp, cases = _grid_pp(n_cases=3, batch_size=3, data_aug=Data_Augmentation(mirror=True, seed=0))
    gen = DataGenerator(cases, pp, training=True, shuffle=True)
    gen.epoch = 1
    reference = _epoch(gen)
    assert len(reference) == 8  # 3 cases x 8 patches / 3
    # A new pipeline with the same seed; the augmentation object's own seed does not matter.
    other_pp = _grid_pp(n_cases=3, batch_size=3, data_aug=Data_Augmentation(mirror=True, seed=1))[0]
    fresh = DataGenerator(cases, other_pp, training=True, shuffle=True)
    fresh.epoch = 1
    for idx in (5, 0, 7, 2):  # any order
        np.testing.assert_array_equal(fresh[idx][0], reference[idx][0])
        np.testing.assert_array_equal(fresh[idx][1], reference[idx][1])
    unsized = pickle.loads(pickle.dumps(DataGenerator(cases, pp, training=True, shuffle=True)))
    unsized.epoch = 1  # a worker that has not seen len() yet computes the same grid
    np.testing.assert_array_equal(unsized[3][0], reference[3][0])
    with multiprocessing.get_context("fork").Pool(2) as pool:
        from_workers = pool.map(gen.__getitem__, range(len(gen)))
    for (img, seg), (ref_img, ref_seg) in zip(from_workers, reference):
        np.testing.assert_array_equal(img, ref_img)
        np.testing.assert_array_equal(seg, ref_seg)
    gen.epoch = 2
    assert not np.array_equal(gen[0][0], reference[0][0])


def test_inference_augmentation_flips_prediction_batches_and_postprocessing_undoes_it():
    aug = Data_Augmentation(seed=0)
    pp, _ = _grid_pp(n_cases=1, data_aug=aug)
    plain = _epoch(DataGenerator(["case_0"], pp))
    aug.infaug = True  # MIScnn: flip at inference; no axis chosen -> every spatial axis
    flipped = _epoch(DataGenerator(["case_0"], pp))
    assert len(flipped) == len(plain) == 7  # 27 patches on the half-overlap grid, batch size 4
    for a, b in zip(plain, flipped):
        np.testing.assert_array_equal(b, np.flip(a, (1, 2, 3)))
    aug.infaug_flip_current = 2
    gen = DataGenerator(["case_0"], pp)
    batches = _epoch(gen)
    for a, b in zip(plain, batches):
        np.testing.assert_array_equal(b, np.flip(a, 2))
    # A "network" that labels each voxel by its value sees flipped patches; postprocessing
    # flips its output back before merging.
    stacked = np.concatenate(batches)
    probs = np.eye(3, dtype=np.float32)[stacked[..., 0].astype(np.int64) % 3]
    sample = pp.cache.pop("case_0")
    np.testing.assert_array_equal(pp.postprocessing(sample, probs), _coordinate_case(0)[1])


def test_neural_network_predict_honours_inference_augmentation():
    keras.utils.set_random_seed(0)
    dio = Data_IO(MemoryIO(blob_cases(1)), "x", seed=1)
    aug = Data_Augmentation(seed=0)
    pp = Preprocessor(dio, 2, data_aug=aug, patch_shape=(8, 8, 8))
    nn = Neural_Network(pp, architecture=UNet_standard(n_filters=2, depth=1), workers=0)
    plain = nn.predict(["case_0"], return_output=True, activation_output=True)[0]
    aug.infaug, aug.infaug_flip_current = True, 1
    flipped = nn.predict(["case_0"], return_output=True, activation_output=True)[0]
    np.testing.assert_allclose(flipped, nn.predict_augmentated("case_0")[0], atol=1e-5)
    assert not np.allclose(flipped, plain, atol=1e-4)
