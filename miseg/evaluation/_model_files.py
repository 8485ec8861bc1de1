"""Writing the trained models of folds and group members (imports Keras; load lazily).

A fold keeps its best model under two names: ``model.keras`` (Keras 3's native format) and
``model.hdf5`` (the file MIScnn's checkpoints wrote, legacy HDF5), both loadable with
``Neural_Network.load``. Keras' ``ModelCheckpoint`` only writes ``.keras``/``.h5``, so
:class:`BestModelCheckpoint` saves the files itself, each one atomically.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import warnings
from typing import Any, Iterator, Sequence

import keras

from miseg.utils.fileio import atomic_path

__all__ = ["BestModelCheckpoint", "save_keras_model", "save_model_files"]


@contextlib.contextmanager
def _quiet_hdf5_writer() -> Iterator[None]:
    """Silence Keras' 'HDF5 is legacy' notice and h5py's NumPy 2 deprecation chatter.

    miseg writes ``model.hdf5`` for MIScnn compatibility next to the native ``model.keras``;
    the notice would only tell the user to use the file that is already there.
    """
    logger = logging.getLogger("absl")

    def drop_notice(record: logging.LogRecord) -> bool:
        return "considered legacy" not in record.getMessage()

    logger.addFilter(drop_notice)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"__array__ implementation", category=DeprecationWarning)
            yield
    finally:
        logger.removeFilter(drop_notice)


def save_keras_model(model: Any, path: str) -> str:
    """Save a Keras model atomically; the suffix (``.keras``, ``.h5``, ``.hdf5``) picks the format.

    Returns:
        ``path``.
    """
    suffix = os.path.splitext(path)[1]
    quiet = _quiet_hdf5_writer() if suffix.lower() in (".h5", ".hdf5") else contextlib.nullcontext()
    with atomic_path(path, suffix=suffix) as tmp, quiet:
        model.save(tmp)
    return path


def save_model_files(model: Any, paths: Sequence[str]) -> list[str]:
    """Save ``model`` to every path; the first is required, the others are copies.

    A copy that Keras cannot write in its format (legacy HDF5 does not support every custom
    layer) gives a warning instead of losing the run; file-system errors still raise.

    Returns:
        The paths written.
    """
    written = []
    for position, path in enumerate(paths):
        try:
            save_keras_model(model, path)
        except OSError:
            raise
        except Exception as exc:  # noqa: BLE001 - only the optional copies are tolerated
            if position == 0:
                raise
            warnings.warn(
                f"The model could not be written as {path!r} ({type(exc).__name__}: {exc}); "
                f"{paths[0]!r} holds it.",
                UserWarning,
                stacklevel=2,
            )
            continue
        written.append(path)
    return written


class BestModelCheckpoint(keras.callbacks.Callback):
    """Save the model to every path in ``paths`` whenever ``monitor`` reaches a new minimum.

    Equivalent to ``ModelCheckpoint(path, monitor, save_best_only=True, mode="min")`` for
    several files at once (including MIScnn's ``.hdf5`` name), with atomic writes.

    Args:
        paths: Target files; the suffix of each decides its format. The first is required,
            the others are copies (see :func:`save_model_files`).
        monitor: The logged quantity to minimise.
        verbose: Print a line when the model is saved.
    """

    def __init__(self, paths: Sequence[str], monitor: str = "val_loss", verbose: int = 0) -> None:
        super().__init__()
        self.paths = [os.fspath(p) for p in paths]
        self.monitor = monitor
        self.verbose = verbose
        self.best = math.inf
        self._warned = False

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.best = math.inf

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        current = (logs or {}).get(self.monitor)
        if current is None:
            if not self._warned:
                warnings.warn(
                    f"Checkpoint: {self.monitor!r} is not logged (available: {sorted(logs or {})}); "
                    f"no best model is saved during training.",
                    UserWarning,
                    stacklevel=2,
                )
                self._warned = True
            return
        current = float(current)
        if not current < self.best:
            return
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to "
                  f"{current:.5f}, saving model to {', '.join(self.paths)}")
        self.best = current
        save_model_files(self.model, self.paths)
