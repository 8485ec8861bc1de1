"""Shared machinery of the evaluation drivers: sample lists, fold splits, run bookkeeping.

Private to ``miseg.evaluation`` and ``miseg.multi_model``; the public drivers
(``cross_validation``, ``split_validation``, ``leave_one_out``, ``detailed_validation``)
are thin layers over these helpers.

Run bookkeeping (resume): a cross-validation folder holds ``cross_validation.json`` (the
samples, ``k``, the seed and the folds) and, per fold, ``fold_<i>/sample_list.json`` and,
written last and atomically, ``fold_<i>/.complete`` (a JSON marker with the hash of the
fold's sample lists). A fold without a marker is unfinished and runs again; a marker or a
description that disagrees with the requested run makes the driver refuse the folder.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
import time
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from miseg.errors import ConfigurationError, CorruptFileError, DataNotFoundError
from miseg.utils.fileio import atomic_path

RUN_FILE = "cross_validation.json"
SAMPLE_LIST_FILE = "sample_list.json"
MARKER_FILE = ".complete"
HISTORY_FILE = "history.tsv"
MODEL_FILE = "model.keras"
MISCNN_MODEL_FILE = "model.hdf5"
# A fold's (or group member's) best model: Keras 3's native file and MIScnn's HDF5 name.
FOLD_MODEL_FILES = (MODEL_FILE, MISCNN_MODEL_FILE)
INITIAL_MODEL_FILE = "initial_model.keras"
DETAILED_FILE = "detailed_validation.tsv"
DETAILED_LONG_FILE = "detailed_validation.long.tsv"
DETAILED_SUMMARY_FILE = "detailed_validation.summary.tsv"
DETAILED_BOXPLOT_FILE = "detailed_validation.boxplots.png"
FOLDS_FIGURE_FILE = "validation.folds.png"
RUN_FORMAT = 1

# Files a fold writes; an unfinished fold's leftovers matching these are removed before it
# runs again (``sample_list.json`` and anything else a user put there are left alone).
_FOLD_RESULTS = re.compile(
    r"^(history\.tsv|model\.(keras|h5|hdf5|json)|validation\..+\.png|detailed_validation\..*|"
    r"overlay\..+\.png)$"
)
_FOLD_DIR = re.compile(r"^fold_(\d+)$")


# ------------------------------------------------------------------------------ utilities
def quiet() -> bool:
    """Whether progress output is silenced (environment variable ``MISEG_QUIET``)."""
    return bool(os.environ.get("MISEG_QUIET"))


def progress(items: Iterable[Any], desc: str, total: int | None = None, unit: str = "it") -> Any:
    """A tqdm progress bar over ``items``, disabled when ``MISEG_QUIET`` is set."""
    from tqdm import tqdm

    return tqdm(items, desc=desc, total=total, unit=unit, disable=quiet())


def plain_index(value: Any) -> Any:
    """A sample index as a plain, JSON-ready Python value (numpy scalars unwrapped)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return value
    raise ConfigurationError(
        f"Sample index {value!r} ({type(value).__name__}) is neither a str nor an int; the "
        f"evaluation drivers store indices in JSON files and need one of those."
    )


def check_sample_list(sample_list: Any, name: str = "sample_list", minimum: int = 1) -> list:
    """Validate a list of case indices and return a plain copy (the caller's list is untouched)."""
    if isinstance(sample_list, np.ndarray):
        sample_list = sample_list.tolist()
    if isinstance(sample_list, (str, bytes)) or not isinstance(sample_list, Iterable):
        raise ConfigurationError(f"{name} must be a list of sample indices, got {sample_list!r}.")
    samples = [plain_index(s) for s in sample_list]
    if len(samples) < minimum:
        raise ConfigurationError(
            f"{name} holds {len(samples)} sample(s); at least {minimum} are needed."
        )
    seen: set = set()
    duplicates = [s for s in samples if s in seen or seen.add(s)]
    if duplicates:
        raise ConfigurationError(
            f"{name} contains duplicate indices {sorted(set(map(str, duplicates)))[:5]}; each "
            f"case may appear once, otherwise it could end up in training and validation."
        )
    return samples


def check_positive_int(value: Any, name: str, allow_none: bool = False) -> Any:
    """Raise ConfigurationError unless ``value`` is a positive int (or None when allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigurationError(f"{name} must be a positive int, got {value!r}.")
    return int(value)


def check_seed(seed: Any) -> int | None:
    """A seed as a plain non-negative int (or None), so it can be stored in JSON."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigurationError(f"seed must be a non-negative int or None, got {seed!r}.")
    return int(seed)


