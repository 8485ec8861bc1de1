"""The per-instance table: size, volume, centroid in patient coordinates, box, intensities."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from miseg.errors import GeometryError, ShapeMismatchError
from miseg.processing.instances.core import (
    CHUNK_VOXELS,
    Instances,
    _case_text,
    _spacing,
    check_probabilities,
    label_statistics,
)

__all__ = ["instance_table", "INSTANCE_TABLE_SUFFIX"]

#: File ending of the per-instance table written next to an instance label map.
INSTANCE_TABLE_SUFFIX = ".instances.tsv"
_AXES = "ijk"
_WORLD = "xyz"


def _chunked_sums(labels: np.ndarray, n: int, values: np.ndarray) -> np.ndarray:
    """Per-id sums of ``values`` (same spatial shape as ``labels``), bounded temporary memory."""
    total = np.zeros(n + 1, dtype=np.float64)
    flat_l, flat_v = labels.reshape(-1), values.reshape(-1)
    for start in range(0, flat_l.size, CHUNK_VOXELS):
        stop = start + CHUNK_VOXELS
        total += np.bincount(flat_l[start:stop], weights=flat_v[start:stop], minlength=n + 1)
    return total


def _class_probability_sums(labels: np.ndarray, n: int, classes: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """Per-id sums of the probability of each instance's own class."""
    total = np.zeros(n + 1, dtype=np.float64)
    lut = np.concatenate([[0], classes]).astype(np.intp)
    flat_l = labels.reshape(-1)
    flat_p = prob.reshape(-1, prob.shape[-1])
    for start in range(0, flat_l.size, CHUNK_VOXELS):
        ids = flat_l[start:start + CHUNK_VOXELS]
        own = np.take_along_axis(flat_p[start:start + CHUNK_VOXELS], lut[ids][:, None], axis=1)[:, 0]
        total += np.bincount(ids, weights=own, minlength=n + 1)
    return total


def _world(centroids: np.ndarray, spacing: tuple[float, ...], affine: Any, case: Any) -> np.ndarray:
    """Voxel centroids (n, ndim) to world / patient mm: the affine, else index times spacing."""
    ndim = centroids.shape[1]
    if affine is None:
        return centroids * np.asarray(spacing)
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise GeometryError(f"{_case_text(case)}affine must be a finite 4x4 matrix, got shape {affine.shape}.")
    homogeneous = np.zeros((centroids.shape[0], 4))
    homogeneous[:, :ndim] = centroids
    homogeneous[:, 3] = 1.0
    return (homogeneous @ affine.T)[:, :3]


def instance_table(
    instances: Instances,
    *,
    spacing: Sequence[float] | None = None,
    affine: Any = None,
    image: np.ndarray | None = None,
    probabilities: np.ndarray | None = None,
    case: Any = None,
) -> Any:
    """One row per instance: id, class, size, volume, centroid, bounding box, intensities.

    Columns: ``instance_id``, ``class``, ``voxel_count``, ``volume_mm3`` (voxel count times
    the voxel volume; mm^2 in 2D), ``centroid_i/j[/k]`` (voxel indices),
    ``centroid_x/y/z`` (patient / world mm: ``affine @ (i, j, k, 1)``, the NIfTI RAS
    convention of ``Sample.affine``; without an affine ``index * spacing``, and in 2D
    without an affine only x, y), ``bbox_start_i ... bbox_stop_k`` (voxel index ranges,
    stop exclusive like Python slices), ``mean_intensity`` (``mean_intensity_c<n>`` per
    channel for multi-channel images) when ``image`` is given, and ``mean_probability``
    (mean probability of the instance's class) when ``probabilities`` are given.

    Args:
        instances: The instances.
        spacing: Voxel size in mm per axis (``None``: 1).
        affine: 4x4 voxel-to-world matrix (``None``: index times spacing).
        image: Image ``(x, y[, z])`` or ``(x, y[, z], channels)`` on the same grid.
        probabilities: Class probabilities ``(x, y[, z], classes)`` on the same grid.
        case: Case identifier for error messages.

    Returns:
        A pandas DataFrame (empty with these columns when there are no instances).

    Raises:
        ShapeMismatchError: image or probabilities on another grid.
        DataError: probabilities that do not sum to 1.

    Example:
        >>> inst = Instances(np.array([[0, 1], [1, 1]], dtype=np.uint32), [2])
        >>> row = instance_table(inst, spacing=(0.5, 2.0)).iloc[0]
        >>> int(row["voxel_count"]), float(row["volume_mm3"]), float(row["centroid_y"])
        (3, 3.0, 1.3333333333333333)
    """
    import pandas as pd

    labels = instances.labels
    ndim, n = labels.ndim, instances.n
    spacing = _spacing(spacing, ndim, case)
    if labels.dtype not in (np.uint8, np.uint16, np.uint32, np.uint64) or not labels.flags.writeable:
        labels = labels.astype(np.uint32)  # cc3d needs unsigned labels in a writable buffer
    stats = instances.stats
    if stats is None or len(stats["counts"]) != n:
        stats = label_statistics(labels, n)
    counts, centroids, boxes = stats["counts"], stats["centroids"], stats["boxes"]
    columns: dict[str, Any] = {
        "instance_id": np.arange(1, n + 1),
        "class": instances.classes,
        "voxel_count": counts,
        "volume_mm3": counts * float(np.prod(spacing)),
    }
    for axis in range(ndim):
        columns[f"centroid_{_AXES[axis]}"] = centroids[:, axis]
    world = _world(centroids, spacing, affine, case)
    for axis in range(world.shape[1]):
        columns[f"centroid_{_WORLD[axis]}"] = world[:, axis]
    for axis in range(ndim):  # cc3d gives (min0, max0, min1, max1, ...) with inclusive max
        columns[f"bbox_start_{_AXES[axis]}"] = boxes[:, 2 * axis]
    for axis in range(ndim):
        columns[f"bbox_stop_{_AXES[axis]}"] = boxes[:, 2 * axis + 1] + 1
    safe_counts = np.maximum(counts, 1)
    if image is not None:
        columns.update(_intensity_columns(labels, n, np.asarray(image), safe_counts, case))
    if probabilities is not None:
        prob = check_probabilities(probabilities, case)
        if prob.shape[:-1] != labels.shape:
            raise ShapeMismatchError(
                f"{_case_text(case)}probabilities of shape {prob.shape} do not fit the instance "
                f"map of shape {labels.shape}."
            )
        sums = _class_probability_sums(labels, n, instances.classes, prob)
        columns["mean_probability"] = sums[1:] / safe_counts
    return pd.DataFrame(columns)


def _intensity_columns(labels: np.ndarray, n: int, image: np.ndarray, counts: np.ndarray,
                       case: Any) -> dict[str, np.ndarray]:
    if image.shape == labels.shape:
        image = image[..., np.newaxis]
    if image.shape[:-1] != labels.shape or image.ndim != labels.ndim + 1:
        raise ShapeMismatchError(
            f"{_case_text(case)}image of shape {image.shape} does not fit the instance map of "
            f"shape {labels.shape}."
        )
    channels = image.shape[-1]
    out = {}
    for c in range(channels):
        name = "mean_intensity" if channels == 1 else f"mean_intensity_c{c}"
        out[name] = _chunked_sums(labels, n, np.ascontiguousarray(image[..., c]))[1:] / counts
    return out
