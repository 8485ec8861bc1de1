"""The subfunction contract: one reversible preprocessing step applied to a Sample."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from miseg.errors import ConfigurationError

__all__ = ["Abstract_Subfunction", "call_postprocessing"]


def _to_jsonable(value: Any) -> Any:
    """Tuples/arrays become lists, numpy scalars Python scalars; dicts are converted per value."""
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


class Abstract_Subfunction(ABC):
    """Base class of preprocessing subfunctions (normalisation, resampling, padding, ...).

    A subfunction transforms a :class:`~miseg.data_loading.sample.Sample` in place before
    batching (``preprocessing``) and maps a prediction back afterwards (``postprocessing``).
    The Preprocessor runs ``preprocessing`` in list order and ``postprocessing`` in reverse
    order. Anything the inverse needs is stored in ``sample.extended`` (a per-sample dict
    that is backed up as JSON, so store lists/ints/floats, not slices or arrays).

    ``postprocessing`` receives a label map ``(x, y[, z])`` or, with
    ``activation_output=True``, an activation map ``(x, y[, z], classes)``.

    ``get_config`` returns the constructor arguments (read from attributes of the same
    name) as a JSON-friendly dict, and ``repr`` shows them; the Preprocessor fingerprints its
    on-disk cache with them. Override ``get_config`` if your attributes are named
    differently from your constructor arguments.

    Example:
        A custom subfunction that inverts the image intensities:

        >>> class Invert(Abstract_Subfunction):
        ...     def __init__(self, maximum=1.0):
        ...         self.maximum = maximum
        ...
        ...     def preprocessing(self, sample, training=True):
        ...         sample.img_data = self.maximum - sample.img_data
        ...
        ...     def postprocessing(self, sample, prediction, activation_output=False):
        ...         return prediction
        >>> Invert(2.0), Invert(2.0).get_config()
        (Invert(maximum=2.0), {'maximum': 2.0})

        Subfunctions written for old MIScnn versions with ``postprocessing(self, prediction)``
        keep working: the Preprocessor calls them through :func:`call_postprocessing`.
    """

    @abstractmethod
    def preprocessing(self, sample: Any, training: bool = True) -> None:
        """Transform ``sample`` in place (``sample.seg_data`` is ``None`` at prediction time)."""

    @abstractmethod
    def postprocessing(
        self, sample: Any, prediction: np.ndarray, activation_output: bool = False
    ) -> np.ndarray:
        """Return ``prediction`` mapped back through the inverse of :meth:`preprocessing`."""

    def _config_items(self) -> dict[str, Any]:
        params = inspect.signature(type(self).__init__).parameters
        skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        return {
            name: getattr(self, name)
            for name, param in params.items()
            if name != "self" and param.kind not in skip and hasattr(self, name)
        }

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as a JSON-friendly dict (tuples become lists).

        Returns:
            ``{argument_name: value}``; ``type(self)(**config)`` rebuilds an equal subfunction.
        """
        return _to_jsonable(self._config_items())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._config_items().items())
        return f"{type(self).__name__}({args})"


def call_postprocessing(
    subfunction: Any, sample: Any, prediction: np.ndarray, activation_output: bool = False
) -> np.ndarray:
    """Call ``subfunction.postprocessing`` with the arguments its signature accepts.

    Supports the current ``postprocessing(sample, prediction, activation_output)``, the
    old MIScnn ``postprocessing(prediction)``, and the two-argument forms
    ``(sample, prediction)`` / ``(prediction, activation_output)``.

    Args:
        subfunction: Any object with a ``postprocessing`` method.
        sample: The sample the prediction belongs to.
        prediction: Label map ``(x, y[, z])`` or activation map ``(x, y[, z], C)``.
        activation_output: Whether ``prediction`` is an activation map.

    Returns:
        The postprocessed prediction.

    Example:
        >>> class Old(Abstract_Subfunction):
        ...     def preprocessing(self, sample, training=True): return None
        ...     def postprocessing(self, prediction): return prediction + 1
        >>> call_postprocessing(Old(), None, np.zeros(2), False)
        array([1., 1.])
    """
    method = getattr(subfunction, "postprocessing", None)
    if not callable(method):
        raise ConfigurationError(
            f"subfunction {subfunction!r} has no callable postprocessing method."
        )
    try:
        params = list(inspect.signature(method).parameters.values())
    except (TypeError, ValueError):  # builtins / C extensions without a signature
        return method(sample, prediction, activation_output)

    kinds = inspect.Parameter
    if any(p.kind is kinds.VAR_POSITIONAL for p in params):
        return method(sample, prediction, activation_output)
    positional_kinds = (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)
    positional = [p for p in params if p.kind in positional_kinds]
    takes_kwargs = any(p.kind is kinds.VAR_KEYWORD for p in params)
    keyword_activation = takes_kwargs or any(
        p.name == "activation_output" and p.kind is kinds.KEYWORD_ONLY for p in params
    )
    if len(positional) >= 3:
        return method(sample, prediction, activation_output)
    if len(positional) == 2:
        if positional[1].name == "activation_output":
            return method(prediction, activation_output)
        if keyword_activation:
            return method(sample, prediction, activation_output=activation_output)
        return method(sample, prediction)
    if len(positional) == 1:
        if keyword_activation:
            return method(prediction, activation_output=activation_output)
        return method(prediction)
    raise ConfigurationError(
        f"subfunction {type(subfunction).__name__}.postprocessing{inspect.signature(method)} "
        "takes no prediction argument; expected postprocessing(sample, prediction, "
        "activation_output=False)."
    )
