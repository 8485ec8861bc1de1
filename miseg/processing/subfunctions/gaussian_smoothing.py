"""GaussianSmoothing: denoise the image with a Gaussian filter."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from scipy.ndimage import gaussian_filter

from miseg.errors import ConfigurationError, GeometryError
from miseg.processing.subfunctions._common import check_sequence, float_dtype, per_axis
from miseg.processing.subfunctions.abstract_subfunction import Abstract_Subfunction

__all__ = ["GaussianSmoothing"]

_MODES = ("reflect", "constant", "nearest", "mirror", "wrap")


class GaussianSmoothing(Abstract_Subfunction):
    """Smooth every image channel with ``scipy.ndimage.gaussian_filter`` on the spatial axes.

    Args:
        sigma: Standard deviation, one for all axes or one per spatial axis; in voxels, or in
            mm when ``spacing_aware`` (then divided by ``extended["spacing"]`` per axis).
        spacing_aware: Interpret ``sigma`` in mm (needs the case's spacing).
        mode: Border handling of ``gaussian_filter``.

    Raises:
        ConfigurationError: for negative sigmas or an unknown mode.
        GeometryError: (at preprocessing) when ``spacing_aware`` and the case has no spacing.

    Example:
        >>> sample = Sample("c1", np.random.default_rng(0).normal(size=(16, 16)), 1, 2,
        ...                 three_dim=False)
        >>> GaussianSmoothing(sigma=1.0).preprocessing(sample)
    """

    def __init__(
        self,
        sigma: float | Sequence[float] = 1.0,
        spacing_aware: bool = False,
        mode: str = "reflect",
    ) -> None:
        self._sigma = check_sequence("sigma", sigma, integer=False, minimum=0.0, strict=False)
        if mode not in _MODES:
            raise ConfigurationError(
                f"GaussianSmoothing mode must be one of {_MODES}, got {mode!r}."
            )
        self.sigma = sigma
        self.spacing_aware = bool(spacing_aware)
        self.mode = mode

    def voxel_sigma(self, sample: Any) -> tuple[float, ...]:
        """Per-spatial-axis sigma in voxels for ``sample``."""
        ndim = sample.img_data.ndim - 1
        sigma = per_axis("sigma", self._sigma, ndim, sample)
        if not self.spacing_aware:
            return sigma
        spacing = sample.spacing
        if spacing is None or len(spacing) != ndim or any(not s > 0 for s in spacing):
            raise GeometryError(
                f"case {sample.index!r} has no valid voxel spacing ({spacing!r}); "
                "GaussianSmoothing(spacing_aware=True) needs extended['spacing'] with one "
                f"positive entry per spatial axis ({ndim})."
            )
        return tuple(s / sp for s, sp in zip(sigma, spacing))

    def preprocessing(self, sample: Any, training: bool = True) -> None:
        """Replace ``sample.img_data`` by its smoothed copy."""
        sigma = self.voxel_sigma(sample) + (0.0,)
        image = sample.img_data
        data = image.astype(float_dtype(image.dtype))
        sample.img_data = gaussian_filter(data, sigma, mode=self.mode)

    def postprocessing(
        self, sample: Any, prediction: np.ndarray, activation_output: bool = False
    ) -> np.ndarray:
        """Identity: smoothing does not change the grid."""
        return prediction
