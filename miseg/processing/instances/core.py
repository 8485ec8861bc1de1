"""Instance label maps: the ``Instances`` container, input checks and connected components."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from miseg.errors import ConfigurationError, DataError, LabelError, ShapeMismatchError

__all__ = [
    "Instances",
    "connected_components",
    "check_label_map",
    "check_probabilities",
    "default_connectivity",
    "min_voxels",
    "drop_small",
    "label_statistics",
]

#: Largest deviation of the per-voxel class-probability sum from 1 that is accepted.
PROBABILITY_SUM_TOLERANCE = 1e-3
# Voxels handled per step by the chunked per-instance reductions (bounds temporary memory).
CHUNK_VOXELS = 1 << 22


def _case_text(case: Any) -> str:
    return "" if case is None else f"Case {case!r}: "


@dataclass(eq=False)
class Instances:
    """An instance segmentation: one id per object, and the class of each id.

    Attributes:
        labels: Instance label map ``(x, y[, z])``; 0 is background, objects are ``1..n``
            (consecutive).
        classes: ``(n,)`` int array; ``classes[i - 1]`` is the semantic class of instance ``i``.
        table: Per-instance table (pandas DataFrame, see
            :func:`miseg.processing.instances.instance_table`), when computed.
        stats: Internal cache of per-id counts, centroids and boxes (set by
            :func:`connected_components`); ``None`` when unknown.

    Example:
        >>> inst = connected_components(np.array([[1, 0, 2], [1, 0, 2]]))
        >>> inst.n, inst.classes.tolist()
        (2, [1, 2])
    """

    labels: np.ndarray
    classes: np.ndarray
    table: Any = field(default=None)
    #: Internal: ``cc3d.statistics`` of ``labels`` (counts, centroids, boxes of ids 1..n) when
    #: known, reused by :func:`instance_table`; reset it if ``labels`` is edited in place.
    stats: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels)
        self.classes = np.asarray(self.classes, dtype=np.int64).reshape(-1)
        if not np.issubdtype(self.labels.dtype, np.integer):
            raise DataError(f"Instance labels must be integers, got dtype {self.labels.dtype}.")

    @property
    def n(self) -> int:
        """Number of instances."""
        return int(self.classes.size)

    def semantic(self) -> np.ndarray:
        """The class label map the instances cover (0 outside every instance)."""
        lut = np.concatenate([[0], self.classes])
        return lut[self.labels]

    def of_class(self, class_id: int) -> np.ndarray:
        """Instance ids (1-based) of one class."""
        return np.flatnonzero(self.classes == int(class_id)) + 1

    @classmethod
    def from_instance_map(
        cls, instance_map: np.ndarray, class_map: np.ndarray | None = None, case: Any = None
    ) -> "Instances":
        """Wrap an existing instance map (e.g. a ground truth), renumbering ids to ``1..n``.

        Args:
            instance_map: Integer map, 0 background, any positive ids (gaps allowed).
            class_map: Semantic label map of the same shape; the class of an instance is the
                most frequent label under it. ``None``: every instance is class 1.
            case: Case identifier for error messages.

        Raises:
            LabelError: negative or non-integer ids.
            ShapeMismatchError: ``class_map`` of another shape.
        """
        labels = check_label_map(instance_map, case, what="instance map")
        labels, n = _renumber(labels)
        if class_map is None:
            return cls(labels, np.ones(n, dtype=np.int64))
        class_map = check_label_map(class_map, case, what="class map")
        if class_map.shape != labels.shape:
            raise ShapeMismatchError(
                f"{_case_text(case)}class map of shape {class_map.shape} does not match the "
                f"instance map of shape {labels.shape}."
            )
        n_classes = int(class_map.max(initial=0)) + 1
        joint = np.bincount(labels.ravel().astype(np.int64) * n_classes + class_map.ravel(),
                            minlength=(n + 1) * n_classes).reshape(n + 1, n_classes)
        return cls(labels, joint[1:].argmax(axis=1))


def _renumber(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Map the positive ids of ``labels`` to ``1..n`` keeping their order; returns ``(map, n)``."""
    top = int(labels.max(initial=0))
    if top == 0:
        return np.zeros(labels.shape, dtype=np.uint32), 0
    if top < (1 << 24):
        present = np.bincount(labels.ravel(), minlength=top + 1) > 0
        present[0] = False
        lut = np.cumsum(present).astype(np.uint32) * present
        return lut[labels], int(present.sum())
    ids, inverse = np.unique(labels, return_inverse=True)
    offset = 0 if ids[0] == 0 else 1
    return (inverse.reshape(labels.shape) + offset).astype(np.uint32), int(ids.size - (1 - offset))


