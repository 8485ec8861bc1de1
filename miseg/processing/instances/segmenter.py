"""From a prediction to instances in one call, and writing them through an interface."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

from miseg.errors import ConfigurationError, LabelError
from miseg.processing.instances.core import (
    Instances,
    _check_connectivity,
    check_probabilities,
    connected_components,
    drop_small,
    min_voxels,
)
from miseg.processing.instances.split import SPLIT_METHODS, split_touching
from miseg.processing.instances.table import INSTANCE_TABLE_SUFFIX, instance_table

__all__ = [
    "InstanceSegmenter",
    "instance_capacity",
    "check_instance_capacity",
    "check_instance_output",
    "save_instances",
    "write_instance_table",
    "instance_label_dtype",
    "resolve_segmenter",
    "predicted_instances",
]


class InstanceSegmenter:
    """Settings of the instance step, applied to label maps or probability maps.

    Args:
        connectivity: 4 or 8 (2D), 6, 18 or 26 (3D); ``None``: full (8 / 26).
        min_volume: Drop objects smaller than this many mm^3 (mm^2 in 2D): components before
            splitting, and the parts after it.
        split: ``None`` (components only), ``"distance"`` (watershed on the distance to the
            object border) or ``"probability"`` (watershed on the class probability; needs
            a probability map).
        seed_distance: Minimum distance between watershed seeds in mm.
        classes: Classes that form instances (default: every foreground class).

    Example:
        >>> seg = InstanceSegmenter(min_volume=20.0, split="distance", seed_distance=4.0)
        >>> inst = seg(label_map, spacing=(1.0, 1.0))           # doctest: +SKIP
        >>> inst.table[["instance_id", "class", "volume_mm3"]]  # doctest: +SKIP
    """

    def __init__(
        self,
        connectivity: int | None = None,
        min_volume: float = 0.0,
        split: str | None = None,
        seed_distance: float = 5.0,
        classes: Iterable[int] | None = None,
    ) -> None:
        if split is not None and split not in SPLIT_METHODS:
            raise ConfigurationError(f"split={split!r} must be None or one of {SPLIT_METHODS}.")
        if not (np.isfinite(seed_distance) and seed_distance > 0):
            raise ConfigurationError(f"seed_distance={seed_distance!r} must be a positive distance in mm.")
        min_voxels(min_volume, (1.0,))  # validates
        if connectivity is not None and connectivity not in (4, 8, 6, 18, 26):
            raise ConfigurationError(f"connectivity={connectivity!r} must be 4, 8 (2D) or 6, 18, 26 (3D).")
        self.connectivity = connectivity
        self.min_volume = float(min_volume)
        self.split = split
        self.seed_distance = float(seed_distance)
        self.classes = None if classes is None else tuple(int(c) for c in classes)

    def __repr__(self) -> str:
        return (f"InstanceSegmenter(connectivity={self.connectivity!r}, min_volume={self.min_volume!r}, "
                f"split={self.split!r}, seed_distance={self.seed_distance!r}, classes={self.classes!r})")

    def __call__(
        self,
        prediction: np.ndarray,
        *,
        probabilities: np.ndarray | None = None,
        spacing: Sequence[float] | None = None,
        affine: Any = None,
        image: np.ndarray | None = None,
        case: Any = None,
    ) -> Instances:
        """Instances (with their table) of one case.

        Args:
            prediction: A label map ``(x, y[, z])``, or a probability map
                ``(x, y[, z], classes)`` (then labelled by argmax and used as
                ``probabilities``).
            probabilities: Class probabilities on the same grid (for ``mean_probability``
                and ``split="probability"``); must sum to 1 per voxel.
            spacing: Voxel size in mm per axis (``None``: 1).
            affine: 4x4 voxel-to-world matrix for the centroids.
            image: Image on the same grid for ``mean_intensity``.
            case: Case identifier for error messages.

        Raises:
            LabelError: negative labels. DataError: probabilities not summing to 1.
        """
        prediction = np.asarray(prediction)
        ndim = prediction.ndim
        if np.issubdtype(prediction.dtype, np.floating) and ndim in (3, 4) and prediction.shape[-1] > 1:
            probabilities = check_probabilities(prediction, case)
            label_map = np.argmax(probabilities, axis=-1)
        else:
            label_map = prediction[..., 0] if ndim in (3, 4) and prediction.shape[-1] == 1 else prediction
            if probabilities is not None:
                probabilities = check_probabilities(probabilities, case)
        _check_connectivity(self.connectivity, label_map.ndim)
        if self.split == "probability" and probabilities is None:
            raise ConfigurationError(
                f"{'' if case is None else f'Case {case!r}: '}split='probability' needs class "
                f"probabilities (predict with instances and a probability-producing model)."
            )
        instances = connected_components(
            label_map, self.classes, connectivity=self.connectivity, min_volume=self.min_volume,
            spacing=spacing, case=case,
        )
        if self.split is not None:
            instances = split_touching(
                instances, method=self.split, seed_distance=self.seed_distance,
                probabilities=probabilities, spacing=spacing, case=case,
            )
            instances = drop_small(instances, self.min_volume, spacing, case)
        instances.table = instance_table(
            instances, spacing=spacing, affine=affine, image=image, probabilities=probabilities, case=case
        )
        return instances


# --------------------------------------------------------------------------------- writing
def instance_capacity(interface: Any) -> int:
    """How many instances ``interface.save_instances`` can store in one case (0: none)."""
    if not callable(getattr(interface, "save_instances", None)):
        return 0
    return int(getattr(interface, "max_instances", 0) or 0)


def check_instance_output(interface: Any, case: Any = None) -> int:
    """Return the instance capacity of ``interface``; raise when it writes no instance maps.

    Raises:
        ConfigurationError: the interface has no instance output (``max_instances`` 0).
    """
    capacity = instance_capacity(interface)
    if capacity <= 0:
        prefix = "" if case is None else f"Case {case!r}: "
        raise ConfigurationError(
            f"{prefix}{type(interface).__name__} cannot write instance label maps (no "
            f"save_instances / max_instances); use NIFTI_interface, Image_interface, "
            f"NIFTIslicer_interface, DICOM_interface or Dictionary_interface, or call "
            f"InstanceSegmenter yourself (predict(..., return_output=True, instances=True))."
        )
    return capacity


def check_instance_capacity(interface: Any, instances: Instances, case: Any = None) -> None:
    """Raise before anything is written when ``interface`` cannot store ``instances``.

    Raises:
        ConfigurationError: the interface writes no instance maps at all.
        LabelError: more instances than the interface's format can hold (names the limit).
    """
    capacity = check_instance_output(interface, case)
    name = type(interface).__name__
    prefix = "" if case is None else f"Case {case!r}: "
    if instances.n > capacity:
        raise LabelError(
            f"{prefix}{instances.n} instances do not fit the {name} instance output, which stores "
            f"at most {capacity} labels per case; raise min_volume, write NIfTI instead, or "
            f"predict smaller regions."
        )


def instance_label_dtype(n: int) -> type:
    """uint16 for up to 65535 instances, else uint32 (the dtype of written instance maps)."""
    return np.uint16 if n <= np.iinfo(np.uint16).max else np.uint32


def write_instance_table(table: Any, output_path: str, index: Any) -> str:
    """Write the per-instance table atomically to ``output_path/<index>.instances.tsv``."""
    from miseg.evaluation.reports import write_table
    from miseg.utils.fileio import safe_join

    return write_table(table, safe_join(output_path, index, INSTANCE_TABLE_SUFFIX))


def save_instances(interface: Any, sample: Any, instances: Instances, output_path: Any) -> None:
    """Write an instance map (and its table) of ``sample`` through ``interface``.

    The capacity check runs first, so nothing is written when the format cannot hold the
    instances. Instances without a table get one from the sample's spacing and affine.

    Raises:
        ConfigurationError / LabelError: see :func:`check_instance_capacity`.
    """
    index = getattr(sample, "index", None)
    check_instance_capacity(interface, instances, index)
    if instances.labels.size and int(instances.labels.max()) > instances.n:
        raise LabelError(f"Case {index!r}: instance ids exceed the instance count {instances.n}.")
    if instances.table is None:
        spacing = getattr(sample, "spacing", None)
        affine = getattr(sample, "affine", None)
        if spacing is not None and len(spacing) != instances.labels.ndim:
            spacing = None
        instances.table = instance_table(instances, spacing=spacing, affine=affine, case=index)
    interface.save_instances(sample, instances, output_path)


# ------------------------------------------------------------------------------ prediction
def resolve_segmenter(instances: Any) -> InstanceSegmenter | None:
    """``instances=`` of ``predict``: ``False``/``None`` -> None, ``True`` -> defaults, or a segmenter."""
    if instances is None or instances is False:
        return None
    if instances is True:
        return InstanceSegmenter()
    if isinstance(instances, InstanceSegmenter):
        return instances
    raise ConfigurationError(
        f"instances={instances!r} must be True, False or an InstanceSegmenter."
    )


def predicted_instances(
    preprocessor: Any,
    sample: Any,
    probabilities: np.ndarray,
    prediction: np.ndarray,
    activation_output: bool,
    segmenter: InstanceSegmenter,
) -> tuple[Any, Instances]:
    """Instances of one predicted case, in the original image space.

    Args:
        preprocessor: The model's Preprocessor.
        sample: The preprocessed Sample the prediction was made on.
        probabilities: Merged network output in the preprocessed space ``(..., classes)``.
        prediction: The semantic output in the original space (labels, or probabilities
            with ``activation_output``).
        activation_output: Whether ``prediction`` holds probabilities.
        segmenter: The instance settings.

    Returns:
        ``(original_sample, instances)``: the case as loaded (image and geometry, used for
        the table and for writing) and the instances with their table.
    """
    original = preprocessor.data_io.sample_loader(sample.index, load_seg=False)
    class_probabilities = prediction if activation_output else preprocessor.finish_prediction(
        sample, probabilities, True
    )
    label_map = np.argmax(class_probabilities, axis=-1) if activation_output else prediction
    found = segmenter(
        label_map, probabilities=class_probabilities, spacing=original.spacing,
        affine=original.affine, image=original.img_data, case=sample.index,
    )
    return original, found
