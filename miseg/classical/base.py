"""The shared API of the classical methods and the registry of their names.

Every method is a :class:`ClassicalMethod` subclass registered under a short name with
:func:`register`; :func:`method_names` and :func:`get_method` read that one registry, so the
command line (``miseg segment --method NAME``, ``miseg evaluate --method NAME``) and
:class:`~miseg.classical.model.ClassicalModel` never keep their own lists.

The API (scikit-learn style):

* ``fit(samples)``: learn what the method learns (thresholds, intensity models, the mapping
  of intensity regions to classes) from labelled, preprocessed Samples; methods that learn
  nothing return immediately. Learned values live in ``get_state()`` (JSON-ready).
* ``predict(sample, seeds=None)``: a label map ``(x, y[, z])`` of the Sample's image.
* ``get_config()`` / ``from_config(config)``: the constructor arguments, JSON-ready.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, Callable, ClassVar, Iterable, Mapping, Sequence

import numpy as np

from miseg.classical import _common
from miseg.errors import ConfigurationError, ModelError

__all__ = ["ClassicalMethod", "register", "get_method", "method_names", "build_method"]

_REGISTRY: dict[str, type["ClassicalMethod"]] = {}


def register(name: str) -> Callable[[type], type]:
    """Class decorator: register a :class:`ClassicalMethod` subclass under ``name``.

    Args:
        name: The method name used by ``--method`` and stored in saved models.

    Raises:
        ConfigurationError: when ``name`` is taken by another class.
    """
    def decorator(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, ClassicalMethod)):
            raise ConfigurationError(f"register({name!r}): {cls!r} is not a ClassicalMethod subclass.")
        known = _REGISTRY.get(name)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise ConfigurationError(f"Classical method name {name!r} is already taken by {known.__name__}.")
        cls.method_name = name
        _REGISTRY[name] = cls
        return cls

    return decorator


def method_names() -> list[str]:
    """The registered method names, sorted."""
    import miseg.classical  # noqa: F401  (imports every method module, filling the registry)

    return sorted(_REGISTRY)


def get_method(name: str) -> type["ClassicalMethod"]:
    """The class registered under ``name``.

    Raises:
        ConfigurationError: for an unknown name (the message lists the known ones).
    """
    names = method_names()
    if name not in _REGISTRY:
        raise ConfigurationError(f"Unknown classical method {name!r}; choose one of {', '.join(names)}.")
    return _REGISTRY[name]


def build_method(method: "ClassicalMethod | str", config: Mapping[str, Any] | None = None) -> "ClassicalMethod":
    """A method instance from an instance (returned as is) or a registered name and its config.

    Raises:
        ConfigurationError: for an unknown name, or a config with arguments the class does not take.
    """
    if isinstance(method, ClassicalMethod):
        if config:
            raise ConfigurationError("A method instance was given together with a config; pass one of them.")
        return method
    if not isinstance(method, str):
        raise ConfigurationError(f"method must be a ClassicalMethod or a registered name, got {method!r}.")
    return get_method(method).from_config(dict(config or {}))


class ClassicalMethod:
    """Base class of the classical segmentation methods.

    Args:
        smoothing: Gaussian sigma in voxels applied to the image first (through
            :class:`miseg.processing.subfunctions.GaussianSmoothing`); ``None``: none.
        channel: The image channel the method works on.

    Attributes:
        method_name: The registered name (set by :func:`register`).
        learns: Whether :meth:`fit` learns anything.
    """

    method_name: ClassVar[str] = ""
    learns: ClassVar[bool] = False

    def __init__(self, smoothing: float | None = None, channel: int = 0) -> None:
        if smoothing is not None and not float(smoothing) >= 0:
            raise ConfigurationError(f"smoothing must be a non-negative sigma or None, got {smoothing!r}.")
        if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) or channel < 0:
            raise ConfigurationError(f"channel must be a non-negative int, got {channel!r}.")
        self.smoothing = None if smoothing is None else float(smoothing)
        self.channel = int(channel)
        self._learned: dict[str, Any] = {}

    # ------------------------------------------------------------------ API
    def fit(self, samples: Iterable[Any]) -> "ClassicalMethod":
        """Learn from labelled Samples (image and ``seg_data``). Returns ``self``."""
        self.reset()
        if self.learns:
            self._learned = self._fit(samples if isinstance(samples, Sequence) else list(samples))
        return self

    def _fit(self, samples: Sequence[Any]) -> dict[str, Any]:
        return {}

    def predict(self, sample: Any, seeds: Any = None) -> np.ndarray:  # pragma: no cover - abstract
        """The label map ``(x, y[, z])`` of ``sample`` (int64); every registered method implements it."""
        raise NotImplementedError(f"{type(self).__name__} must implement predict().")

    @property
    def fitted(self) -> bool:
        """Whether :meth:`fit` (or :meth:`set_state`) gave the method learned values."""
        return bool(self._learned)

    def reset(self) -> None:
        """Forget what :meth:`fit` learned (the constructor arguments stay)."""
        self._learned = {}

    def get_state(self) -> dict[str, Any]:
        """The learned values (JSON-ready; empty when nothing was learned)."""
        return copy.deepcopy(self._learned)

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore values returned by :meth:`get_state`."""
        if not isinstance(state, Mapping):
            raise ModelError(f"{type(self).__name__}: a state must be a mapping, got {type(state).__name__}.")
        self._learned = copy.deepcopy(dict(state))

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (JSON-ready)."""
        config = {}
        for name in inspect.signature(type(self).__init__).parameters:
            if name != "self":
                config[name] = _common.plain(getattr(self, name))
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "ClassicalMethod":
        """A new instance from :meth:`get_config`'s output.

        Raises:
            ConfigurationError: naming arguments the class does not take.
        """
        accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
        unknown = sorted(set(config) - accepted)
        if unknown:
            raise ConfigurationError(
                f"Classical method {cls.method_name!r} takes no argument(s) {unknown}; valid: {sorted(accepted)}."
            )
        return cls(**dict(config))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ helpers
    def image(self, sample: Any) -> np.ndarray:
        """The (smoothed) channel the method works on, ``(x, y[, z])`` float32."""
        return _common.spatial_image(sample, self.channel, self.smoothing)

    def _require_fit(self, sample: Any, what: str) -> None:
        if not self.fitted:
            raise ModelError(
                f"Case {_common.case_name(sample)}: {type(self).__name__} has not been fitted and "
                f"{what}; call fit(...) on labelled cases first."
            )
