"""Helpers shared by the classical methods: images, seeds, intensity models, thresholds."""

from __future__ import annotations

import copy
from typing import Any, Mapping, Sequence

import numpy as np

from miseg.errors import ConfigurationError, DataError, ModelError, ShapeMismatchError

# Voxels per class and case kept to learn thresholds (a deterministic stride, no random draw).
MAX_VALUES_PER_CASE = 200_000


def plain(value: Any) -> Any:
    """A JSON-ready copy: tuples and arrays become lists, numpy scalars Python numbers."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def case_name(sample: Any) -> str:
    return repr(getattr(sample, "index", "?"))


def spatial_ndim(sample: Any) -> int:
    return np.asarray(sample.img_data).ndim - 1


def spacing_of(sample: Any) -> tuple[float, ...]:
    """The sample's voxel spacing, or ones when it is unknown or does not fit."""
    ndim = spatial_ndim(sample)
    spacing = getattr(sample, "spacing", None)
    if spacing is None or len(spacing) != ndim or any(not s > 0 for s in spacing):
        return (1.0,) * ndim
    return tuple(float(s) for s in spacing)


def spatial_image(sample: Any, channel: int, smoothing: float | None) -> np.ndarray:
    """Channel ``channel`` of ``sample.img_data``, smoothed by GaussianSmoothing when asked."""
    image = np.asarray(sample.img_data)
    if channel >= image.shape[-1]:
        raise DataError(
            f"Case {case_name(sample)}: channel={channel} asked, but the image has {image.shape[-1]} channel(s)."
        )
    if smoothing:
        from miseg.processing.subfunctions.gaussian_smoothing import GaussianSmoothing

        view = copy.copy(sample)  # GaussianSmoothing assigns a new array; the caller's sample is untouched
        view.img_data = image[..., channel:channel + 1]
        GaussianSmoothing(sigma=smoothing).preprocessing(view, training=False)
        return np.asarray(view.img_data[..., 0], dtype=np.float32)
    return np.asarray(image[..., channel], dtype=np.float32)


def labels_of(sample: Any) -> np.ndarray:
    """The sample's segmentation ``(x, y[, z])``; DataError when it has none."""
    if getattr(sample, "seg_data", None) is None:
        raise DataError(f"Case {case_name(sample)} has no segmentation; fit needs labelled cases.")
    seg = np.asarray(sample.seg_data)
    return seg[..., 0] if seg.ndim == spatial_ndim(sample) + 1 else seg


