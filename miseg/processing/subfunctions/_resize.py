"""Resizing machinery shared by Resampling and Resize (private)."""

from __future__ import annotations

from typing import Any

import numpy as np
from batchgenerators.augmentations.utils import resize_segmentation
from skimage.transform import resize

from miseg.processing.subfunctions._common import (
    find_record,
    float_dtype,
    missing_record,
    prediction_spatial,
    push_record,
)
from miseg.processing.subfunctions.abstract_subfunction import Abstract_Subfunction

HISTORY_KEY = "resize_history"


def resize_image(image: np.ndarray, new_shape: tuple, order: int) -> np.ndarray:
    """Spline-resize every channel of a channels-last image (float output)."""
    dtype = float_dtype(image.dtype)
    out = np.empty(tuple(new_shape) + (image.shape[-1],), dtype=dtype)
    for c in range(image.shape[-1]):
        out[..., c] = resize(
            image[..., c].astype(np.float64), new_shape, order=order, mode="edge",
            clip=True, anti_aliasing=False, preserve_range=True,
        )
    return out


def resize_labels(labels: np.ndarray, new_shape: tuple, order: int) -> np.ndarray:
    """Resize a channels-last label map; each label's indicator is interpolated on its own.

    batchgenerators' ``resize_segmentation`` is called positionally: its ``cval`` keyword
    (which MIScnn passed) no longer exists in batchgenerators 0.25.
    """
    out = np.empty(tuple(new_shape) + (labels.shape[-1],), dtype=labels.dtype)
    for c in range(labels.shape[-1]):
        out[..., c] = resize_segmentation(labels[..., c], tuple(new_shape), order)
    return out


def resize_activation(activation: np.ndarray, new_shape: tuple, order: int) -> np.ndarray:
    """Resize a class-probability map ``(..., C)``.

    When the input is a distribution per voxel (softmax: non-negative, sums to 1), the output
    is clipped at 0 and renormalised to sum to 1 again; otherwise (sigmoid / multi-label
    scores) each channel is clipped to the input's value range.
    """
    dtype = float_dtype(activation.dtype)
    data = activation.astype(np.float64)
    sums = data.sum(axis=-1)
    distribution = data.size > 0 and data.min() >= -1e-6 and np.allclose(sums, 1.0, atol=1e-3)
    out = np.empty(tuple(new_shape) + (data.shape[-1],), dtype=np.float64)
    for c in range(data.shape[-1]):
        out[..., c] = resize(
            data[..., c], new_shape, order=order, mode="edge", clip=True, anti_aliasing=False,
            preserve_range=True,
        )
    if distribution:
        np.clip(out, 0.0, None, out=out)
        total = out.sum(axis=-1, keepdims=True)
        empty = total[..., 0] <= 0
        out /= np.where(total > 0, total, 1.0)
        out[empty] = 1.0 / data.shape[-1]
    elif data.size > 0:
        np.clip(out, data.min(), data.max(), out=out)
    return out.astype(dtype, copy=False)


class _ResizeBase(Abstract_Subfunction):
    """Resize a sample to a target grid and back; subclasses choose the target shape."""

    order_img: int
    order_seg: int

    def _apply(self, sample: Any, new_shape: tuple, new_spacing: tuple | None) -> None:
        """Resize image (and segmentation) to ``new_shape`` and record the inverse."""
        old_shape = tuple(int(s) for s in sample.img_data.shape[:-1])
        new_shape = tuple(int(s) for s in new_shape)
        old_spacing = sample.spacing
        if new_shape != old_shape:
            sample.img_data = resize_image(sample.img_data, new_shape, self.order_img)
            if sample.seg_data is not None:
                sample.seg_data = resize_labels(sample.seg_data, new_shape, self.order_seg)
        spacing_list = None if old_spacing is None else [float(s) for s in old_spacing]
        sample.extended["original_shape"] = old_shape
        sample.extended["original_spacing"] = None if old_spacing is None else tuple(spacing_list)
        if new_spacing is not None:
            sample.extended["spacing"] = tuple(float(s) for s in new_spacing)
        push_record(
            sample,
            HISTORY_KEY,
            {"original_shape": list(old_shape), "new_shape": list(new_shape),
             "original_spacing": spacing_list},
        )

    def postprocessing(
        self, sample: Any, prediction: np.ndarray, activation_output: bool = False
    ) -> np.ndarray:
        """Resize a prediction back to the grid it had before this step.

        A prediction on the grid this step produced is resized exactly as the segmentation
        was (labels per label with ``order_seg``; activation maps per class channel, then
        renormalised). A prediction of any other shape (e.g. a network output on a padded
        grid) is resized from its own shape, as MIScnn does: labels with nearest neighbour
        (order 0), activation maps linearly. ``extended["spacing"]`` is set back to the
        original spacing, so the sample's geometry describes the returned prediction again.

        Args:
            sample: The sample this subfunction preprocessed.
            prediction: Label map ``(x, y[, z])`` or activation map ``(x, y[, z], C)``.
            activation_output: Whether ``prediction`` is an activation map.

        Returns:
            The prediction on the original grid (same dtype kind as the input).
        """
        owner = type(self).__name__
        prediction = np.asarray(prediction)
        original = sample.extended.get("original_shape")
        ndim = len(original) if original is not None else sample.img_data.ndim - 1
        current = prediction_spatial(prediction, ndim, activation_output, sample, owner)
        record = find_record(sample, HISTORY_KEY, "new_shape", current, owner, strict=False)
        if record is not None:
            target = tuple(record["original_shape"])
            spacing = record["original_spacing"]
            exact = tuple(record["new_shape"]) == current
        elif original is not None:
            target = tuple(int(s) for s in original)
            spacing = sample.extended.get("original_spacing")
            exact = True
        else:
            raise missing_record(sample, owner, "original_shape")
        if spacing is not None:
            sample.extended["spacing"] = tuple(float(s) for s in spacing)
        if target == current:
            return prediction.copy()
        if activation_output:
            return resize_activation(prediction, target, self.order_seg if exact else 1)
        order = self.order_seg if exact else 0
        if prediction.ndim == ndim:
            return resize_labels(prediction[..., np.newaxis], target, order)[..., 0]
        return resize_labels(prediction, target, order)
