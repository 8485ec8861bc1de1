"""Splitting touching objects: marker-controlled watershed on distance or probability maps."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from scipy import ndimage

from miseg.errors import ConfigurationError, ShapeMismatchError
from miseg.processing.instances.core import Instances, _case_text, _spacing, check_probabilities

__all__ = ["split_touching", "seed_footprint", "SPLIT_METHODS"]

#: Elevation maps the watershed can flood.
SPLIT_METHODS = ("distance", "probability")
# Weight of the distance map that breaks ties on probability plateaus (probability method).
_TIE_BREAK = 1e-3


def seed_footprint(seed_distance: float, spacing: Sequence[float]) -> np.ndarray:
    """Ellipsoidal neighbourhood of radius ``seed_distance`` mm (at least one voxel per axis)."""
    radii = [max(1.0, seed_distance / s) for s in spacing]
    half = [int(math.floor(r)) for r in radii]
    grids = np.meshgrid(*[np.arange(-h, h + 1) for h in half], indexing="ij")
    return sum((g / r) ** 2 for g, r in zip(grids, radii)) <= 1.0


def _elevation(mask: np.ndarray, spacing: tuple[float, ...], prob: np.ndarray | None) -> np.ndarray:
    """Distance to the object border (mm); or the class probability, ties broken by that distance."""
    distance = ndimage.distance_transform_edt(mask, sampling=spacing)
    if prob is None:
        return distance
    top = float(distance.max()) or 1.0
    return np.where(mask, prob + _TIE_BREAK * distance / top, 0.0)


def _spaced_markers(peaks: np.ndarray, elevation: np.ndarray, spacing: tuple[float, ...],
                    seed_distance: float) -> tuple[np.ndarray, int]:
    """Label the peak plateaus; drop those closer than ``seed_distance`` mm to a higher one."""
    markers, n = ndimage.label(peaks, structure=np.ones((3,) * peaks.ndim, dtype=bool))
    if n <= 1:
        return markers, n
    ids = np.arange(1, n + 1)
    centres = np.asarray(ndimage.center_of_mass(peaks, markers, ids)) * np.asarray(spacing)
    heights = np.asarray(ndimage.maximum(elevation, markers, ids))
    kept: list[int] = []
    for k in np.lexsort((ids, -heights)):  # highest first, ties by label
        if all(np.linalg.norm(centres[k] - centres[j]) >= seed_distance for j in kept):
            kept.append(int(k))
    lut = np.zeros(n + 1, dtype=np.int32)
    lut[np.asarray(sorted(kept)) + 1] = np.arange(1, len(kept) + 1)
    return lut[markers], len(kept)


def _split_one(mask: np.ndarray, elevation: np.ndarray, footprint: np.ndarray,
               spacing: tuple[float, ...], seed_distance: float) -> tuple[np.ndarray, int]:
    """Watershed of one component (crop): markers are the footprint-local maxima plateaus."""
    from skimage.segmentation import watershed

    masked = np.where(mask, elevation, -np.inf)
    peaks = mask & (masked >= ndimage.maximum_filter(masked, footprint=footprint, mode="constant",
                                                     cval=-np.inf))
    markers, n = _spaced_markers(peaks, elevation, spacing, seed_distance)
    if n <= 1:
        return mask.astype(np.int32), 1
    regions = watershed(-elevation, markers, mask=mask)
    orphans = mask & (regions == 0)  # voxels no marker reached (possible with thin bridges)
    if orphans.any():
        extra, k = ndimage.label(orphans)
        regions = np.where(orphans, extra + n, regions)
        n += k
    return regions.astype(np.int32), n


def split_touching(
    instances: Instances,
    *,
    method: str = "distance",
    seed_distance: float = 5.0,
    probabilities: np.ndarray | None = None,
    spacing: Sequence[float] | None = None,
    case: Any = None,
) -> Instances:
    """Split touching objects inside each instance by a marker-controlled watershed.

    For every instance, an elevation map is computed on its bounding box: the Euclidean
    distance to the object border (``"distance"``, spacing-aware), or the probability of
    the instance's class (``"probability"``; the border distance breaks ties on plateaus).
    Seeds are the plateaus of local maxima within an ellipsoid of radius ``seed_distance``
    mm; of two seeds closer than ``seed_distance`` (centre to centre, mm) only the higher
    is kept (ties: the first in raster order). The watershed of the
    negated elevation from these seeds, restricted to the instance, gives the parts. An
    instance with one seed is unchanged.

    Args:
        instances: Instances to split (e.g. from :func:`connected_components`).
        method: ``"distance"`` or ``"probability"``.
        seed_distance: Minimum distance between two seeds in mm (smaller: more splits).
        probabilities: Class probabilities ``(x, y[, z], classes)``; needed by
            ``"probability"`` (they must sum to 1 per voxel).
        spacing: Voxel size in mm per axis (``None``: 1).
        case: Case identifier for error messages.

    Returns:
        New :class:`Instances` with consecutive ids (parts of an instance keep its class).

    Raises:
        ConfigurationError: unknown method, ``seed_distance <= 0``, or missing probabilities.
        DataError / ShapeMismatchError: probabilities that are not a distribution or do not
            fit the label map.

    Example:
        >>> yy, xx = np.mgrid[:20, :30]
        >>> two = ((yy - 10) ** 2 + (xx - 9) ** 2 <= 36) | ((yy - 10) ** 2 + (xx - 20) ** 2 <= 36)
        >>> from miseg.processing.instances import connected_components
        >>> split_touching(connected_components(two.astype(int)), seed_distance=4).n
        2
    """
    if method not in SPLIT_METHODS:
        raise ConfigurationError(f"method={method!r} must be one of {SPLIT_METHODS}.")
    if not (np.isfinite(seed_distance) and seed_distance > 0):
        raise ConfigurationError(f"seed_distance={seed_distance!r} must be a positive distance in mm.")
    labels = instances.labels
    spacing = _spacing(spacing, labels.ndim, case)
    prob = None
    if method == "probability":
        if probabilities is None:
            raise ConfigurationError("method='probability' needs the probability map (probabilities=...).")
        prob = check_probabilities(probabilities, case)
        if prob.shape[:-1] != labels.shape:
            raise ShapeMismatchError(
                f"{_case_text(case)}probabilities of shape {prob.shape} do not fit the label map "
                f"of shape {labels.shape}."
            )
    footprint = seed_footprint(float(seed_distance), spacing)
    out = np.zeros(labels.shape, dtype=np.uint32)
    classes: list[int] = []
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)  # room for the border
        mask = labels[box] == index
        cls = int(instances.classes[index - 1])
        elevation = _elevation(mask, spacing, None if prob is None else prob[box + (cls,)])
        parts, k = _split_one(mask, elevation, footprint, spacing, float(seed_distance))
        out[box][mask] = parts[mask] + len(classes)
        classes.extend([cls] * k)
    return Instances(out, np.asarray(classes, dtype=np.int64))