def check_k_fold(k_fold: Any, n_samples: int) -> int:
    """Validate the number of folds against the number of samples."""
    if isinstance(k_fold, bool) or not isinstance(k_fold, (int, np.integer)):
        raise ConfigurationError(f"k_fold must be an int, got {k_fold!r}.")
    if k_fold < 2:
        raise ConfigurationError(f"k_fold={k_fold} is too small; a cross-validation needs k_fold >= 2.")
    if k_fold > n_samples:
        raise ConfigurationError(
            f"k_fold={k_fold} is larger than the number of samples ({n_samples}); every fold "
            f"needs at least one validation sample."
        )
    return int(k_fold)


def split_into_folds(samples: Sequence[Any], k_fold: int, seed: int | None) -> list[list]:
    """Permute ``samples`` with ``np.random.default_rng(seed)`` and cut them into ``k_fold`` folds.

    Returns:
        One validation list per fold (sizes differ by at most one, as ``np.array_split``).
    """
    order = np.random.default_rng(seed).permutation(len(samples))
    return [[samples[i] for i in part] for part in np.array_split(order, k_fold)]


def folds_to_splits(validation_folds: Sequence[Sequence[Any]]) -> list[tuple[list, list]]:
    """``(training, validation)`` per fold: training is every other fold, in fold order."""
    splits = []
    for i, validation in enumerate(validation_folds):
        training = [s for j, fold in enumerate(validation_folds) if j != i for s in fold]
        splits.append((training, list(validation)))
    return splits


def digest(*parts: Any) -> str:
    """A stable SHA-256 hex digest of JSON-serialisable parts."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sample_key(samples: Iterable[Any]) -> list[str]:
    """Order-free identity of a sample list (type-tagged so 1 and "1" differ)."""
    return sorted(f"{type(s).__name__}:{s}" for s in samples)


def fold_hash(training: Sequence[Any], validation: Sequence[Any]) -> str:
    """Hash of one fold's sample lists (order-free within each list)."""
    return digest(sample_key(training), sample_key(validation))


def validation_size(n_samples: int, percentage: Any) -> int:
    """``ceil(n * percentage)`` validation samples, checked to leave both sets non-empty."""
    if isinstance(percentage, bool) or not isinstance(percentage, (int, float, np.floating)) \
            or not 0.0 < float(percentage) < 1.0:
        raise ConfigurationError(f"percentage must lie strictly between 0 and 1, got {percentage!r}.")
    n_val = math.ceil(n_samples * float(percentage))
    if n_val >= n_samples:
        raise ConfigurationError(
            f"percentage={percentage} of {n_samples} samples leaves no training sample; "
            f"lower the percentage or add samples."
        )
    return n_val


# ------------------------------------------------------------------------------ JSON files
def write_json(path: str, payload: Any) -> str:
    """Write JSON atomically (a reader never sees a half-written file)."""
    with atomic_path(path, suffix=".json") as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2)
            handle.write("\n")
    return path


def read_json(path: str) -> Any:
    """Read a JSON file, naming the file in errors."""
    if not os.path.isfile(path):
        raise DataNotFoundError(f"No file at {path!r}.")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as exc:
        raise CorruptFileError(f"{path!r} is not valid JSON: {exc}") from exc


def write_sample_list(path: str, training: Sequence[Any] | None, validation: Sequence[Any] | None) -> str:
    """Write ``{"TRAINING": [...], "VALIDATION": [...]}`` (MIScnn's ``sample_list.json``)."""
    payload: dict[str, list] = {}
    if training is not None:
        payload["TRAINING"] = [plain_index(s) for s in training]
    if validation is not None:
        payload["VALIDATION"] = [plain_index(s) for s in validation]
    return write_json(path, payload)


def read_sample_list(path: str) -> tuple[list | None, list | None]:
    """Read a ``sample_list.json``; a missing key gives ``None`` for that list."""
    payload = read_json(path)
    if not isinstance(payload, dict):
        raise CorruptFileError(f"{path!r} does not hold a JSON object with TRAINING/VALIDATION lists.")
    training, validation = payload.get("TRAINING"), payload.get("VALIDATION")
    for key, value in (("TRAINING", training), ("VALIDATION", validation)):
        if value is not None and not isinstance(value, list):
            raise CorruptFileError(f"{path!r}: {key} is not a list.")
    return training, validation


# ------------------------------------------------------------------------------ fold folders
def fold_dir(evaluation_path: str, fold: int) -> str:
    return os.path.join(evaluation_path, f"fold_{fold}")


