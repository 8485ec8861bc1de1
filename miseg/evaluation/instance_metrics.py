"""Instance metrics: IoU matching (Hungarian), detection scores, panoptic quality, split/merge.

Truth and prediction are instance segmentations (:class:`miseg.processing.instances.Instances`)
or semantic label maps, which are turned into instances by connected components. Per class:

* **Matching**: every truth/predicted pair of the class with ``IoU > iou_threshold`` is a
  candidate; the one-to-one matching of largest total IoU among candidates is found with
  the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``). With the default 0.5
  the matching is unique (two instances cannot both overlap a third by more than half), as
  in the panoptic quality definition (Kirillov et al., 2019).
* **Detection**: matched pairs are TP, unmatched truth FN, unmatched predictions FP;
  ``instance_precision``, ``instance_recall`` and ``instance_f1`` follow the conventions of
  :func:`miseg.evaluation.metrics.lesion_detection` (no instances at all gives 1).
  ``lesion_detection`` is the lenient clinical variant (greedy, any overlap by default);
  with ``min_overlap > 0.5`` and the same components both count the same TPs.
* **Panoptic quality**: ``sq`` = mean IoU of the TPs, ``rq`` = TP / (TP + FP/2 + FN/2)
  (= ``instance_f1``), ``pq`` = ``sq * rq``. With no instance in truth and prediction, all
  three are 1; with instances but no TP, ``pq = rq = 0`` and ``sq`` is NaN.
* ``matched_dice``: mean Dice of the matched pairs (NaN without TPs, 1 without instances).
* ``n_split``: truth instances of which two or more predicted instances lie mostly (more
  than half of their voxels) inside; ``n_merged``: predicted instances that hold more than
  half of each of two or more truth instances. Both do not depend on ``iou_threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from miseg.errors import ConfigurationError, ShapeMismatchError
from miseg.evaluation.metrics import _detection_scores
from miseg.processing.instances import Instances, connected_components

__all__ = [
    "InstanceMatching",
    "match_instances",
    "instance_metrics",
    "as_instances",
    "INSTANCE_METRIC_COLUMNS",
    "predict_case_instances",
    "truth_case_instances",
    "merge_instance_rows",
]

#: Columns of an :func:`instance_metrics` row after ``sample_id`` and ``class``.
INSTANCE_METRIC_COLUMNS: tuple[str, ...] = (
    "n_truth_instances", "n_pred_instances", "instance_tp", "instance_fp", "instance_fn",
    "instance_precision", "instance_recall", "instance_f1", "sq", "rq", "pq", "matched_dice",
    "n_split", "n_merged",
)


@dataclass(eq=False)
class InstanceMatching:
    """The result of :func:`match_instances`.

    Attributes:
        truth_ids / pred_ids: Matched ids, pairwise (``truth_ids[k]`` with ``pred_ids[k]``).
        iou / dice: IoU and Dice of each matched pair.
        unmatched_truth / unmatched_pred: Ids left without a partner (FN / FP).
        n_split / n_merged: See the module docstring.
    """

    truth_ids: np.ndarray
    pred_ids: np.ndarray
    iou: np.ndarray
    dice: np.ndarray
    unmatched_truth: np.ndarray
    unmatched_pred: np.ndarray
    n_split: int
    n_merged: int

    @property
    def tp(self) -> int:
        """Number of matched pairs."""
        return int(self.truth_ids.size)


def _overlaps(truth: np.ndarray, pred: np.ndarray, n_t: int, n_p: int) -> tuple[np.ndarray, ...]:
    """Overlapping id pairs ``(t, p, intersection)`` and the sizes of every id."""
    t_sizes = np.bincount(truth.ravel(), minlength=n_t + 1)
    p_sizes = np.bincount(pred.ravel(), minlength=n_p + 1)
    both = (truth > 0) & (pred > 0)
    keys = truth[both].astype(np.int64) * (n_p + 1) + pred[both].astype(np.int64)
    pairs, inter = np.unique(keys, return_counts=True)
    return pairs // (n_p + 1), pairs % (n_p + 1), inter, t_sizes, p_sizes


def _mostly_inside(owner: np.ndarray, part: np.ndarray, inter: np.ndarray, part_sizes: np.ndarray) -> int:
    """Owners that hold more than half of each of two or more parts."""
    inside = inter * 2 > part_sizes[part]
    _, counts = np.unique(owner[inside], return_counts=True)
    return int(np.count_nonzero(counts >= 2))


def match_instances(
    truth: np.ndarray,
    pred: np.ndarray,
    iou_threshold: float = 0.5,
    truth_ids: Iterable[int] | None = None,
    pred_ids: Iterable[int] | None = None,
) -> InstanceMatching:
    """Match two instance label maps one-to-one by IoU (Hungarian algorithm).

    Args:
        truth: Truth instance map (0 background, ids ``1..n``).
        pred: Predicted instance map of the same shape.
        iou_threshold: Pairs need ``IoU > iou_threshold`` (in ``[0, 1)``; 0: any overlap).
        truth_ids / pred_ids: Restrict the matching to these ids (e.g. one class);
            ``None``: every id present.

    Returns:
        An :class:`InstanceMatching`.

    Example:
        >>> t = np.array([[1, 1, 0, 2, 2]]); p = np.array([[1, 1, 1, 0, 2]])
        >>> m = match_instances(t, p); m.truth_ids.tolist(), m.pred_ids.tolist(), m.unmatched_truth.tolist()
        ([1], [1], [2])
    """
    from scipy.optimize import linear_sum_assignment

    if not 0.0 <= float(iou_threshold) < 1.0:
        raise ConfigurationError(f"iou_threshold={iou_threshold!r} must lie in [0, 1).")
    truth, pred = np.asarray(truth), np.asarray(pred)
    if truth.shape != pred.shape:
        raise ShapeMismatchError(f"truth instances {truth.shape} and predicted instances {pred.shape} differ in shape.")
    n_t, n_p = int(truth.max(initial=0)), int(pred.max(initial=0))
    t_all, p_all, inter, t_sizes, p_sizes = _overlaps(truth, pred, n_t, n_p)
    t_set = np.flatnonzero(t_sizes[1:]) + 1 if truth_ids is None else np.asarray(sorted(set(truth_ids)), np.int64)
    p_set = np.flatnonzero(p_sizes[1:]) + 1 if pred_ids is None else np.asarray(sorted(set(pred_ids)), np.int64)
    keep = np.isin(t_all, t_set) & np.isin(p_all, p_set)
    t_all, p_all, inter = t_all[keep], p_all[keep], inter[keep]
    union = t_sizes[t_all] + p_sizes[p_all] - inter
    iou = inter / union
    candidate = iou > iou_threshold
    ct, cp, ci = t_all[candidate], p_all[candidate], iou[candidate]
    rows, cols = np.unique(ct), np.unique(cp)
    matrix = np.zeros((rows.size, cols.size))
    matrix[np.searchsorted(rows, ct), np.searchsorted(cols, cp)] = ci
    r, c = linear_sum_assignment(matrix, maximize=True) if ci.size else (np.array([], int), np.array([], int))
    chosen = matrix[r, c] > 0
    m_t, m_p, m_iou = rows[r[chosen]], cols[c[chosen]], matrix[r[chosen], c[chosen]]
    m_dice = 2 * m_iou / (1 + m_iou)
    return InstanceMatching(
        truth_ids=m_t.astype(np.int64), pred_ids=m_p.astype(np.int64), iou=m_iou, dice=m_dice,
        unmatched_truth=np.setdiff1d(t_set, m_t), unmatched_pred=np.setdiff1d(p_set, m_p),
        n_split=_mostly_inside(t_all, p_all, inter, p_sizes),
        n_merged=_mostly_inside(p_all, t_all, inter, t_sizes),
    )


def as_instances(
    value: Any, *, connectivity: int | None = None, min_volume: float = 0.0,
    spacing: Sequence[float] | None = None, case: Any = None,
) -> Instances:
    """``Instances`` as they are, or connected components of a semantic label map."""
    if isinstance(value, Instances):
        return value
    return connected_components(value, connectivity=connectivity, min_volume=min_volume,
                                spacing=spacing, case=case)


def _class_row(matching: InstanceMatching, n_t: int, n_p: int) -> dict[str, Any]:
    tp = matching.tp
    fp, fn = n_p - tp, n_t - tp
    scores = _detection_scores(tp, fp, fn)
    empty = n_t == 0 and n_p == 0
    rq = 1.0 if empty else tp / (tp + 0.5 * fp + 0.5 * fn)
    sq = 1.0 if empty else (float(matching.iou.mean()) if tp else float("nan"))
    return {
        "n_truth_instances": n_t, "n_pred_instances": n_p,
        "instance_tp": tp, "instance_fp": fp, "instance_fn": fn,
        "instance_precision": scores["precision"], "instance_recall": scores["recall"],
        "instance_f1": scores["f1"],
        "sq": sq, "rq": rq, "pq": 1.0 if empty else (sq * rq if tp else 0.0),
        "matched_dice": 1.0 if empty else (float(matching.dice.mean()) if tp else float("nan")),
        "n_split": matching.n_split, "n_merged": matching.n_merged,
    }


def instance_metrics(
    truth: Any,
    pred: Any,
    classes: int | Iterable[int] | None = None,
    *,
    iou_threshold: float = 0.5,
    connectivity: int | None = None,
    min_volume: float = 0.0,
    spacing: Sequence[float] | None = None,
    case: Any = None,
) -> list[dict[str, Any]]:
    """Instance metrics of one case, one row per foreground class.

    Args:
        truth: Truth :class:`~miseg.processing.instances.Instances`, or a semantic label
            map (then its connected components).
        pred: Predicted ``Instances`` or semantic label map, on the same grid.
        classes: Number of classes (rows for ``1..classes-1``) or the class labels;
            ``None``: every class present in truth or prediction. Class 0 never gets a row.
        iou_threshold: Matching threshold (``IoU > iou_threshold``), 0.5 by default.
        connectivity: Connectivity of the components of label-map inputs (``None``: full).
        min_volume: Components of label-map inputs smaller than this (mm^3) are ignored.
        spacing: Voxel size in mm, used by ``min_volume``.
        case: Case identifier, added as ``"sample_id"`` and named in errors.

    Returns:
        Dicts ``{"sample_id"?, "class", <INSTANCE_METRIC_COLUMNS>}`` for
        :func:`miseg.evaluation.reports.metrics_table`.

    Example:
        >>> t = np.zeros((8, 8), int); t[1:3, 1:3] = 1; t[5:7, 5:7] = 1
        >>> p = np.zeros((8, 8), int); p[1:3, 1:3] = 1
        >>> r = instance_metrics(t, p, classes=2)[0]; (r["instance_tp"], r["instance_fn"], r["pq"])
        (1, 1, 0.6666666666666666)
    """
    options = dict(connectivity=connectivity, min_volume=min_volume, spacing=spacing, case=case)
    truth_inst, pred_inst = as_instances(truth, **options), as_instances(pred, **options)
    if truth_inst.labels.shape != pred_inst.labels.shape:
        raise ShapeMismatchError(
            f"{'' if case is None else f'Case {case!r}: '}truth of shape {truth_inst.labels.shape} "
            f"and prediction of shape {pred_inst.labels.shape} differ."
        )
    if classes is None:
        labels = sorted(set(truth_inst.classes.tolist()) | set(pred_inst.classes.tolist()))
    elif isinstance(classes, (int, np.integer)):
        labels = list(range(1, int(classes)))
    else:
        labels = sorted({int(c) for c in classes})
    rows = []
    for label in (c for c in labels if c != 0):
        t_ids, p_ids = truth_inst.of_class(label), pred_inst.of_class(label)
        matching = match_instances(truth_inst.labels, pred_inst.labels, iou_threshold, t_ids, p_ids)
        row: dict[str, Any] = {} if case is None else {"sample_id": case}
        row["class"] = int(label)
        row.update(_class_row(matching, int(t_ids.size), int(p_ids.size)))
        rows.append(row)
    return rows


# ------------------------------------------------------------------ detailed validation
def predict_case_instances(model: Any, index: Any, segmenter: Any) -> tuple[np.ndarray, Instances]:
    """Semantic prediction and instances of one case from a model.

    Uses ``model.predict(..., instances=segmenter)`` when the model supports it
    (``Neural_Network``); otherwise (e.g. ``Model_Group``) the instances are derived from
    the label prediction (and the probabilities, for ``split="probability"``).
    """
    import inspect

    if "instances" in inspect.signature(model.predict).parameters:
        prediction, found = model.predict([index], return_output=True, instances=segmenter)[0]
        return prediction, found
    from miseg.multi_model._calls import predict_arrays

    prediction = predict_arrays(model, [index], activation_output=False)[0]
    probabilities = None
    if segmenter.split == "probability":
        probabilities = predict_arrays(model, [index], activation_output=True)[0]
    original = model.preprocessor.data_io.sample_loader(index, load_seg=False)
    found = segmenter(np.asarray(prediction), probabilities=probabilities, spacing=original.spacing,
                      affine=original.affine, image=original.img_data, case=index)
    return prediction, found


def truth_case_instances(index: Any, truth: np.ndarray, truth_instances: Any, segmenter: Any,
                         spacing: Sequence[float] | None) -> Instances:
    """Truth instances of a case: from ``truth_instances`` (callable or mapping index ->
    instance map, classes taken from ``truth``), else connected components of ``truth``
    with the segmenter's connectivity and minimum volume (no splitting)."""
    if truth_instances is None:
        return connected_components(truth, segmenter.classes, connectivity=segmenter.connectivity,
                                    min_volume=segmenter.min_volume, spacing=spacing, case=index)
    instance_map = truth_instances(index) if callable(truth_instances) else truth_instances[index]
    instance_map = np.asarray(instance_map)
    if instance_map.shape != truth.shape and instance_map.ndim == truth.ndim + 1 and instance_map.shape[-1] == 1:
        instance_map = instance_map[..., 0]
    if instance_map.shape != truth.shape:
        raise ShapeMismatchError(
            f"Case {index!r}: truth instance map of shape {instance_map.shape} does not match the "
            f"segmentation of shape {truth.shape}."
        )
    return Instances.from_instance_map(instance_map, class_map=truth, case=index)


def merge_instance_rows(rows: Sequence[dict[str, Any]], instance_rows: Sequence[dict[str, Any]]) -> list[dict]:
    """Add the instance columns to the per-class metric rows of a case (NaN for class 0)."""
    by_class = {row["class"]: row for row in instance_rows}
    merged = []
    for row in rows:
        extra = by_class.get(row["class"], {})
        merged.append({**row, **{k: extra.get(k, float("nan")) for k in INSTANCE_METRIC_COLUMNS}})
    return merged
