"""ContrastStretching: percentile-based intensity rescaling."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from skimage.exposure import rescale_intensity

from miseg.errors import ConfigurationError
from miseg.processing.subfunctions._common import float_dtype, is_number
from miseg.processing.subfunctions.abstract_subfunction import Abstract_Subfunction

__all__ = ["ContrastStretching"]


def _check_pair(name: str, value: Any) -> tuple[float, float]:
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(is_number(v) and np.isfinite(v) for v in value)
        or not value[0] < value[1]
    ):
        raise ConfigurationError(
            f"ContrastStretching {name} must be (low, high) with low < high, got {value!r}."
        )
    return float(value[0]), float(value[1])


class ContrastStretching(Abstract_Subfunction):
    """Stretch each image channel from its ``percentiles`` to ``out_range``, clipping outliers.

    Per channel, ``low, high = np.percentile(channel, percentiles)`` and
    ``skimage.exposure.rescale_intensity(channel, in_range=(low, high), out_range=out_range)``.
    A constant channel becomes ``out_range[0]``.

    Args:
        percentiles: ``(p_low, p_high)`` with ``0 <= p_low < p_high <= 100``.
        out_range: Output ``(low, high)`` with ``low < high``.

    Example:
        >>> sample = Sample("c1", np.arange(101.0), 1, 2)
        >>> ContrastStretching((10, 90)).preprocessing(sample)
        >>> [float(sample.img_data[i, 0]) for i in (10, 50, 95)]
        [0.0, 0.5, 1.0]
    """

    def __init__(
        self, percentiles: Sequence[float] = (2, 98), out_range: Sequence[float] = (0, 1)
    ) -> None:
        low, high = _check_pair("percentiles", percentiles)
        if not 0 <= low < high <= 100:
            raise ConfigurationError(
                "ContrastStretching percentiles must satisfy 0 <= p_low < p_high <= 100, "
                f"got {percentiles!r}."
            )
        self._range = _check_pair("out_range", out_range)
        self.percentiles = percentiles
        self.out_range = out_range

    def preprocessing(self, sample: Any, training: bool = True) -> None:
        """Replace ``sample.img_data`` by its stretched copy."""
        image = sample.img_data
        out = np.empty(image.shape, dtype=float_dtype(image.dtype))
        for c in range(image.shape[-1]):
            channel = image[..., c].astype(np.float64)
            low, high = np.percentile(channel, self.percentiles)
            if high > low:
                out[..., c] = rescale_intensity(
                    channel, in_range=(low, high), out_range=self._range
                )
            else:
                out[..., c] = self._range[0]
        sample.img_data = out

    def postprocessing(
        self, sample: Any, prediction: np.ndarray, activation_output: bool = False
    ) -> np.ndarray:
        """Identity: contrast stretching does not change the grid."""
        return prediction
