"""Padding: enlarge a case to a minimum and/or divisible shape."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from miseg.errors import ConfigurationError
from miseg.processing.subfunctions._common import (
    check_sequence,
    find_record,
    missing_record,
    per_axis,
    prediction_spatial,
    push_record,
)
from miseg.processing.subfunctions.abstract_subfunction import Abstract_Subfunction

__all__ = ["Padding"]

HISTORY_KEY = "padding_history"
# np.pad modes that only copy existing values, so they never invent label values.
_LABEL_SAFE_MODES = ("constant", "edge", "reflect", "symmetric", "wrap", "minimum", "maximum")
_PAD_MODES = _LABEL_SAFE_MODES + ("linear_ramp", "mean", "median")


class Padding(Abstract_Subfunction):
    """Pad image and segmentation up to ``min_size`` and/or a divisible shape (never crop).

    Each spatial axis is padded to ``max(size, min_size)``, then up to the next multiple of
    ``shape_must_be_divisible_by``. Padding is symmetric: ``floor(diff / 2)`` before and the
    rest after. With ``pad_mode="constant"`` the image is padded with ``pad_value_img`` and
    the segmentation with ``pad_value_seg``. Other ``np.pad`` modes apply to the image; the
    segmentation uses the same mode when it only copies existing values (``edge``,
    ``reflect``, ``symmetric``, ``wrap``, ``minimum``, ``maximum``) and otherwise (``mean``,
    ``median``, ``linear_ramp``) constant ``pad_value_seg``.

    The crop back to the original grid is stored as ``extended["orig_crop_coords"]``, a list
    of ``[start, stop]`` per spatial axis; postprocessing crops label or activation maps.

    Args:
        min_size: Minimum spatial shape (one int per axis, or one for all); ``None`` to only
            enforce divisibility.
        pad_mode: ``np.pad`` mode.
        pad_value_img: Image fill value for ``pad_mode="constant"``.
        pad_value_seg: Segmentation fill value (a label) for constant padding.
        shape_must_be_divisible_by: Optional divisor (int, or one per axis).

    Example:
        >>> sample = Sample("c1", np.ones((5, 7)), 1, 2, three_dim=False)
        >>> Padding(min_size=(8, 8)).preprocessing(sample)
        >>> sample.spatial_shape, sample.extended["orig_crop_coords"]
        ((8, 8), [[1, 6], [0, 7]])
    """

    def __init__(
        self,
        min_size: int | Sequence[int] | None,
        pad_mode: str = "constant",
        pad_value_img: float = 0,
        pad_value_seg: int = 0,
        shape_must_be_divisible_by: int | Sequence[int] | None = None,
    ) -> None:
        if min_size is None and shape_must_be_divisible_by is None:
            raise ConfigurationError(
                "Padding needs min_size or shape_must_be_divisible_by; both are None."
            )
        self._min = None if min_size is None else check_sequence(
            "min_size", min_size, integer=True, minimum=1, strict=False)
        self._div = None if shape_must_be_divisible_by is None else check_sequence(
            "shape_must_be_divisible_by", shape_must_be_divisible_by, integer=True, minimum=1,
            strict=False)
        if pad_mode not in _PAD_MODES:
            raise ConfigurationError(f"pad_mode must be one of {_PAD_MODES}, got {pad_mode!r}.")
        for name, value in (("pad_value_img", pad_value_img), ("pad_value_seg", pad_value_seg)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise ConfigurationError(f"{name} must be a number, got {value!r}.")
        self.min_size = min_size
        self.pad_mode = pad_mode
        self.pad_value_img = pad_value_img
        self.pad_value_seg = pad_value_seg
        self.shape_must_be_divisible_by = shape_must_be_divisible_by

    def _target_shape(self, sample: Any) -> tuple[int, ...]:
        shape = tuple(int(s) for s in sample.img_data.shape[:-1])
        ndim = len(shape)
        target = shape
        if self._min is not None:
            minimum = per_axis("min_size", self._min, ndim, sample)
            target = tuple(max(s, m) for s, m in zip(target, minimum))
        if self._div is not None:
            div = per_axis("shape_must_be_divisible_by", self._div, ndim, sample)
            target = tuple(-(-s // d) * d for s, d in zip(target, div))
        return target

    def _pad(self, array: np.ndarray, widths: list, mode: str, value: float) -> np.ndarray:
        widths = widths + [(0, 0)]
        if mode == "constant":
            return np.pad(array, widths, mode="constant", constant_values=value)
        return np.pad(array, widths, mode=mode)

    def preprocessing(self, sample: Any, training: bool = True) -> None:
        """Pad ``sample`` in place and record the crop back (see class docstring)."""
        shape = tuple(int(s) for s in sample.img_data.shape[:-1])
        target = self._target_shape(sample)
        widths = [((t - s) // 2, (t - s) - (t - s) // 2) for s, t in zip(shape, target)]
        if target != shape:
            sample.img_data = self._pad(sample.img_data, widths, self.pad_mode, self.pad_value_img)
            if sample.seg_data is not None:
                seg_mode = self.pad_mode if self.pad_mode in _LABEL_SAFE_MODES else "constant"
                sample.seg_data = self._pad(sample.seg_data, widths, seg_mode, self.pad_value_seg)
        crop = [[before, before + s] for (before, _), s in zip(widths, shape)]
        sample.extended["orig_crop_coords"] = crop
        push_record(sample, HISTORY_KEY, {"crop": crop, "padded_shape": list(target)})

    def postprocessing(
        self, sample: Any, prediction: np.ndarray, activation_output: bool = False
    ) -> np.ndarray:
        """Crop a label map ``(x, y[, z])`` or activation map ``(..., C)`` back to the input."""
        owner = type(self).__name__
        prediction = np.asarray(prediction)
        coords = sample.extended.get("orig_crop_coords")
        ndim = len(coords) if coords is not None else sample.img_data.ndim - 1
        current = prediction_spatial(prediction, ndim, activation_output, sample, owner)
        record = find_record(sample, HISTORY_KEY, "padded_shape", current, owner)
        if record is not None:
            coords = record["crop"]
        elif coords is None:
            raise missing_record(sample, owner, "orig_crop_coords")
        slicer = tuple(c if isinstance(c, slice) else slice(int(c[0]), int(c[1])) for c in coords)
        return prediction[slicer].copy()
