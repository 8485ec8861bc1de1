"""Resize: bring a case to a fixed array shape."""

from __future__ import annotations

from typing import Any, Sequence

from miseg.processing.subfunctions._common import check_order, check_sequence, per_axis
from miseg.processing.subfunctions._resize import _ResizeBase

__all__ = ["Resize"]


class Resize(_ResizeBase):
    """Resize image and segmentation to a fixed spatial shape.

    Works like :class:`~miseg.processing.subfunctions.Resampling` with a fixed target shape:
    the image is spline-resized per channel with ``order_img``, the segmentation per label
    with ``order_seg``. ``extended["original_shape"]``/``["original_spacing"]`` are always
    recorded, and when the case has a spacing, ``extended["spacing"]`` becomes the spacing of
    the new grid (``spacing * old_shape / new_shape``). Postprocessing resizes predictions back
    (activation maps renormalised to sum to 1).

    Args:
        new_shape: Target spatial shape (positive ints, one per spatial axis, or one int for
            every axis).
        order_img: Spline order (0..5) for the image.
        order_seg: Spline order (0..5) for segmentations and predictions.

    Raises:
        ConfigurationError: for invalid shapes/orders, or (at preprocessing) a ``new_shape``
            whose length does not match the case's spatial axes.

    Example:
        >>> sample = Sample("c1", np.zeros((10, 20, 30)), 1, 2, three_dim=True)
        >>> Resize((16, 16, 16)).preprocessing(sample)
        >>> sample.shape
        (16, 16, 16, 1)
    """

    def __init__(
        self,
        new_shape: int | Sequence[int] = (128, 128, 128),
        order_img: int = 3,
        order_seg: int = 1,
    ) -> None:
        self._shape = check_sequence(
            "new_shape", new_shape, integer=True, minimum=1, strict=False
        )
        self.new_shape = new_shape
        self.order_img = check_order("order_img", order_img)
        self.order_seg = check_order("order_seg", order_seg)

    def preprocessing(self, sample: Any, training: bool = True) -> None:
        """Resize ``sample`` in place to ``new_shape`` (see class docstring)."""
        ndim = sample.img_data.ndim - 1
        new_shape = per_axis("new_shape", self._shape, ndim, sample)
        old_shape = sample.img_data.shape[:-1]
        spacing = sample.spacing
        new_spacing = None
        if spacing is not None and len(spacing) == ndim:
            new_spacing = tuple(s * o / n for s, o, n in zip(spacing, old_shape, new_shape))
        self._apply(sample, new_shape, new_spacing)
