"""``miseg evaluate``: k-fold cross-validation, or scoring of a model or of saved predictions."""

from __future__ import annotations

import argparse
import os
from typing import Any

from miseg.cli.common import config_from_args, format_summary, select_cases
from miseg.cli.config import build_pipeline, save_config

__all__ = ["run_evaluate", "score_predictions"]

_LONG_TABLE = "detailed_validation.long.tsv"


def run_evaluate(args: argparse.Namespace, explicit: set[str]) -> int:
    """Run the evaluation, then write ``<output>/report.html`` (unless the run just wrote it)."""
    import time

    from miseg.cli.report import report_after_evaluation

    started = time.time()
    code = _dispatch(args, explicit)
    report = os.path.join(args.output, "report.html")
    fresh = os.path.isfile(report) and os.path.getmtime(report) >= started - 1.0
    if code == 0 and os.path.isdir(args.output) and not fresh:
        report_after_evaluation(args.output)
    return code


def _dispatch(args: argparse.Namespace, explicit: set[str]) -> int:
    """Dispatch on the mode: ``--model``, ``--predictions``, ``--method`` or cross-validation."""
    if getattr(args, "method", None):
        from miseg.cli.segment import run_classical_evaluation

        return run_classical_evaluation(args, explicit)
    if args.model:
        return _evaluate_model(args, explicit)
    if args.predictions:
        return _evaluate_predictions(args, explicit)
    return _cross_validate(args, explicit)


def _print_table(table: Any, metrics: list[str], output: str, what: str) -> None:
    print(f"{what} (mean ± std over cases), tables in {output}:")
    print(format_summary(table, ["dice", *[m for m in metrics if m != "dice"]]))


def _cross_validate(args: argparse.Namespace, explicit: set[str]) -> int:
    from miseg.evaluation import cross_validation

    config = config_from_args(args, explicit)
    pipeline = build_pipeline(config, training=True)
    config = pipeline.config
    training, evaluation = config["training"], config["evaluation"]
    cases = select_cases(pipeline.data_io, training.get("cases"), labelled=True)
    os.makedirs(args.output, exist_ok=True)
    save_config(config, os.path.join(args.output, "run.config.yaml"))
    pipeline.network.run_config = config  # recorded in <output>/manifest.json
    pipeline.network.hash_inputs = bool(getattr(args, "hash_inputs", False))
    print(f"{evaluation['k_fold']}-fold cross-validation on {len(cases)} case(s): {training['epochs']} "
          f"epoch(s) per fold, results in {args.output}")
    cross_validation(
        cases, pipeline.network, k_fold=int(evaluation["k_fold"]), epochs=int(training["epochs"]),
        iterations=training.get("iterations"), evaluation_path=args.output,
        draw_figures=bool(evaluation["draw_figures"]), run_detailed_evaluation=bool(evaluation["detailed"]),
        save_models=True, seed=int(training["seed"]), metrics=evaluation.get("metrics"),
    )
    long_table = os.path.join(args.output, _LONG_TABLE)
    if os.path.isfile(long_table):
        from miseg.evaluation.reports import read_table

        _print_table(read_table(long_table), list(evaluation.get("metrics") or []), args.output,
                     "Cross-validation")
    else:
        print(f"Per-fold histories in {args.output}/fold_<i>/history.tsv")
    return 0


def _evaluate_model(args: argparse.Namespace, explicit: set[str]) -> int:
    from miseg.cli.predict import load_model_run
    from miseg.evaluation.detailed_validation import detailed_validation

    pipeline = load_model_run(args, explicit, args.model)
    evaluation = pipeline.config["evaluation"]
    cases = select_cases(pipeline.data_io, args.cases if "cases" in explicit else None, labelled=True)
    print(f"Scoring {args.model} on {len(cases)} labelled case(s) of {pipeline.data_io.input_path}")
    table = detailed_validation(cases, pipeline.network, args.output, metrics=evaluation.get("metrics"),
                                draw_figures=bool(evaluation["draw_figures"]))
    _print_table(table, list(evaluation.get("metrics") or []), args.output, "Scores")
    return 0


def score_predictions(data_io: Any, cases: list[Any], metrics: list[str] | None) -> Any:
    """Long metric table of the predictions stored in ``data_io.output_path`` against the truth."""
    from miseg.evaluation.metrics import case_metrics
    from miseg.evaluation.reports import metrics_table

    rows = []
    for index in cases:
        sample = data_io.sample_loader(index, load_seg=True, load_pred=True)
        truth = sample.seg_data[..., 0]
        pred = sample.pred_data
        if pred.ndim == truth.ndim + 1:
            pred = pred[..., 0] if pred.shape[-1] == 1 else pred.argmax(axis=-1)
        spacing = sample.spacing if sample.spacing is not None and len(sample.spacing) == truth.ndim else None
        rows.extend(case_metrics(truth, pred, classes=sample.classes, spacing=spacing, metrics=metrics, case=index))
    return metrics_table(rows)


def _evaluate_predictions(args: argparse.Namespace, explicit: set[str]) -> int:
    from miseg.evaluation.detailed_validation import resolve_detailed_metrics
    from miseg.evaluation.reports import summary_table, wide_table, write_table

    config = config_from_args(args, explicit)
    pipeline = build_pipeline(config, training=False, output_path=args.predictions, with_network=False)
    evaluation = pipeline.config["evaluation"]
    metrics = resolve_detailed_metrics(evaluation.get("metrics"))
    cases = select_cases(pipeline.data_io, args.cases if "cases" in explicit else None, labelled=True)
    print(f"Scoring the predictions in {args.predictions} for {len(cases)} labelled case(s)")
    table = score_predictions(pipeline.data_io, cases, metrics)
    os.makedirs(args.output, exist_ok=True)
    write_table(wide_table(table), os.path.join(args.output, "detailed_validation.tsv"))
    write_table(table, os.path.join(args.output, _LONG_TABLE))
    write_table(summary_table(table), os.path.join(args.output, "detailed_validation.summary.tsv"))
    if evaluation["draw_figures"]:
        from miseg.utils.plotting import plot_metric_boxplots

        shown = [m for m in ("dice", "hd95", "assd", "iou") if m in metrics] or metrics[:2]
        plot_metric_boxplots(table, os.path.join(args.output, "detailed_validation.boxplots.png"), shown)
    _print_table(table, metrics, args.output, "Scores")
    return 0
