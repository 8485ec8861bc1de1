"""Detailed validation: predict validation cases and score them per case and class.

Files written to ``evaluation_path``:

* ``detailed_validation.tsv``: MIScnn's wide table, one row per case: ``sample_id``,
  ``dice_class-0`` ... ``dice_class-<C-1>``, then ``<metric>_class-<c>`` for the other
  metrics (MIScnn's columns come first, so scripts that read them keep working).
* ``detailed_validation.long.tsv``: one row per case and class (``sample_id``, ``class``,
  metrics).
* ``detailed_validation.summary.tsv``: per class and metric the count, mean, std, median and
  a bootstrap confidence interval of the mean.
* With ``draw_figures``: ``detailed_validation.boxplots.png`` and overlays of the best,
  median and worst case (``overlay.<rank>.<case>.png``).
* With ``uncertainty``: ``detailed_validation.uncertainty.tsv`` (one row per case:
  ``sample_id``, ``dice`` (mean over the foreground classes), the scores of
  :mod:`miseg.evaluation.uncertainty` and ``review``), whose score columns are also appended
  to ``detailed_validation.tsv``; :func:`miseg.evaluation.uncertainty.calibrate_from_tables`
  turns such tables into a review threshold.
* With ``instances``: the instance metrics of
  :mod:`miseg.evaluation.instance_metrics` (``pq``, ``sq``, ``rq``, ``instance_f1``,
  ``matched_dice``, ``n_split``, ``n_merged``, ...) as extra columns of the tables above
  (NaN for class 0), and ``detailed_validation.instances.png`` (their box plots).
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Iterable, Sequence

import numpy as np

from miseg.errors import ConfigurationError
from miseg.evaluation import _folds
from miseg.evaluation.metrics import case_metrics, compute_dice, resolve_metric_names

__all__ = ["detailed_validation", "compute_dice", "DEFAULT_DETAILED_METRICS", "score_case"]

DEFAULT_DETAILED_METRICS: tuple[str, ...] = ("dice", "iou", "precision", "recall", "hd95", "assd")
"""Metrics of a detailed validation when ``metrics=None`` (Dice first, as in MIScnn)."""

_BOXPLOT_FILE = "detailed_validation.boxplots.png"
_INSTANCE_BOXPLOT_FILE = "detailed_validation.instances.png"


def resolve_detailed_metrics(metrics: Iterable[str] | str | None) -> list[str]:
    """Validate metric names (``None``: :data:`DEFAULT_DETAILED_METRICS`); Dice is always kept."""
    names = resolve_metric_names(DEFAULT_DETAILED_METRICS if metrics is None else metrics)
    return names if "dice" in names else ["dice", *names]


def _label_map(prediction: Any, spatial_ndim: int, index: Any) -> np.ndarray:
    prediction = np.asarray(prediction)
    if prediction.ndim == spatial_ndim + 1 and prediction.shape[-1] == 1:
        prediction = prediction[..., 0]
    if not np.issubdtype(prediction.dtype, np.integer):
        if prediction.ndim == spatial_ndim + 1:
            raise ConfigurationError(
                f"Case {index!r}: the model returned a probability map {prediction.shape}; "
                f"detailed validation needs label maps (predict with activation_output=False)."
            )
        prediction = np.rint(prediction).astype(np.int64)
    return prediction


def _spacing_for(sample: Any, ndim: int) -> tuple[float, ...] | None:
    spacing = sample.spacing
    if spacing is not None and len(spacing) != ndim:
        warnings.warn(
            f"Case {sample.index!r}: spacing {spacing} does not match the {ndim}D label map; "
            f"distances are reported in voxels.",
            UserWarning,
            stacklevel=3,
        )
        return None
    return spacing


def score_case(model: Any, index: Any, metrics: Sequence[str], include_background: bool = True,
               nsd_tolerance: float = 1.0, *, segmenter: Any = None, iou_threshold: float = 0.5,
               truth_instances: Any = None, uncertainty: list | None = None,
               review_threshold: Any = None) -> tuple[list[dict], Any, np.ndarray]:
    """Predict one case and compare it with its segmentation.

    With ``segmenter`` (an ``InstanceSegmenter``), the rows also get the instance metrics
    (see :func:`detailed_validation`). With a list as ``uncertainty``, the case is predicted
    with ``uncertainty=True`` and its scores (a dict with ``sample_id`` and ``review``) are
    appended to that list.

    Returns:
        ``(rows, sample, prediction)``: the per-class metric rows (see
        :func:`miseg.evaluation.metrics.case_metrics`), the loaded Sample (image and truth)
        and the predicted label map.

    Raises:
        ShapeMismatchError: when the prediction and the truth differ in shape.
    """
    from miseg.multi_model._calls import predict_arrays

    found = None
    if uncertainty is not None:
        prediction, measured = model.predict([index], return_output=True, uncertainty=True,
                                             review_threshold=review_threshold)[0]
        uncertainty.append({"sample_id": index, **measured.scores, "review": measured.review})
    elif segmenter is None:
        # MIScnn-style models (predict without return_output) go through the Data_IO.
        prediction = predict_arrays(model, [index], activation_output=False)[0]
    else:
        from miseg.evaluation.instance_metrics import predict_case_instances

        prediction, found = predict_case_instances(model, index, segmenter)
    sample = model.preprocessor.data_io.sample_loader(index, load_seg=True)
    truth = sample.seg_data[..., 0]
    prediction = _label_map(prediction, truth.ndim, index)
    rows = case_metrics(
        truth, prediction, classes=model.classes, spacing=_spacing_for(sample, truth.ndim),
        metrics=metrics, nsd_tolerance=nsd_tolerance, include_background=include_background,
        case=index,
    )
    if found is not None:
        from miseg.evaluation.instance_metrics import (
            instance_metrics,
            merge_instance_rows,
            truth_case_instances,
        )

        spacing = _spacing_for(sample, truth.ndim)
        truth_inst = truth_case_instances(index, truth, truth_instances, segmenter, spacing)
        scores = instance_metrics(truth_inst, found, classes=model.classes,
                                  iou_threshold=iou_threshold, case=index)
        rows = merge_instance_rows(rows, scores)
    return rows, sample, prediction


def detailed_validation(
    validation_samples: Sequence[Any],
    model: Any,
    evaluation_path: str = "evaluation",
    *,
    metrics: Iterable[str] | str | None = None,
    draw_figures: bool = False,
    include_background: bool = True,
    nsd_tolerance: float = 1.0,
    confidence: float = 0.95,
    n_bootstrap: int = 1000,
    seed: int = 0,
    instances: Any = False,
    iou_threshold: float = 0.5,
    truth_instances: Any = None,
    uncertainty: bool = False,
    review_threshold: Any = None,
) -> Any:
    """Predict every validation case and write per-case, per-class metric tables.

    Works for 2D and 3D data and any number of classes. Distances use the sample's voxel
    spacing (``Sample.spacing``; voxels when it is unknown). Unlike MIScnn, a class absent
    from both truth and prediction scores Dice 1 (not NaN), and nothing is written to the
    prediction folder (predictions are kept in memory).

    Args:
        validation_samples: Case indices with segmentations.
        model: A trained ``Neural_Network`` (or ``Model_Group``).
        evaluation_path: Output folder (created when missing).
        metrics: Metric names from :data:`miseg.evaluation.metrics.METRICS`; ``None`` gives
            :data:`DEFAULT_DETAILED_METRICS`. Dice is always included.
        draw_figures: Also write box plots and best/median/worst overlays.
        include_background: Score class 0 as well (MIScnn's ``dice_class-0``).
        nsd_tolerance: Tolerance in mm of the normalized surface Dice (``"nsd"``).
        confidence: Confidence level of the bootstrap interval in the summary.
        n_bootstrap: Bootstrap resamples of the summary.
        seed: Seed of the bootstrap.
        instances: Also score instances: ``True`` (default ``InstanceSegmenter``) or an
            ``InstanceSegmenter``; adds the columns of
            :data:`miseg.evaluation.instance_metrics.INSTANCE_METRIC_COLUMNS`.
        iou_threshold: IoU a truth/predicted instance pair must exceed to match.
        truth_instances: Truth instance maps: a callable ``index -> map`` or a mapping
            (e.g. ``lambda i: load_nuclei_instances(path, i)``); ``None``: connected
            components of the truth segmentation.
        uncertainty: Predict with ``uncertainty=True`` and write the per-case uncertainty
            table (see the module docstring); needs a model whose ``predict`` takes
            ``uncertainty`` (``Neural_Network``, ``Model_Group``); not with ``instances``.
        review_threshold: The review rule of the uncertainty (see ``Neural_Network.predict``).

    Returns:
        The long metric table (pandas DataFrame: ``sample_id``, ``class``, metrics).

    Raises:
        ConfigurationError: for unknown metric names (before anything is predicted).
        ShapeMismatchError: when a prediction and its truth differ in shape.

    Example:
        >>> table = detailed_validation(val_ids, model, "evaluation/fold_0", metrics=["dice", "hd95"])
        >>> table.groupby("class")["dice"].mean()
    """
    from miseg.evaluation.reports import metrics_table, summary_table, wide_table, write_table
    from miseg.processing.instances import resolve_segmenter

    names = resolve_detailed_metrics(metrics)
    segmenter = resolve_segmenter(instances)
    if not 0.0 <= float(iou_threshold) < 1.0:
        raise ConfigurationError(f"iou_threshold={iou_threshold!r} must lie in [0, 1).")
    if isinstance(validation_samples, (str, bytes)):
        raise ConfigurationError(
            f"validation_samples must be a list of sample indices, got {validation_samples!r}."
        )
    samples = validation_samples.tolist() if isinstance(validation_samples, np.ndarray) else list(validation_samples)
    if not samples:
        raise ConfigurationError("validation_samples is empty; there is nothing to validate.")
    scores = _check_uncertainty(model, uncertainty, segmenter)
    os.makedirs(evaluation_path, exist_ok=True)
    rows: list[dict] = []
    for index in _folds.progress(samples, "Detailed validation", unit="case"):
        case_rows, _, _ = score_case(model, index, names, include_background, nsd_tolerance,
                                     segmenter=segmenter, iou_threshold=iou_threshold,
                                     truth_instances=truth_instances, uncertainty=scores,
                                     review_threshold=review_threshold)
        rows.extend(case_rows)
    table = metrics_table(rows)
    wide = wide_table(table)
    if scores is not None:
        wide = _write_uncertainty_table(table, wide, scores, evaluation_path)
    write_table(wide, os.path.join(evaluation_path, _folds.DETAILED_FILE))
    write_table(table, os.path.join(evaluation_path, _folds.DETAILED_LONG_FILE))
    summary = summary_table(table, confidence=confidence, n_bootstrap=n_bootstrap, seed=seed)
    write_table(summary, os.path.join(evaluation_path, _folds.DETAILED_SUMMARY_FILE))
    if draw_figures:
        draw_detailed_figures(table, model, evaluation_path, names)
        if segmenter is not None:
            draw_instance_figures(table, evaluation_path)
    return table


def _check_uncertainty(model: Any, uncertainty: bool, segmenter: Any) -> list | None:
    """The list collecting per-case uncertainty scores (``None`` without ``uncertainty``)."""
    if not uncertainty:
        return None
    from miseg.multi_model._calls import accepts

    if not accepts(model.predict, "uncertainty"):
        raise ConfigurationError(
            f"uncertainty=True, but {type(model).__name__}.predict has no uncertainty parameter."
        )
    if segmenter is not None:
        raise ConfigurationError("detailed_validation: uncertainty and instances cannot be combined.")
    return []


def _write_uncertainty_table(table: Any, wide: Any, scores: list, evaluation_path: str) -> Any:
    """Write ``detailed_validation.uncertainty.tsv``; return ``wide`` with the score columns."""
    import pandas as pd

    from miseg.evaluation.reports import write_table
    from miseg.evaluation.uncertainty import DETAILED_UNCERTAINTY_FILE

    per_case = pd.DataFrame(scores)
    foreground = table[table["class"] != 0] if (table["class"] != 0).any() else table
    dice = foreground.groupby("sample_id", sort=False)["dice"].mean()
    per_case.insert(1, "dice", per_case["sample_id"].map(dice).to_numpy(dtype=float))
    per_case["n_members"] = per_case["n_members"].astype(int)
    written = per_case.assign(review=per_case["review"].map(lambda v: "true" if v else "false"))
    write_table(written, os.path.join(evaluation_path, DETAILED_UNCERTAINTY_FILE))
    extra = written.drop(columns=["dice", "n_members"])
    return wide.merge(extra, on="sample_id", how="left", sort=False)


def draw_detailed_figures(table: Any, model: Any, evaluation_path: str, metrics: Sequence[str]) -> list[str]:
    """Box plots of the metrics and overlays of the best, median and worst case.

    The three ranked cases (mean foreground Dice) are predicted again rather than keeping
    every prediction in memory during the validation.
    """
    from miseg.utils.plotting import plot_case_overlays, plot_metric_boxplots

    shown = [m for m in ("dice", "hd95", "assd", "iou") if m in metrics] or list(metrics[:2])
    paths = [plot_metric_boxplots(table, os.path.join(evaluation_path, _BOXPLOT_FILE), shown)]
    picks = _ranked_cases(table)
    if picks:
        cases = {}
        for index in picks:
            _, sample, prediction = score_case(model, index, ["dice"])
            cases[index] = (sample.img_data, sample.seg_data[..., 0], prediction)
        paths.extend(plot_case_overlays(cases, table, evaluation_path, metric="dice").values())
    return paths


def draw_instance_figures(table: Any, evaluation_path: str) -> str:
    """Box plots of the instance metrics per foreground class (``detailed_validation.instances.png``)."""
    from miseg.utils.plotting import plot_metric_boxplots

    foreground = table[table["class"] != 0]
    shown = [m for m in ("pq", "sq", "instance_f1", "matched_dice") if m in foreground.columns]
    return plot_metric_boxplots(foreground, os.path.join(evaluation_path, _INSTANCE_BOXPLOT_FILE), shown)


def _ranked_cases(table: Any) -> list:
    """Best, median and worst case by mean foreground Dice (the rule of ``plot_case_overlays``)."""
    subset = table[table["class"] != 0] if (table["class"] != 0).any() else table
    scores = subset.groupby("sample_id", sort=False)["dice"].mean().dropna()
    if scores.empty:
        return []
    ranked = scores.sort_values(ascending=False, kind="stable").index.tolist()
    return list(dict.fromkeys([ranked[0], ranked[(len(ranked) - 1) // 2], ranked[-1]]))
