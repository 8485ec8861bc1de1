"""Shared numerical cores of miseg's segmentation losses and metrics.

Every loss and metric in :mod:`miseg.neural_network.metrics` is assembled from the few
building blocks here, so each one supports per-class weights the same way:

* **overlap terms** (Dice, Tversky, focal Tversky) start from per-sample, per-class sums
  ``TP``, ``FN`` and ``FP`` (:func:`overlap_sums`) and average their per-class values with
  :func:`class_mean`, a *weighted* mean when class weights are given;
* **cross-entropy terms** (plain, weighted, focal) start from the per-voxel, per-class term
  ``f_c * (1 - p_c)^g_c * (-t_c * log p_c)`` (:func:`crossentropy_per_sample`), where each
  voxel is multiplied by the weight of its true class.

Inputs are one-hot ``y_true`` and softmax ``y_pred`` of shape ``(N, x, y, C)`` or
``(N, x, y, z, C)``, channels last. All code uses ``keras.ops`` only, so it runs on any
Keras 3 backend, and computes in float32 (or float64 when ``y_pred`` is float64).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Union

import keras
import numpy as np
from keras import ops

from miseg.errors import ConfigurationError, DataError, ShapeMismatchError

__all__ = [
    "ClassWeight",
    "identify_axis",
    "prepare_inputs",
    "num_classes",
    "normalize_class_weight",
    "class_weight_to_config",
    "resolve_class_weights",
    "background_foreground",
    "overlap_sums",
    "class_mean",
    "global_dice",
    "soft_dice_per_sample",
    "tversky_index",
    "focal_power",
    "crossentropy_per_sample",
    "check_fraction",
    "check_non_negative",
    "SegmentationLoss",
]

#: ``{class_index: weight}`` (missing classes weigh 1) or one weight per class.
ClassWeight = Union[Mapping[int, float], Sequence[float], np.ndarray]


def identify_axis(shape: Sequence[Any]) -> list[int]:
    """Return the spatial axes of a channels-last batch shape.

    Args:
        shape: Shape of a ``(N, x, y, C)`` or ``(N, x, y, z, C)`` tensor (a tuple, list or
            ``TensorShape``).

    Returns:
        ``[1, 2]`` for a 4-D (2D) shape, ``[1, 2, 3]`` for a 5-D (3D) shape.

    Raises:
        DataError: (a ``ValueError``) for any other rank.

    Example:
        >>> identify_axis((4, 64, 64, 3))
        [1, 2]
    """
    rank = len(shape)
    if rank == 5:
        return [1, 2, 3]
    if rank == 4:
        return [1, 2]
    raise DataError(
        f"Expected a 4-D (N, x, y, C) or 5-D (N, x, y, z, C) tensor, got rank {rank} "
        f"with shape {tuple(shape)}."
    )


def prepare_inputs(y_true: Any, y_pred: Any) -> tuple[Any, Any, list[int]]:
    """Convert ``y_true``/``y_pred`` to float tensors of one dtype and check their shapes.

    ``y_pred`` keeps float32/float64; any other dtype (float16, bfloat16 under mixed
    precision, integers) is cast to float32. ``y_true`` is cast to ``y_pred``'s dtype.

    Returns:
        ``(y_true, y_pred, spatial_axes)``.

    Raises:
        DataError: if the rank is not 4 or 5.
        ShapeMismatchError: if the static shapes of ``y_true`` and ``y_pred`` differ.
    """
    y_pred = ops.convert_to_tensor(y_pred)
    if keras.backend.standardize_dtype(y_pred.dtype) not in ("float32", "float64"):
        y_pred = ops.cast(y_pred, "float32")
    y_true = ops.cast(ops.convert_to_tensor(y_true), y_pred.dtype)
    axis = identify_axis(y_pred.shape)
    true_shape, pred_shape = tuple(y_true.shape), tuple(y_pred.shape)
    if len(true_shape) != len(pred_shape) or any(
        a is not None and b is not None and a != b for a, b in zip(true_shape, pred_shape)
    ):
        raise ShapeMismatchError(
            f"y_true has shape {true_shape} but y_pred has shape {pred_shape}; both must be "
            "(N, x, y[, z], C) with one-hot y_true."
        )
    return y_true, y_pred, axis


def num_classes(y_pred: Any) -> int:
    """Static size of the class (last) axis; raises ConfigurationError if unknown."""
    classes = y_pred.shape[-1]
    if classes is None:
        raise ConfigurationError(
            "The class axis (last axis) of y_pred must have a static size to apply per-class "
            f"weights, got shape {tuple(y_pred.shape)}."
        )
    return int(classes)


def _check_weight_values(values: np.ndarray, name: str, given: Any) -> None:
    if values.size == 0:
        raise ConfigurationError(f"{name} must not be empty, got {given!r}.")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ConfigurationError(
            f"{name} must hold finite, non-negative numbers, got {given!r}."
        )
    if not np.any(values > 0):
        raise ConfigurationError(f"{name} must hold at least one positive weight, got {given!r}.")


def normalize_class_weight(
    class_weight: ClassWeight | None, name: str = "class_weight"
) -> dict[int, float] | list[float] | None:
    """Validate a class weight and return it as a plain ``dict`` or ``list`` of floats.

    Dict keys may be ints or strings of ints (the form a JSON round trip produces).

    Raises:
        ConfigurationError: for negative, non-finite or all-zero weights, bad keys, or a
            value that is neither a mapping nor a 1-D sequence.
    """
    if class_weight is None:
        return None
    if isinstance(class_weight, Mapping):
        normalized: dict[int, float] = {}
        for key, value in class_weight.items():
            try:
                index = int(key)
            except (TypeError, ValueError):
                index = -1
            if index < 0 or (isinstance(key, float) and not float(key).is_integer()):
                raise ConfigurationError(
                    f"{name} keys must be non-negative class indices, got key {key!r} in "
                    f"{class_weight!r}."
                )
            normalized[index] = float(value)
        if not normalized:  # {} leaves every class at weight 1
            return {}
        _check_weight_values(np.array(list(normalized.values()), dtype=float), name, class_weight)
        return dict(sorted(normalized.items()))
    if isinstance(class_weight, (str, bytes)) or not isinstance(
        class_weight, (Sequence, np.ndarray)
    ):
        raise ConfigurationError(
            f"{name} must be a dict {{class: weight}} or a sequence with one weight per class, "
            f"got {class_weight!r}."
        )
    values = np.asarray(class_weight, dtype=float)
    if values.ndim != 1:
        raise ConfigurationError(f"{name} must be one-dimensional, got {class_weight!r}.")
    _check_weight_values(values, name, class_weight)
    return [float(v) for v in values]


def class_weight_to_config(class_weight: dict[int, float] | list[float] | None) -> Any:
    """JSON-safe form of a normalized class weight (dict keys become strings)."""
    if isinstance(class_weight, dict):
        return {str(key): value for key, value in class_weight.items()}
    return class_weight


def resolve_class_weights(
    class_weight: dict[int, float] | list[float] | None,
    y_pred: Any,
    name: str = "class_weight",
) -> Any:
    """Turn a normalized class weight into a ``(C,)`` tensor of ``y_pred``'s dtype.

    Returns ``None`` when ``class_weight`` is ``None``.

    Raises:
        ConfigurationError: if a list's length differs from the number of classes ``C``, or
            a dict names a class ``>= C``.
    """
    if class_weight is None:
        return None
    classes = num_classes(y_pred)
    if isinstance(class_weight, dict):
        too_large = [key for key in class_weight if key >= classes]
        if too_large:
            raise ConfigurationError(
                f"{name}={class_weight!r} names class(es) {too_large} but y_pred has only "
                f"{classes} classes."
            )
        vector = [class_weight.get(index, 1.0) for index in range(classes)]
    else:
        if len(class_weight) != classes:
            raise ConfigurationError(
                f"{name}={class_weight!r} has {len(class_weight)} entries but y_pred has "
                f"{classes} classes."
            )
        vector = list(class_weight)
    if not any(value > 0 for value in vector):
        raise ConfigurationError(
            f"{name}={class_weight!r} gives every one of the {classes} classes weight 0."
        )
    return ops.convert_to_tensor(np.asarray(vector), dtype=y_pred.dtype)


def background_foreground(background: float, foreground: float, classes: int, dtype: Any) -> Any:
    """``(C,)`` tensor ``[background, foreground, ..., foreground]`` (class 0 is background)."""
    return ops.convert_to_tensor(
        np.asarray([background] + [foreground] * (classes - 1)), dtype=dtype
    )


def _multiply(a: Any, b: Any) -> Any:
    """Product of two optional per-class tensors (``None`` means all ones)."""
    if a is None:
        return b
    if b is None:
        return a
    return a * b


def overlap_sums(y_true: Any, y_pred: Any, axis: Sequence[int]) -> tuple[Any, Any, Any]:
    """Per-sample, per-class soft ``TP = Σ t·p``, ``FN = Σ t·(1−p)``, ``FP = Σ (1−t)·p``.

    Returns:
        Three ``(N, C)`` tensors.
    """
    tp = ops.sum(y_true * y_pred, axis=axis)
    fn = ops.sum(y_true, axis=axis) - tp
    fp = ops.sum(y_pred, axis=axis) - tp
    return tp, fn, fp


def class_mean(values: Any, class_weights: Any = None) -> Any:
    """Mean over the last (class) axis, weighted by ``class_weights`` when given."""
    if class_weights is None:
        return ops.mean(values, axis=-1)
    return ops.sum(values * class_weights, axis=-1) / ops.sum(class_weights)


def global_dice(y_true: Any, y_pred: Any, smooth: float, class_weights: Any = None) -> Any:
    """Dice over the whole batch, all voxels and all classes: ``(2Σtp + s) / (Σt + Σp + s)``.

    With class weights every class's contribution to the three sums is multiplied by its
    weight. Returns a scalar.
    """
    axis = list(range(len(y_pred.shape) - 1))
    tp = ops.sum(y_true * y_pred, axis=axis)
    total = ops.sum(y_true, axis=axis) + ops.sum(y_pred, axis=axis)
    if class_weights is not None:
        tp, total = tp * class_weights, total * class_weights
    return (2.0 * ops.sum(tp) + smooth) / (ops.sum(total) + smooth)


def soft_dice_per_sample(
    y_true: Any, y_pred: Any, axis: Sequence[int], smooth: float, class_weights: Any = None
) -> Any:
    """Per-sample (weighted) class mean of ``(2·TP + s) / (Σt + Σp + s)``; shape ``(N,)``."""
    tp, fn, fp = overlap_sums(y_true, y_pred, axis)
    dice = (2.0 * tp + smooth) / (2.0 * tp + fn + fp + smooth)
    return class_mean(dice, class_weights)


def tversky_index(tp: Any, fn: Any, fp: Any, fn_weight: Any, fp_weight: Any, smooth: float) -> Any:
    """Tversky index ``(TP + s) / (TP + fn_weight·FN + fp_weight·FP + s)``, element-wise."""
    return (tp + smooth) / (tp + fn_weight * fn + fp_weight * fp + smooth)


def focal_power(base: Any, exponent: Any) -> Any:
    """``max(base, eps) ** exponent``; the floor keeps gradients finite at ``base == 0``."""
    return ops.power(ops.maximum(base, keras.config.epsilon()), exponent)


def crossentropy_per_sample(
    y_true: Any,
    y_pred: Any,
    axis: Sequence[int],
    class_factors: Any = None,
    gammas: Any = None,
    class_weights: Any = None,
    normalize: bool = False,
) -> Any:
    """Per-sample mean over voxels of ``Σ_c w_c·f_c·(1 − p_c)^g_c · (−t_c·log p_c)``.

    ``y_pred`` is clipped to ``[eps, 1 − eps]``. For one-hot targets only the true class's
    term is non-zero, so ``w_c`` weighs each voxel by the weight of its true class.

    Args:
        class_factors: ``(C,)`` per-class factors ``f_c`` (alpha/delta/beta of the focal and
            combo losses) or ``None``.
        gammas: ``(C,)`` focal exponents ``g_c`` or ``None`` (plain cross-entropy).
        class_weights: ``(C,)`` class weights ``w_c`` or ``None``.
        normalize: First divide ``y_pred`` by its sum over classes, as Keras'
            ``categorical_crossentropy`` does (a no-op for softmax outputs; it matters for
            sigmoid outputs).

    Returns:
        ``(N,)`` tensor.
    """
    eps = keras.config.epsilon()
    if normalize:
        y_pred = y_pred / ops.sum(y_pred, axis=-1, keepdims=True)
    y_pred = ops.clip(y_pred, eps, 1.0 - eps)
    terms = -y_true * ops.log(y_pred)
    if gammas is not None:
        terms = terms * ops.power(1.0 - y_pred, gammas)
    factors = _multiply(class_factors, class_weights)
    if factors is not None:
        terms = terms * factors
    return ops.mean(ops.sum(terms, axis=-1), axis=axis)


def check_fraction(value: Any, name: str, allow_none: bool = False) -> float | None:
    """Validate a number in ``[0, 1]`` (or ``None`` when allowed); return it as float."""
    if value is None and allow_none:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not 0.0 <= number <= 1.0:
        raise ConfigurationError(f"{name} must be a number in [0, 1], got {name}={value!r}.")
    return number


def check_non_negative(value: Any, name: str) -> float:
    """Validate a finite number ``>= 0``; return it as float."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number >= 0.0):
        raise ConfigurationError(
            f"{name} must be a finite number >= 0, got {name}={value!r}."
        )
    return number


