"""TransformHU: convert CT scanner values to Hounsfield units, optionally normalised."""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

import numpy as np

from miseg.errors import ConfigurationError, DataError
from miseg.processing.subfunctions._common import float_dtype, is_number
from miseg.processing.subfunctions.abstract_subfunction import Abstract_Subfunction

__all__ = ["TransformHU"]

logger = logging.getLogger(__name__)

_KEY_PAIRS = (("slope", "intercept"), ("RescaleSlope", "RescaleIntercept"))


def _rescale_from(meta: Mapping[str, Any] | None) -> tuple[float, float] | None:
    if not meta:
        return None
    for slope_key, intercept_key in _KEY_PAIRS:
        if meta.get(slope_key) is not None and meta.get(intercept_key) is not None:
            return float(meta[slope_key]), float(meta[intercept_key])
    return None


class TransformHU(Abstract_Subfunction):
    """Map stored CT values to Hounsfield units: ``HU = value * slope + intercept``.

    ``slope``/``intercept`` are read per case from ``sample.details`` or
    ``sample.extended`` (keys ``"slope"``/``"intercept"`` or DICOM's
    ``"RescaleSlope"``/``"RescaleIntercept"``), else the constructor values are used. When
    ``sample.extended["hu"]`` is ``True`` (the DICOM reader already applied the rescale) the
    rescale is skipped. Voxels equal to ``clipScan_value`` (the scanner's out-of-field
    marker) are treated as stored value 0, i.e. they become ``intercept`` HU. With
    ``normalize`` the HU values are mapped to ``[0, 1]`` by
    ``(HU - BOUND_MIN) / (BOUND_MAX - BOUND_MIN)``, clipped. The input array is not modified.

    Args:
        normalize: Map HU to ``[0, 1]`` over ``minmaxBound``.
        slope: Default rescale slope.
        intercept: Default rescale intercept.
        clipScan_value: Out-of-field value, or ``None`` to keep every voxel.
        minmaxBound: ``(BOUND_MIN, BOUND_MAX)`` HU window for ``normalize``.

    Example:
        >>> sample = Sample("ct", np.array([[-2000., 0.], [1024., 1424.]]), 1, 2, three_dim=False)
        >>> TransformHU(normalize=False).preprocessing(sample)
        >>> sample.img_data[..., 0]
        array([[-1024., -1024.],
               [    0.,   400.]])
    """

    def __init__(
        self,
        normalize: bool = True,
        slope: float = 1,
        intercept: float = -1024,
        clipScan_value: float | None = -2000,
        minmaxBound: Sequence[float] = (-1000, 400),
    ) -> None:
        for name, value in (("slope", slope), ("intercept", intercept)):
            if not is_number(value) or not np.isfinite(value):
                raise ConfigurationError(
                    f"TransformHU {name} must be a finite number, got {value!r}."
                )
        if clipScan_value is not None and not is_number(clipScan_value):
            raise ConfigurationError(
                f"TransformHU clipScan_value must be a number or None, got {clipScan_value!r}."
            )
        if (
            not isinstance(minmaxBound, (list, tuple))
            or len(minmaxBound) != 2
            or not all(is_number(b) for b in minmaxBound)
            or not minmaxBound[0] < minmaxBound[1]
        ):
            raise ConfigurationError(
                f"TransformHU minmaxBound must be (low, high) with low < high, got {minmaxBound!r}."
            )
        self.normalize = bool(normalize)
        self.slope = slope
        self.intercept = intercept
        self.clipScan_value = clipScan_value
        self.minmaxBound = minmaxBound
        self.BOUND_MIN = float(minmaxBound[0])
        self.BOUND_MAX = float(minmaxBound[1])
        self._logged_defaults = False

    def _rescale_parameters(self, sample: Any) -> tuple[float, float]:
        found = _rescale_from(getattr(sample, "details", None)) or _rescale_from(sample.extended)
        if found is not None:
            slope, intercept = found
            if not (np.isfinite(slope) and np.isfinite(intercept)):
                raise DataError(
                    f"Case {sample.index!r}: rescale slope/intercept {found} are not finite."
                )
            return found
        if not self._logged_defaults:
            logger.info(
                "TransformHU: no rescale slope/intercept in the sample metadata (first seen: "
                "case %r); using slope=%s, intercept=%s.", sample.index, self.slope, self.intercept,
            )
            self._logged_defaults = True
        return float(self.slope), float(self.intercept)

    def normalize_HU(self, image: np.ndarray) -> np.ndarray:
        """Map HU values to ``[0, 1]`` over ``[BOUND_MIN, BOUND_MAX]`` (new array, clipped)."""
        scaled = (np.asarray(image) - self.BOUND_MIN) / (self.BOUND_MAX - self.BOUND_MIN)
        return np.clip(scaled, 0.0, 1.0)

    def preprocessing(self, sample: Any, training: bool = True) -> None:
        """Replace ``sample.img_data`` by its HU (optionally normalised) copy."""
        image = sample.img_data
        dtype = float_dtype(image.dtype)
        slope, intercept = self._rescale_parameters(sample)
        hu = image.astype(dtype)  # a copy: the caller's array stays untouched
        if sample.extended.get("hu") is not True:
            hu *= dtype(slope)
            hu += dtype(intercept)
        if self.clipScan_value is not None:
            hu[image == self.clipScan_value] = intercept
        if self.normalize:
            hu = self.normalize_HU(hu).astype(dtype, copy=False)
        sample.img_data = hu

    def postprocessing(
        self, sample: Any, prediction: np.ndarray, activation_output: bool = False
    ) -> np.ndarray:
        """Identity: the HU transform does not change the grid."""
        return prediction
