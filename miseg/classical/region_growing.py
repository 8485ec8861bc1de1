"""Seeded region growing on intensity similarity (SimpleITK's connected-threshold and
confidence-connected filters), 2D and 3D, spacing-aware."""

from __future__ import annotations

from typing import Any

import numpy as np

from miseg.classical import _common
from miseg.classical.base import ClassicalMethod, register
from miseg.errors import ConfigurationError

__all__ = ["RegionGrowing"]

_CRITERIA = ("connected_threshold", "confidence_connected")


@register("region_growing")
class RegionGrowing(ClassicalMethod):
    """Grow regions from seeds over voxels of similar intensity.

    Criteria (both from SimpleITK, on an image that carries the case's voxel spacing):

    * ``"connected_threshold"``: every voxel connected to a seed whose intensity lies in
      ``[lower, upper]`` (``sitk.ConnectedThreshold``). Missing bounds come from the
      intensity model learned by :meth:`fit`: ``mean ± multiplier * std`` of the class.
    * ``"confidence_connected"``: ``sitk.ConfidenceConnected``: the window is ``mean ±
      multiplier * std`` of the seeds' neighbourhoods (``initial_radius`` voxels), then of
      the grown region, ``iterations`` times.

    Multi-class data: each foreground class is grown from its own seeds, in increasing class
    order (a later class wins where regions meet); class 0 is what no region reaches.

    Seeds (``predict(sample, seeds=...)``; see :func:`miseg.classical.resolve_seeds`
    for every accepted form): voxel coordinates, a mask, or ``{class: coordinates or mask}``.
    Without seeds (unattended use, e.g. cross-validation), each class is seeded at the
    deepest voxel of its automatic seed region: the largest connected component of the
    voxels that the learned model finds most probably of that class and within ``seed_z``
    standard deviations of its mean. A class without such voxels is not grown.

    Args:
        criterion: ``"connected_threshold"`` or ``"confidence_connected"``.
        lower: Lower intensity bound (connected threshold); ``None``: learned.
        upper: Upper intensity bound (connected threshold); ``None``: learned.
        multiplier: Window half-width in standard deviations.
        iterations: Confidence-connected iterations.
        initial_radius: Confidence-connected seed neighbourhood radius, in voxels.
        max_distance: Limit the growth to this Euclidean distance in mm (voxels when the
            spacing is unknown) from the nearest seed; ``None``: no limit.
        seed_z: Width of the automatic seed region, in standard deviations.
        smoothing: Gaussian sigma (voxels) applied first.
        channel: Image channel.

    Example:
        >>> RegionGrowing(lower=0.5, upper=2.0).predict(sample, seeds=[(8, 8, 8)])
    """

    learns = True

    def __init__(self, criterion: str = "connected_threshold", lower: float | None = None,
                 upper: float | None = None, multiplier: float = 2.5, iterations: int = 4,
                 initial_radius: int = 1, max_distance: float | None = None, seed_z: float = 1.0,
                 smoothing: float | None = None, channel: int = 0) -> None:
        super().__init__(smoothing, channel)
        if criterion not in _CRITERIA:
            raise ConfigurationError(f"criterion={criterion!r} is unknown; choose one of {', '.join(_CRITERIA)}.")
        if lower is not None and upper is not None and float(lower) > float(upper):
            raise ConfigurationError(f"region_growing: lower={lower} > upper={upper}.")
        for name, value in (("multiplier", multiplier), ("seed_z", seed_z)):
            if not float(value) > 0:
                raise ConfigurationError(f"region_growing: {name} must be positive, got {value!r}.")
        if max_distance is not None and not float(max_distance) > 0:
            raise ConfigurationError(f"region_growing: max_distance must be positive or None, got {max_distance!r}.")
        self.criterion = criterion
        self.lower = None if lower is None else float(lower)
        self.upper = None if upper is None else float(upper)
        self.multiplier = float(multiplier)
        self.iterations = int(iterations)
        self.initial_radius = int(initial_radius)
        self.max_distance = None if max_distance is None else float(max_distance)
        self.seed_z = float(seed_z)

    def _fit(self, samples: list) -> dict[str, Any]:
        classes = _common.check_samples(samples, "region_growing")
        return {"model": _common.gaussian_model(_common.class_values(samples, self.image, classes))}

    def predict(self, sample: Any, seeds: Any = None) -> np.ndarray:
        classes = int(sample.classes)
        image = self.image(sample)
        spacing = _common.spacing_of(sample)
        masks = _common.resolve_seeds(seeds, sample, classes)
        if masks is None:
            model = _common.require_model(self._learned.get("model"), sample, "region growing")
            masks = {}
            for c in range(1, classes):
                region = _common.confident_region(image, model, c, self.seed_z)
                if region.any():
                    masks[c] = _one_voxel(_common.deepest_voxel(region, spacing), image.shape)
        grown = {c: self._grow(image, mask, c, spacing, sample) for c, mask in masks.items() if c > 0}
        return _common.paint(np.zeros(image.shape, np.int64), grown)

    def _bounds(self, c: int, sample: Any) -> tuple[float, float]:
        if self.lower is not None and self.upper is not None:
            return self.lower, self.upper
        model = _common.require_model(self._learned.get("model"), sample,
                                      "connected-threshold growing without lower/upper bounds")
        mean, std = model["mean"][c], model["std"][c]
        if not np.isfinite(mean):
            raise ConfigurationError(
                f"Case {_common.case_name(sample)}: class {c} never occurred in the training cases, so it "
                f"has no learned intensity window; give lower/upper."
            )
        lower = self.lower if self.lower is not None else mean - self.multiplier * std
        upper = self.upper if self.upper is not None else mean + self.multiplier * std
        return float(lower), float(upper)

    def _grow(self, image: np.ndarray, mask: np.ndarray, c: int, spacing: tuple, sample: Any) -> np.ndarray:
        import SimpleITK as sitk

        work = image
        if self.max_distance is not None:
            from scipy.ndimage import distance_transform_edt

            far = distance_transform_edt(~mask, sampling=spacing) > self.max_distance
            work = np.where(far, image.min() - 10 * (np.ptp(image) + 1), image).astype(np.float32)
        itk = _common.to_sitk(work, spacing)
        points = [tuple(int(i) for i in p) for p in np.argwhere(mask)]
        if self.criterion == "connected_threshold":
            lower, upper = self._bounds(c, sample)
            out = sitk.ConnectedThreshold(itk, seedList=points, lower=lower, upper=upper, replaceValue=1)
        else:
            out = sitk.ConfidenceConnected(
                itk, seedList=points, numberOfIterations=self.iterations, multiplier=self.multiplier,
                initialNeighborhoodRadius=self.initial_radius, replaceValue=1,
            )
        return _common.from_sitk(out).astype(bool)


def _one_voxel(point: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[point] = True
    return mask
