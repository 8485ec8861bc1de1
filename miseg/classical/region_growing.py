"""Seeded region growing on intensity similarity (SimpleITK's connected-threshold and
confidence-connected filters), 2D and 3D, spacing-aware."""

from __future__ import annotations

from typing import Any

import numpy as np

from miseg.classical import _common
from miseg.classical.base import ClassicalMethod, register
from miseg.errors import ConfigurationError

__all__ = ["RegionGrowing", "grow_connected"]

_CRITERIA = ("connected_threshold", "confidence_connected")
_SEEDINGS = ("window", "model")


def grow_connected(image: np.ndarray, seeds: np.ndarray, lower: float, upper: float,
                   spacing: tuple[float, ...]) -> np.ndarray:
    """Every voxel connected to a seed voxel whose intensity lies in ``[lower, upper]``
    (``sitk.ConnectedThreshold``); ``seeds`` is a boolean mask of ``image``'s shape."""
    import SimpleITK as sitk

    points = [tuple(int(i) for i in p) for p in np.argwhere(seeds)]
    out = sitk.ConnectedThreshold(_common.to_sitk(image, spacing), seedList=points, lower=float(lower),
                                  upper=float(upper), replaceValue=1)
    return _common.from_sitk(out).astype(bool)


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
    Without seeds (unattended use, e.g. cross-validation), :meth:`seeds` places them:

    * ``seeding="window"`` (default): :meth:`fit` also learns each class's Dice-optimal
      intensity window (as :class:`~miseg.classical.WindowThreshold` does); every connected
      component of the case's voxels in that window with at least ``min_share`` of the
      largest component's size (at most ``max_seeds``, largest first) is seeded at its
      deepest voxel. This works for rare classes (a kidney is < 1 % of a CT volume) and for
      classes whose intensities are not one Gaussian (a kidney's bright cortex around its
      darker medulla), where the model-based seed region below comes out empty.
    * ``seeding="model"``: the deepest voxel of the largest connected component of the
      voxels that the learned Gaussian model finds most probably of that class and within
      ``seed_z`` standard deviations of its mean.

    Either way, when the first rule finds nothing for a class the other one is tried; a
    class for which both find nothing is not grown.

    The growth window stays ``mean ± multiplier * std`` of the class (unless ``lower`` /
    ``upper`` are given), which is wide for a class that is not one Gaussian; to grow inside
    the learned Dice-optimal window instead (thresholding + region growing), use
    :class:`~miseg.classical.ThresholdRegionGrowing` (``"threshold_region_growing"``).

    Args:
        criterion: ``"connected_threshold"`` or ``"confidence_connected"``.
        lower: Lower intensity bound (connected threshold); ``None``: learned.
        upper: Upper intensity bound (connected threshold); ``None``: learned.
        multiplier: Window half-width in standard deviations.
        iterations: Confidence-connected iterations.
        initial_radius: Confidence-connected seed neighbourhood radius, in voxels.
        max_distance: Limit the growth to this Euclidean distance in mm (voxels when the
            spacing is unknown) from the nearest seed; ``None``: no limit.
        seed_z: Width of the model-based seed region, in standard deviations.
        seeding: ``"window"`` or ``"model"``: how unattended seeds are placed (see above).
        min_share: Window seeding: the smallest component seeded, as a share of the largest.
        max_seeds: Window seeding: at most this many seeds per class; ``None``: no limit.
        bins: Histogram bins searched when learning the windows.
        smoothing: Gaussian sigma (voxels) applied first.
        channel: Image channel.

    Example:
        >>> RegionGrowing(lower=0.5, upper=2.0).predict(sample, seeds=[(8, 8, 8)])
    """

    learns = True

    def __init__(self, criterion: str = "connected_threshold", lower: float | None = None,
                 upper: float | None = None, multiplier: float = 2.5, iterations: int = 4,
                 initial_radius: int = 1, max_distance: float | None = None, seed_z: float = 1.0,
                 seeding: str = "window", min_share: float = 0.2, max_seeds: int | None = None,
                 bins: int = 256, smoothing: float | None = None, channel: int = 0) -> None:
        super().__init__(smoothing, channel)
        if criterion not in _CRITERIA:
            raise ConfigurationError(f"criterion={criterion!r} is unknown; choose one of {', '.join(_CRITERIA)}.")
        if seeding not in _SEEDINGS:
            raise ConfigurationError(f"seeding={seeding!r} is unknown; choose one of {', '.join(_SEEDINGS)}.")
        if not 0 <= float(min_share) <= 1:
            raise ConfigurationError(f"region_growing: min_share must lie in [0, 1], got {min_share!r}.")
        if max_seeds is not None and (isinstance(max_seeds, bool) or int(max_seeds) < 1):
            raise ConfigurationError(f"region_growing: max_seeds must be >= 1 or None, got {max_seeds!r}.")
        if isinstance(bins, bool) or int(bins) < 2:
            raise ConfigurationError(f"region_growing: bins must be >= 2, got {bins!r}.")
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
        self.seeding = seeding
        self.min_share = float(min_share)
        self.max_seeds = None if max_seeds is None else int(max_seeds)
        self.bins = int(bins)

    def _fit(self, samples: list) -> dict[str, Any]:
        classes = _common.check_samples(samples, "region_growing")
        values = _common.class_values(samples, self.image, classes)
        return {"model": _common.gaussian_model(values), "windows": _common.learned_windows(values, self.bins)}

    def seeds(self, sample: Any) -> dict[int, list[tuple[int, ...]]]:
        """The automatic seeds of a case: ``{class: [voxel index, ...]}`` (classes without any left out).

        Raises:
            ModelError: when the method has not been fitted.
        """
        model = _common.require_model(self._learned.get("model"), sample, "region growing")
        return self._auto_seeds(self.image(sample), model, _common.spacing_of(sample), int(sample.classes))

    def _auto_seeds(self, image: np.ndarray, model: Any, spacing: tuple,
                    classes: int) -> dict[int, list[tuple[int, ...]]]:
        windows = self._learned.get("windows") or {}

        def by_window(c: int) -> list[tuple[int, ...]]:
            if str(c) not in windows:
                return []
            low, high = windows[str(c)]
            return _common.component_seeds((image >= low) & (image <= high), spacing, self.min_share,
                                           self.max_seeds)

        def by_model(c: int) -> list[tuple[int, ...]]:
            region = _common.confident_region(image, model, c, self.seed_z)
            return [_common.deepest_voxel(region, spacing)] if region.any() else []

        rules = (by_window, by_model) if self.seeding == "window" else (by_model, by_window)
        found = {}
        for c in range(1, classes):
            for rule in rules:
                points = rule(c)
                if points:
                    found[c] = points
                    break
        return found

    def predict(self, sample: Any, seeds: Any = None) -> np.ndarray:
        classes = int(sample.classes)
        image = self.image(sample)
        spacing = _common.spacing_of(sample)
        masks = _common.resolve_seeds(seeds, sample, classes)
        if masks is None:
            model = _common.require_model(self._learned.get("model"), sample, "region growing")
            masks = {c: _common.points_mask(points, image.shape)
                     for c, points in self._auto_seeds(image, model, spacing, classes).items()}
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
        if self.criterion == "connected_threshold":
            lower, upper = self._bounds(c, sample)
            return grow_connected(work, mask, lower, upper, spacing)
        points = [tuple(int(i) for i in p) for p in np.argwhere(mask)]
        out = sitk.ConfidenceConnected(
            _common.to_sitk(work, spacing), seedList=points, numberOfIterations=self.iterations,
            multiplier=self.multiplier, initialNeighborhoodRadius=self.initial_radius, replaceValue=1,
        )
        return _common.from_sitk(out).astype(bool)
