"""Helpers shared by the command handlers (config assembly, case selection, summaries)."""

from __future__ import annotations

import argparse
import os
from typing import Any, Sequence

from miseg.cli.config import default_config, load_config
from miseg.cli.options import apply_flags
from miseg.errors import ConfigurationError, DataNotFoundError, MissingSegmentationError

__all__ = ["config_from_args", "select_cases", "model_file", "progress_enabled", "format_summary"]

_MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


def config_from_args(args: argparse.Namespace, explicit: set[str], config_path: str | None = None) -> dict[str, Any]:
    """Defaults, then the config file (``config_path`` or ``--config``), then typed flags."""
    path = config_path or getattr(args, "config", None)
    config = load_config(path) if path else default_config()
    return apply_flags(config, args, explicit)


def select_cases(data_io: Any, requested: Sequence[Any] | None, labelled: bool) -> list[Any]:
    """The cases a command works on.

    Args:
        data_io: The run's Data_IO.
        requested: Case ids from ``--cases`` / ``training.cases`` (``None``: all).
        labelled: Only cases with a segmentation (training, evaluation).

    Raises:
        DataNotFoundError: when a requested case does not exist.
        MissingSegmentationError: when a requested case, or every case, lacks a segmentation.
    """
    indices = data_io.get_indiceslist()
    if requested:
        known = {str(i): i for i in indices}
        missing = [c for c in requested if str(c) not in known]
        if missing:
            raise DataNotFoundError(
                f"Case(s) {missing[:5]} are not in {data_io.input_path!r} ({len(indices)} cases found)."
            )
        chosen = [known[str(c)] for c in requested]
        if labelled:
            unlabelled = [c for c in chosen if not data_io.has_segmentation(c)]
            if unlabelled:
                raise MissingSegmentationError(f"Case(s) {unlabelled[:5]} have no segmentation.")
        return chosen
    if not labelled:
        return list(indices)
    chosen = [i for i in indices if data_io.has_segmentation(i)]
    if not chosen:
        raise MissingSegmentationError(
            f"No case in {data_io.input_path!r} has a segmentation; training and evaluation need labels."
        )
    return chosen


def model_file(path: str) -> str:
    """The model file a path names: MIScnn's extension-less paths get ``.keras``."""
    path = os.fspath(path)
    return path if path.lower().endswith(_MODEL_SUFFIXES) else path + ".keras"


def progress_enabled(args: argparse.Namespace) -> bool:
    """Progress bars unless ``--quiet`` or ``MISEG_QUIET`` is set."""
    return not getattr(args, "quiet", False) and not os.environ.get("MISEG_QUIET")


def format_summary(table: Any, metrics: Sequence[str]) -> str:
    """Mean ± std per class of a long metric table (``sample_id``, ``class``, metrics).

    Example:
        >>> import pandas as pd
        >>> print(format_summary(pd.DataFrame({"class": [1, 1], "dice": [0.5, 0.7]}), ["dice"]))
         class          dice
             1 0.600 ± 0.141
    """
    import numpy as np
    import pandas as pd

    shown = [m for m in metrics if m in table.columns]
    if not shown:
        raise ConfigurationError(f"None of the metrics {list(metrics)} is in the table.")
    rows = []
    for cls, group in table.groupby("class", sort=True):
        row: dict[str, Any] = {"class": cls}
        for metric in shown:
            values = pd.to_numeric(group[metric], errors="coerce").dropna().to_numpy(dtype=float)
            if values.size == 0:
                row[metric] = "n/a"
            else:
                std = values.std(ddof=1) if values.size > 1 else float("nan")
                row[metric] = f"{values.mean():.3f} ± {std:.3f}" if np.isfinite(std) else f"{values.mean():.3f}"
        rows.append(row)
    return pd.DataFrame(rows).to_string(index=False)
