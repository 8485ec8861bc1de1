"""Tests for miseg.processing.data_augmentation."""

from __future__ import annotations

import copy
import itertools
import math
import random

import numpy as np
import pytest
from scipy import ndimage

from miseg.errors import ConfigurationError, DataError, LabelError, ShapeMismatchError
from miseg.processing.data_augmentation import Data_Augmentation, flip_axes

INTENSITY_FLAGS = dict(brightness=False, contrast=False, gamma=False, gaussian_noise=False)
NO_AUG = dict(scaling=False, rotations=False, elastic_deform=False, mirror=False, **INTENSITY_FLAGS)


def _blob_labels(shape: tuple[int, ...]) -> np.ndarray:
    """Piecewise-constant label map with labels 0, 1, 2 (a ball of 2 inside a box of 1)."""
    grid = np.meshgrid(*[np.arange(s) - (s - 1) / 2 for s in shape], indexing="ij")
    radius = np.sqrt(sum(g**2 for g in grid))
    labels = np.zeros(shape, dtype=np.int16)
    box = np.ones(shape, dtype=bool)
    for g, s in zip(grid, shape):
        box &= np.abs(g) < s * 0.35
    labels[box] = 1
    labels[radius < min(shape) * 0.2] = 2
    return labels


def _batch(shape: tuple[int, ...], n: int = 2, channels: int = 1, seed: int = 0):
    rng = np.random.default_rng(seed)
    img = rng.normal(size=(n, *shape, channels)).astype(np.float32)
    seg = np.stack([_blob_labels(shape)] * n)[..., None].astype(np.uint8)
    return img, seg


def _snapshot(aug: Data_Augmentation) -> dict:
    return {k: copy.deepcopy(v) for k, v in vars(aug).items() if k != "_rng"}


# ---------------------------------------------------------------- shapes and dtypes


@pytest.mark.parametrize("shape", [(16, 16), (16, 16, 16)])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("p", [0.15, 1.0])
def test_shapes_and_dtypes(shape, channels, p):
    img, seg = _batch(shape, n=2, channels=channels)
    aug = Data_Augmentation(mirror=True, elastic_deform=True, seed=3)
    aug.config_p_per_sample = p
    img_aug, seg_aug = aug.run(img.astype(np.float64), seg)
    assert img_aug.shape == (2, *shape, channels)
    assert img_aug.dtype == np.float32
    assert seg_aug.shape == (2, *shape, 1)
    assert seg_aug.dtype == np.uint8
    assert set(np.unique(seg_aug)) <= {0, 1, 2}
    assert np.all(np.isfinite(img_aug))


@pytest.mark.parametrize("shape", [(12, 10), (8, 10, 6)])
def test_cycles_multiply_items_in_cycle_major_order(shape):
    img, seg = _batch(shape, n=2, channels=2)
    aug = Data_Augmentation(cycles=3, **NO_AUG, seed=0)
    img_aug, seg_aug = aug.run(img, seg)
    assert img_aug.shape == (6, *shape, 2) and seg_aug.shape == (6, *shape, 1)
    for k in range(3):  # nothing enabled: every cycle is the input
        np.testing.assert_array_equal(img_aug[2 * k : 2 * k + 2], img)
        np.testing.assert_array_equal(seg_aug[2 * k : 2 * k + 2], seg)


def test_cycles_draw_independent_augmentations():
    img, seg = _batch((16, 16), n=1)
    aug = Data_Augmentation(cycles=3, seed=5)
    aug.config_p_per_sample = 1.0
    img_aug, _ = aug.run(img, seg)
    assert not np.allclose(img_aug[0], img_aug[1])
    assert not np.allclose(img_aug[1], img_aug[2])


def test_identity_when_no_transform_fires():
    img, seg = _batch((14, 12, 10), n=2, channels=2)
    aug = Data_Augmentation(mirror=True, elastic_deform=True, seed=1)
    aug.config_p_per_sample = 0.0
    aug.config_mirror_p = 0.0
    img_aug, seg_aug = aug.run(img, seg)
    np.testing.assert_array_equal(img_aug, img)
    np.testing.assert_array_equal(seg_aug, seg)


# ---------------------------------------------------------------- segmentation follows image


