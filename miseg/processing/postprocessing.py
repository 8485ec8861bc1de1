"""Label-map postprocessing applied after prediction."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["keep_largest_component"]


def keep_largest_component(labels: np.ndarray, classes: int) -> np.ndarray:
    """Keep only the largest connected component of each foreground class.

    Voxels of removed components become background (0). Connectivity is full (26 in 3D,
    8 in 2D).

    Args:
        labels: Label map ``(x, y[, z])``.
        classes: Number of classes; class 0 is background.

    Returns:
        A new label map.

    Example:
        >>> keep_largest_component(np.array([[1, 0, 1, 1]]), 2)
        array([[0, 0, 1, 1]])
    """
    out = np.array(labels, copy=True)
    structure = np.ones((3,) * labels.ndim, dtype=bool)
    for c in range(1, classes):
        mask = labels == c
        if not mask.any():
            continue
        components, n = ndimage.label(mask, structure=structure)
        if n <= 1:
            continue
        sizes = np.bincount(components.ravel())
        sizes[0] = 0
        out[mask & (components != int(np.argmax(sizes)))] = 0
    return out
