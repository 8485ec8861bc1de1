"""Segmentation metrics per case and class: overlap, volume and spacing-aware surface distances.

All metrics compare an integer ground-truth label map with an integer predicted label map of
the same shape, class by class (``truth == c`` versus ``pred == c``). Distances and volumes
use the voxel ``spacing`` (mm per array axis; ``None`` means 1 per axis), in 2D and 3D.

Metrics (names accepted by ``metrics=``; see :data:`METRICS`):

* Overlap: ``dice``, ``iou`` (Jaccard), ``precision``, ``recall`` (sensitivity),
  ``specificity``, ``accuracy``, ``f1``. At voxel level ``f1`` equals ``dice``; it is kept
  for symmetry with the lesion-wise scores.
* Volume (mm^3, i.e. voxel count times the product of the spacing): ``volume_truth``,
  ``volume_pred``, ``volume_difference`` (signed, prediction minus truth),
  ``abs_volume_difference`` and ``relative_volume_difference`` (signed, divided by the truth
  volume).
* Surface distances (mm): ``hd`` (Hausdorff distance), ``hd95``, ``assd`` (average symmetric
  surface distance) and ``nsd`` (normalized surface Dice at ``nsd_tolerance`` mm).

Aliases: ``jaccard`` -> ``iou``, ``sensitivity`` -> ``recall``, ``hausdorff`` -> ``hd``.

Each metric is also a function of two arrays, ``metric(truth, pred, spacing=None, *,
label=None)`` (:func:`dice`, :func:`iou`, :func:`precision`, :func:`recall`,
:func:`hausdorff_distance`, :func:`hausdorff_distance_95`,
:func:`average_symmetric_surface_distance`, :func:`normalized_surface_dice` with
``tolerance=`` in mm, ...). Inputs are binary masks or label maps: with ``label=None`` the
foreground (every nonzero voxel) is compared, so a multi-label map counts as one mask; with
``label=c`` only ``truth == c`` versus ``pred == c``. Probability maps are refused (threshold
or argmax first). For several metrics or every class of one case use :func:`binary_metrics`
or :func:`case_metrics`, which share one :class:`MaskComparison` per class.

Surface distances follow the standard voxel approach (MedPy, nnU-Net evaluation): the surface
of a mask is the set of its voxels removed by one binary erosion with the face-connected
structuring element (voxels on the image border count as surface). For each surface voxel of
one mask, its distance to the other mask's surface is read from an exact Euclidean distance
transform computed with ``sampling=spacing``. This gives two directed distance sets,
``d(T->P)`` and ``d(P->T)``, and

* ``hd``   = max over the union of both sets,
* ``hd95`` = 95th percentile (linear interpolation) of the **union** of both sets. Note that
  MedPy and MONAI take the maximum of the two directed 95th percentiles instead; the union
  convention weights each surface voxel equally and is never larger,
* ``assd`` = mean over the union of both sets,
* ``nsd``  = fraction of the union of both sets that is ``<= nsd_tolerance`` (surface voxels
  stand in for surface elements; no surfel-area weighting).

Conventions for empty masks (class absent from the truth and/or the prediction), chosen so
that no 0/0 ever produces a warning:

==========================  =================  ============================================
metric                      both empty         exactly one empty
==========================  =================  ============================================
dice, iou, f1               1                  0
precision                   1                  0 (no prediction: scikit-learn's
                                               ``zero_division=0``; truth empty: no TP)
recall                      1                  0
specificity, accuracy       always defined (specificity is 1 when the class fills the image)
hd, hd95, assd              0                  NaN (no surface to measure against)
nsd                         1                  0
relative_volume_difference  0                  NaN when the truth is empty, else -1
==========================  =================  ============================================

NaN values are skipped (and counted) by :func:`miseg.evaluation.reports.summary_table`.

Lesion-wise detection (:func:`lesion_detection`, :func:`lesion_metrics`) labels connected
components of truth and prediction per class and matches them one-to-one.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Callable, Iterable, Mapping, Sequence, Union

import numpy as np
from scipy import ndimage

from miseg.data_loading.data_io import check_label_range
from miseg.errors import ConfigurationError, DataError, ShapeMismatchError

__all__ = [
    "MaskComparison",
    "METRICS",
    "METRIC_ALIASES",
    "DEFAULT_METRICS",
    "LOWER_IS_BETTER",
    "dice",
    "iou",
    "precision",
    "recall",
    "specificity",
    "accuracy",
    "f1",
    "volume_truth",
    "volume_pred",
    "volume_difference",
    "abs_volume_difference",
    "relative_volume_difference",
    "hausdorff_distance",
    "hausdorff_distance_95",
    "average_symmetric_surface_distance",
    "normalized_surface_dice",
    "resolve_metric_names",
    "binary_metrics",
    "case_metrics",
    "compute_dice",
    "lesion_detection",
    "lesion_metrics",
]


# ---------------------------------------------------------------------------------- helpers
def _as_spacing(spacing: Sequence[float] | None, ndim: int) -> tuple[float, ...]:
    if spacing is None:
        return (1.0,) * ndim
    values = tuple(float(s) for s in np.atleast_1d(np.asarray(spacing, dtype=np.float64)))
    if len(values) != ndim or not all(np.isfinite(s) and s > 0 for s in values):
        raise ConfigurationError(
            f"spacing={tuple(spacing)!r} is invalid for {ndim}D data: it needs {ndim} finite "
            f"positive values (mm per array axis)."
        )
    return values


def _case_text(case: Any) -> str:
    return "" if case is None else f"Case {case!r}: "


def _prepare_pair(
    truth: np.ndarray,
    pred: np.ndarray,
    spacing: Sequence[float] | None,
    case: Any,
) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """Check shapes, drop a trailing singleton channel axis and resolve the spacing."""
    truth = np.asarray(truth)
    pred = np.asarray(pred)
    if truth.shape != pred.shape:
        raise ShapeMismatchError(
            f"{_case_text(case)}truth shape {truth.shape} and prediction shape {pred.shape} "
            f"differ; metrics need two label maps of the same shape (argmax probability maps "
            f"first)."
        )
    if truth.size == 0:
        raise DataError(f"{_case_text(case)}truth and prediction are empty arrays {truth.shape}.")
    # Label maps stored in a Sample carry a trailing (..., 1) axis. With a spacing its length
    # decides; without one a trailing singleton is dropped from 3D/4D arrays.
    if spacing is not None:
        n_spatial = len(np.atleast_1d(np.asarray(spacing)))
        if truth.ndim == n_spatial + 1 and truth.shape[-1] == 1:
            truth, pred = truth[..., 0], pred[..., 0]
    elif truth.ndim in (3, 4) and truth.shape[-1] == 1:
        truth, pred = truth[..., 0], pred[..., 0]
    return truth, pred, _as_spacing(spacing, truth.ndim)


def _surface(mask: np.ndarray) -> np.ndarray:
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure=structure, border_value=0)


def _safe_ratio(numerator: float, denominator: float, empty_value: float) -> float:
    return float(numerator) / float(denominator) if denominator > 0 else float(empty_value)


# ---------------------------------------------------------------------------- comparison
class MaskComparison:
    """One binary truth/prediction pair; counts and surface distances are computed lazily.

    The shared cache behind the metric functions: every entry of :data:`METRICS` takes a
    ``MaskComparison``, so several metrics of one pair share a single erosion and distance
    transform (:func:`binary_metrics` and :func:`case_metrics` build one per class). The
    public functions (:func:`dice`, ...) build one from two arrays, or take one alone.

    Args:
        truth: Boolean (or 0/1) ground-truth mask, 2D or 3D.
        pred: Boolean (or 0/1) predicted mask of the same shape.
        spacing: Voxel size per axis in mm; ``None`` means 1.
        nsd_tolerance: Tolerance in mm of the normalized surface Dice.

    Example:
        >>> t = np.zeros((8, 8), bool); t[2:6, 2:6] = True
        >>> cmp = MaskComparison(t, np.roll(t, 1, axis=0), spacing=(2.0, 1.0))
        >>> dice(cmp), hausdorff_distance(cmp)
        (0.75, 2.0)
    """

    def __init__(
        self,
        truth: np.ndarray,
        pred: np.ndarray,
        spacing: Sequence[float] | None = None,
        nsd_tolerance: float = 1.0,
    ) -> None:
        truth = np.asarray(truth).astype(bool, copy=False)
        pred = np.asarray(pred).astype(bool, copy=False)
        if truth.shape != pred.shape:
            raise ShapeMismatchError(
                f"truth mask shape {truth.shape} and prediction mask shape {pred.shape} differ."
            )
        if not np.isfinite(nsd_tolerance) or nsd_tolerance < 0:
            raise ConfigurationError(
                f"nsd_tolerance={nsd_tolerance!r} is invalid; it must be a finite distance in "
                f"mm >= 0."
            )
        self.truth = truth
        self.pred = pred
        self.spacing = _as_spacing(spacing, truth.ndim)
        self.nsd_tolerance = float(nsd_tolerance)

    # -- counts
    @cached_property
    def tp(self) -> int:
        """True-positive voxels."""
        return int(np.count_nonzero(self.truth & self.pred))

    @cached_property
    def n_truth(self) -> int:
        """Voxels in the truth mask."""
        return int(np.count_nonzero(self.truth))

    @cached_property
    def n_pred(self) -> int:
        """Voxels in the predicted mask."""
        return int(np.count_nonzero(self.pred))

    @property
    def fp(self) -> int:
        """False-positive voxels."""
        return self.n_pred - self.tp

    @property
    def fn(self) -> int:
        """False-negative voxels."""
        return self.n_truth - self.tp

    @property
    def tn(self) -> int:
        """True-negative voxels."""
        return self.truth.size - self.n_truth - self.n_pred + self.tp

    @property
    def voxel_volume(self) -> float:
        """Volume of one voxel in mm^3 (area in mm^2 for 2D)."""
        return float(np.prod(self.spacing))

    # -- surfaces
    @cached_property
    def surface_distances(self) -> tuple[np.ndarray, np.ndarray]:
        """Directed surface distances ``(truth -> pred, pred -> truth)`` in mm.

        Both arrays are empty when either mask is empty.
        """
        if self.n_truth == 0 or self.n_pred == 0:
            return np.zeros(0), np.zeros(0)
        # Crop to the joint bounding box plus a one-voxel background margin (clipped at the
        # image border, where erosion's border_value=0 applies as in the full image): the
        # erosion and the exact EDT between surface voxels are unchanged, and large volumes
        # with small structures get much cheaper.
        joint = self.truth | self.pred
        box = []
        for axis in range(joint.ndim):
            other = tuple(a for a in range(joint.ndim) if a != axis)
            hits = np.flatnonzero(joint.any(axis=other))
            box.append(slice(max(hits[0] - 1, 0), min(hits[-1] + 2, joint.shape[axis])))
        box = tuple(box)
        truth_surface = _surface(self.truth[box])
        pred_surface = _surface(self.pred[box])
        dist_to_truth = ndimage.distance_transform_edt(~truth_surface, sampling=self.spacing)
        dist_to_pred = ndimage.distance_transform_edt(~pred_surface, sampling=self.spacing)
        return dist_to_pred[truth_surface], dist_to_truth[pred_surface]

    @property
    def _empty_state(self) -> str:
        if self.n_truth == 0 and self.n_pred == 0:
            return "both"
        if self.n_truth == 0 or self.n_pred == 0:
            return "one"
        return "none"


# ------------------------------------------------------------- metrics of one comparison
# The registry below (METRICS) maps names to these functions of a MaskComparison, so table
# code computes every metric of a pair from one cached comparison. The public functions
# further down take arrays.
def _dice(cmp: MaskComparison) -> float:
    return _safe_ratio(2 * cmp.tp, cmp.n_truth + cmp.n_pred, 1.0)


def _iou(cmp: MaskComparison) -> float:
    return _safe_ratio(cmp.tp, cmp.n_truth + cmp.n_pred - cmp.tp, 1.0)


def _precision(cmp: MaskComparison) -> float:
    return _safe_ratio(cmp.tp, cmp.n_pred, 1.0 if cmp.n_truth == 0 else 0.0)


def _recall(cmp: MaskComparison) -> float:
    return _safe_ratio(cmp.tp, cmp.n_truth, 1.0 if cmp.n_pred == 0 else 0.0)


def _specificity(cmp: MaskComparison) -> float:
    return _safe_ratio(cmp.tn, cmp.tn + cmp.fp, 1.0)


def _accuracy(cmp: MaskComparison) -> float:
    return _safe_ratio(cmp.tp + cmp.tn, cmp.truth.size, 1.0)


def _f1(cmp: MaskComparison) -> float:
    return _safe_ratio(2 * cmp.tp, 2 * cmp.tp + cmp.fp + cmp.fn, 1.0)


def _volume_truth(cmp: MaskComparison) -> float:
    return cmp.n_truth * cmp.voxel_volume


def _volume_pred(cmp: MaskComparison) -> float:
    return cmp.n_pred * cmp.voxel_volume


def _volume_difference(cmp: MaskComparison) -> float:
    return (cmp.n_pred - cmp.n_truth) * cmp.voxel_volume


def _abs_volume_difference(cmp: MaskComparison) -> float:
    return abs(cmp.n_pred - cmp.n_truth) * cmp.voxel_volume


def _relative_volume_difference(cmp: MaskComparison) -> float:
    if cmp.n_truth == 0:
        return 0.0 if cmp.n_pred == 0 else float("nan")
    return (cmp.n_pred - cmp.n_truth) / cmp.n_truth


def _distances_or_convention(cmp: MaskComparison) -> np.ndarray | float:
    state = cmp._empty_state
    if state == "both":
        return 0.0
    if state == "one":
        return float("nan")
    to_pred, to_truth = cmp.surface_distances
    return np.concatenate([to_pred, to_truth])


def _hausdorff_distance(cmp: MaskComparison) -> float:
    d = _distances_or_convention(cmp)
    return d if isinstance(d, float) else float(d.max())


def _hausdorff_distance_95(cmp: MaskComparison) -> float:
    d = _distances_or_convention(cmp)
    return d if isinstance(d, float) else float(np.percentile(d, 95))


def _average_symmetric_surface_distance(cmp: MaskComparison) -> float:
    d = _distances_or_convention(cmp)
    return d if isinstance(d, float) else float(d.mean())


def _normalized_surface_dice(cmp: MaskComparison) -> float:
    state = cmp._empty_state
    if state != "none":
        return 1.0 if state == "both" else 0.0
    to_pred, to_truth = cmp.surface_distances
    within = np.count_nonzero(to_pred <= cmp.nsd_tolerance) + np.count_nonzero(
        to_truth <= cmp.nsd_tolerance
    )
    return within / (to_pred.size + to_truth.size)


METRICS: Mapping[str, Callable[[MaskComparison], float]] = {
    "dice": _dice,
    "iou": _iou,
    "precision": _precision,
    "recall": _recall,
    "specificity": _specificity,
    "accuracy": _accuracy,
    "f1": _f1,
    "volume_truth": _volume_truth,
    "volume_pred": _volume_pred,
    "volume_difference": _volume_difference,
    "abs_volume_difference": _abs_volume_difference,
    "relative_volume_difference": _relative_volume_difference,
    "hd": _hausdorff_distance,
    "hd95": _hausdorff_distance_95,
    "assd": _average_symmetric_surface_distance,
    "nsd": _normalized_surface_dice,
}
"""Metric name -> function of one :class:`MaskComparison` returning a float (the shared
cache behind :func:`binary_metrics`, :func:`case_metrics` and the array functions)."""


# ------------------------------------------------------------------ metrics of two arrays
def _binary_mask(mask: np.ndarray, label: int | None, name: str) -> np.ndarray:
    if mask.dtype == bool and label is None:
        return mask
    if np.issubdtype(mask.dtype, np.floating) and not np.all(np.isfinite(mask) & (mask == np.round(mask))):
        raise DataError(
            f"{name} holds non-integer values (a probability map?); metrics compare masks or "
            f"label maps: threshold it or take the argmax first."
        )
    return mask != 0 if label is None else mask == label


def _comparison(
    truth: Any,
    pred: Any,
    spacing: Sequence[float] | None,
    label: int | None,
    tolerance: float | None = None,
) -> MaskComparison:
    """The cached comparison behind an array metric call (or the one passed in)."""
    if isinstance(truth, MaskComparison):
        if pred is not None or spacing is not None or label is not None:
            raise ConfigurationError(
                "A MaskComparison already fixes both masks and the spacing; pass it alone, "
                "or pass (truth, pred, spacing=..., label=...) arrays."
            )
        if tolerance is not None and float(tolerance) != truth.nsd_tolerance:
            return MaskComparison(truth.truth, truth.pred, truth.spacing, tolerance)
        return truth
    if pred is None:
        raise ConfigurationError("The metric needs the prediction: call it as metric(truth, pred).")
    if label is not None and (isinstance(label, bool) or not isinstance(label, (int, np.integer))):
        raise ConfigurationError(f"label={label!r} must be an int class label or None (foreground).")
    truth, pred, spacing = _prepare_pair(truth, pred, spacing, None)
    return MaskComparison(
        _binary_mask(truth, label, "truth"), _binary_mask(pred, label, "pred"), spacing,
        1.0 if tolerance is None else tolerance,
    )


MaskInput = Union[np.ndarray, MaskComparison]
"""A mask or label map, or a :class:`MaskComparison` holding both masks."""


def dice(truth: MaskInput, pred: np.ndarray | None = None, spacing: Sequence[float] | None = None,
         *, label: int | None = None) -> float:
    """Dice coefficient ``2|T∩P| / (|T| + |P|)``; 1 when both masks are empty.

    Args:
        truth: Ground-truth mask or label map, 2D or 3D (a trailing ``(..., 1)`` axis is
            dropped), or a :class:`MaskComparison` passed alone.
        pred: Predicted mask or label map of the same shape.
        spacing: Voxel size per axis in mm; ``None`` means 1. Only volumes and surface
            distances use it.
        label: Compare ``truth == label`` with ``pred == label``. ``None`` compares the
            foreground: every nonzero voxel (a multi-label map is merged into one mask).

    Returns:
        The metric (see the module docstring for empty masks).

    Raises:
        ShapeMismatchError: when the shapes differ.
        DataError: for non-integer (probability) values.

    Example:
        >>> t = np.zeros((8, 8), int); t[2:6, 2:6] = 1
        >>> dice(t, np.roll(t, 1, axis=0)), dice(t * 2, t, label=2)
        (0.75, 0.0)
    """
    return _dice(_comparison(truth, pred, spacing, label))


def iou(truth: MaskInput, pred: np.ndarray | None = None, spacing: Sequence[float] | None = None,
        *, label: int | None = None) -> float:
    """Intersection over union (Jaccard) ``|T∩P| / |T∪P|``; 1 when both are empty. Args: as :func:`dice`."""
    return _iou(_comparison(truth, pred, spacing, label))


def precision(truth: MaskInput, pred: np.ndarray | None = None,
              spacing: Sequence[float] | None = None, *, label: int | None = None) -> float:
    """Positive predictive value ``TP / (TP + FP)``; empty prediction: 1 if the truth is
    empty too, else 0. Args: as :func:`dice`."""
    return _precision(_comparison(truth, pred, spacing, label))


def recall(truth: MaskInput, pred: np.ndarray | None = None, spacing: Sequence[float] | None = None,
           *, label: int | None = None) -> float:
    """Sensitivity ``TP / (TP + FN)``; empty truth: 1 if the prediction is empty too, else 0.
    Args: as :func:`dice`."""
    return _recall(_comparison(truth, pred, spacing, label))


def specificity(truth: MaskInput, pred: np.ndarray | None = None,
                spacing: Sequence[float] | None = None, *, label: int | None = None) -> float:
    """True-negative rate ``TN / (TN + FP)``; 1 when the mask fills the image. Args: as :func:`dice`."""
    return _specificity(_comparison(truth, pred, spacing, label))


def accuracy(truth: MaskInput, pred: np.ndarray | None = None,
             spacing: Sequence[float] | None = None, *, label: int | None = None) -> float:
    """Voxel accuracy ``(TP + TN) / N``. Args: as :func:`dice`."""
    return _accuracy(_comparison(truth, pred, spacing, label))


def f1(truth: MaskInput, pred: np.ndarray | None = None, spacing: Sequence[float] | None = None,
       *, label: int | None = None) -> float:
    """F1 score ``2TP / (2TP + FP + FN)`` (equal to Dice at voxel level). Args: as :func:`dice`."""
    return _f1(_comparison(truth, pred, spacing, label))


def volume_truth(truth: MaskInput, pred: np.ndarray | None = None,
                 spacing: Sequence[float] | None = None, *, label: int | None = None) -> float:
    """Truth volume in mm^3 (voxel count times the voxel volume). Args: as :func:`dice`."""
    return _volume_truth(_comparison(truth, pred, spacing, label))


def volume_pred(truth: MaskInput, pred: np.ndarray | None = None,
                spacing: Sequence[float] | None = None, *, label: int | None = None) -> float:
    """Predicted volume in mm^3. Args: as :func:`dice`."""
    return _volume_pred(_comparison(truth, pred, spacing, label))


def volume_difference(truth: MaskInput, pred: np.ndarray | None = None,
                      spacing: Sequence[float] | None = None, *, label: int | None = None) -> float:
    """Signed volume difference ``V_pred - V_truth`` in mm^3. Args: as :func:`dice`."""
    return _volume_difference(_comparison(truth, pred, spacing, label))


def abs_volume_difference(truth: MaskInput, pred: np.ndarray | None = None,
                          spacing: Sequence[float] | None = None, *, label: int | None = None) -> float:
    """Absolute volume difference ``|V_pred - V_truth|`` in mm^3. Args: as :func:`dice`."""
    return _abs_volume_difference(_comparison(truth, pred, spacing, label))


def relative_volume_difference(truth: MaskInput, pred: np.ndarray | None = None,
                               spacing: Sequence[float] | None = None, *,
                               label: int | None = None) -> float:
    """Signed relative volume difference ``(V_pred - V_truth) / V_truth``; 0 when both are
    empty, NaN when only the truth is. Args: as :func:`dice`."""
    return _relative_volume_difference(_comparison(truth, pred, spacing, label))


def hausdorff_distance(truth: MaskInput, pred: np.ndarray | None = None,
                       spacing: Sequence[float] | None = None, *, label: int | None = None) -> float:
    """Symmetric Hausdorff distance between the two surfaces in mm. Args: as :func:`dice`.

    Example:
        >>> t = np.zeros((8, 8), bool); t[2:6, 2:6] = True
        >>> hausdorff_distance(t, np.roll(t, 1, axis=0), spacing=(2.0, 1.0))
        2.0
    """
    return _hausdorff_distance(_comparison(truth, pred, spacing, label))


def hausdorff_distance_95(truth: MaskInput, pred: np.ndarray | None = None,
                          spacing: Sequence[float] | None = None, *, label: int | None = None) -> float:
    """95th percentile of the union of both directed surface-distance sets, in mm.
    Args: as :func:`dice`."""
    return _hausdorff_distance_95(_comparison(truth, pred, spacing, label))


def average_symmetric_surface_distance(truth: MaskInput, pred: np.ndarray | None = None,
                                       spacing: Sequence[float] | None = None, *,
                                       label: int | None = None) -> float:
    """Mean of the union of both directed surface-distance sets, in mm. Args: as :func:`dice`."""
    return _average_symmetric_surface_distance(_comparison(truth, pred, spacing, label))


def normalized_surface_dice(truth: MaskInput, pred: np.ndarray | None = None,
                            spacing: Sequence[float] | None = None, tolerance: float | None = None,
                            *, label: int | None = None) -> float:
    """Fraction of the surface voxels of both masks within ``tolerance`` mm of the other surface.

    Args:
        tolerance: Distance in mm (default 1, or the comparison's ``nsd_tolerance``).
        Other arguments: as :func:`dice`.
    """
    return _normalized_surface_dice(_comparison(truth, pred, spacing, label, tolerance))

METRIC_ALIASES: Mapping[str, str] = {
    "jaccard": "iou",
    "sensitivity": "recall",
    "hausdorff": "hd",
}
"""Accepted alternative names; results are reported under the name that was asked for."""

DEFAULT_METRICS: tuple[str, ...] = tuple(METRICS)
"""Metrics computed when ``metrics=None``: every entry of :data:`METRICS`, dice first."""

LOWER_IS_BETTER: frozenset[str] = frozenset(
    {"hd", "hausdorff", "hd95", "assd", "abs_volume_difference"}
)
"""Metrics for which a smaller value is better (used to rank cases)."""


def resolve_metric_names(metrics: Iterable[str] | str | None) -> list[str]:
    """Validate metric names (aliases allowed) and return them in the given order.

    Raises:
        ConfigurationError: for an unknown name, listing the valid ones.
    """
    if metrics is None:
        return list(DEFAULT_METRICS)
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    valid = list(METRICS) + list(METRIC_ALIASES)
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise ConfigurationError(
            f"metrics={names!r} contains unknown metric(s) {unknown}; valid names: "
            f"{', '.join(valid)}."
        )
    if not names:
        raise ConfigurationError("metrics=[] is empty; ask for at least one metric or None.")
    return list(dict.fromkeys(names))


def _metric_function(name: str) -> Callable[[MaskComparison], float]:
    return METRICS[METRIC_ALIASES.get(name, name)]


def _class_labels(classes: int | Iterable[int], include_background: bool) -> list[int]:
    if isinstance(classes, (int, np.integer)):
        if classes < 1:
            raise ConfigurationError(f"classes={classes!r} must be >= 1 (background included).")
        labels = list(range(int(classes)))
    else:
        labels = [int(c) for c in classes]
        if not labels:
            raise ConfigurationError("classes=[] is empty; give a class count or class labels.")
    if not include_background:
        labels = [c for c in labels if c != 0]
    return labels


# ------------------------------------------------------------------------------- case level
def binary_metrics(
    truth: np.ndarray,
    pred: np.ndarray,
    spacing: Sequence[float] | None = None,
    metrics: Iterable[str] | None = None,
    nsd_tolerance: float = 1.0,
) -> dict[str, float]:
    """Metrics of one pair of binary masks.

    Args:
        truth: Ground-truth mask (bool or 0/1), 2D or 3D.
        pred: Predicted mask of the same shape.
        spacing: Voxel size per axis in mm; ``None`` means 1.
        metrics: Metric names (see :data:`METRICS`); ``None`` computes all.
        nsd_tolerance: Tolerance in mm of the normalized surface Dice.

    Returns:
        ``{metric name: value}`` in the order asked for.

    Example:
        >>> t = np.zeros((6, 6), bool); t[1:4, 1:4] = True
        >>> binary_metrics(t, t, metrics=["dice", "hd"])
        {'dice': 1.0, 'hd': 0.0}
    """
    names = resolve_metric_names(metrics)
    truth, pred, spacing = _prepare_pair(
        np.asarray(truth).astype(bool), np.asarray(pred).astype(bool), spacing, None
    )
    cmp = MaskComparison(truth, pred, spacing, nsd_tolerance)
    return {name: float(_metric_function(name)(cmp)) for name in names}


def case_metrics(
    truth: np.ndarray,
    pred: np.ndarray,
    classes: int | Iterable[int],
    spacing: Sequence[float] | None = None,
    metrics: Iterable[str] | None = None,
    nsd_tolerance: float = 1.0,
    include_background: bool = True,
    case: Any = None,
) -> list[dict[str, Any]]:
    """Metrics of one case, one row per class.

    Args:
        truth: Ground-truth label map ``(x, y[, z])``, optionally with a trailing ``(..., 1)``.
        pred: Predicted label map of the same shape.
        classes: Number of classes (labels ``0..classes-1``, MIScnn style) or the labels.
        spacing: Voxel size per spatial axis in mm (``Sample.spacing``); ``None`` means 1.
        metrics: Metric names (see :data:`METRICS`); ``None`` computes all.
        nsd_tolerance: Tolerance in mm of the normalized surface Dice.
        include_background: Whether class 0 gets a row.
        case: Case identifier; added to every row as ``"sample_id"`` and named in errors.

    Returns:
        A list of dicts ``{"sample_id"?, "class", <metric>: value, ...}``, ready for
        :func:`miseg.evaluation.reports.metrics_table`.

    Raises:
        ShapeMismatchError: when truth and prediction shapes differ.
        LabelError: when ``classes`` is a count and the truth holds labels outside
            ``0..classes-1`` (they would silently go unscored).
        ConfigurationError: for unknown metrics, bad classes, spacing or tolerance.

    Example:
        >>> t = np.array([[0, 1], [1, 2]]); p = np.array([[0, 1], [2, 2]])
        >>> [round(r["dice"], 3) for r in case_metrics(t, p, 3, metrics=["dice"])]
        [1.0, 0.667, 0.667]
    """
    names = resolve_metric_names(metrics)
    labels = _class_labels(classes, include_background)
    truth, pred, spacing = _prepare_pair(truth, pred, spacing, case)
    if isinstance(classes, (int, np.integer)):
        check_label_range(case, truth, int(classes))
    rows = []
    for label in labels:
        cmp = MaskComparison(truth == label, pred == label, spacing, nsd_tolerance)
        row: dict[str, Any] = {} if case is None else {"sample_id": case}
        row["class"] = label
        for name in names:
            row[name] = float(_metric_function(name)(cmp))
        rows.append(row)
    return rows


def compute_dice(truth: np.ndarray, pred: np.ndarray, classes: int | Iterable[int]) -> list[float]:
    """Per-class Dice list (MIScnn's ``compute_dice``), 1.0 for a class absent from both.

    Args:
        truth: Ground-truth label map.
        pred: Predicted label map of the same shape.
        classes: Number of classes (labels ``0..classes-1``) or the labels.

    Returns:
        One Dice value per class, never NaN.

    Example:
        >>> compute_dice(np.array([0, 1, 1]), np.array([0, 1, 0]), 3)
        [0.6666666666666666, 0.6666666666666666, 1.0]
    """
    truth, pred, _ = _prepare_pair(truth, pred, None, None)
    labels = _class_labels(classes, include_background=True)
    result = []
    for label in labels:
        t, p = truth == label, pred == label
        inter = np.count_nonzero(t & p)
        result.append(_safe_ratio(2 * inter, np.count_nonzero(t) + np.count_nonzero(p), 1.0))
    return result


# ------------------------------------------------------------------------- lesion detection
def _components(
    mask: np.ndarray, structure: np.ndarray, min_voxels: float
) -> tuple[np.ndarray, int]:
    labels, n = ndimage.label(mask, structure=structure)
    if n and min_voxels > 0:
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        keep = sizes >= min_voxels
        keep[0] = False
        remap = np.zeros(n + 1, dtype=np.int64)
        remap[keep] = np.arange(1, int(keep.sum()) + 1)
        labels, n = remap[labels], int(keep.sum())
    return labels, n


def _detection_scores(tp: int, fp: int, fn: int) -> dict[str, float]:
    return {
        "precision": _safe_ratio(tp, tp + fp, 1.0 if fn == 0 else 0.0),
        "recall": _safe_ratio(tp, tp + fn, 1.0 if fp == 0 else 0.0),
        "f1": _safe_ratio(2 * tp, 2 * tp + fp + fn, 1.0),
    }


def lesion_detection(
    truth: np.ndarray,
    pred: np.ndarray,
    class_id: int = 1,
    spacing: Sequence[float] | None = None,
    min_overlap: float = 0.0,
    connectivity: int | None = None,
    min_volume: float = 0.0,
    case: Any = None,
) -> dict[str, Any]:
    """Lesion-wise (connected-component) detection counts and scores of one class.

    Truth and prediction components of ``class_id`` are labelled with
    ``scipy.ndimage.label``. Every overlapping truth/prediction pair whose IoU is at least
    ``min_overlap`` is a candidate; candidates are matched one-to-one greedily by decreasing
    IoU. Matched truth lesions are TP, unmatched truth lesions FN, unmatched predicted
    lesions FP. Scores follow the voxel conventions: no lesions at all gives 1, no predicted
    lesions with truth lesions gives precision 0.

    Args:
        truth: Ground-truth label map.
        pred: Predicted label map of the same shape.
        class_id: The label whose lesions are counted.
        spacing: Voxel size in mm, used by ``min_volume``; ``None`` means 1.
        min_overlap: Minimum IoU of a match (pairs must always share a voxel, so 0 means
            any overlap).
        connectivity: Neighbourhood of a component, 1 (faces) to ndim (full); ``None`` means
            full connectivity (8 in 2D, 26 in 3D).
        min_volume: Components smaller than this volume (mm^3) are ignored in both maps.
        case: Case identifier; added as ``"sample_id"`` and named in errors.

    Returns:
        ``{"sample_id"?, "class", "n_truth", "n_pred", "tp", "fp", "fn", "precision",
        "recall", "f1"}``.

    Example:
        >>> t = np.zeros((9, 9), int); t[1:3, 1:3] = 1; t[6:8, 6:8] = 1
        >>> p = np.zeros((9, 9), int); p[1:3, 1:2] = 1; p[4, 0] = 1
        >>> r = lesion_detection(t, p); (r["tp"], r["fp"], r["fn"])
        (1, 1, 1)
    """
    if not (0.0 <= float(min_overlap) <= 1.0):
        raise ConfigurationError(f"min_overlap={min_overlap!r} must be an IoU in [0, 1].")
    if float(min_volume) < 0:
        raise ConfigurationError(f"min_volume={min_volume!r} must be >= 0 (mm^3).")
    truth, pred, spacing = _prepare_pair(truth, pred, spacing, case)
    ndim = truth.ndim
    if connectivity is None:
        connectivity = ndim
    if not isinstance(connectivity, (int, np.integer)) or not 1 <= connectivity <= ndim:
        raise ConfigurationError(
            f"connectivity={connectivity!r} must be an int from 1 (faces) to {ndim} (full)."
        )
    structure = ndimage.generate_binary_structure(ndim, int(connectivity))
    min_voxels = float(min_volume) / float(np.prod(spacing))
    t_labels, n_t = _components(truth == class_id, structure, min_voxels)
    p_labels, n_p = _components(pred == class_id, structure, min_voxels)

    tp = 0
    if n_t and n_p:
        t_sizes = np.bincount(t_labels.ravel(), minlength=n_t + 1)
        p_sizes = np.bincount(p_labels.ravel(), minlength=n_p + 1)
        both = (t_labels > 0) & (p_labels > 0)
        pair_ids = t_labels[both].astype(np.int64) * (n_p + 1) + p_labels[both]
        pairs, inter = np.unique(pair_ids, return_counts=True)
        ti, pi = pairs // (n_p + 1), pairs % (n_p + 1)
        ious = inter / (t_sizes[ti] + p_sizes[pi] - inter)
        order = np.lexsort((pi, ti, -ious))  # deterministic tie-break by label
        used_t: set[int] = set()
        used_p: set[int] = set()
        for k in order:
            if ious[k] < min_overlap:
                break
            a, b = int(ti[k]), int(pi[k])
            if a not in used_t and b not in used_p:
                used_t.add(a)
                used_p.add(b)
        tp = len(used_t)
    fp, fn = n_p - tp, n_t - tp
    row: dict[str, Any] = {} if case is None else {"sample_id": case}
    row.update({"class": int(class_id), "n_truth": n_t, "n_pred": n_p, "tp": tp, "fp": fp,
                "fn": fn})
    row.update(_detection_scores(tp, fp, fn))
    return row


def lesion_metrics(
    truth: np.ndarray,
    pred: np.ndarray,
    classes: int | Iterable[int],
    spacing: Sequence[float] | None = None,
    min_overlap: float = 0.0,
    connectivity: int | None = None,
    min_volume: float = 0.0,
    include_background: bool = False,
    case: Any = None,
) -> list[dict[str, Any]]:
    """:func:`lesion_detection` for several classes, one row per class.

    Args:
        classes: Number of classes (labels ``0..classes-1``) or the labels.
        include_background: Whether class 0 gets a row (off by default: background is not a
            lesion).
        Other arguments: as in :func:`lesion_detection`.

    Returns:
        One dict per class, see :func:`lesion_detection`.

    Example:
        >>> t = np.zeros((5, 5), int); t[0, 0] = 1; t[4, 4] = 2
        >>> [r["tp"] for r in lesion_metrics(t, t, 3)]
        [1, 1]
    """
    labels = _class_labels(classes, include_background)
    return [
        lesion_detection(truth, pred, c, spacing, min_overlap, connectivity, min_volume, case)
        for c in labels
    ]
