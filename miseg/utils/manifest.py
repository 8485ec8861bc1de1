"""Run manifests: what produced a model, a cross-validation or a folder of predictions.

Every training, cross-validation and prediction run writes a ``manifest.json`` (a trained
model gets ``<model>.manifest.json`` next to it) holding:

* ``versions`` (miseg, TensorFlow, Keras, NumPy, nibabel, pydicom), ``python``, ``platform``;
* ``git_commit``: the commit of the working directory when it is a git repository;
* ``config``: the run config (``miseg`` commands) or a description of the network;
* ``data``: interface, input folder, channels, classes; ``seeds``;
* the case lists (``cases``; ``folds`` for validations);
* ``inputs``: size and modification time of every input file (SHA-256 with
  ``hash_inputs=True``);
* ``stages``: wall time in seconds per stage, and ``wall_time`` in total.

A manifest written into a folder that already holds one (a resumed cross-validation, a
second prediction run) is updated, not clobbered: the earlier run moves to
``previous_runs``.

Example:
    >>> manifest = RunManifest("training", config=config)
    >>> with manifest.stage("training"):
    ...     model.fit(...)
    >>> manifest.write("run/manifest.json")
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import subprocess
import time
import warnings
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from miseg.errors import CorruptFileError
from miseg.utils.fileio import atomic_path, read_json_object, sidecar_path

__all__ = [
    "MANIFEST_FILE",
    "MANIFEST_FORMAT",
    "RunManifest",
    "package_versions",
    "environment",
    "git_commit",
    "file_record",
    "case_files",
    "input_records",
    "data_summary",
    "describe_network",
    "network_seeds",
    "network_manifest",
    "write_model_manifest",
    "read_model_manifest",
    "write_prediction_manifest",
    "model_manifest_path",
    "read_manifest",
    "write_manifest",
    "check_model_data",
]

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 1
PACKAGES = ("miseg", "tensorflow", "keras", "numpy", "nibabel", "pydicom")
_CHUNK = 1 << 20


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _iso(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).isoformat()


def plain(value: Any) -> Any:
    """``value`` as JSON-ready Python data (numpy unwrapped, tuples as lists, others as text)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [plain(v) for v in items]
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size <= 64 else f"array{value.shape}"
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return _name(value)


def _name(obj: Any) -> str:
    """A readable name of a function, class, Keras loss/metric or other object."""
    name = getattr(obj, "name", None)
    if isinstance(name, str):
        return name
    return getattr(obj, "__name__", None) or type(obj).__name__


