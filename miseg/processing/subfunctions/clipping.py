"""Clipping: limit image intensities to a value range."""

from __future__ import annotations

from typing import Any

import numpy as np

from miseg.errors import ConfigurationError
from miseg.processing.subfunctions._common import is_number
from miseg.processing.subfunctions.abstract_subfunction import Abstract_Subfunction

__all__ = ["Clipping"]


class Clipping(Abstract_Subfunction):
    """Clip image intensities to ``[min, max]``; the segmentation is untouched.

    The clipped image is a new array, so arrays shared with the caller stay unchanged.

    Args:
        min: Lower bound (``None`` for no lower bound).
        max: Upper bound (``None`` for no upper bound).

    Raises:
        ConfigurationError: when a bound is not a number, both are ``None``, or ``min >= max``.

    Example:
        >>> sample = Sample("c1", np.array([[-500., 0.], [200., 3000.]]), 1, 2, three_dim=False)
        >>> Clipping(min=-100, max=1000).preprocessing(sample)
        >>> sample.img_data[..., 0]
        array([[-100.,    0.],
               [ 200., 1000.]])
    """

    def __init__(self, min: float | None, max: float | None) -> None:  # noqa: A002 (MIScnn names)
        for name, value in (("min", min), ("max", max)):
            if value is not None and (not is_number(value) or not np.isfinite(value)):
                raise ConfigurationError(f"Clipping {name} must be a finite number, got {value!r}.")
        if min is None and max is None:
            raise ConfigurationError("Clipping needs min or max; both are None.")
        if min is not None and max is not None and not min < max:
            raise ConfigurationError(f"Clipping needs min < max, got min={min!r}, max={max!r}.")
        self.min = min
        self.max = max

    def preprocessing(self, sample: Any, training: bool = True) -> None:
        """Replace ``sample.img_data`` by its clipped copy."""
        sample.img_data = np.clip(sample.img_data, self.min, self.max)

    def postprocessing(
        self, sample: Any, prediction: np.ndarray, activation_output: bool = False
    ) -> np.ndarray:
        """Identity: clipping does not change the grid."""
        return prediction