@pytest.mark.parametrize("shape", [(48, 48), (24, 24, 24)])
def test_label_map_moves_with_image(shape):
    labels = _blob_labels(shape)
    img = (labels.astype(np.float32) * 100 + 50)[None, ..., None]
    seg = labels[None, ..., None]
    aug = Data_Augmentation(cycles=2, scaling=True, rotations=True, elastic_deform=True,
                            **INTENSITY_FLAGS, seed=11)
    aug.config_p_per_sample = 1.0
    aug.config_rotations_angleX = (0.3, 0.5)  # make sure the rotation is not negligible
    img_aug, seg_aug = aug.run(img, seg)
    assert seg_aug.dtype == np.int16
    assert set(np.unique(seg_aug)) <= {0, 1, 2}
    assert not np.array_equal(seg_aug[0], seg[0])  # the transform did move things
    for b in range(img_aug.shape[0]):
        for k in (0, 1, 2):
            interior = ndimage.binary_erosion(seg_aug[b, ..., 0] == k, iterations=2)
            if interior.sum() < 10:
                continue
            values = img_aug[b, ..., 0][interior]
            close = np.abs(values - (k * 100 + 50)) < 15
            assert close.mean() > 0.95, (b, k, close.mean())


def test_onehot_input_returns_valid_onehot_with_background_outside():
    shape = (20, 20)
    labels = _blob_labels(shape)
    onehot = np.eye(3, dtype=np.float32)[labels][None]
    onehot[0, ..., 0] = 0  # no background at all in the input
    onehot[0, ..., 1] = (labels <= 1).astype(np.float32)
    img = np.full((1, *shape, 1), 5.0, dtype=np.float32)
    aug = Data_Augmentation(scaling=True, rotations=True, elastic_deform=True,
                            **INTENSITY_FLAGS, seed=2)
    aug.config_p_per_sample = 1.0
    aug.config_scaling_range = (1.25, 1.25)  # zoom out: image content runs out at the border
    _, seg_aug = aug.run(img, onehot)
    assert seg_aug.shape == onehot.shape and seg_aug.dtype == np.float32
    assert set(np.unique(seg_aug)) <= {0.0, 1.0}
    np.testing.assert_array_equal(seg_aug.sum(axis=-1), 1.0)
    assert seg_aug[0, 0, 0, 0] == 1.0  # corner is out of the image: background
    # Same seed on the equivalent label map: identical geometry.
    label_map = np.argmax(onehot, axis=-1)[..., None].astype(np.uint8)
    twin = Data_Augmentation(scaling=True, rotations=True, elastic_deform=True,
                             **INTENSITY_FLAGS, seed=2)
    twin.config_p_per_sample = 1.0
    twin.config_scaling_range = (1.25, 1.25)
    _, labels_aug = twin.run(img, label_map)
    np.testing.assert_array_equal(np.argmax(seg_aug, axis=-1), labels_aug[..., 0])
    assert {1, 2} <= set(np.unique(labels_aug))  # the content survived


def test_label_map_outside_image_is_background():
    shape = (20, 20)
    seg = np.full((1, *shape, 1), 3, dtype=np.int32)
    img = np.zeros((1, *shape, 1), dtype=np.float32)
    aug = Data_Augmentation(scaling=True, rotations=False, **INTENSITY_FLAGS, seed=0)
    aug.config_p_per_sample = 1.0
    aug.config_scaling_range = (1.25, 1.25)
    _, seg_aug = aug.run(img, seg)
    assert seg_aug[0, 0, 0, 0] == 0 and seg_aug[0, 10, 10, 0] == 3
    assert set(np.unique(seg_aug)) == {0, 3}


def test_data_border_default_repeats_edge_and_constant_mode_fills():
    shape = (20, 20)
    img = np.full((1, *shape, 1), 10.0, dtype=np.float32)
    img[0, 5:15, 5:15] = 12.0
    aug = Data_Augmentation(scaling=True, rotations=False, **INTENSITY_FLAGS, seed=0)
    aug.config_p_per_sample = 1.0
    aug.config_scaling_range = (1.25, 1.25)
    out, _ = aug.run(img, None)
    assert out.min() > 9.0  # nearest: no invented zeros
    aug.config_border_mode_data = "constant"
    aug.config_border_cval_data = -7.0
    out_c, _ = aug.run(img, None)
    assert out_c[0, 0, 0, 0] == pytest.approx(-7.0)


# ---------------------------------------------------------------- mirroring