# ------------------------------------------------------------------------------ environment
def package_versions(packages: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    """Installed versions (``importlib.metadata``; nothing is imported); ``None`` when absent."""
    versions: dict[str, str | None] = {}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    if versions.get("miseg") is None:
        from miseg import __version__

        versions["miseg"] = __version__
    return versions


def environment() -> dict[str, Any]:
    """``versions``, ``python`` and ``platform`` of this process."""
    return {
        "versions": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def git_commit(directory: str | os.PathLike | None = None, timeout: float = 2.0) -> str | None:
    """The ``HEAD`` commit of the git repository holding ``directory`` (default: the cwd).

    Returns ``None`` when it is no repository, git is missing or slow; never raises.
    """
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--verify", "HEAD"], cwd=os.fspath(directory or os.getcwd()),
            capture_output=True, text=True, timeout=timeout, check=False,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else None


# ------------------------------------------------------------------------------ input files
def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_record(path: str | os.PathLike, hash_inputs: bool = False, root: str | None = None) -> dict[str, Any]:
    """``{"path", "size", "mtime"}`` of a file (``"sha256"`` too with ``hash_inputs``).

    Args:
        path: The file.
        hash_inputs: Also compute its SHA-256 (streamed in 1 MiB chunks).
        root: Record the path relative to this folder when the file lies below it.
    """
    path = os.fspath(path)
    stat = os.stat(path)
    shown = path
    if root is not None:
        relative = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
        if not relative.startswith(os.pardir):
            shown = relative
    record: dict[str, Any] = {"path": shown, "size": int(stat.st_size), "mtime": _iso(stat.st_mtime)}
    if hash_inputs:
        record["sha256"] = _sha256(path)
    return record


def _walk(folder: str) -> list[str]:
    found = []
    for base, dirs, files in os.walk(folder):
        dirs.sort()
        found.extend(os.path.join(base, name) for name in sorted(files))
    return found


def case_files(interface: Any, index: Any) -> list[str]:
    """The files a case is read from (its case folder, walked); ``[]`` for in-memory data.

    An interface may define ``case_files(index)``; otherwise the case folder of the
    NIfTI, image, DICOM and NIfTI-slicer interfaces is walked.
    """
    own = getattr(interface, "case_files", None)
    if callable(own):
        return [os.fspath(p) for p in own(index)]
    if callable(getattr(interface, "split_index", None)):
        with contextlib.suppress(Exception):
            index = interface.split_index(index)[0]
    for name in ("_case_dir", "_case_folder"):
        getter = getattr(interface, name, None)
        if callable(getter):
            try:
                folder = getter(index)
            except (OSError, ValueError, TypeError, KeyError):
                return []
            return _walk(folder) if os.path.isdir(folder) else [folder]
    return []


def input_records(data_io: Any, cases: Sequence[Any], hash_inputs: bool = False) -> dict[str, Any]:
    """``{"hashed", "files": {case: [file_record, ...]}}`` of the cases' input files."""
    interface = data_io.interface
    root = getattr(data_io, "input_path", None)
    root = root if isinstance(root, (str, os.PathLike)) and os.path.isdir(root) else None
    files: dict[str, list[dict[str, Any]]] = {}
    seen: set[str] = set()
    for index in cases:
        records = []
        for path in case_files(interface, index):
            key = os.path.abspath(path)
            if key in seen:  # slices of one volume share its files
                continue
            seen.add(key)
            with contextlib.suppress(OSError):
                records.append(file_record(path, hash_inputs, root))
        if records:
            files[str(index)] = records
    return {"hashed": bool(hash_inputs), "files": files}


def data_summary(data_io: Any) -> dict[str, Any]:
    """Interface class, input folder, channels, classes and dimensionality of a Data_IO."""
    interface = data_io.interface
    path = getattr(data_io, "input_path", None)
    return {
        "interface": type(interface).__name__,
        "input_path": (os.path.abspath(path) if isinstance(path, (str, os.PathLike)) and os.path.exists(path)
                       else plain(path)),
        "channels": plain(getattr(interface, "channels", None)),
        "classes": plain(getattr(interface, "classes", None)),
        "three_dim": plain(getattr(interface, "three_dim", None)),
    }


def _describe(obj: Any) -> Any:
    if obj is None:
        return None
    settings = {}
    for key, value in sorted(vars(obj).items()) if hasattr(obj, "__dict__") else ():
        if key.startswith("_"):
            continue
        value = value.item() if isinstance(value, np.generic) else value
        if value is None or isinstance(value, (bool, int, float, str)):
            settings[key] = plain(value)
        elif isinstance(value, (list, tuple)) and all(isinstance(v, (bool, int, float, str)) for v in value):
            settings[key] = plain(value)
    return {"class_name": type(obj).__name__, "config": settings}


def describe_network(network: Any) -> dict[str, Any]:
    """A plan of a model built in Python: preprocessing, and the architecture and loss of a
    ``Neural_Network`` or the method of a ``ClassicalModel``."""
    pp = network.preprocessor
    plan: dict[str, Any] = {}
    if hasattr(network, "architecture"):
        plan.update(architecture=_describe(network.architecture), loss=_name(network.loss),
                    metrics=[_name(m) for m in getattr(network, "metrics", [])],
                    learning_rate=plain(getattr(network, "learning_rate", None)))
    method = getattr(network, "method", None)
    if method is not None:
        plan["method"] = {"name": getattr(method, "method_name", type(method).__name__),
                          "config": plain(method.get_config())}
    return {
        **plan,
        "preprocessing": {
            "analysis": pp.analysis,
            "patch_shape": plain(pp.patch_shape),
            "batch_size": pp.batch_size,
            "subfunctions": [_describe(s) for s in pp.subfunctions],
            "data_augmentation": _describe(pp.data_augmentation),
        },
    }


def network_seeds(network: Any, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The seeds a network's run depends on (config, Data_IO, preprocessor)."""
    seeds: dict[str, Any] = {}
    training = (config or {}).get("training") if isinstance(config, Mapping) else None
    if isinstance(training, Mapping) and training.get("seed") is not None:
        seeds["config"] = plain(training["seed"])
    pp = network.preprocessor
    for name, owner in (("data_io", pp.data_io), ("preprocessor", pp)):
        if getattr(owner, "seed", None) is not None:
            seeds[name] = plain(owner.seed)
    return seeds


# ------------------------------------------------------------------------------ the record
class RunManifest:
    """Collects the provenance of one run and writes it as JSON.

    Args:
        kind: ``"training"``, ``"cross_validation"``, ``"split_validation"``,
            ``"prediction"``, ...
        config: The run config (recorded as is; ``None``: none).
        hash_inputs: Record the SHA-256 of every input file (slower on big data).
        directory: Folder whose git commit is recorded (default: the working directory).

    Attributes:
        record: The manifest as a dict (fill in fields with :meth:`update`).
    """

    def __init__(self, kind: str, *, config: Mapping[str, Any] | None = None, hash_inputs: bool = False,
                 directory: str | os.PathLike | None = None) -> None:
        self.hash_inputs = bool(hash_inputs)
        self._start = time.perf_counter()
        working = os.path.abspath(os.fspath(directory or os.getcwd()))
        self.record: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "kind": kind,
            "created": _now(),
            "finished": None,
            **environment(),
            "working_directory": working,
            "git_commit": git_commit(working),
            "config": plain(config) if config is not None else None,
            "seeds": {},
            "stages": {},
        }

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block; its wall seconds are added to ``stages[name]`` (also on errors)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            stages = self.record["stages"]
            stages[name] = round(stages.get(name, 0.0) + time.perf_counter() - start, 4)

    def add_stage(self, name: str, seconds: float) -> "RunManifest":
        """Record a stage timed elsewhere (it counts towards ``wall_time`` too)."""
        self.record["stages"][name] = round(self.record["stages"].get(name, 0.0) + float(seconds), 4)
        self._start -= float(seconds)
        return self

    def update(self, **fields: Any) -> "RunManifest":
        """Set top-level fields (made JSON-ready). Returns ``self``."""
        self.record.update({key: plain(value) for key, value in fields.items()})
        return self

    def add_inputs(self, data_io: Any, cases: Sequence[Any]) -> "RunManifest":
        """Record ``data`` and the input files of ``cases`` (timed as stage ``input_scan``)."""
        with self.stage("input_scan"):
            self.record["data"] = data_summary(data_io)
            self.record["inputs"] = input_records(data_io, cases, self.hash_inputs)
        return self

    def finish(self) -> dict[str, Any]:
        """Stamp ``finished`` and ``wall_time``; returns the record."""
        self.record["finished"] = _now()
        self.record["wall_time"] = round(time.perf_counter() - self._start, 4)
        return self.record

    def write(self, path: str | os.PathLike, update: bool = True) -> str:
        """:meth:`finish` and :func:`write_manifest` to ``path``. Returns the path."""
        return write_manifest(path, self.finish(), update=update)


def model_manifest_path(model_path: str | os.PathLike) -> str:
    """The manifest next to a model: ``run/model.keras`` -> ``run/model.manifest.json``.

    Example:
        >>> model_manifest_path("run/model.keras")
        'run/model.manifest.json'
    """
    return sidecar_path(model_path, ".manifest.json")


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """Read a manifest.

    Raises:
        DataNotFoundError: when the file is missing.
        CorruptFileError: when it is no JSON object.
    """
    return read_json_object(path, "Manifest")


_ALWAYS_KEPT = ("kind", "created", "finished", "wall_time", "stages", "status")


def _earlier_run(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """What ``previous_runs`` keeps of a replaced manifest: its times and whatever differs
    from the new record (no input file lists), so repeated runs stay small."""
    return {k: v for k, v in old.items()
            if k not in ("previous_runs", "inputs", "format") and (k in _ALWAYS_KEPT or new.get(k) != v)}


def write_manifest(path: str | os.PathLike, manifest: Mapping[str, Any], update: bool = True) -> str:
    """Write ``manifest`` atomically as JSON.

    Args:
        path: The file (e.g. ``<evaluation_path>/manifest.json``).
        manifest: The record.
        update: When ``path`` holds a manifest already, keep its ``created`` time and
            move it (with its own ``previous_runs``) into ``previous_runs`` instead of
            dropping it. ``False`` replaces it (a model file that was overwritten).

    Returns:
        The path.
    """
    path = os.fspath(path)
    record = {key: plain(value) for key, value in manifest.items()}
    if update and os.path.isfile(path):
        try:
            old = read_manifest(path)
        except CorruptFileError as exc:
            warnings.warn(f"{exc}; it is replaced.", UserWarning, stacklevel=2)
            old = None
        if old is not None:
            record["created"] = old.get("created", record.get("created"))
            earlier = [r for r in old.get("previous_runs") or [] if isinstance(r, dict)]
            record["previous_runs"] = earlier + [_earlier_run(old, record)]
    with atomic_path(path, suffix=".json") as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=2)
            handle.write("\n")
    return path


# ------------------------------------------------------------------------------ checks
def check_model_data(recorded: Mapping[str, Any], interface: Any) -> list[str]:
    """Differences between the data a model was trained on and ``interface``.

    Args:
        recorded: A model manifest (its ``data`` section) or a run config (its ``data``
            section).
        interface: The interface serving the data to predict.

    Returns:
        One ``"<what>: model <a>, data <b>"`` text per differing class or channel count
        (empty when they agree or the record does not name them).
    """
    data = recorded.get("data") if isinstance(recorded, Mapping) else None
    if not isinstance(data, Mapping):
        return []
    problems = []
    for key, label in (("classes", "class count"), ("channels", "channel count")):
        expected, actual = data.get(key), getattr(interface, key, None)
        if isinstance(expected, int) and isinstance(actual, (int, np.integer)) and int(actual) != expected:
            problems.append(f"{label}: model {expected}, data {int(actual)}")
    return problems


# ------------------------------------------------------------------------------ networks
def network_manifest(network: Any, kind: str, cases: Mapping[str, Sequence[Any]],
                     previous: Mapping[str, Any] | None = None, **fields: Any) -> RunManifest:
    """A manifest of a ``Neural_Network`` run, with its inputs already recorded.

    Args:
        network: The network (its ``run_config`` and ``hash_inputs`` are honoured).
        kind: ``"training"`` or ``"prediction"``.
        cases: Case lists by role, e.g. ``{"training": [...], "validation": [...]}``.
        previous: The manifest of the run the weights continue from (kept in
            ``previous_runs``).
        **fields: More top-level fields (``epochs``, ``iterations``, ...).
    """
    config = getattr(network, "run_config", None)
    run = RunManifest(kind, config=config, hash_inputs=bool(getattr(network, "hash_inputs", False)))
    everything = list(dict.fromkeys(c for group in cases.values() for c in group))
    run.add_inputs(network.preprocessor.data_io, everything)
    run.update(plan=describe_network(network), cases={k: list(v) for k, v in cases.items()},
               seeds=network_seeds(network, config), **fields)
    if previous and previous.get("model_file"):
        run.update(continued_from=previous["model_file"])
    if previous and "kind" in previous:
        earlier = [r for r in previous.get("previous_runs") or [] if isinstance(r, dict)]
        run.record["previous_runs"] = earlier + [_earlier_run(previous, run.record)]
    return run


def write_model_manifest(network: Any, model_path: str | os.PathLike) -> str:
    """Write ``<model>.manifest.json`` for a model file just saved from ``network``.

    The record is the network's ``training_manifest`` (its last training run, or the
    manifest of the model it was loaded from); an untrained network gets a ``"model"``
    record (environment, data, plan) so the file never describes an older model.

    Returns:
        The manifest path.
    """
    record = getattr(network, "training_manifest", None) or {}
    if "kind" not in record:  # untrained, or loaded from a model without a manifest
        config = getattr(network, "run_config", None)
        run = RunManifest("model", config=config)
        run.update(plan=describe_network(network), data=data_summary(network.preprocessor.data_io),
                   seeds=network_seeds(network, config))
        if record.get("model_file"):
            run.update(loaded_from=record["model_file"])
        else:
            run.update(trained=False)
        record = run.finish()
    record = {**record, "model_file": os.path.basename(os.fspath(model_path)), "saved": _now()}
    return write_manifest(model_manifest_path(model_path), record, update=False)


def read_model_manifest(model_path: str | os.PathLike) -> dict[str, Any]:
    """The manifest next to a model file (``{}`` when missing or unreadable), with
    ``model_file`` set to the model's absolute path."""
    path = model_manifest_path(model_path)
    record: dict[str, Any] = {}
    if os.path.isfile(path):
        try:
            record = read_manifest(path)
        except CorruptFileError as exc:
            warnings.warn(f"{exc}; the model's provenance is not carried on.", UserWarning, stacklevel=2)
    record["model_file"] = os.path.abspath(os.fspath(model_path))
    return record


def _model_summary(network: Any, hash_inputs: bool) -> dict[str, Any] | None:
    record = getattr(network, "training_manifest", None)
    if not record:
        return None
    summary = {k: record.get(k) for k in ("kind", "created", "finished", "git_commit", "data", "saved")
               if k in record}
    model_file = record.get("model_file")
    if isinstance(model_file, str) and os.path.isfile(model_file):
        summary["file"] = file_record(model_file, hash_inputs)
    return summary


def write_prediction_manifest(network: Any, cases: Sequence[Any], seconds: float) -> str | None:
    """Write ``<output_path>/manifest.json`` after ``network.predict`` wrote predictions there.

    Nothing is written when the Data_IO has no output folder on disk (in-memory
    interfaces). An earlier manifest there moves to ``previous_runs``.

    Args:
        network: The network that predicted.
        cases: The predicted cases.
        seconds: Wall time of the prediction.

    Returns:
        The manifest path, or ``None``.
    """
    output = getattr(network.preprocessor.data_io, "output_path", None)
    if not isinstance(output, (str, os.PathLike)) or not os.path.isdir(output):
        return None
    run = network_manifest(network, "prediction", {"prediction": cases})
    run.add_stage("prediction", seconds)
    run.update(output_path=os.path.abspath(os.fspath(output)), tta=bool(getattr(network, "tta", False)),
               model=_model_summary(network, run.hash_inputs))
    return run.write(os.path.join(output, MANIFEST_FILE))
