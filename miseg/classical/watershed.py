"""Watershed transforms: marker-based on the gradient magnitude, and on the distance
transform to split touching objects (scikit-image)."""

from __future__ import annotations

from typing import Any

import numpy as np

from miseg.classical import _common
from miseg.classical.base import ClassicalMethod, register
from miseg.errors import ConfigurationError

__all__ = ["MarkerWatershed", "DistanceWatershed"]


def _gradient(image: np.ndarray, sigma_mm: float, spacing: tuple[float, ...]) -> np.ndarray:
    """Gaussian gradient magnitude per mm (sigma in mm, converted to voxels per axis)."""
    from scipy.ndimage import gaussian_filter

    smoothed = gaussian_filter(image.astype(np.float64), [sigma_mm / s for s in spacing]) if sigma_mm else image
    parts = np.gradient(smoothed, *spacing)
    parts = parts if isinstance(parts, (list, tuple)) else [parts]
    return np.sqrt(sum(p * p for p in parts))


@register("watershed")
class MarkerWatershed(ClassicalMethod):
    """Marker-based watershed of the gradient magnitude (``skimage.segmentation.watershed``).

    Every marker floods the gradient image; a voxel takes the class of the marker whose
    basin reaches it, so boundaries settle on the strongest edges between markers. The
    gradient is computed per mm (spacing-aware) after a Gaussian of ``gradient_sigma`` mm.

    Markers (``predict(sample, seeds=...)``, same forms as region growing's seeds) must
    cover at least two classes (e.g. object and background). Without markers (unattended
    use), the automatic seed region of every class (background included) is used: the
    largest connected component of the voxels that the intensity model learned by
    :meth:`fit` finds most probably of that class and within ``seed_z`` standard deviations
    of its mean.

    Args:
        gradient_sigma: Gaussian sigma (mm) of the gradient; 0 for plain differences.
        seed_z: Width of the automatic markers, in standard deviations.
        smoothing: Gaussian sigma (voxels) applied to the image first.
        channel: Image channel.
    """

    learns = True

    def __init__(self, gradient_sigma: float = 1.0, seed_z: float = 1.0, smoothing: float | None = None,
                 channel: int = 0) -> None:
        super().__init__(smoothing, channel)
        if not float(gradient_sigma) >= 0 or not float(seed_z) > 0:
            raise ConfigurationError(
                f"watershed: gradient_sigma must be >= 0 and seed_z > 0, got {gradient_sigma!r}, {seed_z!r}."
            )
        self.gradient_sigma = float(gradient_sigma)
        self.seed_z = float(seed_z)

    def _fit(self, samples: list) -> dict[str, Any]:
        classes = _common.check_samples(samples, "watershed")
        return {"model": _common.gaussian_model(_common.class_values(samples, self.image, classes))}

    def markers(self, sample: Any, seeds: Any = None) -> dict[int, np.ndarray]:
        """``{class: marker mask}`` of a case: the given seeds, or the automatic ones."""
        classes = int(sample.classes)
        masks = _common.resolve_seeds(seeds, sample, classes)
        if masks is None:
            image = self.image(sample)
            model = _common.require_model(self._learned.get("model"), sample, "the watershed")
            masks = {c: _common.confident_region(image, model, c, self.seed_z) for c in range(classes)}
            masks = {c: m for c, m in masks.items() if m.any()}
        if len(masks) < 2:
            raise ConfigurationError(
                f"Case {_common.case_name(sample)}: the watershed needs markers of at least two classes "
                f"(e.g. object and background), got markers of class(es) {sorted(masks)} only."
            )
        return masks

    def predict(self, sample: Any, seeds: Any = None) -> np.ndarray:
        from skimage.segmentation import watershed

        masks = self.markers(sample, seeds)
        image = self.image(sample)
        markers = np.zeros(image.shape, np.int32)
        for c in sorted(masks):
            markers[masks[c]] = c + 1
        flooded = watershed(_gradient(image, self.gradient_sigma, _common.spacing_of(sample)), markers)
        return (flooded - 1).astype(np.int64)


