"""Normalization: z-score, min-max or grayscale intensity normalisation."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from miseg.errors import ConfigurationError
from miseg.processing.subfunctions._common import float_dtype, is_number
from miseg.processing.subfunctions.abstract_subfunction import Abstract_Subfunction

__all__ = ["Normalization"]

_MODES = ("z-score", "minmax", "grayscale")


class Normalization(Abstract_Subfunction):
    """Normalise image intensities; the segmentation is untouched.

    Modes (``smooth`` only guards the denominators):

    * ``"z-score"``: ``(img - mean) / (std + smooth)``
    * ``"minmax"``: ``(img - min) / (max - min + smooth)``
    * ``"grayscale"``: ``round(255 * minmax)``

    Statistics are computed over all channels jointly (MIScnn's behaviour) or, with
    ``per_channel=True``, per channel. With ``foreground_only=True`` they are computed only
    from voxels whose value is above ``foreground_threshold`` (e.g. the body in an MRI with a
    zero background); every voxel is still transformed.

    Args:
        mode: ``"z-score"``, ``"minmax"`` or ``"grayscale"``.
        smooth: Small positive constant added to denominators.
        per_channel: Compute statistics per channel instead of jointly.
        foreground_only: Compute statistics from foreground voxels only.
        foreground_threshold: Voxels ``> foreground_threshold`` are foreground.

    Raises:
        ConfigurationError: for an unknown mode or a negative/non-numeric ``smooth``.

    Example:
        >>> sample = Sample("c1", np.array([[0., 5.], [10., 20.]]), 1, 2, three_dim=False)
        >>> Normalization(mode="minmax").preprocessing(sample)
        >>> np.round(sample.img_data[..., 0], 3)
        array([[0.  , 0.25],
               [0.5 , 1.  ]])
    """

    def __init__(
        self,
        mode: str = "z-score",
        smooth: float = 0.000001,
        per_channel: bool = False,
        foreground_only: bool = False,
        foreground_threshold: float = 0.0,
    ) -> None:
        if mode not in _MODES:
            raise ConfigurationError(f"Normalization mode must be one of {_MODES}, got {mode!r}.")
        if not is_number(smooth) or not smooth >= 0 or not np.isfinite(smooth):
            raise ConfigurationError(
                f"Normalization smooth must be a finite number >= 0, got {smooth!r}."
            )
        if not is_number(foreground_threshold):
            raise ConfigurationError(
                "Normalization foreground_threshold must be a number, "
                f"got {foreground_threshold!r}."
            )
        self.mode = mode
        self.smooth = smooth
        self.per_channel = bool(per_channel)
        self.foreground_only = bool(foreground_only)
        self.foreground_threshold = foreground_threshold

    def _normalize(self, values: np.ndarray, index: Any) -> np.ndarray:
        stats = values
        if self.foreground_only:
            stats = values[values > self.foreground_threshold]
            if stats.size == 0:
                warnings.warn(
                    f"Case {index!r}: no voxel above foreground_threshold="
                    f"{self.foreground_threshold}; Normalization uses all voxels.",
                    RuntimeWarning, stacklevel=3,
                )
                stats = values
        if self.mode == "z-score":
            return (values - stats.mean()) / (stats.std() + self.smooth)
        low, high = stats.min(), stats.max()
        scaled = (values - low) / (high - low + self.smooth)
        return np.round(255.0 * scaled) if self.mode == "grayscale" else scaled

    def preprocessing(self, sample: Any, training: bool = True) -> None:
        """Replace ``sample.img_data`` by its normalised copy (float32, float64 kept)."""
        image = sample.img_data
        data = image.astype(np.float64)
        if self.per_channel:
            out = np.empty_like(data)
            for c in range(data.shape[-1]):
                out[..., c] = self._normalize(data[..., c], sample.index)
        else:
            out = self._normalize(data, sample.index)
        sample.img_data = out.astype(float_dtype(image.dtype), copy=False)

    def postprocessing(
        self, sample: Any, prediction: np.ndarray, activation_output: bool = False
    ) -> np.ndarray:
        """Identity: normalisation does not change the grid."""
        return prediction
