"""miseg: MIScnn-compatible 2D/3D medical image segmentation on TensorFlow/Keras 3.

The four classes a pipeline needs are importable from the top level, as in MIScnn::

    from miseg import Data_IO, Preprocessor, Data_Augmentation, Neural_Network

They are imported lazily, so ``import miseg`` does not start TensorFlow until the network
is used.

miseg's losses, metrics and layers are registered with Keras as soon as Keras is imported
(or right away if it already is), so after ``import miseg`` a plain
``keras.models.load_model("model.keras")`` loads models compiled with them; see
:mod:`miseg._keras_registration`.
"""

from __future__ import annotations

import importlib
from typing import Any

from miseg._keras_registration import install as _install_keras_registration
from miseg._keras_registration import register_keras_objects

__version__ = "0.1.0"

__all__ = [
    "Data_IO",
    "Preprocessor",
    "Data_Augmentation",
    "Neural_Network",
    "register_keras_objects",
    "__version__",
]

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


_install_keras_registration()