@register("distance_watershed")
class DistanceWatershed(ClassicalMethod):
    """Split touching objects: watershed of the distance transform of a foreground mask.

    The foreground is ``image > threshold`` (``threshold``, or the Dice-optimal threshold
    learned by :meth:`fit`, or Otsu's threshold of each image when neither is available; a
    learned dark foreground uses ``image < threshold``). Its Euclidean distance transform
    (in mm) has one maximum per convex object; maxima at least ``min_distance`` voxels apart
    (``skimage.feature.peak_local_max``) seed a watershed of the negated distance inside the
    foreground, which cuts touching objects along their necks.

    :meth:`predict` returns the class map (the foreground gets ``foreground``);
    :meth:`predict_instances` returns one integer id per object (0 background).

    Args:
        threshold: Foreground threshold; ``None``: learned, else Otsu's.
        min_distance: Minimal distance between object centres, in voxels.
        foreground: The class of the objects.
        smoothing: Gaussian sigma (voxels) applied first.
        channel: Image channel.
    """

    learns = True

    def __init__(self, threshold: float | None = None, min_distance: int = 3, foreground: int = 1,
                 smoothing: float | None = None, channel: int = 0) -> None:
        super().__init__(smoothing, channel)
        if isinstance(min_distance, bool) or int(min_distance) < 1:
            raise ConfigurationError(f"distance_watershed: min_distance must be >= 1, got {min_distance!r}.")
        if isinstance(foreground, bool) or int(foreground) < 1:
            raise ConfigurationError(f"distance_watershed: foreground must be a class >= 1, got {foreground!r}.")
        self.threshold = None if threshold is None else float(threshold)
        self.min_distance = int(min_distance)
        self.foreground = int(foreground)

    def _fit(self, samples: list) -> dict[str, Any]:
        classes = _common.check_samples(samples, "distance_watershed")
        values = _common.class_values(samples, self.image, classes)
        rest = np.concatenate([values[k] for k in range(classes) if k != self.foreground])
        threshold, bright = _common.dice_optimal_threshold(values[self.foreground], rest)
        return {"threshold": threshold, "bright": bright}

    def foreground_mask(self, sample: Any) -> np.ndarray:
        """The foreground of a case (before splitting)."""
        image = self.image(sample)
        if self.threshold is not None:
            return image > self.threshold
        if self.fitted:
            t = self._learned["threshold"]
            return image >= t if self._learned["bright"] else image < t
        from skimage.filters import threshold_otsu

        return image > threshold_otsu(image) if np.ptp(image) > 0 else np.zeros(image.shape, bool)

    def predict_instances(self, sample: Any, seeds: Any = None) -> np.ndarray:
        """Object ids ``(x, y[, z])`` (int32, 0 background); ``seeds`` are ignored."""
        from scipy.ndimage import distance_transform_edt
        from skimage.feature import peak_local_max
        from skimage.measure import label
        from skimage.segmentation import watershed

        mask = self.foreground_mask(sample)
        if not mask.any():
            return np.zeros(mask.shape, np.int32)
        distance = distance_transform_edt(mask, sampling=_common.spacing_of(sample))
        components = label(mask)
        peaks = peak_local_max(distance, min_distance=self.min_distance, labels=components, exclude_border=False)
        markers = np.zeros(mask.shape, np.int32)
        markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
        # a component without a peak (e.g. a flat plateau) still becomes one object
        missing = np.setdiff1d(np.unique(components[mask]), np.unique(components[markers > 0]))
        for k, comp in enumerate(missing, start=len(peaks) + 1):
            markers[tuple(np.argwhere(components == comp)[0])] = k
        return watershed(-distance, markers, mask=mask).astype(np.int32)

    def predict(self, sample: Any, seeds: Any = None) -> np.ndarray:
        return np.where(self.foreground_mask(sample), self.foreground, 0).astype(np.int64)
