"""Thresholding: fixed or learned intensity windows, Otsu, multi-Otsu and hysteresis."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from miseg.classical import _common
from miseg.classical.base import ClassicalMethod, register
from miseg.errors import ConfigurationError, DataError

__all__ = ["WindowThreshold", "OtsuThreshold", "MultiOtsuThreshold", "HysteresisThreshold"]


def _windows(windows: Any) -> dict[int, tuple[float, float]] | None:
    if windows is None:
        return None
    if not isinstance(windows, Mapping):
        if len(windows) == 2 and all(np.isscalar(w) for w in windows):
            windows = {1: windows}
        else:
            raise ConfigurationError(f"windows must be (low, high) or {{class: (low, high)}}, got {windows!r}.")
    result = {}
    for key, window in windows.items():
        if not str(key).isdigit() or int(key) < 1:
            raise ConfigurationError(f"windows: class {key!r} must be a foreground class label (>= 1).")
        low, high = (float(v) for v in window)
        if not low <= high:
            raise ConfigurationError(f"windows: class {key} has low={low} > high={high}.")
        result[int(key)] = (low, high)
    return result


@register("threshold")
class WindowThreshold(ClassicalMethod):
    """Voxels inside an intensity window ``[low, high]`` get the window's class.

    With ``windows`` given (e.g. a HU range ``(100, 300)``), nothing is learned. Without,
    :meth:`fit` learns per foreground class the window that maximises the Dice of
    ``low <= I <= high`` against that class over the training voxels. Classes are painted in
    increasing order, so a later class wins where windows overlap.

    Args:
        windows: ``(low, high)`` for class 1, or ``{class: (low, high)}``; ``None``: learned.
        bins: Histogram bins searched when learning.
        smoothing: Gaussian sigma (voxels) applied first.
        channel: Image channel.

    Example:
        >>> WindowThreshold(windows=(100, 300)).predict(sample)   # HU window -> class 1
    """

    def __init__(self, windows: Any = None, bins: int = 256, smoothing: float | None = None,
                 channel: int = 0) -> None:
        super().__init__(smoothing, channel)
        self.windows = _windows(windows)
        self.bins = int(bins)

    @property
    def learns(self) -> bool:  # type: ignore[override]
        return self.windows is None

    def _fit(self, samples: list) -> dict[str, Any]:
        classes = _common.check_samples(samples, "threshold")
        values = _common.class_values(samples, self.image, classes)
        learned = {}
        for c in range(1, classes):
            if values[c].size:
                rest = np.concatenate([values[k] for k in range(classes) if k != c])
                learned[str(c)] = list(_common.dice_optimal_window(values[c], rest, self.bins))
        if not learned:
            raise DataError("threshold: no foreground class occurs in the training cases.")
        return {"windows": learned}

    def class_windows(self) -> dict[int, tuple[float, float]]:
        """The windows in use (given or learned)."""
        if self.windows is not None:
            return dict(self.windows)
        return {int(c): (float(w[0]), float(w[1])) for c, w in self._learned.get("windows", {}).items()}

    def predict(self, sample: Any, seeds: Any = None) -> np.ndarray:
        if self.windows is None:
            self._require_fit(sample, "has no windows")
        image = self.image(sample)
        labels = np.zeros(image.shape, np.int64)
        masks = {c: (image >= low) & (image <= high) for c, (low, high) in self.class_windows().items()}
        return _common.paint(labels, masks)


class _RegionThreshold(ClassicalMethod):
    """Shared part of Otsu and multi-Otsu: intensity regions mapped to classes."""

    learns = True

    def _thresholds(self, image: np.ndarray, n_regions: int) -> np.ndarray:
        from skimage.filters import threshold_multiotsu, threshold_otsu

        if np.ptp(image) == 0:
            return np.full(n_regions - 1, image.flat[0])
        if n_regions == 2:
            return np.asarray([threshold_otsu(image, nbins=self.nbins)])
        return np.asarray(threshold_multiotsu(image, classes=n_regions, nbins=self.nbins))

    def _regions(self, image: np.ndarray, n_regions: int) -> np.ndarray:
        return np.digitize(image, self._thresholds(image, n_regions))

    def _region_count(self, classes: int) -> int:
        return 2

    def _fit(self, samples: list) -> dict[str, Any]:
        classes = _common.check_samples(samples, self.method_name)
        n_regions = self._region_count(classes)
        votes = np.zeros((n_regions, classes), np.int64)
        for sample in samples:
            regions = self._regions(self.image(sample), n_regions)
            labels = _common.labels_of(sample)
            np.add.at(votes, (regions.ravel(), labels.ravel().astype(np.int64)), 1)
        return {"region_classes": [int(np.argmax(v)) if v.any() else 0 for v in votes], "regions": n_regions}

    def _mapping(self, n_regions: int, classes: int) -> list[int]:
        if self.fitted:
            return [int(c) for c in self._learned["region_classes"]]
        return [min(r, classes - 1) for r in range(n_regions)]

    def predict(self, sample: Any, seeds: Any = None) -> np.ndarray:
        classes = int(sample.classes)
        n_regions = int(self._learned["regions"]) if self.fitted else self._region_count(classes)
        regions = self._regions(self.image(sample), n_regions)
        return np.asarray(self._mapping(n_regions, classes), np.int64)[regions]


@register("otsu")
class OtsuThreshold(_RegionThreshold):
    """Otsu's threshold of each image (``skimage.filters.threshold_otsu``).

    The two regions (below, above) map to classes: :meth:`fit` learns the mapping by majority
    vote over the training voxels (so a dark structure on a bright background works too);
    unfitted, below is class 0 and above class 1.

    Args:
        nbins: Histogram bins of Otsu's method.
        smoothing: Gaussian sigma (voxels) applied first.
        channel: Image channel.
    """

    def __init__(self, nbins: int = 256, smoothing: float | None = None, channel: int = 0) -> None:
        super().__init__(smoothing, channel)
        self.nbins = int(nbins)


@register("multi_otsu")
class MultiOtsuThreshold(_RegionThreshold):
    """Multi-Otsu thresholds of each image (``skimage.filters.threshold_multiotsu``).

    The image is cut into ``regions`` intensity regions (default: the data's class count);
    :meth:`fit` learns which class each region is (majority vote over the training voxels);
    unfitted, region ``r`` is class ``r``.

    Args:
        regions: Number of intensity regions (>= 2); ``None``: the number of classes.
        nbins: Histogram bins.
        smoothing: Gaussian sigma (voxels) applied first.
        channel: Image channel.
    """

    def __init__(self, regions: int | None = None, nbins: int = 256, smoothing: float | None = None,
                 channel: int = 0) -> None:
        super().__init__(smoothing, channel)
        if regions is not None and (isinstance(regions, bool) or int(regions) < 2):
            raise ConfigurationError(f"regions must be >= 2 or None, got {regions!r}.")
        self.regions = None if regions is None else int(regions)
        self.nbins = int(nbins)

    def _region_count(self, classes: int) -> int:
        return self.regions or max(2, classes)


@register("hysteresis")
class HysteresisThreshold(ClassicalMethod):
    """Hysteresis thresholding (``skimage.filters.apply_hysteresis_threshold``) of bright structures.

    Voxels above ``low`` that are connected to a voxel above ``high`` become ``foreground``.
    Missing thresholds are learned by :meth:`fit`: ``low`` is the Dice-optimal lower
    threshold of the class, ``high`` the class's median intensity (``low`` when that is
    higher).

    Args:
        low: Lower threshold (``None``: learned).
        high: Upper threshold (``None``: learned).
        foreground: The class the structure gets.
        smoothing: Gaussian sigma (voxels) applied first.
        channel: Image channel.
    """

    def __init__(self, low: float | None = None, high: float | None = None, foreground: int = 1,
                 smoothing: float | None = None, channel: int = 0) -> None:
        super().__init__(smoothing, channel)
        if low is not None and high is not None and float(low) > float(high):
            raise ConfigurationError(f"hysteresis: low={low} > high={high}.")
        if isinstance(foreground, bool) or int(foreground) < 1:
            raise ConfigurationError(f"hysteresis: foreground must be a class >= 1, got {foreground!r}.")
        self.low = None if low is None else float(low)
        self.high = None if high is None else float(high)
        self.foreground = int(foreground)

    @property
    def learns(self) -> bool:  # type: ignore[override]
        return self.low is None or self.high is None

    def _fit(self, samples: list) -> dict[str, Any]:
        classes = _common.check_samples(samples, "hysteresis")
        if self.foreground >= classes:
            raise ConfigurationError(f"hysteresis: foreground={self.foreground}, but the data has {classes} classes.")
        values = _common.class_values(samples, self.image, classes)
        fg = values[self.foreground]
        rest = np.concatenate([values[k] for k in range(classes) if k != self.foreground])
        low, _ = _common.dice_optimal_threshold(fg, rest, bright=True)
        return {"low": low, "high": max(low, float(np.median(fg)))}

    def thresholds(self) -> tuple[float, float]:
        """``(low, high)`` in use (given or learned)."""
        low = self.low if self.low is not None else self._learned["low"]
        high = self.high if self.high is not None else self._learned["high"]
        return float(low), float(max(low, high))

    def predict(self, sample: Any, seeds: Any = None) -> np.ndarray:
        from skimage.filters import apply_hysteresis_threshold

        if self.learns:
            self._require_fit(sample, "has no thresholds")
        low, high = self.thresholds()
        mask = apply_hysteresis_threshold(self.image(sample), low, high)
        return np.where(mask, self.foreground, 0).astype(np.int64)