def check_label_map(label_map: Any, case: Any = None, what: str = "label map") -> np.ndarray:
    """Return ``label_map`` as a non-negative integer array.

    Float maps holding whole numbers are accepted (and converted).

    Raises:
        LabelError: negative, non-integral or non-finite values, naming the case and the range.
    """
    array = np.asarray(label_map)
    if array.dtype == bool:
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise LabelError(
                f"{_case_text(case)}the {what} holds non-integer or non-finite values; expected "
                f"integer labels (pass probabilities as a (..., classes) map instead)."
            )
        array = array.astype(np.int64)
    elif not np.issubdtype(array.dtype, np.integer):
        raise LabelError(f"{_case_text(case)}the {what} has non-numeric dtype {array.dtype}.")
    if array.size and np.issubdtype(array.dtype, np.signedinteger) and array.min() < 0:
        raise LabelError(
            f"{_case_text(case)}the {what} holds negative values (minimum {int(array.min())}); "
            f"labels must be >= 0 with 0 as background."
        )
    return array


def check_probabilities(
    probabilities: Any, case: Any = None, tolerance: float = PROBABILITY_SUM_TOLERANCE
) -> np.ndarray:
    """Return ``probabilities`` (``(..., classes)``) as float32 after checking it is a distribution.

    Raises:
        DataError: fewer than 2 channels, values outside [0, 1], NaN, or channels that do not
            sum to 1 (within ``tolerance``) at some voxel; the message gives the worst voxel.
    """
    array = np.asarray(probabilities, dtype=np.float32)
    if array.ndim < 3 or array.shape[-1] < 2:
        raise DataError(
            f"{_case_text(case)}probability map of shape {array.shape} has no class axis; expected "
            f"(x, y[, z], classes) with classes >= 2."
        )
    if not np.all(np.isfinite(array)) or array.min() < -tolerance or array.max() > 1 + tolerance:
        raise DataError(
            f"{_case_text(case)}probability map values span [{np.nanmin(array):.4g}, "
            f"{np.nanmax(array):.4g}] or are not finite; expected probabilities in [0, 1]."
        )
    deviation = np.abs(array.sum(axis=-1, dtype=np.float32) - 1.0)
    worst = int(np.argmax(deviation))
    if deviation.flat[worst] > tolerance:
        where = np.unravel_index(worst, deviation.shape)
        raise DataError(
            f"{_case_text(case)}the {array.shape[-1]} probability channels do not sum to 1 (e.g. "
            f"{float(deviation.flat[worst]) + 1:.4g} or {1 - float(deviation.flat[worst]):.4g} at voxel "
            f"{tuple(int(w) for w in where)}); pass softmax outputs (activation_output=True), "
            f"not logits or sigmoid maps."
        )
    return array


def default_connectivity(ndim: int) -> int:
    """Full connectivity: 8 in 2D, 26 in 3D."""
    return 8 if ndim == 2 else 26


def _check_connectivity(connectivity: int | None, ndim: int) -> int:
    if ndim not in (2, 3):
        raise ConfigurationError(f"Instances need a 2D or 3D label map, got {ndim} axes.")
    if connectivity is None:
        return default_connectivity(ndim)
    allowed = (4, 8) if ndim == 2 else (6, 18, 26)
    if connectivity not in allowed:
        raise ConfigurationError(
            f"connectivity={connectivity!r} is not valid in {ndim}D; use one of {allowed}."
        )
    return int(connectivity)


def _spacing(spacing: Sequence[float] | None, ndim: int, case: Any = None) -> tuple[float, ...]:
    if spacing is None:
        return (1.0,) * ndim
    values = tuple(float(s) for s in spacing)
    if len(values) != ndim or not all(np.isfinite(v) and v > 0 for v in values):
        raise ConfigurationError(
            f"{_case_text(case)}spacing={spacing!r} must be {ndim} positive numbers (mm per axis)."
        )
    return values


def min_voxels(min_volume: float, spacing: Sequence[float]) -> float:
    """Voxel count equivalent of ``min_volume`` (mm^3, mm^2 in 2D) at ``spacing``."""
    if not np.isfinite(min_volume) or min_volume < 0:
        raise ConfigurationError(f"min_volume={min_volume!r} must be >= 0 (mm^3).")
    return float(min_volume) / float(np.prod(spacing))


