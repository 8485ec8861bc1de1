"""Where training patches come from: random and foreground-oversampled crop centres.

nnU-Net's observation: with uniformly random crops, small structures (tumours) are rarely
seen. A fraction of the patches is therefore centred on a voxel of a foreground class
present in the case (class chosen uniformly among the present ones), the rest anywhere.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["class_locations", "choose_center", "extract_region"]


def class_locations(
    seg: np.ndarray, classes: int, max_per_class: int = 10_000, rng: np.random.Generator | None = None
) -> dict[int, np.ndarray]:
    """Coordinates of (up to ``max_per_class``) voxels of each foreground class.

    Args:
        seg: Label map with spatial axes only (no channel axis).
        classes: Number of classes; class 0 is background and not collected.
        max_per_class: Subsample large classes to bound memory.
        rng: Generator used for subsampling (deterministic when seeded).

    Returns:
        ``{class: (n, ndim) int array}`` for each class present in ``seg``.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    out: dict[int, np.ndarray] = {}
    for c in range(1, classes):
        coords = np.argwhere(seg == c)
        if len(coords) == 0:
            continue
        if len(coords) > max_per_class:
            coords = coords[rng.choice(len(coords), max_per_class, replace=False)]
        out[c] = coords
    return out


def choose_center(
    image_shape: Sequence[int],
    patch_shape: Sequence[int],
    locations: dict[int, np.ndarray] | None,
    force_foreground: bool,
    rng: np.random.Generator,
) -> tuple[int, ...]:
    """Pick a crop centre: on a random foreground voxel when forced and possible, else uniform.

    Uniform centres keep the patch inside the image when the image is large enough.
    """
    if force_foreground and locations:
        cls = list(locations)[int(rng.integers(len(locations)))]
        coords = locations[cls]
        return tuple(int(v) for v in coords[int(rng.integers(len(coords)))])
    center = []
    for size, patch in zip(image_shape, patch_shape):
        lo, hi = patch // 2, size - (patch - patch // 2)
        center.append(int(rng.integers(lo, hi + 1)) if hi >= lo else size // 2)
    return tuple(center)


def extract_region(
    array: np.ndarray, center: Sequence[int], region_shape: Sequence[int], pad_value: float | np.ndarray
) -> np.ndarray:
    """Cut ``region_shape`` around ``center`` from a channels-last array, padding outside it.

    Args:
        array: ``(*spatial, C)`` array.
        center: Centre voxel of the region.
        region_shape: Spatial size of the region.
        pad_value: Scalar, or per-channel values of shape ``(C,)``, used outside the image.
    """
    spatial = array.shape[:-1]
    starts = [int(c) - r // 2 for c, r in zip(center, region_shape)]
    out = np.empty(tuple(region_shape) + array.shape[-1:], dtype=array.dtype)
    out[...] = pad_value
    src, dst = [], []
    for start, size, length in zip(starts, region_shape, spatial):
        lo, hi = max(start, 0), min(start + size, length)
        if hi <= lo:
            return out
        src.append(slice(lo, hi))
        dst.append(slice(lo - start, hi - start))
    out[tuple(dst)] = array[tuple(src)]
    return out
