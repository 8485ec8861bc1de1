"""Evaluation folders for the report tests, and the note printed when the browser test did not run."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from miseg.classical import ClassicalModel
from miseg.data_loading.data_io import Data_IO
from miseg.data_loading.interfaces import Dictionary_interface
from miseg.evaluation import cross_validation
from miseg.processing.preprocessor import Preprocessor

from .report_fixtures import CASES, FLAGGED, disc_cases

BROWSER_SKIPPED = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def cv_folder(tmp_path_factory):
    """A real cross-validation (classical Otsu model, 3 folds, figures and detailed tables).

    Returns ``(folder, report text written by cross_validation itself)``. Afterwards the
    folder gets a manifest.json and a prediction folder with an uncertainty.tsv (one case
    flagged for review), as the other parts of a run would write them.
    """
    interface = Dictionary_interface(disc_cases(), channels=1, classes=2, three_dim=False)
    pp = Preprocessor(Data_IO(interface, "unused", seed=0), batch_size=1, data_aug=None, analysis="fullimage")
    folder = str(tmp_path_factory.mktemp("report") / "eval dir ü" / "evaluation")
    cross_validation(CASES, ClassicalModel(pp, "otsu"), k_fold=3, evaluation_path=folder,
                     run_detailed_evaluation=True, draw_figures=True, seed=0)
    with open(os.path.join(folder, "report.html"), encoding="utf-8") as handle:
        written_by_run = handle.read()
    with open(os.path.join(folder, "manifest.json"), "w", encoding="utf-8") as handle:
        json.dump({"miseg": "0.1.0", "command": "cross_validation", "seed": 0}, handle)
    os.makedirs(os.path.join(folder, "predictions"))
    pd.DataFrame({
        "case": CASES, "mean_entropy_foreground": np.linspace(0.1, 0.6, len(CASES)),
        "uncertain_fraction": np.linspace(0.0, 0.5, len(CASES)), "member_dice": 0.9,
        "review": [name == FLAGGED for name in CASES],
    }).to_csv(os.path.join(folder, "predictions", "uncertainty.tsv"), sep="\t", index=False)
    return folder, written_by_run


@pytest.fixture(scope="session")
def cv_report(cv_folder):
    """``report.html`` of :func:`cv_folder` with its manifest and uncertainty flags."""
    from miseg.report import write_report

    return write_report(cv_folder[0])


@pytest.fixture(scope="session")
def note_browser_skipped(request):
    """Record why the browser test did not run; the terminal summary then says so plainly."""
    def note(reason):
        request.config.stash[BROWSER_SKIPPED] = reason
    return note


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    reason = config.stash.get(BROWSER_SKIPPED, None)
    if reason:
        terminalreporter.write_line(
            f"miseg report: the headless-browser test did NOT run ({reason}); only the HTML-parse "
            f"fallback test checked the report.", yellow=True, bold=True)