def connected_components(
    label_map: np.ndarray,
    classes: Iterable[int] | None = None,
    *,
    connectivity: int | None = None,
    min_volume: float = 0.0,
    spacing: Sequence[float] | None = None,
    case: Any = None,
) -> Instances:
    """Connected components of each class of a semantic label map (``cc3d``).

    Components never cross class borders. Ids are consecutive in raster order of first voxel.

    Args:
        label_map: Integer label map ``(x, y[, z])`` (trailing ``(..., 1)`` allowed).
        classes: Classes to turn into instances (default: every label > 0); other labels
            become background.
        connectivity: 4 or 8 in 2D, 6, 18 or 26 in 3D; ``None`` means full (8 / 26).
        min_volume: Components smaller than this (mm^3; mm^2 in 2D) are dropped.
        spacing: Voxel size in mm per axis (``None``: 1), used by ``min_volume``.
        case: Case identifier for error messages.

    Returns:
        An :class:`Instances`.

    Raises:
        LabelError: negative or non-integer labels.
        ConfigurationError: bad connectivity, spacing or ``min_volume``.

    Example:
        >>> m = np.zeros((8, 8), int); m[0:2, 0:2] = 1; m[5:8, 5:8] = 1; m[0, 7] = 1
        >>> connected_components(m, min_volume=2).n
        2
    """
    import cc3d

    labels_in = check_label_map(label_map, case)
    if labels_in.ndim in (3, 4) and labels_in.shape[-1] == 1:
        labels_in = labels_in[..., 0]
    ndim = labels_in.ndim
    conn = _check_connectivity(connectivity, ndim)
    spacing = _spacing(spacing, ndim, case)
    threshold = min_voxels(min_volume, spacing)
    if classes is not None:
        wanted = np.asarray(sorted({int(c) for c in classes}), dtype=np.int64)
        if wanted.size and wanted.min() < 0:
            raise ConfigurationError(f"classes={list(classes)!r} must be non-negative labels.")
        keep = np.isin(labels_in, wanted[wanted > 0])
        labels_in = np.where(keep, labels_in, 0)
    if labels_in.dtype.itemsize > 4 or labels_in.dtype.kind == "i":
        labels_in = labels_in.astype(np.uint32 if int(labels_in.max(initial=0)) >= 1 << 16 else np.uint16)
    if not labels_in.flags.writeable:  # cc3d needs a writable buffer (Pillow arrays are not)
        labels_in = labels_in.copy()
    components, n = cc3d.connected_components(labels_in, connectivity=conn, return_N=True)
    components = components.astype(np.uint32, copy=False)
    stats = label_statistics(components, n)
    classes = _component_classes(components, labels_in, n, stats["boxes"])
    if n and threshold > 0:
        keep = stats["counts"] >= threshold
        if not keep.all():
            lut = np.concatenate([[0], np.cumsum(keep) * keep]).astype(np.uint32)
            components = lut[components]
            stats = {key: value[keep] for key, value in stats.items()}
            classes, n = classes[keep], int(keep.sum())
    return Instances(components, classes, stats=stats)


def label_statistics(labels: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Voxel counts ``(n,)``, centroids ``(n, ndim)`` and boxes ``(n, 2 ndim)`` (min, max
    inclusive per axis) of ids ``1..n``, in one pass (``cc3d.statistics``)."""
    import cc3d

    ndim = labels.ndim
    if n == 0:
        return {"counts": np.zeros(0, np.int64), "centroids": np.zeros((0, ndim)),
                "boxes": np.zeros((0, 2 * ndim), np.int64)}
    stats = cc3d.statistics(labels, no_slice_conversion=True)
    return {
        "counts": np.asarray(stats["voxel_counts"][1:n + 1], dtype=np.int64),
        "centroids": np.asarray(stats["centroids"][1:n + 1], dtype=np.float64).reshape(n, ndim),
        "boxes": np.asarray(stats["bounding_boxes"][1:n + 1], dtype=np.int64).reshape(n, 2 * ndim),
    }


def drop_small(instances: Instances, min_volume: float, spacing: Sequence[float] | None = None,
               case: Any = None) -> Instances:
    """Remove instances smaller than ``min_volume`` mm^3 (mm^2 in 2D) and renumber the rest."""
    threshold = min_voxels(min_volume, _spacing(spacing, instances.labels.ndim, case))
    if threshold <= 0 or instances.n == 0:
        return instances
    keep = np.bincount(instances.labels.ravel(), minlength=instances.n + 1) >= threshold
    keep[0] = False
    lut = (np.cumsum(keep) * keep).astype(np.uint32)
    return Instances(lut[instances.labels], instances.classes[keep[1:]])


def _component_classes(components: np.ndarray, label_map: np.ndarray, n: int,
                       boxes: np.ndarray | None = None) -> np.ndarray:
    """The (single) class under each component.

    With bounding boxes and not too many components, one voxel per component is found on
    the first face of its box (a component reaches its box's lower bound along axis 0);
    otherwise a chunked scatter over the whole map.
    """
    classes = np.zeros(n + 1, dtype=np.int64)
    if n == 0:
        return classes[1:]
    if boxes is not None and n <= 50_000:
        for k, box in enumerate(boxes, start=1):
            face = (int(box[0]),) + tuple(slice(int(box[2 * a]), int(box[2 * a + 1]) + 1)
                                          for a in range(1, components.ndim))
            hit = np.argmax(components[face] == k)
            classes[k] = label_map[face][np.unravel_index(hit, components[face].shape)]
        return classes[1:]
    flat_c, flat_l = components.reshape(-1), label_map.reshape(-1)
    for start in range(0, flat_c.size, CHUNK_VOXELS):
        ids = flat_c[start:start + CHUNK_VOXELS]
        classes[ids] = flat_l[start:start + CHUNK_VOXELS]
    return classes[1:]
