"""Register miseg's Keras objects once Keras is imported, without importing Keras.

A ``.keras`` file compiled with miseg's losses (``"miseg>tversky_loss"``) or built with
its layers loads only after these objects are registered with Keras, which importing
:mod:`miseg.neural_network.metrics` and :mod:`miseg.neural_network.architecture.layers`
does. ``import miseg`` must stay fast and free of TensorFlow, so it calls :func:`install`:

* if ``keras`` is already imported, the two modules are imported right away;
* otherwise a finder is put on ``sys.meta_path`` (the standard import-hook mechanism,
  PEP 451). It only reacts to the top-level ``keras`` and ``tensorflow`` imports (TensorFlow
  imports Keras itself, and Keras imports TensorFlow): when the outermost of them has
  finished executing, it imports the two modules and removes itself.

A failure to register never breaks the user's ``import keras``: it is reported as a
``RuntimeWarning`` and :func:`register_keras_objects` can be called explicitly.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from typing import Any

__all__ = ["REGISTERING_MODULES", "register_keras_objects", "install"]

#: Modules whose import registers miseg's serializable Keras objects.
REGISTERING_MODULES = (
    "miseg.neural_network.metrics",
    "miseg.neural_network.architecture.layers",
)
_TRIGGERS = frozenset({"keras", "tensorflow"})


def register_keras_objects() -> None:
    """Register miseg's losses, metrics and layers with Keras (imports Keras).

    Runs automatically when ``keras`` is imported after ``import miseg`` (or at
    ``import miseg`` when Keras is already imported); calling it again does nothing.
    """
    for name in REGISTERING_MODULES:
        importlib.import_module(name)


def _register_or_warn() -> None:
    try:
        register_keras_objects()
    except Exception as exc:  # noqa: BLE001 (never break the user's own import of Keras)
        warnings.warn(
            f"miseg could not register its Keras losses and layers ({exc!r}); call "
            "miseg.register_keras_objects() before loading a model saved with them.",
            RuntimeWarning,
            stacklevel=2,
        )


class _RegisterAfterExec:
    """Loader wrapper: executes the module, then lets the finder register."""

    def __init__(self, loader: Any, finder: _KerasImportFinder) -> None:
        self.loader = loader
        self.finder = finder

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.finder.executing += 1
        try:
            self.loader.exec_module(module)
        finally:
            self.finder.executing -= 1
            module.__loader__ = self.loader  # the module keeps its own loader
            if getattr(module, "__spec__", None) is not None:
                module.__spec__.loader = self.loader
        self.finder.after_exec()

    def __getattr__(self, name: str) -> Any:  # is_package, get_resource_reader, ...
        return getattr(self.loader, name)


class _KerasImportFinder:
    """``sys.meta_path`` entry that registers miseg's objects after Keras is imported."""

    is_miseg_keras_finder = True  # lets install() recognise instances across reloads

    def __init__(self) -> None:
        self.executing = 0
        self.searching = False

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in _TRIGGERS or self.searching:
            return None
        self.searching = True
        try:
            spec = None
            for finder in list(sys.meta_path):
                find = getattr(finder, "find_spec", None)
                if finder is self or find is None:
                    continue
                spec = find(fullname, path, target)
                if spec is not None:
                    break
        finally:
            self.searching = False
        if spec is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _RegisterAfterExec(spec.loader, self)
        return spec

    def after_exec(self) -> None:
        """Register once the outermost Keras/TensorFlow import has finished."""
        if self.executing or "keras" not in sys.modules:
            return
        _uninstall()
        _register_or_warn()


def _is_finder(entry: Any) -> bool:
    return getattr(entry, "is_miseg_keras_finder", False) is True


def _uninstall() -> None:
    sys.meta_path[:] = [entry for entry in sys.meta_path if not _is_finder(entry)]


def install() -> None:
    """Register now if Keras is imported, else as soon as it is (idempotent, cheap)."""
    if "keras" in sys.modules:
        _uninstall()
        _register_or_warn()
    elif not any(_is_finder(entry) for entry in sys.meta_path):
        sys.meta_path.insert(0, _KerasImportFinder())
