"""Thresholding + region growing from a seed: a learned intensity window, then connected-threshold
growth inside it from seeds placed in the window's largest components."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from miseg.classical import _common
from miseg.classical.base import ClassicalMethod, register
from miseg.classical.region_growing import grow_connected
from miseg.classical.thresholding import _windows
from miseg.errors import ConfigurationError, DataError

__all__ = ["ThresholdRegionGrowing"]


@register("threshold_region_growing")
class ThresholdRegionGrowing(ClassicalMethod):
    """Threshold with an intensity window, then grow each class from seeds inside the window.

    Per foreground class (``classes``, default every one):

    1. the window ``[low, high]``: given (``windows``), or learned by :meth:`fit` as the
       Dice-optimal window of the class over the training voxels (as
       :class:`~miseg.classical.WindowThreshold` learns it);
    2. seeds: given to :meth:`predict`, or placed unattended by :meth:`seeds`: every
       connected component of the case's voxels in the window with at least ``min_share``
       of the largest component's size (at most ``max_seeds``, largest first) is seeded at
       its deepest voxel;
    3. growth: every voxel connected to a seed whose intensity lies in the window
       (SimpleITK's connected threshold, spacing-aware), so window voxels that are not
       connected to a seed (noise, other organs in the same intensity range) stay out;
    4. with ``fill_holes``, holes of the grown region are filled slice by slice across the
       axis of the coarsest spacing (the whole image in 2D): e.g. a kidney's enhanced
       cortex encloses its darker medulla, which is part of the kidney label.

    Classes are painted in increasing order (a later class wins where regions meet).

    Args:
        windows: ``(low, high)`` for class 1 or ``{class: (low, high)}``; ``None``: learned.
        classes: The foreground classes to segment; ``None``: every class with a window.
        min_share: The smallest component seeded, as a share of the largest one.
        max_seeds: At most this many seeds per class; ``None``: no limit.
        fill_holes: Fill holes of the grown regions slice by slice.
        bins: Histogram bins searched when learning the windows.
        smoothing: Gaussian sigma (voxels) applied first.
        channel: Image channel.

    Example:
        >>> method = ThresholdRegionGrowing(classes=[1], fill_holes=True).fit(training_samples)
        >>> labels = method.predict(sample)            # unattended seeds
        >>> method.seeds(sample)                       # {1: [(12, 30, 18), (13, 31, 47)]}
    """

    def __init__(self, windows: Any = None, classes: Sequence[int] | None = None, min_share: float = 0.2,
                 max_seeds: int | None = None, fill_holes: bool = False, bins: int = 256,
                 smoothing: float | None = None, channel: int = 0) -> None:
        super().__init__(smoothing, channel)
        if classes is not None:
            if isinstance(classes, (int, np.integer)) and not isinstance(classes, bool):
                classes = [classes]
            classes = sorted({int(c) for c in classes})
            if not classes or classes[0] < 1:
                raise ConfigurationError(
                    f"threshold_region_growing: classes must be foreground classes (>= 1), got {classes!r}.")
        if not 0 <= float(min_share) <= 1:
            raise ConfigurationError(f"threshold_region_growing: min_share must lie in [0, 1], got {min_share!r}.")
        if max_seeds is not None and (isinstance(max_seeds, bool) or int(max_seeds) < 1):
            raise ConfigurationError(f"threshold_region_growing: max_seeds must be >= 1 or None, got {max_seeds!r}.")
        if isinstance(bins, bool) or int(bins) < 2:
            raise ConfigurationError(f"threshold_region_growing: bins must be >= 2, got {bins!r}.")
        self.windows = _windows(windows)
        self.classes = classes
        self.min_share = float(min_share)
        self.max_seeds = None if max_seeds is None else int(max_seeds)
        self.fill_holes = bool(fill_holes)
        self.bins = int(bins)

    @property
    def learns(self) -> bool:  # type: ignore[override]
        return self.windows is None

    def _fit(self, samples: list) -> dict[str, Any]:
        classes = _common.check_samples(samples, "threshold_region_growing")
        wanted = self.classes if self.classes is not None else range(1, classes)
        unknown = [c for c in wanted if c >= classes]
        if unknown:
            raise ConfigurationError(
                f"threshold_region_growing: classes {unknown} asked, but the data has {classes} classes.")
        values = _common.class_values(samples, self.image, classes)
        windows = _common.learned_windows(values, self.bins, list(wanted))
        if not windows:
            raise DataError(f"threshold_region_growing: none of the classes {list(wanted)} occurs in the "
                            f"training cases.")
        return {"windows": windows}

    def class_windows(self) -> dict[int, tuple[float, float]]:
        """``{class: (low, high)}`` in use (given or learned, restricted to ``classes``)."""
        if self.windows is not None:
            windows = dict(self.windows)
        else:
            windows = {int(c): (float(w[0]), float(w[1])) for c, w in self._learned.get("windows", {}).items()}
        if self.classes is not None:
            windows = {c: w for c, w in windows.items() if c in self.classes}
        return windows

    def _check(self, sample: Any) -> dict[int, tuple[float, float]]:
        if self.learns:
            self._require_fit(sample, "has no windows")
        windows = self.class_windows()
        classes = int(sample.classes)
        beyond = sorted(c for c in windows if c >= classes)
        if beyond:
            raise ConfigurationError(
                f"Case {_common.case_name(sample)}: windows of class(es) {beyond}, but the data has {classes} classes.")
        return windows

    def seeds(self, sample: Any) -> dict[int, list[tuple[int, ...]]]:
        """The automatic seeds of a case: ``{class: [voxel index, ...]}`` (classes without any left out)."""
        return self._seeds(self.image(sample), _common.spacing_of(sample), self._check(sample))

    def _seeds(self, image: np.ndarray, spacing: tuple, windows: dict) -> dict[int, list[tuple[int, ...]]]:
        found = {}
        for c, (low, high) in windows.items():
            points = _common.component_seeds((image >= low) & (image <= high), spacing, self.min_share,
                                             self.max_seeds)
            if points:
                found[c] = points
        return found

    def predict(self, sample: Any, seeds: Any = None) -> np.ndarray:
        windows = self._check(sample)
        image = self.image(sample)
        spacing = _common.spacing_of(sample)
        masks = _common.resolve_seeds(seeds, sample, int(sample.classes))
        if masks is None:
            masks = {c: _common.points_mask(points, image.shape)
                     for c, points in self._seeds(image, spacing, windows).items()}
        missing = sorted(c for c in masks if c > 0 and c not in windows)
        if missing:
            raise ConfigurationError(
                f"Case {_common.case_name(sample)}: seeds of class(es) {missing}, which have no window "
                f"(windows: {sorted(windows)}).")
        grown = {}
        for c, mask in masks.items():
            if c > 0:
                low, high = windows[c]
                region = grow_connected(image, mask, low, high, spacing)
                grown[c] = _fill_holes(region, spacing) if self.fill_holes else region
        return _common.paint(np.zeros(image.shape, np.int64), grown)


def _fill_holes(mask: np.ndarray, spacing: tuple) -> np.ndarray:
    """Holes of ``mask`` filled slice by slice across the coarsest-spacing axis (whole in 2D)."""
    from scipy.ndimage import binary_fill_holes

    if mask.ndim < 3:
        return binary_fill_holes(mask)
    axis = int(np.argmax(spacing))   # the first of equal spacings: axis 0 for isotropic data
    planes = np.moveaxis(mask, axis, 0)
    return np.moveaxis(np.stack([binary_fill_holes(plane) for plane in planes]), 0, axis)