def existing_fold_dirs(evaluation_path: str) -> dict[int, str]:
    """``{fold number: folder}`` of the ``fold_<i>`` folders below ``evaluation_path``."""
    if not os.path.isdir(evaluation_path):
        return {}
    found = {}
    for name in os.listdir(evaluation_path):
        match = _FOLD_DIR.match(name)
        path = os.path.join(evaluation_path, name)
        if match and os.path.isdir(path):
            found[int(match.group(1))] = path
    return found


def _refuse(evaluation_path: str, why: str) -> ConfigurationError:
    return ConfigurationError(
        f"The evaluation folder {os.path.abspath(evaluation_path)!r} holds {why}. miseg never "
        f"mixes or overwrites results of another run: choose a new evaluation_path, or delete "
        f"the folder to start over."
    )


def prepare_run(
    samples: Sequence[Any], k_fold: int, seed: int | None, evaluation_path: str
) -> list[tuple[list, list]]:
    """Create or resume the fold layout of a cross-validation in ``evaluation_path``.

    A new folder gets ``cross_validation.json`` and ``fold_<i>/sample_list.json``. An existing
    one is resumed when it describes the same samples, ``k_fold`` and seed (``seed=None``
    accepts the stored split); fold folders without a run description (e.g. from MIScnn's
    ``split_folds``) are adopted when they partition the same samples into ``k_fold`` folds.

    Returns:
        ``(training, validation)`` per fold.

    Raises:
        ConfigurationError: when the folder holds results of a different run.
    """
    run_path = os.path.join(evaluation_path, RUN_FILE)
    key = sample_key(samples)
    if os.path.isfile(run_path):
        meta = read_json(run_path)
        if not isinstance(meta, dict) or "folds" not in meta or "samples" not in meta:
            raise _refuse(evaluation_path, f"an unreadable run description {RUN_FILE}")
        if sample_key(meta["samples"]) != key:
            raise _refuse(evaluation_path, "the results of a cross-validation on a different sample list")
        if int(meta.get("k_fold", -1)) != k_fold:
            raise _refuse(evaluation_path, f"a cross-validation with k_fold={meta.get('k_fold')} (asked: {k_fold})")
        if seed is not None and meta.get("seed") != seed:
            raise _refuse(evaluation_path, f"a cross-validation split with seed={meta.get('seed')} (asked: {seed})")
        splits = [(list(f["training"]), list(f["validation"])) for f in meta["folds"]]
    else:
        splits = _adopt_fold_dirs(samples, k_fold, evaluation_path)
        adopted = splits is not None
        if splits is None:
            splits = folds_to_splits(split_into_folds(samples, k_fold, seed))
        meta = {
            "format": RUN_FORMAT,
            "type": "cross_validation",
            "samples": list(samples),
            "k_fold": k_fold,
            "seed": seed,
            "adopted_existing_folds": adopted,
            "folds": [
                {"fold": i, "training": tr, "validation": va, "hash": fold_hash(tr, va)}
                for i, (tr, va) in enumerate(splits)
            ],
        }
        os.makedirs(evaluation_path, exist_ok=True)
        write_json(run_path, meta)
    for i, (training, validation) in enumerate(splits):
        path = os.path.join(fold_dir(evaluation_path, i), SAMPLE_LIST_FILE)
        if os.path.isfile(path):
            stored = read_sample_list(path)
            if fold_hash(stored[0] or [], stored[1] or []) != fold_hash(training, validation):
                raise _refuse(evaluation_path, f"a fold_{i}/{SAMPLE_LIST_FILE} that differs from {RUN_FILE}")
        else:
            write_sample_list(path, training, validation)
        marker = read_marker(fold_dir(evaluation_path, i))
        if marker is not None and marker.get("hash") != fold_hash(training, validation):
            raise _refuse(evaluation_path, f"fold_{i} results of a different split")
    extra = sorted(set(existing_fold_dirs(evaluation_path)) - set(range(len(splits))))
    if extra:
        raise _refuse(evaluation_path, f"fold folders {['fold_%d' % e for e in extra]} beyond k_fold={k_fold}")
    return splits


