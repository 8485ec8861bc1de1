"""Preprocessor: analysis modes, foreground oversampling, padding, merging, caching, errors."""

import os

import numpy as np
import pytest
from conftest import MemoryIO, blob_cases

from miseg.data_loading.data_io import Data_IO
from miseg.errors import ConfigurationError, GeometryError
from miseg.processing.data_augmentation import Data_Augmentation
from miseg.processing.preprocessor import Preprocessor
from miseg.processing.subfunctions import Normalization, Padding, Resampling


def _pp(cases=None, three_dim=True, channels=1, classes=3, **kwargs):
    cases = cases if cases is not None else blob_cases(3)
    dio = Data_IO(MemoryIO(cases, channels=channels, classes=classes, three_dim=three_dim), "x", seed=5)
    kwargs.setdefault("data_aug", None)
    kwargs.setdefault("batch_size", 2)
    return Preprocessor(dio, **kwargs)


def test_default_augmentation_is_a_fresh_instance_and_never_mutated():
    dio = Data_IO(MemoryIO(blob_cases(2)), "x")
    p1, p2 = Preprocessor(dio, 2, patch_shape=(8, 8, 8)), Preprocessor(dio, 2, patch_shape=(8, 8, 8))
    assert p1.data_augmentation is not p2.data_augmentation
    aug = Data_Augmentation(seed=0)
    before = dict(vars(aug))
    pp = Preprocessor(dio, 2, data_aug=aug, patch_shape=(8, 8, 8), patches_per_sample=2)
    pp.run(["case_0"])
    assert {k: v for k, v in vars(aug).items() if k != "_rng"} == {k: v for k, v in before.items() if k != "_rng"}
    assert aug.cropping is False and aug.cropping_patch_shape is None


def test_patchwise_crop_batches_are_one_hot_and_patch_sized():
    pp = _pp(patch_shape=(8, 8, 8), patches_per_sample=3)
    batches = pp.run(["case_0", "case_1"])
    assert [b[0].shape for b in batches] == [(2, 8, 8, 8, 1)] * 3
    for img, seg in batches:
        assert img.dtype == np.float32 and seg.dtype == np.float32
        assert seg.shape == (2, 8, 8, 8, 3)
        np.testing.assert_array_equal(seg.sum(-1), 1)


def test_foreground_oversampling_centres_patches_on_foreground():
    shape = (32, 32, 32)
    seg = np.zeros(shape, np.uint8)
    seg[2:5, 2:5, 2:5] = 1  # a tiny structure in a corner
    cases = {"tiny": (np.zeros(shape, np.float32), seg)}
    rng = np.random.default_rng(0)
    always = _pp(cases, classes=2, patch_shape=(8, 8, 8), foreground_oversampling=1.0)
    items = always.training_items("tiny", 20, rng, augment=False)
    assert all(item[1].any() for item in items)
    never = _pp(cases, classes=2, patch_shape=(8, 8, 8), foreground_oversampling=0.0)
    items = never.training_items("tiny", 40, np.random.default_rng(0), augment=False)
    assert sum(item[1].any() for item in items) < 10


def test_volume_smaller_than_patch_is_padded_for_training_and_prediction():
    cases = blob_cases(2, shape=(6, 10, 12))
    pp = _pp(cases, patch_shape=(8, 16, 16), patches_per_sample=2)
    img, seg = pp.run(["case_0"])[0]
    assert img.shape == (2, 8, 16, 16, 1)
    sample = pp.load_sample("case_0", training=False)
    plan = pp.prediction_plan(sample)
    assert plan.image.shape == (8, 16, 16, 1) and len(plan) == 1
    probs = np.zeros((1, 8, 16, 16, 3), np.float32)
    probs[..., 1] = 1
    merged = pp.merge(plan, probs)
    assert merged.shape == (6, 10, 12, 3)


def test_grid_merge_reconstructs_with_gaussian_and_constant_weighting():
    for weighting in ("gaussian", "constant"):
        pp = _pp(blob_cases(1, shape=(13, 17, 9)), patch_shape=(8, 8, 8), merge_weighting=weighting)
        sample = pp.load_sample("case_0", training=False)
        plan = pp.prediction_plan(sample)
        assert pp.prediction_overlap() == (4, 4, 4)  # half a patch by default
        patches = plan.patches()
        merged = pp.merge(plan, [patches[:3], patches[3:]])
        np.testing.assert_allclose(merged, sample.img_data, atol=1e-5)


