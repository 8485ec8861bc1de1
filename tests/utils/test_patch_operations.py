"""Tests for miseg.utils.patch_operations (grid slicing, padding, weighted merging)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from miseg.errors import ConfigurationError, DataError, ShapeMismatchError
from miseg.utils.patch_operations import (
    PatchAccumulator,
    concat_2Dmatrices,
    concat_3Dmatrices,
    concat_matrices,
    crop_patch,
    gaussian_importance_map,
    grid_positions,
    pad_patch,
    slice_2Dmatrix,
    slice_3Dmatrix,
    slice_matrix,
)

# ---------------------------------------------------------------------------------------
# Independent references
# ---------------------------------------------------------------------------------------


def reference_starts(length: int, window: int, overlap: int) -> list[int]:
    """MIScnn's rule written out literally: shift a window back when it overruns."""
    steps = max(1, math.ceil((length - overlap) / (window - overlap)))
    starts = []
    for i in range(steps):
        start = i * (window - overlap)
        if start + window > length:
            start = max(0, length - window)
        starts.append(start)
    return starts


def reference_gaussian(window, sigma_scale=1 / 8):
    """Separable Gaussian written with explicit loops over the window (float64)."""
    out = np.ones(window)
    for index in itertools.product(*[range(w) for w in window]):
        value = 1.0
        for i, w in zip(index, window):
            centre, sigma = (w - 1) / 2, sigma_scale * w
            value *= math.exp(-0.5 * ((i - centre) / sigma) ** 2)
        out[index] = value
    return out / out.max()


def reference_merge(patches, starts, image_size, window, weights):
    """Brute-force weighted mean: loop over every voxel of every (full-window) patch."""
    num = np.zeros(tuple(image_size) + (patches[0].shape[-1],))
    den = np.zeros(tuple(image_size))
    for patch, start in zip(patches, starts):
        for offset in itertools.product(*[range(w) for w in window]):
            voxel = tuple(s + o for s, o in zip(start, offset))
            num[voxel] += weights[offset] * patch[offset]
            den[voxel] += weights[offset]
    return num / den[..., None]


def slice_pad_predict_crop_concat(image, window, overlap, three_dim, weighting, crop=True):
    """The Preprocessor's round trip: slice, stack, pad to the window, (crop), merge."""
    rank = 3 if three_dim else 2
    patches = np.stack(slice_matrix(image, window, overlap, three_dim))
    if patches.shape[1 : rank + 1] != tuple(window):
        patches, slicer = pad_patch(patches, window, return_slicer=True)
        assert patches.shape[1 : rank + 1] == tuple(window)
        if crop:
            patches = crop_patch(patches, slicer)
    return concat_matrices(patches, image.shape, window, overlap, three_dim, weighting=weighting)


# ---------------------------------------------------------------------------------------
# Grid
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "window", "overlap", "three_dim", "expected"),
    [
        ((16, 16), (5, 5), (2, 2), False, 25),
        ((16, 16, 16), (5, 5, 5), (2, 2, 2), True, 125),
        ((16, 16, 16), (4, 4, 4), (0, 0, 0), True, 64),
        ((16, 16, 16), (5, 5, 5), (0, 0, 0), True, 64),
    ],
)
def test_patch_counts_match_miscnn_examples(shape, window, overlap, three_dim, expected):
    patches = slice_matrix(np.zeros(shape + (1,)), window, overlap, three_dim)
    assert len(patches) == expected
    assert len(grid_positions(shape, window, overlap)) == expected
    assert all(p.shape == tuple(window) + (1,) for p in patches)


def test_axis_starts_shift_last_window_back():
    assert grid_positions((16,), (5,), (2,)) == [(0,), (3,), (6,), (9,), (11,)]
    assert grid_positions((3,), (8,), (2,)) == [(0,)]  # image smaller than window


def test_grid_order_is_x_major_z_fastest():
    positions = grid_positions((5, 4, 3), (3, 2, 2), (1, 0, 1))
    x, y, z = [0, 2], [0, 2], [0, 1]
    assert positions == [(a, b, c) for a in x for b in y for c in z]
    assert positions[1] == (0, 0, 1)  # z changes first
    assert positions == sorted(positions)


