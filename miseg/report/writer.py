"""Write the report of an evaluation folder: ``report.html``, atomically."""

from __future__ import annotations

import os
from typing import Sequence

from miseg.report.contents import collect_evaluation
from miseg.report.page import render_report
from miseg.utils.fileio import atomic_path

__all__ = ["write_report", "REPORT_FILE"]

REPORT_FILE = "report.html"


def write_report(
    evaluation_dir: str | os.PathLike,
    output: str | os.PathLike | None = None,
    *,
    uncertainty: Sequence[str | os.PathLike] = (),
    title: str | None = None,
) -> str:
    """Write one self-contained HTML report of an evaluation folder.

    The page shows the run's settings and plan, per-fold training curves, the summary with
    bootstrap confidence intervals, per-class box plots, a sortable per-case table linked to
    the best/median/worst overlays, uncertainty flags and instance/lesion metrics when
    present. Images are embedded, so the file opens anywhere without network access.
    Nothing in the folder except the report file is created or changed; an empty or
    half-finished folder gives a report of what is there and what is missing.

    Args:
        evaluation_dir: Folder written by ``cross_validation``, ``split_validation``,
            ``detailed_validation`` or ``miseg evaluate``.
        output: Report file (default: ``<evaluation_dir>/report.html``).
        uncertainty: Extra ``uncertainty.tsv`` files (e.g. of a prediction folder).
        title: Page title.

    Returns:
        The path of the written report.

    Raises:
        DataNotFoundError: when ``evaluation_dir`` is not a folder.

    Example:
        >>> write_report("evaluation")  # doctest: +SKIP
        'evaluation/report.html'
    """
    contents = collect_evaluation(evaluation_dir, uncertainty=uncertainty)
    target = os.fspath(output) if output is not None else os.path.join(os.fspath(evaluation_dir), REPORT_FILE)
    text = render_report(contents, title=title)
    with atomic_path(target, suffix=".html") as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
    return target