@pytest.mark.parametrize("shape,axis", [((10, 12), 0), ((10, 12), 1), ((6, 8, 10), 2)])
def test_mirror_p1_single_axis_flips_image_and_seg(shape, axis):
    img, seg = _batch(shape, n=2, channels=2)
    seg = seg.copy()
    seg[:, 0] = 1  # make the seg asymmetric
    aug = Data_Augmentation(**{**NO_AUG, "mirror": True}, seed=0)
    aug.config_mirror_axes = (axis,)
    aug.config_mirror_p = 1.0
    img_aug, seg_aug = aug.run(img, seg)
    np.testing.assert_array_equal(img_aug, np.flip(img, axis=axis + 1))
    np.testing.assert_array_equal(seg_aug, np.flip(seg, axis=axis + 1))


def test_mirror_axis_2_ignored_in_2d():
    img, seg = _batch((10, 12), n=1)
    aug = Data_Augmentation(**{**NO_AUG, "mirror": True}, seed=0)
    aug.config_mirror_p = 1.0  # default axes (0, 1, 2): 2D flips axes 0 and 1 only
    img_aug, _ = aug.run(img, seg)
    np.testing.assert_array_equal(img_aug, img[:, ::-1, ::-1])


# ---------------------------------------------------------------- cropping


def test_patch_shape_is_centre_crop():
    img, seg = _batch((16, 18, 12), n=2, channels=2)
    aug = Data_Augmentation(seed=0)
    aug.config_p_per_sample = 0.0
    img_aug, seg_aug = aug.run(img, seg, patch_shape=(12, 12, 8))
    assert img_aug.shape == (2, 12, 12, 8, 2) and seg_aug.shape == (2, 12, 12, 8, 1)
    np.testing.assert_array_equal(img_aug, img[:, 2:14, 3:15, 2:10])
    np.testing.assert_array_equal(seg_aug, seg[:, 2:14, 3:15, 2:10])
    aug.config_p_per_sample = 1.0
    img_aug, seg_aug = aug.run(img, seg, patch_shape=(12, 12, 8))
    assert img_aug.shape == (2, 12, 12, 8, 2) and seg_aug.shape == (2, 12, 12, 8, 1)


def test_patch_shape_larger_than_image_pads_with_edge_and_background():
    img = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1) + 1
    seg = np.ones((1, 4, 4, 1), dtype=np.uint8)
    aug = Data_Augmentation(**NO_AUG, seed=0)
    img_aug, seg_aug = aug.run(img, seg, patch_shape=(8, 6))
    np.testing.assert_array_equal(
        img_aug[0, ..., 0], np.pad(img[0, ..., 0], ((2, 2), (1, 1)), mode="edge")
    )
    np.testing.assert_array_equal(seg_aug[0, ..., 0], np.pad(seg[0, ..., 0], ((2, 2), (1, 1))))


def test_random_cropping_returns_windows_of_the_input():
    img, seg = _batch((16, 16), n=1, channels=2, seed=4)
    aug = Data_Augmentation(cycles=6, **NO_AUG, seed=7)
    aug.cropping = True
    aug.cropping_patch_shape = (8, 8)
    img_aug, seg_aug = aug.run(img, seg)
    assert img_aug.shape == (6, 8, 8, 2) and seg_aug.shape == (6, 8, 8, 1)
    offsets = set()
    for b in range(6):
        found = [
            (i, j)
            for i, j in itertools.product(range(9), range(9))
            if np.array_equal(img_aug[b], img[0, i : i + 8, j : j + 8])
            and np.array_equal(seg_aug[b], seg[0, i : i + 8, j : j + 8])
        ]
        assert found, b
        offsets.add(found[0])
    assert len(offsets) > 1  # crops are random


# ---------------------------------------------------------------- randomness


def test_seed_reproducible_and_different_seeds_differ():
    img, seg = _batch((16, 16, 16), n=2)

    def run(seed):
        aug = Data_Augmentation(cycles=2, mirror=True, seed=seed)
        aug.config_p_per_sample = 0.8
        return aug.run(img, seg)

    a_img, a_seg = run(123)
    np.random.seed(999)  # the global state must not matter
    random.seed(999)
    b_img, b_seg = run(123)
    c_img, _ = run(124)
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a_seg, b_seg)
    assert not np.array_equal(a_img, c_img)


def test_generator_seed_and_successive_runs_differ():
    img, seg = _batch((16, 16), n=1)
    a = Data_Augmentation(seed=np.random.default_rng(5))
    b = Data_Augmentation(seed=np.random.default_rng(5))
    a.config_p_per_sample = b.config_p_per_sample = 1.0
    first_a, _ = a.run(img, seg)
    first_b, _ = b.run(img, seg)
    np.testing.assert_array_equal(first_a, first_b)
    second_a, _ = a.run(img, seg)
    assert not np.array_equal(first_a, second_a)


