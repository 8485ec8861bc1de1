"""Evaluation tables: per-case metrics, summaries with bootstrap intervals, TSV/CSV writers.

The long table (:func:`metrics_table`) has one row per case and class, with the columns
``sample_id``, ``class`` and one column per metric. :func:`wide_table` pivots it into
MIScnn's ``detailed_validation.tsv`` layout (one row per case, ``dice_class-<c>`` first) and
:func:`summary_table` aggregates it per class and metric.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from miseg.errors import ConfigurationError, DataError
from miseg.utils.fileio import atomic_path

__all__ = ["metrics_table", "summary_table", "wide_table", "write_table", "read_table"]

_ID_COLUMNS = ("sample_id", "class")


def metrics_table(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Long table of per-case, per-class metrics.

    Args:
        rows: Dicts as returned by :func:`miseg.evaluation.metrics.case_metrics` (with
            ``case=``) and :func:`~miseg.evaluation.metrics.lesion_metrics`; a ``"case"`` key
            is accepted in place of ``"sample_id"``.

    Returns:
        A DataFrame with the columns ``sample_id``, ``class`` and then the metrics in the
        order they first appear (``sample_id`` is omitted when no row has it).

    Raises:
        DataError: when a row has no ``"class"``.

    Example:
        >>> metrics_table([{"sample_id": "a", "class": 1, "dice": 0.5}]).columns.tolist()
        ['sample_id', 'class', 'dice']
    """
    records = []
    for i, row in enumerate(rows):
        record = dict(row)
        if "case" in record and "sample_id" not in record:
            record["sample_id"] = record.pop("case")
        if "class" not in record:
            raise DataError(f"Metric row {i} has no 'class' key: {sorted(record)}.")
        records.append(record)
    df = pd.DataFrame.from_records(records)
    if df.empty:
        return pd.DataFrame(columns=list(_ID_COLUMNS))
    ids = [c for c in _ID_COLUMNS if c in df.columns]
    return df[ids + [c for c in df.columns if c not in ids]].reset_index(drop=True)


def _metric_columns(df: pd.DataFrame, metrics: Sequence[str] | None) -> list[str]:
    if metrics is not None:
        missing = [m for m in metrics if m not in df.columns]
        if missing:
            raise ConfigurationError(
                f"metrics={list(metrics)!r}: {missing} not in the table columns "
                f"{df.columns.tolist()}."
            )
        return list(metrics)
    return [
        c for c in df.columns
        if c not in _ID_COLUMNS and pd.api.types.is_numeric_dtype(df[c])
        and not pd.api.types.is_bool_dtype(df[c])
    ]