def _adopt_fold_dirs(samples: Sequence[Any], k_fold: int, evaluation_path: str) -> list[tuple[list, list]] | None:
    """Fold folders without a run description: reuse them if they fit, refuse otherwise."""
    found = existing_fold_dirs(evaluation_path)
    if not found:
        return None
    if sorted(found) != list(range(k_fold)):
        raise _refuse(evaluation_path, f"fold folders {sorted('fold_%d' % f for f in found)} that do not "
                                       f"match k_fold={k_fold}")
    validation_folds = []
    for i in range(k_fold):
        path = os.path.join(found[i], SAMPLE_LIST_FILE)
        if not os.path.isfile(path):
            raise _refuse(evaluation_path, f"fold_{i} results without a {SAMPLE_LIST_FILE}")
        others = sorted(set(os.listdir(found[i])) - {SAMPLE_LIST_FILE})
        if others:
            raise _refuse(evaluation_path, f"fold_{i} results {others[:3]} without a {RUN_FILE} run "
                                           f"description (written by another tool or version)")
        validation_folds.append(read_sample_list(path)[1] or [])
    splits = folds_to_splits(validation_folds)
    if sample_key(s for fold in validation_folds for s in fold) != sample_key(samples):
        raise _refuse(evaluation_path, "fold folders of a cross-validation on a different sample list")
    return splits


def read_marker(directory: str) -> dict | None:
    """The completion marker of a fold folder, or ``None`` when absent or unreadable."""
    path = os.path.join(directory, MARKER_FILE)
    if not os.path.isfile(path):
        return None
    try:
        payload = read_json(path)
    except CorruptFileError:
        return None
    return payload if isinstance(payload, dict) else None