def test_miscnn_run_and_postprocessing_round_trip_in_2d():
    cases = {k: (v[0][..., 0], v[1][..., 0]) for k, v in blob_cases(2, shape=(16, 16, 2)).items()}
    pp = _pp(cases, three_dim=False, patch_shape=(8, 8))
    pp.patchwise_overlap = (2, 2, 2)  # MIScnn scripts pass three values for 2D
    assert pp.patchwise_overlap == (2, 2)
    batches = pp.run(["case_0"], training=False)
    stacked = np.concatenate([b[0] for b in batches])
    onehot = np.concatenate([stacked, 1 - stacked, np.zeros_like(stacked)], axis=-1)
    labels = pp.postprocessing(pp.cache.pop("case_0"), onehot)
    assert labels.shape == (16, 16)


def test_subfunctions_undone_on_prediction_and_resampling_needs_spacing():
    cases = blob_cases(1, shape=(8, 16, 16))
    pp = _pp(cases, subfunctions=[Resampling((1.0, 1.0, 1.0)), Normalization()], patch_shape=(8, 8, 8))
    sample = pp.load_sample("case_0", training=False)
    assert sample.spatial_shape == (16, 16, 16)  # spacing (2, 1, 1) -> isotropic
    probs = np.zeros(sample.spatial_shape + (3,), np.float32)
    probs[..., 2] = 1
    labels = pp.finish_prediction(sample, probs)
    assert labels.shape == (8, 16, 16) and np.all(labels == 2)
    io = MemoryIO(cases)
    io.load_image = lambda index: (cases[index][0], {"type": "memory"})
    pp2 = Preprocessor(Data_IO(io, "x"), 1, subfunctions=[Resampling()], data_aug=None, patch_shape=(8, 8, 8))
    with pytest.raises(GeometryError, match="case_0"):
        pp2.load_sample("case_0")


def test_prepared_subfunctions_cached_on_disk_and_invalidated_by_settings(tmp_path):
    cases = blob_cases(2)
    calls = []

    class CountingNorm(Normalization):
        def preprocessing(self, sample, training=True):
            calls.append(sample.index)
            super().preprocessing(sample, training)

    def make(mode):
        dio = Data_IO(MemoryIO(cases), str(tmp_path), batch_path=str(tmp_path / "b"), seed=1)
        return Preprocessor(dio, 1, subfunctions=[CountingNorm(mode=mode)], data_aug=None,
                            prepare_subfunctions=True, patch_shape=(8, 8, 8))

    (tmp_path / "case_0").mkdir()
    (tmp_path / "case_0" / "imaging.bin").write_bytes(b"v1")
    (tmp_path / "case_1").mkdir()
    (tmp_path / "case_1" / "imaging.bin").write_bytes(b"v1")
    pp = make("z-score")
    pp.run_subfunctions(["case_0", "case_1"])
    assert calls == ["case_0", "case_1"]
    first = pp.load_sample("case_0")
    make("z-score").load_sample("case_0")
    assert calls == ["case_0", "case_1"]  # reused across instances (runs)
    np.testing.assert_array_equal(make("z-score").load_sample("case_0").img_data, first.img_data)
    make("minmax").load_sample("case_0")
    assert calls[-1] == "case_0" and len(calls) == 3  # other settings: recomputed
    os.utime(tmp_path / "case_1" / "imaging.bin", ns=(1, 1))
    make("z-score").load_sample("case_1")
    assert len(calls) == 4  # data changed: recomputed


def test_skip_blanks_avoids_blank_patches_without_crashing():
    shape = (32, 32, 32)
    seg = np.zeros(shape, np.uint8)
    seg[10:20, 10:20, 10:20] = 1
    pp = _pp({"c": (np.zeros(shape, np.float32), seg)}, classes=2, patch_shape=(8, 8, 8),
             foreground_oversampling=0.0, patchwise_skip_blanks=True)
    items = pp.training_items("c", 20, np.random.default_rng(1), augment=False)
    assert sum(item[1].any() for item in items) >= 18
    blank = _pp({"c": (np.zeros(shape, np.float32), np.zeros(shape, np.uint8))}, classes=2,
                patch_shape=(8, 8, 8), patchwise_skip_blanks=True)
    assert len(blank.training_items("c", 2, np.random.default_rng(0), augment=False)) == 2