def test_no_leak_into_global_random_state():
    img, seg = _batch((16, 16), n=2)
    np.random.seed(42)
    random.seed(42)
    np_before = np.random.get_state()
    py_before = random.getstate()
    aug = Data_Augmentation(cycles=2, mirror=True, elastic_deform=True)  # seed=None too
    aug.config_p_per_sample = 1.0
    aug.run(img, seg)
    np_after = np.random.get_state()
    assert np_before[0] == np_after[0]
    np.testing.assert_array_equal(np_before[1], np_after[1])
    assert np_before[2:] == np_after[2:]
    assert random.getstate() == py_before


# ---------------------------------------------------------------- object hygiene


def test_user_object_and_inputs_not_mutated():
    img, seg = _batch((16, 16), n=2)
    img_copy, seg_copy = img.copy(), seg.copy()
    aug = Data_Augmentation(mirror=True, seed=0)
    aug.config_p_per_sample = 1.0
    before = _snapshot(aug)
    aug.run(img, seg, patch_shape=(12, 12))
    aug.cropping, aug.cropping_patch_shape = False, None
    assert _snapshot(aug) == before
    np.testing.assert_array_equal(img, img_copy)
    np.testing.assert_array_equal(seg, seg_copy)


def test_instance_attributes_are_independent():
    a, b = Data_Augmentation(), Data_Augmentation()
    assert a.infaug_flip_list == [1, 2, 3] and a.infaug_flip_list is not b.infaug_flip_list
    a.infaug_flip_list.append(4)
    a.config_p_per_sample = 0.9
    assert b.infaug_flip_list == [1, 2, 3] and b.config_p_per_sample == 0.15
    assert "config_p_per_sample" not in vars(Data_Augmentation)


def test_defaults_match_miscnn():
    aug = Data_Augmentation()
    assert aug._fields() == (1, True, True, False, False, True, True, True, True)
    assert aug.config_p_per_sample == 0.15 and aug.config_mirror_axes == (0, 1, 2)
    assert aug.config_contrast_range == (0.3, 3.0) and aug.config_gamma_range == (0.7, 1.5)
    assert aug.config_brightness_range == (0.5, 2)
    assert aug.config_gaussian_noise_range == (0.0, 0.05)
    assert aug.config_elastic_deform_alpha == (0.0, 900.0)
    assert aug.config_elastic_deform_sigma == (9.0, 13.0)
    for angle in (aug.config_rotations_angleX, aug.config_rotations_angleY,
                  aug.config_rotations_angleZ):
        assert angle == pytest.approx((-math.radians(15), math.radians(15)))
    assert aug.config_scaling_range == (0.85, 1.25) and aug.config_mirror_p == 0.5
    assert aug.coloraug_per_channel and aug.config_contrast_preserverange
    assert not aug.cropping and aug.cropping_patch_shape is None
    assert not aug.infaug and aug.infaug_flip_current is None and aug.seg_augmentation


def test_equality_and_hash():
    a = Data_Augmentation(cycles=2, mirror=True, seed=1)
    b = Data_Augmentation(cycles=2, mirror=True, seed=2)
    c = Data_Augmentation(cycles=2, mirror=False)
    b.config_p_per_sample = 0.5  # not a constructor field
    assert a == b and hash(a) == hash(b)
    assert a != c and a != "Data_Augmentation"
    assert len({a, b, c}) == 2


# ---------------------------------------------------------------- seg variants


@pytest.mark.parametrize("shape", [(12, 12), (8, 8, 8)])
def test_seg_none_returns_only_image(shape):
    img, _ = _batch(shape, n=2, channels=2)
    aug = Data_Augmentation(cycles=2, seed=0)
    aug.config_p_per_sample = 1.0
    img_aug, seg_aug = aug.run(img, None)
    assert seg_aug is None and img_aug.shape == (4, *shape, 2)


def test_seg_augmentation_false_returns_seg_unchanged():
    img, seg = _batch((16, 16), n=2)
    aug = Data_Augmentation(cycles=2, mirror=True, seed=0)
    aug.config_p_per_sample = 1.0
    aug.config_mirror_p = 1.0
    aug.seg_augmentation = False
    img_aug, seg_aug = aug.run(img, seg)
    np.testing.assert_array_equal(seg_aug, np.concatenate([seg, seg]))
    assert not np.allclose(img_aug[:2], img)
    classes = np.array([[0, 1], [1, 0]])  # classification targets are fine too
    aug.cycles = 1
    _, cls_aug = aug.run(img, classes)
    np.testing.assert_array_equal(cls_aug, classes)


