"""``miseg report``: the self-contained HTML report of an evaluation folder."""

from __future__ import annotations

import argparse
import os
from typing import Any, Callable

from miseg.cli.options import ArgumentBuilder

__all__ = ["add_report_parser", "run_report", "report_after_evaluation"]


def add_report_parser(subparsers: Any, b: ArgumentBuilder, make_subparser: Callable[..., Any]) -> None:
    """Register ``miseg report`` (``make_subparser`` is the command line's subparser factory)."""
    p = make_subparser(
        subparsers, "report", "write an HTML report of an evaluation folder",
        "Write one self-contained report.html (images embedded, no network needed) of a folder written by "
        "'miseg evaluate' or cross_validation: settings and plan, training curves per fold, the summary "
        "with bootstrap confidence intervals, per-class box plots, a sortable per-case table linked to the "
        "best/median/worst overlays, uncertainty flags and instance/lesion metrics when present. An empty "
        "or unfinished folder gives a report of what is there and what is missing. Nothing else in the "
        "folder is changed.",
    )
    b.add(p, "evaluation_dir", metavar="EVALUATION_DIR", help="evaluation folder")
    b.add(p, "-o", "--output", metavar="HTML", default=None,
          help="report file (None: EVALUATION_DIR/report.html)")
    b.add(p, "--uncertainty", nargs="+", metavar="TSV", default=None,
          help="extra uncertainty.tsv files to show (e.g. of a prediction folder); the ones inside "
               "EVALUATION_DIR are found on their own")
    b.add(p, "--title", default=None, help="page title (None: 'Evaluation report: <folder>')")
    p.set_defaults(handler="report")


def run_report(args: argparse.Namespace, explicit: set[str]) -> int:
    """Write the report and print where it went."""
    from miseg.report import write_report

    path = write_report(args.evaluation_dir, args.output, uncertainty=args.uncertainty or (),
                        title=args.title)
    print(f"Report: {path} ({os.path.getsize(path) / 1e6:.2f} MB)")
    return 0


def report_after_evaluation(evaluation_dir: str) -> None:
    """The report at the end of ``miseg evaluate``; a failure is a warning, not an error."""
    import warnings

    from miseg.report import write_report

    try:
        path = write_report(evaluation_dir)
    except Exception as exc:  # noqa: BLE001 - the evaluation results are written already
        warnings.warn(f"the HTML report of {evaluation_dir!r} could not be written ({type(exc).__name__}: "
                      f"{exc}); retry with 'miseg report {evaluation_dir}'.", UserWarning, stacklevel=2)
        return
    print(f"Report: {path}")
