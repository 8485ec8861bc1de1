"""miseg: MIScnn-compatible 2D/3D medical image segmentation on TensorFlow/Keras 3.

The four classes a pipeline needs are importable from the top level, as in MIScnn::

    from miseg import Data_IO, Preprocessor, Data_Augmentation, Neural_Network

They are imported lazily, so ``import miseg`` does not start TensorFlow until the network
is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = ["Data_IO", "Preprocessor", "Data_Augmentation", "Neural_Network", "__version__"]

_LOCATIONS = {
    "Data_IO": "miseg.data_loading.data_io",
    "Preprocessor": "miseg.processing.preprocessor",
    "Data_Augmentation": "miseg.processing.data_augmentation",
    "Neural_Network": "miseg.neural_network.model",
}


def __getattr__(name: str) -> Any:
    if name in _LOCATIONS:
        return getattr(importlib.import_module(_LOCATIONS[name]), name)
    raise AttributeError(f"module 'miseg' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
