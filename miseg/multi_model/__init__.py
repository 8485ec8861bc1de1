"""Model groups: ``Model`` (the base), ``Model_Group`` (ensembles) and ``CrossValidationGroup``.

The classes are imported lazily: ``miseg.neural_network.model`` imports
``miseg.multi_model.model`` while it loads, so this package must not import the groups (or
TensorFlow) eagerly.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Model", "Model_Group", "CrossValidationGroup"]

_LOCATIONS = {
    "Model": "miseg.multi_model.model",
    "Model_Group": "miseg.multi_model.model_group",
    "CrossValidationGroup": "miseg.multi_model.cross_validation_group",
}


def __getattr__(name: str) -> Any:
    if name in _LOCATIONS:
        return getattr(importlib.import_module(_LOCATIONS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
