"""What an evaluation folder holds, read without changing anything in it.

:func:`collect_evaluation` reads the files that ``cross_validation``, ``split_validation``,
``detailed_validation`` and ``miseg evaluate`` write (see
:mod:`miseg.evaluation.cross_validation` for the layout) into an
:class:`EvaluationContents`. Missing or unreadable files never raise: they are listed in
``missing`` and ``problems``, so a report over an empty or half-finished folder shows what is
there and says what is not.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from miseg.errors import DataNotFoundError
from miseg.evaluation import _folds

__all__ = ["EvaluationContents", "FoldInfo", "Overlay", "collect_evaluation",
           "UNCERTAINTY_COLUMNS", "INSTANCE_COLUMNS"]

UNCERTAINTY_FILE = "uncertainty.tsv"
#: Per-case columns of ``uncertainty.tsv`` shown next to the metrics (``review``: flagged).
UNCERTAINTY_COLUMNS: tuple[str, ...] = ("review", "mean_entropy_foreground", "uncertain_fraction",
                                        "member_dice")
#: Instance (``miseg.evaluation.instance_metrics``) and lesion (``lesion_metrics``) columns.
INSTANCE_COLUMNS: tuple[str, ...] = (
    "n_truth_instances", "n_pred_instances", "instance_tp", "instance_fp", "instance_fn",
    "instance_precision", "instance_recall", "instance_f1", "sq", "rq", "pq", "matched_dice",
    "n_split", "n_merged", "n_truth", "n_pred", "tp", "fp", "fn",
)
_OVERLAY = re.compile(r"^overlay\.(best|median|worst)\.(.+)\.png$")
_SETTINGS = re.compile(r"^(manifest\.json|.*\.config\.(yaml|yml|json))$")
_TRUE = {"1", "true", "yes", "y", "review", "x"}
_MAX_SETTINGS_BYTES = 200_000


@dataclass
class FoldInfo:
    """One fold (or the single run of a split validation).

    Attributes:
        name: ``fold_<i>`` (or ``split``).
        training / validation: Case ids from the run description (empty when unknown).
        status: ``"complete"``, ``"unfinished"`` or ``"not started"``.
        marker: The ``.complete`` marker (epochs, finish time, ...), empty when absent.
        history: ``{quantity: [value per epoch]}`` from ``history.tsv``.
    """

    name: str
    training: list = field(default_factory=list)
    validation: list = field(default_factory=list)
    status: str = "not started"
    marker: dict = field(default_factory=dict)
    history: dict = field(default_factory=dict)


@dataclass
class Overlay:
    """A best/median/worst overlay figure (``overlay.<rank>.<case>.png``)."""

    rank: str
    case: Any
    fold: str
    path: str


@dataclass
class EvaluationContents:
    """Everything a report shows, read from one evaluation folder.

    Attributes:
        directory: Absolute path of the folder.
        kind: ``"cross-validation"``, ``"split validation"``, ``"detailed validation"`` or
            ``"unknown"``.
        run: ``cross_validation.json`` (empty when absent).
        settings: ``[(file name, text)]`` of ``manifest.json`` and ``*.config.yaml`` files.
        folds: One :class:`FoldInfo` per fold.
        long_table: Per-case, per-class metrics (with ``fold`` when known), or ``None``.
        summary: Per class and metric: count, mean, std, median, CI (or ``None``).
        summary_source: Where ``summary`` came from (a file name, or "computed ...").
        uncertainty: Per-case uncertainty table (``case`` + :data:`UNCERTAINTY_COLUMNS`).
        overlays: The overlay figures found.
        files: Every file below the folder (relative paths), for the file list.
        missing: What a complete run would have and this folder has not.
        problems: Files that exist but could not be read.
    """

    directory: str
    kind: str = "unknown"
    run: dict = field(default_factory=dict)
    settings: list = field(default_factory=list)
    folds: list = field(default_factory=list)
    long_table: Any = None
    summary: Any = None
    summary_source: str = ""
    uncertainty: Any = None
    overlays: list = field(default_factory=list)
    files: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    problems: list = field(default_factory=list)


def collect_evaluation(evaluation_dir: str | os.PathLike,
                       uncertainty: Sequence[str | os.PathLike] = ()) -> EvaluationContents:
    """Read an evaluation folder into an :class:`EvaluationContents` (read-only).

    Args:
        evaluation_dir: The folder of a cross-validation, split validation or detailed
            validation (``evaluation_path`` / ``miseg evaluate --output``).
        uncertainty: Extra ``uncertainty.tsv`` files (e.g. of a prediction folder); the
            ones below ``evaluation_dir`` are found on their own.

    Returns:
        The contents; missing or unreadable parts are listed, never raised.

    Raises:
        DataNotFoundError: when ``evaluation_dir`` is not a folder.
    """
    directory = os.path.abspath(os.fspath(evaluation_dir))
    if not os.path.isdir(directory):
        raise DataNotFoundError(f"Evaluation folder {directory!r} does not exist (or is not a folder).")
    contents = EvaluationContents(directory=directory, files=_list_files(directory))
    _read_settings(contents)
    _read_run(contents)
    _read_tables(contents)
    _read_uncertainty(contents, uncertainty)
    _find_overlays(contents)
    if contents.kind == "unknown" and contents.long_table is not None:
        contents.kind = "detailed validation"
    if not contents.files or contents.files == ["report.html"]:
        contents.missing.insert(0, "The folder holds no evaluation results yet.")
    return contents


# ------------------------------------------------------------------------------ helpers
def _list_files(directory: str, max_depth: int = 3) -> list[str]:
    found = []
    for root, dirs, files in os.walk(directory):
        depth = os.path.relpath(root, directory).count(os.sep) + (root != directory)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if depth < max_depth else []
        found.extend(os.path.relpath(os.path.join(root, f), directory) for f in sorted(files)
                     if not f.startswith("."))
    return found


def _read_json(contents: EvaluationContents, path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as exc:
        contents.problems.append(f"{os.path.relpath(path, contents.directory)}: unreadable ({exc}).")
        return None


def _read_tsv(contents: EvaluationContents, path: str) -> Any:
    from miseg.evaluation.reports import read_table

    try:
        return read_table(path)
    except (OSError, ValueError) as exc:
        contents.problems.append(f"{os.path.relpath(path, contents.directory)}: unreadable table ({exc}).")
        return None


def _read_settings(contents: EvaluationContents) -> None:
    for name in sorted(os.listdir(contents.directory)):
        path = os.path.join(contents.directory, name)
        if not (_SETTINGS.match(name) and os.path.isfile(path)):
            continue
        try:
            with open(path, "rb") as handle:
                raw = handle.read(_MAX_SETTINGS_BYTES + 1)
        except OSError as exc:
            contents.problems.append(f"{name}: unreadable ({exc}).")
            continue
        text = raw[:_MAX_SETTINGS_BYTES].decode("utf-8", errors="replace")
        if name.endswith(".json"):
            try:
                text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
            except ValueError:
                pass  # shown as written
        if len(raw) > _MAX_SETTINGS_BYTES:
            text += "\n... (truncated)"
        contents.settings.append((name, text))
    if not contents.settings:
        contents.missing.append("No run settings (manifest.json or *.config.yaml) in the folder.")


def _fold_from_dir(directory: str, name: str) -> FoldInfo:
    fold = FoldInfo(name=name)
    marker = _folds.read_marker(directory)
    fold.marker = marker or {}
    has_results = os.path.isdir(directory) and any(
        n != _folds.SAMPLE_LIST_FILE for n in os.listdir(directory))
    fold.status = "complete" if marker is not None else ("unfinished" if has_results else "not started")
    return fold


def _read_run(contents: EvaluationContents) -> None:
    directory = contents.directory
    run_path = os.path.join(directory, _folds.RUN_FILE)
    found = _folds.existing_fold_dirs(directory)
    if os.path.isfile(run_path):
        run = _read_json(contents, run_path)
        contents.run = run if isinstance(run, dict) else {}
    planned = [f for f in contents.run.get("folds", []) if isinstance(f, dict)]
    numbers = sorted(set(range(len(planned))) | set(found))
    for number in numbers:
        fold = _fold_from_dir(_folds.fold_dir(directory, number), f"fold_{number}")
        if number < len(planned):
            fold.training = list(planned[number].get("training", []))
            fold.validation = list(planned[number].get("validation", []))
        contents.folds.append(fold)
    root_marker = _folds.read_marker(directory)
    is_split = root_marker is not None and root_marker.get("type") == "split_validation"
    if is_split or (not numbers and os.path.isfile(os.path.join(directory, _folds.SAMPLE_LIST_FILE))):
        split = _fold_from_dir(directory, "split")
        if not is_split:
            split.status, split.marker = "unfinished", {}
        contents.folds.append(split)
    for fold in contents.folds:
        base = directory if fold.name == "split" else os.path.join(directory, fold.name)
        _read_fold(contents, fold, base)
    contents.kind = ("cross-validation" if numbers else "split validation" if contents.folds
                     else "unknown")
    if numbers and not contents.run:
        contents.missing.append(f"No run description {_folds.RUN_FILE}: the folds' case lists "
                                f"come from their {_folds.SAMPLE_LIST_FILE} files.")
    for fold in contents.folds:
        if fold.status != "complete":
            contents.missing.append(f"{fold.name}: {fold.status} (no {_folds.MARKER_FILE} marker).")
        if not fold.history and fold.status != "not started":
            contents.missing.append(f"{fold.name}: no training history ({_folds.HISTORY_FILE}).")


def _read_fold(contents: EvaluationContents, fold: FoldInfo, base: str) -> None:
    lists = os.path.join(base, _folds.SAMPLE_LIST_FILE)
    if not fold.validation and os.path.isfile(lists):
        payload = _read_json(contents, lists)
        if isinstance(payload, dict):
            fold.training = list(payload.get("TRAINING") or [])
            fold.validation = list(payload.get("VALIDATION") or [])
    try:
        fold.history = _folds.read_history(base)
    except (OSError, ValueError, IndexError) as exc:
        contents.problems.append(f"{os.path.relpath(os.path.join(base, _folds.HISTORY_FILE), contents.directory)}"
                                 f": unreadable ({exc}).")


def _read_tables(contents: EvaluationContents) -> None:
    import pandas as pd

    directory = contents.directory
    long_table = None
    root_long = os.path.join(directory, _folds.DETAILED_LONG_FILE)
    if os.path.isfile(root_long):
        long_table = _read_tsv(contents, root_long)
    if long_table is None:
        pieces = []
        for fold in contents.folds:
            path = os.path.join(directory, fold.name, _folds.DETAILED_LONG_FILE)
            if fold.name != "split" and os.path.isfile(path):
                table = _read_tsv(contents, path)
                if table is not None:
                    pieces.append(table.assign(fold=fold.name))
        if pieces:
            long_table = pd.concat(pieces, ignore_index=True)
            contents.missing.append(
                f"No pooled {_folds.DETAILED_LONG_FILE}: the tables of {len(pieces)} fold(s) are "
                f"pooled here.")
    if long_table is not None and {"sample_id", "class"} - set(long_table.columns):
        contents.problems.append(f"{_folds.DETAILED_LONG_FILE}: no sample_id/class columns.")
        long_table = None
    if long_table is None:
        contents.missing.append("No per-case metric tables (detailed_validation*.tsv): the run had "
                                "no detailed evaluation or has not finished it.")
    else:
        long_table = _with_folds(long_table, contents.folds)
    contents.long_table = long_table
    _read_summary(contents)


def _with_folds(table: Any, folds: Sequence[FoldInfo]) -> Any:
    if "fold" in table.columns or not any(f.validation for f in folds):
        return table
    lookup = {str(case): f.name for f in folds for case in f.validation}
    column = table["sample_id"].astype(str).map(lookup)
    return table.assign(fold=column) if column.notna().any() else table


def _read_summary(contents: EvaluationContents) -> None:
    path = os.path.join(contents.directory, _folds.DETAILED_SUMMARY_FILE)
    summary = _read_tsv(contents, path) if os.path.isfile(path) else None
    if summary is not None:
        contents.summary, contents.summary_source = summary, _folds.DETAILED_SUMMARY_FILE
        return
    table = contents.long_table
    if table is None:
        return
    from miseg.evaluation.reports import summary_table

    metrics = [c for c in table.columns if c not in ("sample_id", "class", "fold")
               and str(table[c].dtype) != "bool" and table[c].dtype.kind in "iuf"]
    if metrics:
        contents.summary = summary_table(table, metrics=metrics)
        contents.summary_source = "computed from the per-case table (95% bootstrap CI, seed 0)"
        contents.missing.append(f"No {_folds.DETAILED_SUMMARY_FILE}: the summary is computed here.")


def _read_uncertainty(contents: EvaluationContents, extra: Sequence[str | os.PathLike]) -> None:
    import pandas as pd

    paths = [os.path.abspath(os.fspath(p)) for p in extra]  # given files win over found ones
    paths += [os.path.join(contents.directory, f) for f in contents.files
              if os.path.basename(f) == UNCERTAINTY_FILE]
    tables = []
    for path in dict.fromkeys(paths):
        if not os.path.isfile(path):
            contents.problems.append(f"{path}: uncertainty table not found.")
            continue
        table = _read_tsv(contents, path)
        if table is not None and "case" in table.columns:
            tables.append(table.assign(case=table["case"].astype(str)))
        elif table is not None:
            contents.problems.append(f"{path}: no 'case' column.")
    wide_path = os.path.join(contents.directory, _folds.DETAILED_FILE)
    if os.path.isfile(wide_path):
        wide = _read_tsv(contents, wide_path)
        if wide is not None and "review" in wide.columns and "sample_id" in wide.columns:
            columns = ["sample_id"] + [c for c in UNCERTAINTY_COLUMNS if c in wide.columns]
            tables.append(wide[columns].rename(columns={"sample_id": "case"}))
    if tables:
        table = pd.concat(tables, ignore_index=True).drop_duplicates("case", keep="first")
        if "review" in table.columns:
            table["review"] = table["review"].map(lambda v: str(v).strip().lower() in _TRUE)
        contents.uncertainty = table.reset_index(drop=True)


def _find_overlays(contents: EvaluationContents) -> None:
    from miseg.utils.plotting import _safe_name  # the file-name rule of plot_case_overlays

    table = contents.long_table
    ids = {} if table is None else {_safe_name(i): i for i in dict.fromkeys(table["sample_id"].tolist())}
    for relative in contents.files:
        parts = relative.split(os.sep)
        match = _OVERLAY.match(parts[-1])
        if match is None or len(parts) > 2:
            continue
        fold = parts[0] if len(parts) == 2 else ""
        case = ids.get(match.group(2), match.group(2))
        contents.overlays.append(Overlay(rank=match.group(1), case=case, fold=fold,
                                         path=os.path.join(contents.directory, relative)))
    order = {"best": 0, "median": 1, "worst": 2}
    contents.overlays.sort(key=lambda o: (o.fold, order[o.rank]))
    if contents.long_table is not None and not contents.overlays:
        contents.missing.append("No best/median/worst overlays (run with draw_figures=True).")
