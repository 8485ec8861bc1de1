"""Tests of miseg.evaluation.metrics against brute-force references."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

from miseg.errors import ConfigurationError, DataError, ShapeMismatchError
from miseg.evaluation import metrics as metric_module
from miseg.evaluation.metrics import (
    DEFAULT_METRICS,
    METRICS,
    MaskComparison,
    binary_metrics,
    case_metrics,
    compute_dice,
    dice,
    hausdorff_distance,
    lesion_detection,
    lesion_metrics,
    normalized_surface_dice,
)


# ------------------------------------------------------------------ independent references
def brute_surface(mask: np.ndarray) -> np.ndarray:
    """Voxels of the mask with a face neighbour outside it (outside the image counts)."""
    padded = np.pad(mask, 1, constant_values=False)
    inner = tuple(slice(1, -1) for _ in range(mask.ndim))
    surface = np.zeros_like(mask)
    for axis in range(mask.ndim):
        for shift in (-1, 1):
            neighbour = np.roll(padded, shift, axis=axis)[inner]
            surface |= mask & ~neighbour
    return surface


def brute_distances(truth, pred, spacing):
    """All pairwise distances between surface voxel coordinates (times spacing)."""
    a = np.argwhere(brute_surface(truth)) * np.asarray(spacing)
    b = np.argwhere(brute_surface(pred)) * np.asarray(spacing)
    pairwise = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    return pairwise.min(axis=1), pairwise.min(axis=0)


def brute_counts(truth, pred):
    t = set(map(tuple, np.argwhere(truth)))
    p = set(map(tuple, np.argwhere(pred)))
    everything = set(itertools.product(*[range(n) for n in truth.shape]))
    return len(t & p), len(p - t), len(t - p), len(everything - t - p)


def random_blob(rng, shape, n_seeds=3, radius=3.0):
    """A union of random ellipsoid-ish balls (deterministic given rng)."""
    grid = np.indices(shape).astype(float)
    mask = np.zeros(shape, bool)
    for _ in range(n_seeds):
        centre = [rng.uniform(1, n - 2) for n in shape]
        r = rng.uniform(1.0, radius)
        dist = sum((g - c) ** 2 for g, c in zip(grid, centre))
        mask |= dist <= r * r
    return mask


CASES = [
    ((20, 18), (1.0, 1.0)),
    ((20, 18), (0.7, 2.5)),
    ((12, 14, 10), (1.0, 1.0, 1.0)),
    ((12, 14, 10), (3.0, 0.8, 1.2)),
]


@pytest.mark.parametrize("shape,spacing", CASES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_surface_distances_match_brute_force(shape, spacing, seed):
    rng = np.random.default_rng(seed)
    truth, pred = random_blob(rng, shape), random_blob(rng, shape)
    d_tp, d_pt = brute_distances(truth, pred, spacing)
    union = np.concatenate([d_tp, d_pt])
    tol = 1.5
    result = binary_metrics(truth, pred, spacing=spacing, nsd_tolerance=tol,
                            metrics=["hd", "hd95", "assd", "nsd"])
    assert result["hd"] == pytest.approx(union.max())
    assert result["hd95"] == pytest.approx(np.percentile(union, 95))
    assert result["assd"] == pytest.approx(union.mean())
    assert result["nsd"] == pytest.approx(np.mean(union <= tol))
    cmp = MaskComparison(truth, pred, spacing)
    got_tp, got_pt = cmp.surface_distances
    np.testing.assert_allclose(np.sort(got_tp), np.sort(d_tp))
    np.testing.assert_allclose(np.sort(got_pt), np.sort(d_pt))


@pytest.mark.parametrize("shape,spacing", CASES)
def test_overlap_and_volume_metrics_match_set_counting(shape, spacing):
    rng = np.random.default_rng(42)
    truth, pred = random_blob(rng, shape), random_blob(rng, shape)
    tp, fp, fn, tn = brute_counts(truth, pred)
    r = binary_metrics(truth, pred, spacing=spacing)
    voxel = float(np.prod(spacing))
    assert r["dice"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert r["f1"] == pytest.approx(r["dice"])
    assert r["iou"] == pytest.approx(tp / (tp + fp + fn))
    assert r["precision"] == pytest.approx(tp / (tp + fp))
    assert r["recall"] == pytest.approx(tp / (tp + fn))
    assert r["specificity"] == pytest.approx(tn / (tn + fp))
    assert r["accuracy"] == pytest.approx((tp + tn) / truth.size)
    assert r["volume_truth"] == pytest.approx((tp + fn) * voxel)
    assert r["volume_pred"] == pytest.approx((tp + fp) * voxel)
    assert r["volume_difference"] == pytest.approx((fp - fn) * voxel)
    assert r["abs_volume_difference"] == pytest.approx(abs(fp - fn) * voxel)
    assert r["relative_volume_difference"] == pytest.approx((fp - fn) / (tp + fn))
    assert list(r) == list(DEFAULT_METRICS)


def test_anisotropic_shift_gives_spacing_scaled_distances():
    truth = np.zeros((10, 10, 10), bool)
    truth[3:7, 3:7, 3:7] = True
    pred = np.roll(truth, 2, axis=0)  # shift of 2 voxels along the 3 mm axis
    r = binary_metrics(truth, pred, spacing=(3.0, 1.0, 0.5), metrics=["hd", "nsd", "dice"])
    assert r["hd"] == pytest.approx(6.0)
    assert r["dice"] == pytest.approx(0.5)
    r_iso = binary_metrics(truth, pred, metrics=["hd"])
    assert r_iso["hd"] == pytest.approx(2.0)


def test_structures_touching_the_image_border():
    truth = np.zeros((8, 9), bool)
    truth[:, :3] = True  # touches three borders
    pred = np.zeros((8, 9), bool)
    pred[0:8, 0:5] = True
    spacing = (1.0, 2.0)
    d_tp, d_pt = brute_distances(truth, pred, spacing)
    r = binary_metrics(truth, pred, spacing=spacing, metrics=["hd", "assd"])
    assert r["hd"] == pytest.approx(np.concatenate([d_tp, d_pt]).max())
    assert r["assd"] == pytest.approx(np.concatenate([d_tp, d_pt]).mean())


def test_small_structure_in_large_volume_matches_uncropped_brute_force():
    truth = np.zeros((40, 40, 30), bool)
    pred = np.zeros_like(truth)
    truth[20:24, 10:13, 5:9] = True
    pred[21:26, 11:13, 6:8] = True
    pred[30, 30, 25] = True  # a distant false positive voxel
    spacing = (0.9, 1.1, 2.0)
    d_tp, d_pt = brute_distances(truth, pred, spacing)
    assert hausdorff_distance(MaskComparison(truth, pred, spacing)) == pytest.approx(
        np.concatenate([d_tp, d_pt]).max())


# ------------------------------------------------------------------ metrics of two arrays
ARRAY_FUNCTIONS = {
    "dice": "dice", "iou": "iou", "precision": "precision", "recall": "recall",
    "specificity": "specificity", "accuracy": "accuracy", "f1": "f1",
    "volume_truth": "volume_truth", "volume_pred": "volume_pred",
    "volume_difference": "volume_difference", "abs_volume_difference": "abs_volume_difference",
    "relative_volume_difference": "relative_volume_difference", "hd": "hausdorff_distance",
    "hd95": "hausdorff_distance_95", "assd": "average_symmetric_surface_distance",
    "nsd": "normalized_surface_dice",
}


def test_every_metric_function_takes_truth_pred_and_spacing():
    assert set(ARRAY_FUNCTIONS) == set(METRICS)
    rng = np.random.default_rng(7)
    shape, spacing = (12, 14, 10), (3.0, 0.8, 1.2)
    truth, pred = random_blob(rng, shape), random_blob(rng, shape)
    d_tp, d_pt = brute_distances(truth, pred, spacing)
    expected = binary_metrics(truth, pred, spacing=spacing)
    for name, function_name in ARRAY_FUNCTIONS.items():
        function = getattr(metric_module, function_name)
        # The natural MIScnn-style call: arrays and a spacing (label maps as 0/1 ints).
        value = function(truth.astype(np.uint8), pred.astype(np.uint8), spacing=spacing)
        assert value == pytest.approx(expected[name]), name
    assert metric_module.hausdorff_distance(truth, pred, spacing) == pytest.approx(
        np.concatenate([d_tp, d_pt]).max())
    union = np.concatenate([d_tp, d_pt])
    assert normalized_surface_dice(truth, pred, spacing, tolerance=2.5) == pytest.approx(
        np.mean(union <= 2.5))
    # A MaskComparison still works alone (the shared cache), also with another tolerance.
    cmp = MaskComparison(truth, pred, spacing)
    assert dice(cmp) == pytest.approx(expected["dice"])
    assert normalized_surface_dice(cmp, tolerance=2.5) == pytest.approx(np.mean(union <= 2.5))


def test_multi_label_inputs_foreground_or_one_label():
    truth = np.zeros((6, 6), int)
    truth[0:2, 0:3] = 1
    truth[3:6, 3:6] = 2
    pred = truth.copy()
    pred[3:6, 3:6] = 1  # label 2 predicted as label 1: foreground right, label 2 missed
    assert dice(truth, pred) == 1.0  # label=None: every nonzero voxel is foreground
    assert dice(truth, pred, label=2) == 0.0
    assert dice(truth, pred, label=1) == pytest.approx(2 * 6 / (6 + 15))
    assert dice(truth, pred, label=1) == pytest.approx(
        case_metrics(truth, pred, 3, metrics=["dice"])[1]["dice"])
    with pytest.raises(DataError, match="probability"):
        dice(truth, pred * 0.5)
    with pytest.raises(ConfigurationError, match="prediction"):
        dice(truth)
    with pytest.raises(ConfigurationError, match="MaskComparison"):
        dice(MaskComparison(truth > 0, pred > 0), pred)
    with pytest.raises(ShapeMismatchError):
        dice(truth, pred[:5])


# ------------------------------------------------------------------------------ conventions
def test_both_empty_convention():
    empty = np.zeros((6, 6, 6), int)
    r = binary_metrics(empty, empty, spacing=(1, 2, 3))
    for name in ("dice", "iou", "precision", "recall", "f1", "nsd", "specificity", "accuracy"):
        assert r[name] == 1.0, name
    for name in ("hd", "hd95", "assd", "volume_difference", "relative_volume_difference"):
        assert r[name] == 0.0, name


@pytest.mark.parametrize("empty_side", ["truth", "pred"])
def test_exactly_one_empty_convention(empty_side):
    full = np.zeros((6, 6), bool)
    full[1:4, 2:5] = True
    empty = np.zeros_like(full)
    truth, pred = (empty, full) if empty_side == "truth" else (full, empty)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = binary_metrics(truth, pred)
    for name in ("dice", "iou", "f1", "nsd", "precision", "recall"):
        assert r[name] == 0.0, name
    for name in ("hd", "hd95", "assd"):
        assert np.isnan(r[name]), name
    if empty_side == "truth":
        assert np.isnan(r["relative_volume_difference"])
        assert r["volume_difference"] == 9.0
    else:
        assert r["relative_volume_difference"] == -1.0
        assert r["specificity"] == 1.0


def test_specificity_when_class_fills_the_image():
    full = np.ones((4, 4), bool)
    assert binary_metrics(full, full, metrics=["specificity"])["specificity"] == 1.0


def test_compute_dice_absent_class_is_one_without_warnings():
    truth = np.array([[0, 0, 1], [1, 1, 0]])
    pred = np.array([[0, 1, 1], [0, 1, 0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dices = compute_dice(truth, pred, 3)
    # class 0: truth {00,01,12}, pred {00,10,12} -> 2*2/6; class 1: 2*2/(3+3); class 2 absent.
    assert dices == pytest.approx([2 / 3, 2 / 3, 1.0])
    assert compute_dice(truth[..., None], pred[..., None], [1]) == pytest.approx([2 / 3])


# ------------------------------------------------------------------------------- case level
def test_case_metrics_rows_classes_and_channel_axis():
    truth = np.zeros((8, 8, 4, 1), int)
    truth[1:4, 1:4, 1:3] = 1
    truth[5:7, 5:7, 0:2] = 2
    pred = truth.copy()
    pred[5:7, 5:7, 0:2] = 0
    rows = case_metrics(truth, pred, 3, spacing=(1.0, 1.0, 2.0), metrics=["dice", "jaccard"],
                        case="case_7")
    assert [r["class"] for r in rows] == [0, 1, 2]
    assert all(r["sample_id"] == "case_7" for r in rows)
    assert list(rows[0]) == ["sample_id", "class", "dice", "jaccard"]
    assert rows[1]["dice"] == 1.0 and rows[2]["dice"] == 0.0
    assert rows[1]["jaccard"] == 1.0
    fg = case_metrics(truth, pred, [1, 2], metrics=["hd"], include_background=False)
    assert [r["class"] for r in fg] == [1, 2]
    assert "sample_id" not in fg[0]
    assert fg[0]["hd"] == 0.0 and np.isnan(fg[1]["hd"])


def test_shape_mismatch_names_shapes_and_case():
    with pytest.raises(ShapeMismatchError, match=r"\(4, 4\).*\(4, 5\)") as info:
        case_metrics(np.zeros((4, 4)), np.zeros((4, 5)), 2, case="case_3")
    assert "case_3" in str(info.value)
    with pytest.raises(ShapeMismatchError):
        compute_dice(np.zeros((3, 3)), np.zeros((3, 3, 2)), 2)


def test_unknown_metric_lists_valid_names():
    with pytest.raises(ConfigurationError, match="dicey") as info:
        case_metrics(np.zeros((4, 4)), np.zeros((4, 4)), 2, metrics=["dice", "dicey"])
    for name in METRICS:
        assert name in str(info.value)


@pytest.mark.parametrize("spacing", [(1.0,), (1.0, 0.0), (1.0, float("nan"))])
def test_invalid_spacing(spacing):
    with pytest.raises(ConfigurationError, match="spacing"):
        binary_metrics(np.ones((3, 3)), np.ones((3, 3)), spacing=spacing)


def test_invalid_arguments():
    with pytest.raises(ConfigurationError, match="nsd_tolerance"):
        binary_metrics(np.ones((3, 3)), np.ones((3, 3)), nsd_tolerance=-1)
    with pytest.raises(ConfigurationError, match="classes"):
        case_metrics(np.ones((3, 3)), np.ones((3, 3)), 0)
    with pytest.raises(DataError):
        case_metrics(np.zeros((0, 3)), np.zeros((0, 3)), 2)


# ------------------------------------------------------------------------------- lesions
def lesion_scene():
    """Three truth lesions (two detected), one false-positive prediction, 3D."""
    truth = np.zeros((20, 20, 8), int)
    pred = np.zeros_like(truth)
    truth[2:5, 2:5, 2:5] = 1      # A: detected well
    truth[10:13, 2:5, 2:5] = 1    # B: detected by a small partial overlap
    truth[2:5, 12:16, 2:5] = 1    # C: missed
    pred[2:5, 2:5, 2:4] = 1       # matches A (IoU 2/3)
    pred[12:15, 4:6, 4:6] = 1     # overlaps B in 1*1*1 voxel
    pred[15:18, 15:18, 5:7] = 1   # FP
    return truth, pred


def test_lesion_scene_three_lesions_two_detected_one_fp():
    truth, pred = lesion_scene()
    r = lesion_detection(truth, pred, 1, case="c1")
    assert (r["n_truth"], r["n_pred"], r["tp"], r["fp"], r["fn"]) == (3, 3, 2, 1, 1)
    assert r["precision"] == pytest.approx(2 / 3)
    assert r["recall"] == pytest.approx(2 / 3)
    assert r["f1"] == pytest.approx(2 / 3)
    assert r["sample_id"] == "c1" and r["class"] == 1


def test_lesion_min_overlap_rejects_weak_match():
    truth, pred = lesion_scene()
    r = lesion_detection(truth, pred, 1, min_overlap=0.5)
    assert (r["tp"], r["fp"], r["fn"]) == (1, 2, 2)
    with pytest.raises(ConfigurationError, match="min_overlap"):
        lesion_detection(truth, pred, 1, min_overlap=1.5)


def test_lesion_matching_is_one_to_one_by_iou():
    truth = np.zeros((12, 12), int)
    truth[1:4, 1:4] = 1
    truth[1:4, 5:7] = 1
    pred = np.zeros_like(truth)
    pred[1:4, 1:7] = 1  # one prediction covers both truth lesions
    r = lesion_detection(truth, pred, 1)
    assert (r["tp"], r["fp"], r["fn"]) == (1, 0, 1)


def test_lesion_connectivity_and_min_volume():
    truth = np.zeros((6, 6), int)
    truth[1, 1] = truth[2, 2] = 1  # diagonal neighbours
    truth[4:6, 4:6] = 1
    full = lesion_detection(truth, truth, 1)
    faces = lesion_detection(truth, truth, 1, connectivity=1)
    assert full["n_truth"] == 2 and faces["n_truth"] == 3
    # With 2 mm x 2 mm pixels the single pixels are 4 mm^2, the square 16 mm^2.
    big_only = lesion_detection(truth, truth, 1, spacing=(2.0, 2.0), connectivity=1,
                                min_volume=10.0)
    assert big_only["n_truth"] == 1 and big_only["tp"] == 1
    with pytest.raises(ConfigurationError, match="connectivity"):
        lesion_detection(truth, truth, 1, connectivity=3)


def test_lesion_empty_conventions_and_multiclass():
    empty = np.zeros((5, 5), int)
    r = lesion_detection(empty, empty, 1)
    assert (r["tp"], r["fp"], r["fn"], r["precision"], r["recall"], r["f1"]) == (0, 0, 0, 1, 1, 1)
    truth = empty.copy()
    truth[0, 0] = 1
    missed = lesion_detection(truth, empty, 1)
    assert (missed["precision"], missed["recall"], missed["f1"]) == (0.0, 0.0, 0.0)
    truth[4, 4] = 2
    rows = lesion_metrics(truth, truth, 3)
    assert [row["class"] for row in rows] == [1, 2]
    assert all(row["tp"] == 1 for row in rows)
