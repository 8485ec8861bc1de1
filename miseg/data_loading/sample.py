"""The Sample: one case travelling through the pipeline, with its geometry."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from miseg.errors import DataError

__all__ = ["Sample"]


class Sample:
    """One case: image, optional segmentation and prediction, and spatial metadata.

    Arrays are channels-last: ``(x, y, c)`` for 2D and ``(x, y, z, c)`` for 3D. Segmentations
    and label predictions carry a trailing singleton axis ``(..., 1)``; activation outputs keep
    their class axis ``(..., classes)``.

    Geometry lives in ``extended`` (a per-sample dict, never shared):

    * ``"spacing"``: voxel size per spatial array axis (tuple of floats, mm),
    * ``"affine"``: 4x4 voxel-to-world matrix (NIfTI convention, RAS),
    * ``"origin"`` / ``"direction"``: world position of voxel 0 and 3x3 direction cosines
      (DICOM series, LPS),
    * keys that subfunctions add for their inverse (``"original_shape"``,
      ``"orig_crop_coords"``, ...).

    Args:
        index: The case identifier returned by the interface (any hashable).
        image: Image array with or without a trailing channel axis.
        channels: Number of image channels the interface declares.
        classes: Number of segmentation classes (background included).
        extended: Interface metadata; copied, so the caller's dict is never modified.
        three_dim: Dimensionality of the data, when known. With it the channel axis is
            decided without guessing; without it a missing channel axis is only added
            for ``channels == 1`` (MIScnn's behaviour).

    Example:
        >>> s = Sample("case_1", np.zeros((16, 16, 16)), channels=1, classes=2,
        ...            extended={"spacing": (3.0, 1.0, 1.0)}, three_dim=True)
        >>> s.shape, s.spacing
        ((16, 16, 16, 1), (3.0, 1.0, 1.0))
    """

    def __init__(
        self,
        index: Any,
        image: np.ndarray,
        channels: int,
        classes: int,
        extended: Mapping[str, Any] | None = None,
        three_dim: bool | None = None,
    ) -> None:
        self.index = index
        self.channels = int(channels)
        self.classes = int(classes)
        self.three_dim = three_dim
        self.extended: dict[str, Any] = dict(extended) if extended is not None else {}
        self.details: dict[str, Any] | None = None
        self.seg_data: np.ndarray | None = None
        self.pred_data: np.ndarray | None = None
        self.img_data = self._with_channel_axis(np.asarray(image))

    # ------------------------------------------------------------------ channel handling
    def _with_channel_axis(self, image: np.ndarray) -> np.ndarray:
        if self.three_dim is None:
            if image.ndim >= 1 and image.shape[-1] == self.channels and image.ndim in (3, 4):
                return image
            if self.channels == 1:
                return image[..., np.newaxis]
            raise DataError(
                f"Case {self.index!r}: image of shape {image.shape} has no channel axis of "
                f"length {self.channels} (interface channels={self.channels})."
            )
        spatial = 3 if self.three_dim else 2
        kind = "3D" if self.three_dim else "2D"
        if image.ndim == spatial:
            if self.channels != 1:
                raise DataError(
                    f"Case {self.index!r}: image of shape {image.shape} has no channel axis, "
                    f"but the interface declares channels={self.channels}."
                )
            return image[..., np.newaxis]
        if image.ndim == spatial + 1:
            if image.shape[-1] != self.channels:
                raise DataError(
                    f"Case {self.index!r}: image of shape {image.shape} has "
                    f"{image.shape[-1]} channels, but the interface declares "
                    f"channels={self.channels} (or it is not a {kind} image: a "
                    f"{spatial + 1}D volume given to a {kind} interface?)."
                )
            return image
        raise DataError(
            f"Case {self.index!r}: image of shape {image.shape} ({image.ndim} axes) is not a "
            f"{kind} image; a {kind} interface expects {spatial} spatial axes "
            f"(plus an optional channel axis)."
        )

    # ------------------------------------------------------------------ MIScnn API
    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of ``img_data`` including the channel axis."""
        return tuple(self.img_data.shape)

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """Shape of ``img_data`` without the channel axis."""
        return tuple(self.img_data.shape[:-1])

    @property
    def spacing(self) -> tuple[float, ...] | None:
        """Voxel spacing per spatial array axis, or ``None`` when unknown."""
        spacing = self.extended.get("spacing")
        return None if spacing is None else tuple(float(s) for s in spacing)

    @property
    def affine(self) -> np.ndarray | None:
        """4x4 voxel-to-world affine, or ``None`` when unknown."""
        affine = self.extended.get("affine")
        return None if affine is None else np.asarray(affine, dtype=np.float64)

    def add_segmentation(self, seg: np.ndarray) -> None:
        """Store a label map, adding a trailing singleton axis when it has none."""
        seg = np.asarray(seg)
        if seg.ndim == len(self.spatial_shape):
            seg = seg[..., np.newaxis]
        self.seg_data = seg

    def add_prediction(self, pred: np.ndarray, activation_output: bool = False) -> None:
        """Store a prediction: a label map gets a trailing singleton axis, probabilities not."""
        pred = np.asarray(pred)
        if not activation_output and pred.ndim == len(self.spatial_shape):
            pred = pred[..., np.newaxis]
        self.pred_data = pred

    def get_extended_data(self) -> dict[str, Any]:
        """The per-sample metadata dict (geometry and subfunction state)."""
        return self.extended

    def add_details(self, details: Mapping[str, Any]) -> None:
        """Attach free-form details (e.g. DICOM rescale slope/intercept)."""
        self.details = dict(details)

    def __repr__(self) -> str:
        seg = None if self.seg_data is None else tuple(self.seg_data.shape)
        return f"Sample(index={self.index!r}, shape={self.shape}, seg={seg}, classes={self.classes})"