def test_fullimage_with_augmentation_and_hashable_indices():
    cases = {(1, "a"): blob_cases(1)["case_0"], 7: blob_cases(1, seed=3)["case_0"]}
    pp = _pp(cases, analysis="fullimage", data_aug=Data_Augmentation(cycles=2, seed=0))
    batches = pp.run(list(cases))
    assert sum(len(b[0]) for b in batches) == 4
    assert batches[0][0].shape[1:] == (16, 16, 16, 1)


def test_multichannel_data():
    cases = {k: (np.stack([v[0], -v[0]], -1), v[1]) for k, v in blob_cases(2).items()}
    pp = _pp(cases, channels=2, patch_shape=(8, 8, 8), data_aug=Data_Augmentation(seed=1))
    img, seg = pp.run(["case_0"])[0]
    assert img.shape[-1] == 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"analysis": "patchwise"}, "analysis='patchwise'"),
        ({"patch_shape": None}, "patch_shape=None"),
        ({"patch_shape": [8, 8, 8]}, None),
        ({"patch_shape": (8, 8)}, r"patch_shape=\(8, 8\)"),
        ({"patch_shape": (8, 8, 8), "batch_size": 0}, "batch_size"),
        ({"patch_shape": (8, 8, 8), "foreground_oversampling": 1.5}, "foreground_oversampling"),
        ({"patch_shape": (8, 8, 8), "merge_weighting": "median"}, "merge_weighting"),
        ({"patch_shape": (8, 8, 8), "patchwise_overlap": (8, 2, 2)}, r"patchwise_overlap=\(8, 2, 2\)"),
        ({"patch_shape": (8, 8, 8), "patchwise_overlap": (-1, 2, 2)}, "negative"),
    ],
)
def test_bad_parameters_name_the_parameter(kwargs, match):
    if match is None:
        assert _pp(**kwargs).patch_shape == (8, 8, 8)
        return
    with pytest.raises(ConfigurationError, match=match):
        _pp(**kwargs)


def test_padding_subfunction_and_batches_are_deterministic_per_seed():
    pp = _pp(patch_shape=(8, 8, 8), subfunctions=[Padding(min_size=(20, 20, 20))],
             data_aug=Data_Augmentation(seed=0), patches_per_sample=2)
    a = pp.run(["case_0", "case_1"])
    b = pp.run(["case_0", "case_1"])
    for (ia, sa), (ib, sb) in zip(a, b):
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_array_equal(sa, sb)


def test_run_subfunctions_in_worker_processes(tmp_path):
    cases = blob_cases(3)
    for name in cases:
        (tmp_path / name).mkdir()
        (tmp_path / name / "imaging.bin").write_bytes(name.encode())
    dio = Data_IO(MemoryIO(cases), str(tmp_path), batch_path=str(tmp_path / "b"), seed=2)
    pp = Preprocessor(dio, 1, subfunctions=[Normalization()], data_aug=None, prepare_subfunctions=True,
                      patch_shape=(8, 8, 8), use_multiprocessing=True)
    pp.mp_threads = 2
    pp.run_subfunctions(list(cases))
    cached = sorted(p.name for p in (tmp_path / "b" / "preprocessed").glob("*/*.npz"))
    assert cached == [f"train.{name}.npz" for name in sorted(cases)]
    img = pp.load_sample("case_1").img_data
    assert abs(float(img.mean())) < 1e-4