def _bootstrap_ci(
    values: np.ndarray, confidence: float, n_bootstrap: int, seed: int
) -> tuple[float, float]:
    if values.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(n_bootstrap)
    # Chunks bound the memory of the (n_bootstrap, n) index matrix for large tables.
    chunk = max(1, 2_000_000 // values.size)
    for start in range(0, n_bootstrap, chunk):
        stop = min(start + chunk, n_bootstrap)
        idx = rng.integers(0, values.size, size=(stop - start, values.size))
        means[start:stop] = values[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def summary_table(
    df: pd.DataFrame,
    confidence: float = 0.95,
    n_bootstrap: int = 1000,
    seed: int = 0,
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per class and metric: count, mean, std, median and a bootstrap CI of the mean.

    NaN values (e.g. distances of a missed structure) are skipped; ``count`` says how many
    values were used. ``std`` is the sample standard deviation (``ddof=1``, NaN for one
    value). The interval is the percentile bootstrap of the mean: ``n_bootstrap`` resamples
    with replacement, and the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2``
    quantiles of their means. Each (class, metric) group uses a generator seeded with
    ``seed``, so results do not depend on which other groups are present.

    Args:
        df: Long table from :func:`metrics_table`.
        confidence: Confidence level in (0, 1).
        n_bootstrap: Number of bootstrap resamples (>= 1).
        seed: Seed of the resampling.
        metrics: Metric columns to summarise; ``None`` means every numeric column except
            ``sample_id`` and ``class``.

    Returns:
        A DataFrame with the columns ``class``, ``metric``, ``count``, ``mean``, ``std``,
        ``median``, ``ci_low``, ``ci_high`` (one row per class and metric; without a
        ``class`` column all rows are pooled and ``class`` is ``"all"``).

    Example:
        >>> t = pd.DataFrame({"class": [1, 1, 1], "dice": [0.5, 0.7, np.nan]})
        >>> s = summary_table(t); int(s.loc[0, "count"]), float(s.loc[0, "mean"])
        (2, 0.6)
    """
    if not 0.0 < float(confidence) < 1.0:
        raise ConfigurationError(f"confidence={confidence!r} must lie strictly between 0 and 1.")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)) \
            or n_bootstrap < 1:
        raise ConfigurationError(f"n_bootstrap={n_bootstrap!r} must be an int >= 1.")
    columns = _metric_columns(df, metrics)
    groups = df.groupby("class", sort=True) if "class" in df.columns else [("all", df)]
    records = []
    for cls, group in groups:
        for metric in columns:
            values = pd.to_numeric(group[metric], errors="coerce").to_numpy(dtype=np.float64)
            values = values[~np.isnan(values)]
            n = values.size
            low, high = _bootstrap_ci(values, float(confidence), int(n_bootstrap), seed)
            records.append({
                "class": cls,
                "metric": metric,
                "count": n,
                "mean": float(values.mean()) if n else float("nan"),
                "std": float(values.std(ddof=1)) if n > 1 else float("nan"),
                "median": float(np.median(values)) if n else float("nan"),
                "ci_low": low,
                "ci_high": high,
            })
    columns_out = ["class", "metric", "count", "mean", "std", "median", "ci_low", "ci_high"]
    return pd.DataFrame.from_records(records, columns=columns_out)


def _class_text(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _sorted_if_possible(values: Iterable[Any]) -> list[Any]:
    values = list(values)
    try:
        return sorted(values)
    except TypeError:  # mixed label types: keep the order of appearance
        return values


def wide_table(df: pd.DataFrame) -> pd.DataFrame:
    """Pivot the long table into one row per case with ``<metric>_class-<c>`` columns.

    Dice columns come first, so MIScnn's ``detailed_validation.tsv`` header
    (``sample_id, dice_class-0, ..., dice_class-<C-1>``) is preserved, followed by the other
    metrics in table order, classes ascending within each metric. Cases keep their order of
    first appearance.

    Args:
        df: Long table with ``sample_id`` and ``class`` columns.

    Returns:
        The wide DataFrame, ``sample_id`` first.

    Example:
        >>> t = pd.DataFrame({"sample_id": ["a", "a"], "class": [0, 1],
        ...                   "hd95": [0.0, 2.0], "dice": [1.0, 0.8]})
        >>> wide_table(t).columns.tolist()
        ['sample_id', 'dice_class-0', 'dice_class-1', 'hd95_class-0', 'hd95_class-1']
    """
    missing = [c for c in _ID_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"wide_table needs the columns {list(_ID_COLUMNS)}; missing {missing}.")
    if df.duplicated(subset=list(_ID_COLUMNS)).any():
        raise DataError("wide_table: the table has duplicate (sample_id, class) rows.")
    metrics = [c for c in df.columns if c not in _ID_COLUMNS]
    if "dice" in metrics:
        metrics = ["dice"] + [m for m in metrics if m != "dice"]
    cases = list(dict.fromkeys(df["sample_id"].tolist()))
    classes = _sorted_if_possible(dict.fromkeys(df["class"].tolist()))
    indexed = df.set_index(["sample_id", "class"])
    out: dict[str, list[Any]] = {"sample_id": cases}
    for metric in metrics:
        for cls in classes:
            column = indexed[metric]
            out[f"{metric}_class-{_class_text(cls)}"] = [
                column.get((case, cls), np.nan) for case in cases
            ]
    return pd.DataFrame(out)


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> str:
    """Write a table atomically: TSV for a ``.tsv`` suffix, CSV otherwise.

    The table is written to a temporary file in the target folder and moved into place with
    ``os.replace``, so readers never see a half-written file. Missing folders are created.
    NaN is written as an empty field.

    Args:
        df: The table (the index is not written).
        path: Target file.

    Returns:
        The written path as a string.

    Example:
        >>> import tempfile
        >>> path = write_table(pd.DataFrame({"a": [1]}), f"{tempfile.mkdtemp()}/table.tsv")
        >>> read_table(path)["a"].tolist()
        [1]
    """
    path = os.fspath(path)
    sep = "\t" if path.lower().endswith(".tsv") else ","
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            df.to_csv(handle, sep=sep, index=False)
    return path


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a table written by :func:`write_table` (TSV for ``.tsv``, CSV otherwise).

    ``sample_id`` is read as text, so ids like ``"00012"`` keep their leading zeros.
    """
    path = os.fspath(path)
    sep = "\t" if path.lower().endswith(".tsv") else ","
    return pd.read_csv(path, sep=sep, dtype={"sample_id": str})
