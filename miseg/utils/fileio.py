"""Small file-system helpers: atomic writes and safe file names from sample indices."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from miseg.errors import CorruptFileError, DataNotFoundError, UnsafeIndexError

__all__ = ["atomic_path", "read_json_object", "safe_filename", "safe_join", "sidecar_path"]

#: Model file endings a sidecar name replaces (``run/model.keras`` -> ``run/model.<suffix>``).
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[str]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only on success.

    A crash or exception never leaves a half-written file under the final name, and the
    temporary file lives in the destination folder (same file system, no stray files in
    the system temp directory after a successful write).

    Args:
        path: Final file path.
        suffix: Suffix for the temporary file (some writers infer the format from it,
            e.g. ``".nii.gz"``).

    Example:
        >>> with atomic_path("out/history.tsv") as tmp:
        ...     Path(tmp).write_text("epoch\\tloss\\n")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; final files get the usual mode
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def safe_filename(index: Any) -> str:
    """Turn a sample index into a file-name component that cannot leave its directory.

    Raises:
        UnsafeIndexError: for empty names, ``.``/``..``, path separators or NUL bytes.
    """
    name = str(index)
    if name in ("", ".", "..") or "/" in name or "\\" in name or "\x00" in name or os.sep in name:
        raise UnsafeIndexError(
            f"Sample index {index!r} cannot be used as a file name: it is empty, '.'/'..', or "
            f"contains a path separator, so it could escape the output or batch directory. "
            f"Rename the case."
        )
    return name


def safe_join(directory: str | os.PathLike, index: Any, suffix: str = "") -> str:
    """Join ``directory`` and a file name built from ``index``; guaranteed to stay inside it."""
    name = safe_filename(index) + suffix
    base = Path(directory).resolve()
    target = (base / name).resolve()
    if target.parent != base:
        raise UnsafeIndexError(f"Sample index {index!r} resolves outside {str(base)!r}.")
    return str(Path(directory) / name)


def sidecar_path(model_path: str | os.PathLike, suffix: str) -> str:
    """A file stored next to a model: its name with the model ending replaced by ``suffix``.

    Args:
        model_path: The model file (an extension-less path keeps its whole name).
        suffix: The sidecar's ending, e.g. ``".config.yaml"``.

    Example:
        >>> sidecar_path("run/model.keras", ".manifest.json")
        'run/model.manifest.json'
        >>> sidecar_path("run/model", ".config.yaml")
        'run/model.config.yaml'
    """
    path = os.fspath(model_path)
    stem, ext = os.path.splitext(path)
    return (stem if ext.lower() in MODEL_SUFFIXES else path) + suffix


def read_json_object(path: str | os.PathLike, what: str) -> dict[str, Any]:
    """Read a JSON file that must hold an object.

    Args:
        path: The file.
        what: What the file is, for the error messages (e.g. ``"Manifest"``).

    Raises:
        DataNotFoundError: when the file is missing.
        CorruptFileError: when it is not valid JSON or not a JSON object.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataNotFoundError(f"No {what.lower()} at {path!r}.")
    try:
        with open(path, encoding="utf-8") as handle:
            payload = json.load(handle)
    except (OSError, ValueError) as exc:
        raise CorruptFileError(f"{what} {path!r} is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise CorruptFileError(f"{what} {path!r} does not hold a JSON object.")
    return payload