def test_prepare_subfunctions_creates_the_batch_folder_and_backs_up_samples(tmp_path):
    cases = blob_cases(2)
    batch_path = tmp_path / "run" / "batches"  # does not exist yet
    dio = Data_IO(MemoryIO(cases), str(tmp_path / "data"), batch_path=str(batch_path), seed=3)
    pp = Preprocessor(dio, 1, subfunctions=[Normalization()], data_aug=None, prepare_subfunctions=True,
                      analysis="fullimage")
    pp.run_subfunctions(list(cases), training=True)
    assert sorted(os.listdir(tmp_path)) == ["run"] and os.listdir(tmp_path / "run") == ["batches"]
    for index, (img, seg) in cases.items():
        sample = dio.sample_loader(index, backup=True)  # MIScnn's route to the prepared sample
        expected = (img - img.mean() + 1e-6) / (img.std() + 1e-6)
        np.testing.assert_allclose(sample.img_data[..., 0], expected, rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(sample.seg_data[..., 0], seg)
    assert len(pp.run(list(cases))) == 2
    dio.batch_cleanup()
    assert not batch_path.exists()


def _coordinate_case(shape=(16, 16, 16), classes=3, case=0):
    """An image whose voxel value encodes its coordinates (and the case number)."""
    grids = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    img = (case * 1_000_000 + grids[0] * 10_000 + grids[1] * 100 + grids[2]).astype(np.float32)
    seg = (np.add.reduce(grids) % classes).astype(np.uint8)
    return img, seg


def _origin(patch):
    """Coordinates of the first voxel of an un-augmented patch of a _coordinate_case image."""
    v = int(patch[(0,) * (patch.ndim - 1) + (0,)]) % 1_000_000
    return v // 10_000, (v // 100) % 100, v % 100


def test_miscnn_analysis_methods_return_miscnn_shapes():
    img, seg = _coordinate_case()
    pp = _pp({"c": (img, seg)}, analysis="patchwise-grid", patch_shape=(4, 4, 4))
    sample = pp.data_io.sample_loader("c")
    items = pp.analysis_patchwise_grid(sample, training=True, data_aug=False)
    assert len(items) == 64  # 16^3 in 4^3 patches, MIScnn's default overlap 0
    assert all(i.shape == (4, 4, 4, 1) and s.shape == (4, 4, 4, 3) for i, s in items)
    starts = [_origin(i) for i, _ in items]
    assert starts == [(x, y, z) for x in range(0, 16, 4) for y in range(0, 16, 4) for z in range(0, 16, 4)]
    np.testing.assert_array_equal(items[1][0][..., 0], img[0:4, 0:4, 4:8])  # grid order, z fastest
    np.testing.assert_array_equal(items[1][1].argmax(-1), seg[0:4, 0:4, 4:8])
    # one-hot input (what MIScnn's run passed on) gives the same items
    sample.seg_data = np.eye(3, dtype=np.float32)[sample.seg_data[..., 0]]
    again = pp.analysis_patchwise_grid(sample, training=True, data_aug=False)
    np.testing.assert_array_equal(again[5][1], items[5][1])
    # prediction: (img,) patches on the prediction grid, merged back by postprocessing
    pred_sample = pp.data_io.sample_loader("c", load_seg=False)
    patches = pp.analysis_patchwise_grid(pred_sample, training=False, data_aug=False)
    assert all(len(p) == 1 and p[0].shape == (4, 4, 4, 1) for p in patches)
    stacked = np.stack([p[0] for p in patches])
    onehot = np.eye(3, dtype=np.float32)[(stacked[..., 0].astype(np.int64) % 3)]
    np.testing.assert_array_equal(pp.postprocessing(pred_sample, onehot), img.astype(np.int64) % 3)

    crop = _pp({"c": (img, seg)}, patch_shape=(8, 8, 8), data_aug=Data_Augmentation(cycles=3, seed=0),
               foreground_oversampling=0.0)  # MIScnn's uniform crops, always inside the image
    crops = crop.analysis_patchwise_crop(crop.data_io.sample_loader("c"), data_aug=True)
    assert len(crops) == 3 and all(i.shape == (8, 8, 8, 1) and s.shape == (8, 8, 8, 3) for i, s in crops)
    assert all(s.dtype == np.float32 and np.all(s.sum(-1) == 1) for _, s in crops)
    plain = crop.analysis_patchwise_crop(crop.data_io.sample_loader("c"), data_aug=False)
    for i, s in plain:  # un-augmented crops are real windows of the image and labels
        x0, y0, z0 = _origin(i)
        np.testing.assert_array_equal(i[..., 0], img[x0:x0 + 8, y0:y0 + 8, z0:z0 + 8])
        np.testing.assert_array_equal(s.argmax(-1), seg[x0:x0 + 8, y0:y0 + 8, z0:z0 + 8])

    full = _pp({"c": (img, seg)}, analysis="fullimage", data_aug=Data_Augmentation(cycles=2, seed=0))
    sample = full.data_io.sample_loader("c")
    assert [(i.shape, s.shape) for i, s in full.analysis_fullimage(sample, True, False)] == [
        ((16, 16, 16, 1), (16, 16, 16, 3))]
    assert len(full.analysis_fullimage(sample, True, True)) == 2
    pred = full.analysis_fullimage(full.data_io.sample_loader("c", load_seg=False), False, False)
    assert len(pred) == 1 and len(pred[0]) == 1 and pred[0][0].shape == (16, 16, 16, 1)