# ---------------------------------------------------------------- inference flipping


def test_run_infaug_self_inverse_and_noop():
    x = np.random.default_rng(0).normal(size=(2, 5, 6, 7, 3))
    aug = Data_Augmentation()
    assert aug.run_infaug(x) is x
    for axis in aug.infaug_flip_list:
        aug.infaug_flip_current = axis
        once = aug.run_infaug(x)
        np.testing.assert_array_equal(once, np.flip(x, axis=axis))
        np.testing.assert_array_equal(aug.run_infaug(once), x)
    aug.infaug_flip_current = 3
    with pytest.raises(ConfigurationError, match="infaug_flip_current"):
        aug.run_infaug(x[:, :, :, 0])  # 2D batch has no axis 3


def test_flip_axes():
    assert flip_axes(True) == [1, 2, 3]
    assert Data_Augmentation.flip_axes(False) == [1, 2]


# ---------------------------------------------------------------- errors


def test_invalid_constructor_arguments():
    with pytest.raises(ConfigurationError, match="cycles"):
        Data_Augmentation(cycles=0)
    with pytest.raises(ConfigurationError, match="mirror"):
        Data_Augmentation(mirror="yes")
    with pytest.raises(ConfigurationError, match="seed"):
        Data_Augmentation(seed="abc")


def test_invalid_config_and_data():
    img, seg = _batch((8, 8), n=1)
    aug = Data_Augmentation(seed=0)
    aug.config_p_per_sample = 2
    with pytest.raises(ConfigurationError, match="config_p_per_sample"):
        aug.run(img, seg)
    aug.config_p_per_sample = 0.15
    aug.config_border_mode_data = "zero"
    with pytest.raises(ConfigurationError, match="config_border_mode_data"):
        aug.run(img, seg)
    aug.config_border_mode_data = "nearest"
    aug.config_scaling_range = (1.2, 0.9)
    with pytest.raises(ConfigurationError, match="config_scaling_range"):
        aug.run(img, seg)
    aug.config_scaling_range = (0.85, 1.25)
    with pytest.raises(ConfigurationError, match="patch_shape"):
        aug.run(img, seg, patch_shape=(4, 4, 4))
    aug.cropping = True
    with pytest.raises(ConfigurationError, match="cropping_patch_shape"):
        aug.run(img, seg)
    aug.cropping = False
    aug.cycles = 0
    with pytest.raises(ConfigurationError, match="cycles"):
        aug.run(img, seg)
    aug.cycles = 1
    with pytest.raises(DataError):
        aug.run(img[0], seg[0])
    bad = img.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        aug.run(bad, seg)
    with pytest.raises(ShapeMismatchError):
        aug.run(img, seg[:, :4])
    with pytest.raises(LabelError):
        aug.run(img, seg.astype(np.float32) + 0.5)
    with pytest.raises(LabelError, match="one-hot"):
        aug.run(img, np.zeros((1, 8, 8, 3), dtype=np.float32))


def test_2d_rotation_uses_only_angle_x():
    img, seg = _batch((16, 16), n=2, channels=2)
    aug = Data_Augmentation(scaling=False, rotations=True, **INTENSITY_FLAGS, seed=0)
    aug.config_p_per_sample = 1.0
    aug.config_rotations_angleX = (0.0, 0.0)
    aug.config_rotations_angleY = (1.0, 1.0)
    aug.config_rotations_angleZ = (1.0, 1.0)
    img_aug, seg_aug = aug.run(img, seg)
    np.testing.assert_allclose(img_aug, img, atol=1e-4)
    np.testing.assert_array_equal(seg_aug, seg)
    aug.config_rotations_angleX = (0.5, 0.5)
    _, seg_rot = aug.run(img, seg)
    assert not np.array_equal(seg_rot, seg)


def test_pickle_round_trip_keeps_configuration_and_stream():
    import pickle

    img, seg = _batch((12, 12), n=1)
    aug = Data_Augmentation(cycles=2, mirror=True, seed=9)
    aug.config_p_per_sample = 1.0
    clone = pickle.loads(pickle.dumps(aug))
    assert clone == aug and clone.config_p_per_sample == 1.0
    np.testing.assert_array_equal(clone.run(img, seg)[0], aug.run(img, seg)[0])