def test_grid_positions_match_reference_on_random_shapes():
    rng = np.random.default_rng(0)
    for _ in range(200):
        rank = int(rng.integers(1, 4))
        size = tuple(int(v) for v in rng.integers(1, 30, rank))
        window = tuple(int(v) for v in rng.integers(1, 20, rank))
        overlap = tuple(int(rng.integers(0, w)) for w in window)
        per_axis = [reference_starts(*args) for args in zip(size, window, overlap)]
        expected = list(itertools.product(*per_axis))
        assert grid_positions(size, window, overlap) == expected


def test_scalar_window_and_overlap_broadcast():
    assert grid_positions((8, 8, 8), 4, 2) == grid_positions((8, 8, 8), (4, 4, 4), (2, 2, 2))


def test_slices_are_views_with_the_right_content():
    image = np.arange(7 * 6 * 5 * 2).reshape(7, 6, 5, 2)
    patches = slice_3Dmatrix(image, (4, 3, 5), (1, 1, 2))
    positions = grid_positions(image.shape[:3], (4, 3, 5), (1, 1, 2))
    assert len(patches) == len(positions)
    for patch, (a, b, c) in zip(patches, positions):
        assert np.shares_memory(patch, image)
        np.testing.assert_array_equal(patch, image[a : a + 4, b : b + 3, c : c + 5])


def test_slice_2d_carries_trailing_axes_and_clips_small_axes():
    image = np.random.default_rng(1).random((10, 3, 2, 4))  # trailing (2, 4) carried along
    patches = slice_2Dmatrix(image, (4, 8), (1, 0))
    assert len(patches) == 3
    assert all(p.shape == (4, 3, 2, 4) for p in patches)  # y=3 < window 8: not padded