def class_values(samples: Sequence[Any], image_of: Any, classes: int) -> list[np.ndarray]:
    """Intensities per class over the samples (at most MAX_VALUES_PER_CASE per class and case)."""
    collected: list[list[np.ndarray]] = [[] for _ in range(classes)]
    for sample in samples:
        image, labels = image_of(sample), labels_of(sample)
        for c in range(classes):
            values = image[labels == c]
            step = max(1, values.size // MAX_VALUES_PER_CASE)
            collected[c].append(values[::step])
    return [np.concatenate(v) if v else np.zeros(0, np.float32) for v in collected]


def check_samples(samples: Sequence[Any], what: str) -> int:
    """The class count of labelled samples (ConfigurationError when there are none)."""
    if not samples:
        raise ConfigurationError(f"{what}: fit needs at least one labelled case, got none.")
    return int(samples[0].classes)


# ------------------------------------------------------------------------------ intensity model
def gaussian_model(values: Sequence[np.ndarray]) -> dict[str, list]:
    """Per-class mean, standard deviation and prior (voxel fraction) of intensity values."""
    total = sum(v.size for v in values) or 1
    spread = np.concatenate([v for v in values if v.size]) if any(v.size for v in values) else np.zeros(1)
    floor = max(1e-6, 1e-3 * float(np.ptp(spread)))
    model: dict[str, list] = {"mean": [], "std": [], "prior": []}
    for v in values:
        model["mean"].append(float(v.mean()) if v.size else float("nan"))
        model["std"].append(max(float(v.std()), floor) if v.size else float("nan"))
        model["prior"].append(v.size / total)
    return model


def log_likelihood(image: np.ndarray, mean: float, std: float) -> np.ndarray:
    """Gaussian log-density of every voxel."""
    z = (image - mean) / std
    return -0.5 * z * z - np.log(std) - 0.5 * np.log(2 * np.pi)


def class_log_posteriors(image: np.ndarray, model: Mapping[str, list]) -> np.ndarray:
    """``log p(I | c) + log prior(c)`` per class, ``(classes, *image.shape)`` (-inf for unseen classes)."""
    out = np.full((len(model["mean"]),) + image.shape, -np.inf, dtype=np.float64)
    for c, (mean, std, prior) in enumerate(zip(model["mean"], model["std"], model["prior"])):
        if prior > 0 and np.isfinite(mean):
            out[c] = log_likelihood(image, mean, std) + np.log(prior)
    return out


def confident_region(image: np.ndarray, model: Mapping[str, list], c: int, seed_z: float) -> np.ndarray:
    """The automatic seed region of class ``c``: the largest connected component of the voxels
    that are most probably ``c`` (MAP under the model) and lie within ``seed_z`` standard
    deviations of its mean. Empty when the class has no such voxel."""
    mean, std = model["mean"][c], model["std"][c]
    if not np.isfinite(mean):
        return np.zeros(image.shape, bool)
    posteriors = class_log_posteriors(image, model)
    candidates = (np.argmax(posteriors, axis=0) == c) & (np.abs(image - mean) <= seed_z * std)
    return largest_component(candidates)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest connected component (full connectivity) of a boolean mask."""
    if not mask.any():
        return mask.astype(bool)
    import cc3d

    labels = cc3d.connected_components(mask.astype(np.uint8), connectivity=26 if mask.ndim == 3 else 8)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def component_seeds(mask: np.ndarray, spacing: Sequence[float], min_share: float = 0.2,
                    max_seeds: int | None = None) -> list[tuple[int, ...]]:
    """One seed per large connected component (full connectivity) of a boolean mask.

    The components with at least ``min_share`` of the largest one's voxels (at most
    ``max_seeds`` of them, largest first) are each seeded at their deepest voxel (in mm), so
    small specks (noise, partial-volume rims) get no seed. Empty for an empty mask.
    """
    if not mask.any():
        return []
    import cc3d

    components = cc3d.connected_components(mask.astype(np.uint8), connectivity=26 if mask.ndim == 3 else 8)
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    order = [int(k) for k in np.argsort(sizes, kind="stable")[::-1] if sizes[k] > 0
             and sizes[k] >= min_share * sizes.max()]
    if max_seeds is not None:
        order = order[:max_seeds]
    return [deepest_voxel(components == k, spacing) for k in order]


def learned_windows(values: Sequence[np.ndarray], bins: int = 256,
                    classes: Sequence[int] | None = None) -> dict[str, list[float]]:
    """The Dice-optimal intensity window ``[low, high]`` per foreground class (JSON-ready keys);
    classes without training voxels are left out."""
    windows = {}
    for c in (range(1, len(values)) if classes is None else classes):
        if 0 < c < len(values) and values[c].size:
            rest = np.concatenate([values[k] for k in range(len(values)) if k != c])
            windows[str(c)] = [float(v) for v in dice_optimal_window(values[c], rest, bins)]
    return windows


def points_mask(points: Sequence[Sequence[int]], shape: tuple[int, ...]) -> np.ndarray:
    """A boolean mask of ``shape`` marking voxel coordinates."""
    mask = np.zeros(shape, bool)
    for point in points:
        mask[tuple(int(i) for i in point)] = True
    return mask


def deepest_voxel(mask: np.ndarray, spacing: Sequence[float]) -> tuple[int, ...]:
    """The voxel of ``mask`` farthest (in mm) from its border."""
    from scipy.ndimage import distance_transform_edt

    depth = distance_transform_edt(mask, sampling=spacing)
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(depth)), mask.shape))


# ------------------------------------------------------------------------------ thresholds
def _histograms(fg: np.ndarray, bg: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    both = np.concatenate([fg, bg])
    edges = np.histogram_bin_edges(both, bins=bins)
    return np.histogram(fg, edges)[0].astype(float), np.histogram(bg, edges)[0].astype(float), edges


def dice_optimal_window(fg: np.ndarray, bg: np.ndarray, bins: int = 256) -> tuple[float, float]:
    """The intensity window ``[low, high]`` whose voxels best match ``fg`` (maximal Dice).

    Args:
        fg: Intensities of the class.
        bg: Intensities of every other class.
        bins: Histogram bins searched.
    """
    if fg.size == 0:
        raise DataError("The class never occurs in the training cases; no threshold can be learned.")
    h_fg, h_bg, edges = _histograms(fg, bg, bins)
    c_fg, c_bg = np.concatenate([[0], np.cumsum(h_fg)]), np.concatenate([[0], np.cumsum(h_bg)])
    # window of bins i..j (inclusive): counts are c[j + 1] - c[i]
    tp = c_fg[None, 1:] - c_fg[:-1, None]
    fp = c_bg[None, 1:] - c_bg[:-1, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        dice = np.where(np.triu(np.ones((bins, bins), bool)), 2 * tp / (tp + fp + fg.size), -1.0)
    i, j = np.unravel_index(int(np.argmax(dice)), dice.shape)
    return float(edges[i]), float(edges[j + 1])


def dice_optimal_threshold(fg: np.ndarray, bg: np.ndarray, bins: int = 256,
                           bright: bool | None = None) -> tuple[float, bool]:
    """The one-sided threshold best separating ``fg`` from ``bg`` (maximal Dice).

    Args:
        fg: Intensities of the class.
        bg: Intensities of every other class.
        bins: Histogram bins searched.
        bright: Search only ``image > t`` (True) or ``image < t`` (False); ``None``: both.

    Returns:
        ``(threshold, bright)``: foreground is ``image > threshold`` when ``bright``, else
        ``image < threshold``.
    """
    if fg.size == 0:
        raise DataError("The class never occurs in the training cases; no threshold can be learned.")
    h_fg, h_bg, edges = _histograms(fg, bg, bins)
    above_tp, above_fp = np.cumsum(h_fg[::-1])[::-1], np.cumsum(h_bg[::-1])[::-1]   # bins k.. end
    below_tp, below_fp = np.cumsum(h_fg), np.cumsum(h_bg)                             # bins 0..k
    above = 2 * above_tp / (above_tp + above_fp + fg.size)
    below = 2 * below_tp / (below_tp + below_fp + fg.size)
    k_above, k_below = int(np.argmax(above)), int(np.argmax(below))
    if bright is True or (bright is None and above[k_above] >= below[k_below]):
        return float(edges[k_above]), True
    return float(edges[k_below + 1]), False


# ------------------------------------------------------------------------------ seeds
def _coordinate_mask(coords: Any, shape: tuple[int, ...], sample: Any, what: str) -> np.ndarray:
    points = np.asarray(coords)
    if points.ndim == 1:
        points = points[np.newaxis]
    if points.size == 0:
        raise ConfigurationError(f"Case {case_name(sample)}: the {what} list is empty.")
    if points.ndim != 2 or not np.issubdtype(points.dtype, np.number):
        raise ConfigurationError(f"Case {case_name(sample)}: {what} {coords!r} are not voxel coordinates.")
    if points.shape[1] != len(shape):
        raise ConfigurationError(
            f"Case {case_name(sample)}: {what} {tuple(points[0].tolist())} has {points.shape[1]} coordinates, "
            f"but the {len(shape)}D image {shape} needs {len(shape)}."
        )
    if not np.all(points == np.round(points)):
        raise ConfigurationError(f"Case {case_name(sample)}: {what} must be integer voxel coordinates, got {coords!r}.")
    points = points.astype(np.int64)
    outside = [tuple(p.tolist()) for p in points if np.any(p < 0) or np.any(p >= np.asarray(shape))]
    if outside:
        raise ConfigurationError(
            f"Case {case_name(sample)}: {what}: voxel(s) {outside[:3]} lie outside the image of shape {shape}."
        )
    mask = np.zeros(shape, bool)
    mask[tuple(points.T)] = True
    return mask


def _mask(value: Any, shape: tuple[int, ...], sample: Any, what: str) -> np.ndarray:
    array = np.asarray(value)
    looks_like_points = array.dtype != bool and array.ndim <= 2 and array.size > 0 and array.shape[-1] in (2, 3)
    if array.shape == shape or (array.ndim == len(shape) + 1 and array.shape[:-1] == shape and array.shape[-1] == 1):
        if not (looks_like_points and array.shape != shape):
            mask = array.reshape(shape).astype(bool)
            if not mask.any():
                raise ConfigurationError(f"Case {case_name(sample)}: the {what} mask is empty (no voxel is marked).")
            return mask
    if not looks_like_points and array.ndim >= 2:
        raise ShapeMismatchError(
            f"Case {case_name(sample)}: the {what} mask has shape {array.shape}, the image {shape}."
        )
    return _coordinate_mask(value, shape, sample, what)


def resolve_seeds(seeds: Any, sample: Any, classes: int) -> dict[int, np.ndarray] | None:
    """Seeds (or scribbles) of one case as ``{class: boolean mask}``.

    Accepted forms:

    * ``None``: no seeds (the method derives its own; returns ``None``).
    * voxel coordinates ``[(x, y[, z]), ...]`` or a boolean mask of the image's shape:
      seeds of class 1.
    * an integer label map of the image's shape: ``c`` (1 <= c < classes) marks seeds of
      class ``c``, the value ``classes`` marks background (class 0; for binary data: 1
      foreground, 2 background, as in ITK-SNAP), 0 marks nothing.
    * ``{class: coordinates or mask}``, class 0 being background.

    Coordinates are array indices of the image the method sees (after the preprocessor's
    subfunctions).

    Raises:
        ConfigurationError: for coordinates outside the image, of the wrong dimensionality,
            an empty mask or list, or an unknown class.
        ShapeMismatchError: for a mask whose shape differs from the image's.
    """
    if seeds is None:
        return None
    shape = tuple(np.asarray(sample.img_data).shape[:-1])
    if isinstance(seeds, Mapping):
        result = {}
        for key, value in seeds.items():
            c = _seed_class(key, classes, sample)
            result[c] = _mask(value, shape, sample, f"class-{c} seeds")
        if not result:
            raise ConfigurationError(f"Case {case_name(sample)}: the seed dictionary is empty.")
        return result
    array = np.asarray(seeds)
    integer = np.issubdtype(array.dtype, np.integer) and array.dtype != bool
    if array.shape == shape and integer and array.max(initial=0) > 1:
        return _label_map_seeds(array, classes, sample)
    return {1: _mask(seeds, shape, sample, "seed")}


def _seed_class(key: Any, classes: int, sample: Any) -> int:
    if isinstance(key, bool) or not isinstance(key, (int, np.integer, str)) or not str(key).lstrip("-").isdigit():
        raise ConfigurationError(f"Case {case_name(sample)}: seed class {key!r} is not an integer class label.")
    c = int(key)
    if not 0 <= c < classes:
        raise ConfigurationError(f"Case {case_name(sample)}: seed class {c} is outside 0..{classes - 1}.")
    return c


def _label_map_seeds(array: np.ndarray, classes: int, sample: Any) -> dict[int, np.ndarray]:
    values = set(np.unique(array).tolist()) - {0}
    bad = sorted(v for v in values if not 1 <= v <= classes)
    if bad:
        raise ConfigurationError(
            f"Case {case_name(sample)}: seed map values {bad[:5]} are not classes 1..{classes - 1} or the "
            f"background mark {classes}."
        )
    return {(0 if v == classes else int(v)): array == v for v in sorted(values)}


# ------------------------------------------------------------------------------ SimpleITK
def to_sitk(image: np.ndarray, spacing: Sequence[float]) -> Any:
    """A SimpleITK image of a miseg array ``(x, y[, z])`` (SimpleITK indexes it ``(x, y[, z])`` too)."""
    import SimpleITK as sitk

    itk = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(image).T))
    itk.SetSpacing([float(s) for s in spacing])
    return itk


def from_sitk(itk: Any) -> np.ndarray:
    """The miseg-ordered array of a SimpleITK image made by :func:`to_sitk`."""
    import SimpleITK as sitk

    return np.ascontiguousarray(sitk.GetArrayFromImage(itk).T)


def require_model(model: Any, sample: Any, what: str) -> Mapping[str, list]:
    if not model:
        raise ModelError(
            f"Case {case_name(sample)}: no seeds were given and no intensity model was learned, so "
            f"{what} cannot run unattended; give seeds or call fit(...) on labelled cases first."
        )
    return model


def paint(labels: np.ndarray, masks: Mapping[int, np.ndarray]) -> np.ndarray:
    """Write class masks into ``labels`` in increasing class order (later classes win)."""
    for c in sorted(masks):
        if c > 0:
            labels[masks[c]] = c
    return labels
