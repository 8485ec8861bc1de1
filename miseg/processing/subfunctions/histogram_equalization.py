"""HistogramEqualization: global or adaptive (CLAHE) histogram equalisation."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from skimage.exposure import equalize_adapthist, equalize_hist

from miseg.errors import ConfigurationError
from miseg.processing.subfunctions._common import check_sequence, float_dtype, is_number, per_axis
from miseg.processing.subfunctions.abstract_subfunction import Abstract_Subfunction

__all__ = ["HistogramEqualization"]


class HistogramEqualization(Abstract_Subfunction):
    """Equalise the intensity histogram of every image channel; output in ``[0, 1]``.

    ``adaptive=False`` uses ``skimage.exposure.equalize_hist`` over the whole 2D image or 3D
    volume. ``adaptive=True`` uses CLAHE (``skimage.exposure.equalize_adapthist``, nD), after
    a per-channel min-max rescale to ``[0, 1]`` that CLAHE requires.

    Args:
        adaptive: Use CLAHE instead of global equalisation.
        clip_limit: CLAHE contrast limit in ``[0, 1]`` (0 disables clipping).
        kernel_size: CLAHE context size: ``None`` (1/8 of each axis), an int, or one int per
            spatial axis.
        nbins: Number of histogram bins (>= 2).

    Example:
        >>> sample = Sample("c1", np.random.default_rng(0).gamma(2.0, size=(16, 16, 16)), 1, 2,
        ...                 three_dim=True)
        >>> HistogramEqualization(adaptive=True).preprocessing(sample)
    """

    def __init__(
        self,
        adaptive: bool = False,
        clip_limit: float = 0.01,
        kernel_size: int | Sequence[int] | None = None,
        nbins: int = 256,
    ) -> None:
        if not is_number(clip_limit) or not 0 <= clip_limit <= 1:
            raise ConfigurationError(
                f"HistogramEqualization clip_limit must be in [0, 1], got {clip_limit!r}."
            )
        if isinstance(nbins, bool) or not isinstance(nbins, (int, np.integer)) or nbins < 2:
            raise ConfigurationError(
                f"HistogramEqualization nbins must be an int >= 2, got {nbins!r}."
            )
        self._kernel = None if kernel_size is None else check_sequence(
            "kernel_size", kernel_size, integer=True, minimum=1, strict=False)
        self.adaptive = bool(adaptive)
        self.clip_limit = clip_limit
        self.kernel_size = kernel_size
        self.nbins = int(nbins)

    def _equalize(self, channel: np.ndarray, kernel: tuple | None) -> np.ndarray:
        if not self.adaptive:
            return equalize_hist(channel, nbins=self.nbins)
        low, high = channel.min(), channel.max()
        if high <= low:
            return np.zeros_like(channel)
        scaled = (channel - low) / (high - low)
        return equalize_adapthist(
            scaled, kernel_size=kernel, clip_limit=self.clip_limit, nbins=self.nbins
        )

    def preprocessing(self, sample: Any, training: bool = True) -> None:
        """Replace ``sample.img_data`` by its equalised copy."""
        image = sample.img_data
        kernel = None
        if self._kernel is not None:
            kernel = per_axis("kernel_size", self._kernel, image.ndim - 1, sample)
        out = np.empty(image.shape, dtype=float_dtype(image.dtype))
        for c in range(image.shape[-1]):
            out[..., c] = self._equalize(image[..., c].astype(np.float64), kernel)
        sample.img_data = out

    def postprocessing(
        self, sample: Any, prediction: np.ndarray, activation_output: bool = False
    ) -> np.ndarray:
        """Identity: equalisation does not change the grid."""
        return prediction