# ---------------------------------------------------------------------------------------
# Round trip
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("weighting", ["gaussian", "constant", "mean"])
@pytest.mark.parametrize(
    ("shape", "window", "overlap"),
    [
        ((17, 13, 9), (5, 4, 3), (2, 1, 0)),
        ((17, 13, 9), (4, 4, 4), (3, 3, 3)),  # overlap = window - 1
        ((17, 13, 9), (8, 16, 12), (4, 2, 0)),  # window larger than the image on y and z
        ((16, 16, 16), (16, 16, 16), (0, 0, 0)),  # one patch
        ((16, 16, 16), (5, 5, 5), (0, 0, 0)),
    ],
)
@pytest.mark.parametrize("channels", [None, 1, 3])
def test_round_trip_3d(shape, window, overlap, weighting, channels):
    rng = np.random.default_rng(2)
    image = rng.random(shape if channels is None else shape + (channels,))
    patches = slice_3Dmatrix(image, window, overlap)
    merged = concat_3Dmatrices(patches, image.shape, window, overlap, weighting=weighting)
    assert merged.shape == image.shape
    assert merged.dtype == np.float64
    np.testing.assert_allclose(merged, image, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("weighting", ["gaussian", "constant"])
@pytest.mark.parametrize(
    ("shape", "window", "overlap"),
    [((17, 13), (5, 4), (2, 0)), ((17, 13), (6, 6), (5, 5)), ((9, 5), (12, 3), (0, 2))],
)
@pytest.mark.parametrize("channels", [1, 2])
def test_round_trip_2d_float32(shape, window, overlap, weighting, channels):
    image = np.random.default_rng(3).random(shape + (channels,)).astype(np.float32)
    patches = slice_2Dmatrix(image, window, overlap)
    merged = concat_2Dmatrices(patches, image.shape, window, overlap, weighting)
    assert merged.dtype == np.float32
    np.testing.assert_allclose(merged, image, rtol=1e-6, atol=1e-6)


def test_round_trip_property_random_shapes_with_padding():
    rng = np.random.default_rng(4)
    for trial in range(60):
        three_dim = bool(trial % 2)
        rank = 3 if three_dim else 2
        shape = tuple(int(v) for v in rng.integers(1, 14, rank))
        window = tuple(int(v) for v in rng.integers(1, 18, rank))  # often larger than the image
        overlap = tuple(int(rng.integers(0, w)) for w in window)
        channels = int(rng.integers(1, 4))
        image = rng.normal(size=shape + (channels,))
        for weighting in ("gaussian", "constant"):
            for crop in (True, False):  # cropped or still padded patches both merge correctly
                merged = slice_pad_predict_crop_concat(
                    image, window, overlap, three_dim, weighting, crop
                )
                context = str((shape, window, overlap, weighting, crop))
                assert merged.shape == image.shape, context
                np.testing.assert_allclose(merged, image, rtol=1e-10, atol=1e-10, err_msg=context)


def test_integer_label_patches_round_trip_exactly_with_constant_weighting():
    labels = np.random.default_rng(5).integers(0, 4, (17, 13, 9, 1))
    patches = slice_3Dmatrix(labels, (6, 6, 6), (3, 2, 1))
    merged = concat_3Dmatrices(patches, labels.shape, (6, 6, 6), (3, 2, 1), weighting="constant")
    assert merged.dtype == np.float32
    np.testing.assert_array_equal(merged, labels)


# ---------------------------------------------------------------------------------------
# Merging semantics
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("weighting", ["gaussian", "constant"])
def test_merge_matches_brute_force_weighted_mean(weighting):
    # Patches are independent "predictions" (not crops of one image), so overlaps disagree.
    image_size, window, overlap = (11, 9, 7), (5, 4, 4), (2, 1, 2)
    starts = grid_positions(image_size, window, overlap)
    rng = np.random.default_rng(6)
    patches = [rng.random(window + (2,)) for _ in starts]
    weights = reference_gaussian(window) if weighting == "gaussian" else np.ones(window)
    expected = reference_merge(patches, starts, image_size, window, weights)
    merged = concat_matrices(patches, image_size + (2,), window, overlap, True, weighting=weighting)
    np.testing.assert_allclose(merged, expected, rtol=1e-6, atol=1e-9)


def test_three_overlapping_patches_get_uniform_weights_not_miscnn_halving():
    # MIScnn's sequential pairwise average gave 0.25*p0 + 0.25*p1 + 0.5*p2 here.
    acc = PatchAccumulator((4,), 1, (4,), weighting="constant")
    for value in (0.0, 4.0, 8.0):
        acc.add(np.full((4, 1), value), (0,))
    np.testing.assert_allclose(acc.result(), np.full((4, 1), 4.0))


def test_merging_is_order_independent():
    image_size, window, overlap = (12, 10, 9), (6, 5, 4), (3, 2, 2)
    starts = grid_positions(image_size, window, overlap)
    rng = np.random.default_rng(7)
    patches = rng.random((len(starts),) + window + (3,)).astype(np.float32)
    for weighting in ("gaussian", "constant"):
        ordered = PatchAccumulator(image_size, 3, window, weighting=weighting)
        ordered.add_batch(patches, starts)
        permutation = rng.permutation(len(starts))
        shuffled = PatchAccumulator(image_size, 3, window, weighting=weighting)
        shuffled.add_batch(patches[permutation], [starts[i] for i in permutation])
        np.testing.assert_allclose(shuffled.result(), ordered.result(), rtol=1e-6, atol=1e-7)


def test_gaussian_weighting_smooths_the_seam_between_disagreeing_patches():
    # Two patches of width 16 overlapping by 8 columns: patch A predicts 0, patch B predicts 1.
    image_size, window, starts = (8, 24), (8, 16), [(0, 0), (0, 8)]
    patches = [np.zeros(window + (1,)), np.ones(window + (1,))]

    def profile(weighting):
        acc = PatchAccumulator(image_size, 1, window, weighting=weighting, dtype=np.float64)
        acc.add_batch(patches, starts)
        return acc.result()[4, :, 0]

    constant, gaussian = profile("constant"), profile("gaussian")
    # Plain averaging: abrupt steps of 0.5 at both borders of the overlap.
    np.testing.assert_allclose(constant[8:16], 0.5)
    assert constant[8] - constant[7] == pytest.approx(0.5)
    assert constant[16] - constant[15] == pytest.approx(0.5)
    # Gaussian: outside the overlap each patch alone; inside, a monotone symmetric transition
    # that is nearly flat at the patch borders and centred in the middle of the overlap.
    assert np.all(gaussian[:8] == 0) and np.all(gaussian[16:] == 1)
    assert np.all(np.diff(gaussian[7:17]) > 0)
    assert gaussian[8] - gaussian[7] < 0.01 and gaussian[16] - gaussian[15] < 0.01
    np.testing.assert_allclose(gaussian[8:12] + gaussian[15:11:-1], 1.0)
    assert gaussian[11] < 0.5 < gaussian[12]


def test_accumulator_buffers_dtype_and_memory():
    acc = PatchAccumulator((17, 13, 9), 4, (8, 8, 8))
    assert acc.weight_sum.shape == (17, 13, 9)  # spatial only, no channel axis
    assert acc.weighted_sum.shape == (17, 13, 9, 4)
    assert acc.weight_sum.dtype == acc.weighted_sum.dtype == np.float32
    output_bytes = 17 * 13 * 9 * 4 * 4
    assert acc.weighted_sum.nbytes + acc.weight_sum.nbytes <= 2 * output_bytes
    starts = grid_positions((17, 13, 9), 8, 4)
    acc.add_batch(np.ones((len(starts), 8, 8, 8, 4)), starts)
    result = acc.result()
    assert result.dtype == np.float32 and result.shape == (17, 13, 9, 4)
    np.testing.assert_allclose(result, 1.0, rtol=1e-6)
    with pytest.raises(ValueError):
        acc.weight_sum[0, 0, 0] = 5  # read-only view


def test_result_without_copy_reuses_the_buffer_and_closes_the_accumulator():
    acc = PatchAccumulator((6, 6), 1, (4, 4), weighting="constant")
    acc.add_batch([np.full((4, 4, 1), 2.0)] * 4, grid_positions((6, 6), 4, 2))
    first = acc.result()
    in_place = acc.result(copy=False)
    assert np.shares_memory(in_place, acc.weighted_sum)
    np.testing.assert_array_equal(first, in_place)
    with pytest.raises(ConfigurationError, match="finalised"):
        acc.add(np.ones((4, 4, 1)), (0, 0))


def test_padded_patch_is_centred_like_pad_patch():
    # Image x=3 < window 8: pad_patch puts the image at window offset (8-3)//2 = 2.
    image = np.random.default_rng(8).random((3, 5, 1))
    padded = pad_patch(image[None], (8, 5), value=-100.0)[0]
    for weighting in ("gaussian", "constant"):
        acc = PatchAccumulator((3, 5), 1, (8, 5), weighting=weighting, dtype=np.float64)
        acc.add(padded, (0, 0))
        np.testing.assert_allclose(acc.result(), image)  # the -100 padding never leaks in


def test_cropped_and_padded_patches_get_identical_weights():
    # A cropped patch is weighted with the centre of the window's Gaussian, as if still padded.
    image = np.random.default_rng(13).random((5, 12, 2))
    window, overlap = (9, 6), (0, 3)
    starts = grid_positions(image.shape[:2], window, overlap)
    patches = np.stack(slice_2Dmatrix(image, window, overlap))
    padded, slicer = pad_patch(patches, window, return_slicer=True)
    from_padded = PatchAccumulator(image.shape[:2], 2, window, dtype=np.float64)
    from_padded.add_batch(padded, starts)
    from_cropped = PatchAccumulator(image.shape[:2], 2, window, dtype=np.float64)
    from_cropped.add_batch(crop_patch(padded, slicer), starts)
    np.testing.assert_array_equal(from_cropped.weight_sum, from_padded.weight_sum)
    np.testing.assert_array_equal(from_cropped.weighted_sum, from_padded.weighted_sum)
    expected_rows = reference_gaussian(window)[2:7, :]  # rows 2..6 of the 9-row window
    np.testing.assert_allclose(from_cropped.weight_sum[:, :3], expected_rows[:, :3], rtol=1e-6)


def test_patch_past_the_image_end_is_clipped():
    acc = PatchAccumulator((6,), 1, (4,), weighting="constant")
    acc.add(np.arange(4.0)[:, None], (0,))
    acc.add(np.arange(10.0, 14.0)[:, None], (4,))  # covers 4..7; 6 and 7 lie outside
    np.testing.assert_allclose(acc.result()[:, 0], [0, 1, 2, 3, 10, 11])


def test_result_refuses_uncovered_voxels():
    acc = PatchAccumulator((8, 8), 1, (4, 4))
    acc.add(np.ones((4, 4, 1)), (0, 0))
    with pytest.raises(DataError, match="48 of 64 voxels"):
        acc.result()


def test_concat_accepts_an_ndarray_of_patches_and_ignores_extra_image_size_entries():
    image = np.random.default_rng(9).random((12, 12, 2))
    patches = np.stack(slice_2Dmatrix(image, (6, 6), (3, 3)))
    merged = concat_matrices(patches, (12, 12, 99), (6, 6), (3, 3), three_dim=False)
    np.testing.assert_allclose(merged, image)


# ---------------------------------------------------------------------------------------
# Gaussian importance map
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("window", [(9, 9, 9), (16, 16, 16), (8, 12, 5), (7, 10)])
def test_gaussian_map_shape_max_symmetry_positivity(window):
    weights = gaussian_importance_map(window)
    assert weights.shape == window and weights.dtype == np.float32
    assert weights.max() == 1.0 and np.all(weights > 0)
    for axis in range(len(window)):
        np.testing.assert_array_equal(weights, np.flip(weights, axis=axis))
    centre = tuple((w - 1) // 2 for w in window)
    assert weights[centre] == weights.max()
    np.testing.assert_allclose(weights, reference_gaussian(window), rtol=1e-5, atol=1e-7)


def test_gaussian_sigma_is_one_eighth_of_the_window():
    # Odd window with an integer sigma: the value one sigma from the centre is exp(-0.5).
    weights = gaussian_importance_map((17, 17, 17), sigma_scale=4 / 17)
    assert weights[8 + 4, 8, 8] == pytest.approx(math.exp(-0.5), rel=1e-5)
    assert weights[8, 8 - 4, 8 + 4] == pytest.approx(math.exp(-1.0), rel=1e-5)
    # Default 1/8 on an even window (centre 7.5, sigma 2): estimate sigma from two samples.
    line = gaussian_importance_map((16, 16, 16)).astype(np.float64)[:, 8, 8]
    d_near, d_far = 0.5, 3.5  # offsets of indices 8 and 11 from the centre
    sigma = math.sqrt((d_far**2 - d_near**2) / (2 * math.log(line[8] / line[11])))
    assert sigma == pytest.approx(2.0, rel=1e-5)
    expected_ratio = math.exp(-0.5 * (1.5**2 - 0.5**2) / 2.0**2)
    assert line[9] / line[8] == pytest.approx(expected_ratio, rel=1e-5)


def test_gaussian_map_replaces_underflow_with_smallest_positive():
    weights = gaussian_importance_map((64, 64), sigma_scale=0.01)
    assert np.all(weights > 0)
    positive_min = weights[weights > weights.min()].min()
    assert weights[0, 0] == weights.min() and weights.min() <= positive_min


def test_gaussian_map_is_cached_and_read_only():
    first = gaussian_importance_map((8, 8, 8))
    assert gaussian_importance_map([8, 8, 8]) is first
    assert gaussian_importance_map((8, 8, 8), sigma_scale=0.25) is not first
    assert gaussian_importance_map((8, 8, 8), dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError):
        first[0, 0, 0] = 2.0


# ---------------------------------------------------------------------------------------
# pad_patch / crop_patch
# ---------------------------------------------------------------------------------------


def test_pad_patch_miscnn_examples():
    assert pad_patch(np.ones((1, 16, 16, 1)), (8, 20)).shape == (1, 16, 20, 1)
    assert pad_patch(np.ones((1, 16, 16, 16, 1)), (8, 16, 32)).shape == (1, 16, 16, 32, 1)


def test_pad_patch_is_symmetric_constant_and_inverted_by_crop_patch():
    batch = np.random.default_rng(10).random((2, 3, 4, 5, 2)) + 5.0
    padded, slicer = pad_patch(batch, (6, 4, 8), return_slicer=True)
    assert padded.shape == (2, 6, 4, 8, 2)
    assert slicer == (slice(None), slice(1, 4), slice(0, 4), slice(1, 6), slice(None))
    np.testing.assert_array_equal(padded[:, 1:4, :, 1:6], batch)
    mask = np.ones(padded.shape, dtype=bool)
    mask[:, 1:4, :, 1:6] = False
    assert np.all(padded[mask] == 0.0)  # a constant, not MIScnn's per-line minimum (>= 5)
    np.testing.assert_array_equal(crop_patch(padded, slicer), batch)
    assert np.all(pad_patch(batch, (6, 4, 8), value=-1.0)[mask] == -1.0)


def test_pad_patch_2d_with_one_hot_stays_consistent_and_slicer_crops_predictions():
    one_hot = np.eye(3)[np.random.default_rng(11).integers(0, 3, (1, 5, 3))]  # (1, 5, 3, 3)
    padded, slicer = pad_patch(one_hot, (5, 8), return_slicer=True)
    assert padded.shape == (1, 5, 8, 3)
    assert np.all(padded[:, :, :2].sum(-1) == 0) and np.all(padded[:, :, 5:].sum(-1) == 0)
    prediction = np.random.default_rng(12).random((1, 5, 8, 7))  # other channel count
    np.testing.assert_array_equal(crop_patch(prediction, slicer), prediction[:, :, 2:5])


def test_crop_patch_does_not_mutate_its_arguments():
    padded, slicer = pad_patch(np.ones((1, 3, 3, 1)), (5, 5), return_slicer=True)
    slicer_list = list(slicer)
    before_list, before_patch = list(slicer_list), padded.copy()
    cropped = crop_patch(padded, slicer_list)
    assert slicer_list == before_list
    np.testing.assert_array_equal(padded, before_patch)
    assert cropped.shape == (1, 3, 3, 1)


def test_pad_patch_never_crops():
    assert pad_patch(np.ones((3, 10, 10, 1)), (4, 12)).shape == (3, 10, 12, 1)


# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------


def test_overlap_not_smaller_than_window_is_rejected_with_a_clear_message():
    with pytest.raises(ConfigurationError) as info:
        slice_matrix(np.zeros((16, 16, 16, 1)), (8, 16, 16), (8, 8, 8), True)
    message = str(info.value)
    assert "overlap (8, 8, 8)" in message and "(8, 16, 16)" in message and "axis 0" in message
    with pytest.raises(ConfigurationError, match="axis 1 has overlap 5 >= 4"):
        grid_positions((10, 10), (4, 4), (0, 5))
    with pytest.raises(ValueError):  # ConfigurationError is a ValueError for MIScnn scripts
        concat_matrices([np.zeros((4, 4, 1))], (4, 4), (4, 4), (4, 4), False)


@pytest.mark.parametrize(
    ("window", "overlap", "match"),
    [
        ((8, 8), (0, 0, 0), "window \\(8, 8\\) has 2 entries"),
        ((8, 8, 8), (0, 0), "overlap \\(0, 0\\) has 2 entries"),
        ((8, 8, 8), (0, -1, 0), "axis 1 has overlap -1"),
        ((8, 0, 8), (0, 0, 0), "window \\(8, 0, 8\\) must be positive"),
        ((8, 8.5, 8), (0, 0, 0), "must hold integers"),
        ("888", (0, 0, 0), "window"),
    ],
)
def test_invalid_window_or_overlap(window, overlap, match):
    with pytest.raises(ConfigurationError, match=match):
        slice_3Dmatrix(np.zeros((8, 8, 8)), window, overlap)


def test_other_invalid_arguments():
    with pytest.raises(ConfigurationError, match="weighting 'median'"):
        PatchAccumulator((8, 8), 1, (4, 4), weighting="median")
    with pytest.raises(ConfigurationError, match="floating"):
        PatchAccumulator((8, 8), 1, (4, 4), dtype=np.int32)
    with pytest.raises(ConfigurationError, match="n_channels"):
        PatchAccumulator((8, 8), 0, (4, 4))
    with pytest.raises(ConfigurationError, match="sigma_scale"):
        gaussian_importance_map((8, 8), sigma_scale=0)
    with pytest.raises(ConfigurationError, match="three_dim"):
        slice_matrix(np.zeros((8, 8)), 4, 0, three_dim="yes")
    with pytest.raises(DataError, match="at least 3 spatial axes"):
        slice_matrix(np.zeros((8, 8)), 4, 0, three_dim=True)
    with pytest.raises(ShapeMismatchError, match="pad_patch expects a batch"):
        pad_patch(np.zeros((8, 8, 1)), (10, 10))
    with pytest.raises(ShapeMismatchError, match="slicer with 3 entries"):
        crop_patch(np.zeros((1, 8, 8, 1)), (slice(None), slice(0, 4), slice(None)))


def test_shape_mismatches_in_merging():
    patches = slice_2Dmatrix(np.zeros((10, 10, 1)), (4, 4), (2, 2))
    with pytest.raises(ShapeMismatchError, match=f"got {len(patches) - 1} patches"):
        concat_2Dmatrices(patches[:-1], (10, 10), (4, 4), (2, 2))
    acc = PatchAccumulator((10, 10), 1, (4, 4))
    with pytest.raises(ShapeMismatchError, match="C=1"):
        acc.add(np.zeros((4, 4, 2)), (0, 0))
    with pytest.raises(ShapeMismatchError, match="axis 0 has 3, expected 4"):
        acc.add(np.zeros((3, 4, 1)), (0, 0))
    with pytest.raises(ShapeMismatchError, match="outside the image"):
        acc.add(np.zeros((4, 4, 1)), (10, 0))
    with pytest.raises(ShapeMismatchError, match="2 patches but 1 start"):
        acc.add_batch(np.zeros((2, 4, 4, 1)), [(0, 0)])
