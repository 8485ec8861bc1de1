"""Resampling: bring a case to a target voxel spacing."""

from __future__ import annotations

from typing import Any, Sequence

from miseg.errors import GeometryError
from miseg.processing.subfunctions._common import check_order, check_sequence, per_axis
from miseg.processing.subfunctions._resize import _ResizeBase

__all__ = ["Resampling"]


class Resampling(_ResizeBase):
    """Resample image and segmentation to ``new_spacing`` (mm per spatial array axis).

    The new shape is ``round(shape * spacing / new_spacing)`` (at least 1 per axis), with
    ``spacing`` read from ``sample.extended["spacing"]``. The image is spline-resized per
    channel with ``order_img``; the segmentation per label with ``order_seg`` (each label's
    indicator is interpolated and the per-voxel winner kept, so no new label values appear).

    Preprocessing always records ``extended["original_shape"]`` and
    ``extended["original_spacing"]`` and sets ``extended["spacing"]`` to ``new_spacing``.
    ``extended["affine"]`` is left alone: predictions return to the original grid.
    Postprocessing resizes the prediction back; activation maps are renormalised to sum to 1.

    Args:
        new_spacing: Target spacing, one positive number per spatial axis, or one number for
            every axis.
        order_img: Spline order (0..5) for the image.
        order_seg: Spline order (0..5) for segmentations and predictions.

    Raises:
        ConfigurationError: for non-positive spacings or invalid orders.
        GeometryError: (at preprocessing) when a case has no spacing or one of the wrong length.

    Example:
        >>> sample = Sample("c1", np.zeros((10, 20, 30)), 1, 2,
        ...                 extended={"spacing": (2.0, 1.0, 0.5)}, three_dim=True)
        >>> Resampling((1, 1, 1)).preprocessing(sample, training=False)
        >>> sample.spatial_shape, sample.spacing
        ((20, 20, 15), (1.0, 1.0, 1.0))
    """

    def __init__(
        self,
        new_spacing: float | Sequence[float] = (1, 1, 1),
        order_img: int = 3,
        order_seg: int = 1,
    ) -> None:
        self._spacing = check_sequence(
            "new_spacing", new_spacing, integer=False, minimum=0.0, strict=True
        )
        self.new_spacing = new_spacing
        self.order_img = check_order("order_img", order_img)
        self.order_seg = check_order("order_seg", order_seg)

    def preprocessing(self, sample: Any, training: bool = True) -> None:
        """Resample ``sample`` in place to ``new_spacing`` (see class docstring)."""
        ndim = sample.img_data.ndim - 1
        spacing = sample.extended.get("spacing")
        if spacing is None:
            raise GeometryError(
                f"case {sample.index!r} has no voxel spacing; Resampling needs "
                "extended['spacing']; use Resize instead or an interface that provides spacing."
            )
        spacing = tuple(float(s) for s in spacing)
        if len(spacing) != ndim:
            raise GeometryError(
                f"case {sample.index!r}: extended['spacing'] {spacing} has {len(spacing)} entries "
                f"but the image has {ndim} spatial axes (shape {tuple(sample.img_data.shape)})."
            )
        if any(not s > 0 for s in spacing):
            raise GeometryError(
                f"case {sample.index!r}: extended['spacing'] {spacing} must be positive."
            )
        target = per_axis("new_spacing", self._spacing, ndim, sample, GeometryError)
        new_shape = tuple(
            max(1, int(n * s / t + 0.5))
            for n, s, t in zip(sample.img_data.shape[:-1], spacing, target)
        )
        self._apply(sample, new_shape, target)