class SegmentationLoss(keras.losses.Loss):
    """Base class of miseg's segmentation losses, with optional per-class weights.

    Subclasses implement :meth:`compute`, which receives prepared float tensors, the spatial
    axes and the resolved ``(C,)`` class-weight tensor (or ``None``), and returns per-sample
    losses ``(N,)`` (or a scalar for batch-global losses). Keras then applies
    ``sample_weight`` and the reduction.

    Args:
        class_weight: ``{class: weight}`` (missing classes weigh 1) or one weight per class.
            Cross-entropy terms weigh each voxel by the weight of its true class; overlap
            terms (Dice/Tversky) use the weighted mean over classes.
        name: Loss name (history key when used as a metric).
        reduction: Keras reduction over the per-sample losses.
        dtype: Computation dtype (default ``keras.config.floatx()``, i.e. float32, also
            under mixed precision).
    """

    def __init__(
        self,
        class_weight: ClassWeight | None = None,
        name: str | None = None,
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.class_weight = normalize_class_weight(class_weight)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_true, y_pred, axis = prepare_inputs(y_true, y_pred)
        class_weights = resolve_class_weights(self.class_weight, y_pred)
        return self.compute(y_true, y_pred, axis, class_weights)

    def compute(self, y_true: Any, y_pred: Any, axis: list[int], class_weights: Any) -> Any:
        """Per-sample loss values from prepared inputs (implemented by subclasses)."""
        raise NotImplementedError(f"{type(self).__name__} must implement compute().")

    def with_class_weight(self, class_weight: ClassWeight | None) -> SegmentationLoss:
        """Return a copy of this loss whose class weight is replaced by ``class_weight``."""
        config = self.get_config()
        config["class_weight"] = class_weight_to_config(normalize_class_weight(class_weight))
        return type(self).from_config(config)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["dtype"] = self.dtype
        config["class_weight"] = class_weight_to_config(self.class_weight)
        return config