def write_marker(directory: str, payload: Mapping[str, Any]) -> str:
    """Write the completion marker last, atomically (a killed run leaves none)."""
    record = dict(payload)
    record.setdefault("finished", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    return write_json(os.path.join(directory, MARKER_FILE), record)


def clear_results(directory: str, keep: Iterable[str] = ()) -> None:
    """Remove an unfinished run's result files (only names miseg writes) and its marker.

    Args:
        directory: The run's folder.
        keep: File names left alone although they look like results (another run's files,
            e.g. a cross-validation's pooled tables next to a split validation).
    """
    if not os.path.isdir(directory):
        return
    kept = set(keep)
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if name in kept:
            continue
        if (name == MARKER_FILE or _FOLD_RESULTS.match(name)) and os.path.isfile(path):
            os.remove(path)


# Files a cross-validation writes next to its fold folders (run_detailed_evaluation /
# draw_figures); a split validation in the same folder must not overwrite or clear them.
CV_SUMMARY_FILES = (DETAILED_FILE, DETAILED_LONG_FILE, DETAILED_SUMMARY_FILE,
                    DETAILED_BOXPLOT_FILE, FOLDS_FIGURE_FILE)


def split_run_files(evaluation_path: str) -> set[str]:
    """Names listed by a finished split validation's marker directly in ``evaluation_path``."""
    marker = read_marker(evaluation_path)
    if marker is None or marker.get("type") != "split_validation":
        return set()
    return {str(name) for name in marker.get("files", [])}


def cross_validation_files(evaluation_path: str) -> set[str]:
    """Run-level files of a cross-validation present in ``evaluation_path`` (none without one).

    A file that a finished split validation in the same folder lists as its own is not
    counted.
    """
    if not os.path.isfile(os.path.join(evaluation_path, RUN_FILE)):
        return set()
    present = {n for n in CV_SUMMARY_FILES if os.path.isfile(os.path.join(evaluation_path, n))}
    return present - split_run_files(evaluation_path)


def refuse_collisions(evaluation_path: str, planned: Iterable[str], owned: set[str], owner: str) -> None:
    """Raise ConfigurationError when a run would write a file that ``owner`` left there."""
    clash = sorted(set(planned) & owned)
    if clash:
        raise ConfigurationError(
            f"The evaluation folder {os.path.abspath(evaluation_path)!r} holds {owner} results "
            f"{clash}, which this run would overwrite. Choose another evaluation_path, or leave "
            f"out the detailed evaluation/figures that write these files (all other files of "
            f"both runs can share the folder)."
        )


def read_history(directory: str) -> dict[str, list[float]]:
    """Read ``history.tsv`` (as written by ``backup_history``) back into a history dict."""
    path = os.path.join(directory, HISTORY_FILE)
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        rows = [line.rstrip("\n").split("\t") for line in handle if line.strip()]
    if not rows:
        return {}
    header, body = rows[0], rows[1:]
    history: dict[str, list[float]] = {}
    for column, name in enumerate(header):
        if name == "epoch":
            continue
        history[name] = [float(row[column]) for row in body if column < len(row) and row[column] != ""]
    return history


def history_dict(history: Any) -> dict[str, list[float]]:
    """A Keras History (or dict, or None) as ``{name: [float per epoch]}``."""
    history = getattr(history, "history", history)
    if not history:
        return {}
    return {str(k): [float(np.asarray(v)) for v in values] for k, values in history.items()}


# ------------------------------------------------------------------------------ callbacks
CallbackSpec = Any  # a sequence of Keras callbacks, or a factory ``fold -> callbacks``


def fresh_callbacks(callbacks: CallbackSpec, run: int) -> list:
    """Callbacks for one training run: a factory's output, or deep copies of the given ones.

    Keras callbacks keep state (best value, wait counters, the model), so reusing one object
    across folds would let fold 1 start with fold 0's early-stopping state. Copies are taken
    from the caller's untouched objects; a model already attached to a callback is not copied.

    Args:
        callbacks: ``None``, a sequence of callbacks, or a callable ``run -> callbacks``.
        run: Fold (or member) number passed to a factory.
    """
    if callbacks is None:
        return []
    if callable(callbacks) and not _is_callback(callbacks):
        made = callbacks(run)
        return list(made) if made is not None else []
    if _is_callback(callbacks):
        callbacks = [callbacks]
    out = []
    for callback in callbacks:
        memo: dict[int, Any] = {}
        attached = getattr(callback, "_model", None)
        if attached is not None:
            memo[id(attached)] = None
        try:
            out.append(copy.deepcopy(callback, memo))
        except Exception as exc:  # noqa: BLE001 - any copy failure gets the same advice
            raise ConfigurationError(
                f"callbacks: {type(callback).__name__} cannot be deep-copied for a fresh copy "
                f"per run ({exc}); pass a factory instead, e.g. "
                f"callbacks=lambda fold: [EarlyStopping(patience=5)]."
            ) from exc
    return out


def _is_callback(obj: Any) -> bool:
    return all(hasattr(obj, name) for name in ("set_model", "on_epoch_end", "on_train_begin"))


def checkpoint(directory: str) -> Any:
    """MIScnn's per-run checkpoint: the best ``val_loss`` model to :data:`FOLD_MODEL_FILES`."""
    from miseg.evaluation._model_files import BestModelCheckpoint

    paths = [os.path.join(directory, name) for name in FOLD_MODEL_FILES]
    return BestModelCheckpoint(paths, monitor="val_loss", verbose=0 if quiet() else 1)


def metric_name(metric: Any) -> str:
    """The history key of a Keras metric: its ``.name``, ``__name__`` or the string itself."""
    if isinstance(metric, str):
        return metric
    name = getattr(metric, "name", None)
    return name if isinstance(name, str) else getattr(metric, "__name__", type(metric).__name__)


def keras_backed(model: Any) -> bool:
    """Whether ``model`` wraps a single Keras model (a ``Neural_Network``-like leaf)."""
    inner = getattr(model, "model", None)
    return inner is not None and hasattr(inner, "save") and hasattr(inner, "get_weights")


def save_model(model: Any, directory: str) -> str:
    """Store a trained model in ``directory``: ``model.keras`` for a network; a group writes
    its ``metadata.json`` and ``group_<i>/`` member folders into ``directory`` itself, and
    any other ``Model`` gets ``model.dump(directory)`` (MIScnn's convention).

    Returns:
        The written file or folder (``directory`` when ``dump`` returns nothing).
    """
    if keras_backed(model):
        return model.dump(os.path.join(directory, MODEL_FILE))
    os.makedirs(directory, exist_ok=True)
    written = model.dump(directory)
    return os.fspath(written) if isinstance(written, (str, os.PathLike)) else directory


def save_fold_model(model: Any, directory: str) -> list[str]:
    """Store a fold's (or evaluated member's) model: :data:`FOLD_MODEL_FILES` for a network,
    :func:`save_model` otherwise.

    Returns:
        The names written into ``directory``.
    """
    if not keras_backed(model):
        written = save_model(model, directory)
        return [os.path.relpath(written, directory)] if written != directory else []
    from miseg.evaluation._model_files import save_model_files

    written = save_model_files(model.model, [os.path.join(directory, n) for n in FOLD_MODEL_FILES])
    return [os.path.basename(path) for path in written]


def fold_model_files(directory: str) -> list[str]:
    """The :data:`FOLD_MODEL_FILES` a checkpoint wrote into ``directory``; empty when the
    required ``model.keras`` is missing (no epoch improved)."""
    present = [n for n in FOLD_MODEL_FILES if os.path.isfile(os.path.join(directory, n))]
    return present if MODEL_FILE in present else []
