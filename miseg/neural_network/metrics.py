"""Segmentation losses and metrics, MIScnn-compatible (``miscnn.neural_network.metrics``).

All functions take one-hot ``y_true`` and softmax ``y_pred`` of shape ``(N, x, y, C)``
(2D) or ``(N, x, y, z, C)`` (3D) for any number of classes ``C >= 2``, and return a scalar
(the mean over the batch). Factories (``combo_loss(...)``, ``asym_unified_focal_loss(...)``,
...) return :class:`keras.losses.Loss` instances whose ``name`` is the MIScnn factory
name; as in many MIScnn scripts they may also be passed *uncalled*
(``loss=focal_tversky_loss``), which means their default configuration. Everything is
registered with Keras (package ``"miseg"``) as soon as both ``miseg`` and ``keras`` are
imported, so a model compiled with these objects and saved as ``.keras`` loads with a
plain ``keras.models.load_model(path)``.

**Same values as MIScnn.** Every MIScnn name computes what MIScnn 1.4 computes, on the
same scale and with the same smoothing, as reported by Keras (the mean over the batch):
``tversky_loss`` is ``C − Σ_c TI_c`` per sample (range ``[0, C]``), ``tversky_crossentropy``
adds the mean cross-entropy to that, ``dice_weighted(w)`` is ``−mean_c(w_c·Dice_c)``.
Normalised variants, ``C`` times smaller or in ``[0, 1]``, have their own names:
:func:`tversky_loss_normalized`, :func:`tversky_crossentropy_normalized`,
:func:`dice_weighted_normalized`.

Per-class weights for any loss here: :func:`class_weighted_loss` (Keras 3's
``fit(class_weight=...)`` cannot handle ``(N, x, y[, z], C)`` targets).

Where MIScnn 1.4 was broken, miseg keeps the API and fixes the computation:

* ``combo_loss`` works: ``alpha·CE_beta + (1 − alpha)·(1 − soft Dice)``, multi-class
  (MIScnn's crashed).
* The symmetric/asymmetric focal (Tversky) and unified focal losses work for 2D and 3D and
  any ``C``: class 0 is background, every other class is foreground (Yeung et al. 2021,
  "Unified Focal loss"). For 2D binary input they equal MIScnn's.
* ``dice_weighted`` returns the per-sample value (a scalar when called directly) instead of
  an ``(N, C)`` tensor built with ``K.variable``; the value Keras reports is the same.
* ``tversky_loss`` takes ``alpha`` (FP weight) and ``beta`` (FN weight); both default to
  MIScnn's fixed 0.5.
* Powers with exponents below 1 use ``max(1 − TI, eps)`` so gradients stay finite at a
  perfect prediction.

Example:
    >>> from miseg.neural_network.metrics import tversky_loss, dice_soft, class_weighted_loss
    >>> model.compile("adam", loss=class_weighted_loss(tversky_loss, {0: 0.2, 1: 1.0}),
    ...               metrics=[dice_soft])
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from miseg.errors import ConfigurationError
from miseg.neural_network.losses_core import (
    ClassWeight,
    SegmentationLoss,
    background_foreground,
    check_fraction,
    check_non_negative,
    class_mean,
    class_weight_to_config,
    crossentropy_per_sample,
    focal_power,
    global_dice,
    identify_axis,
    normalize_class_weight,
    num_classes,
    overlap_sums,
    prepare_inputs,
    resolve_class_weights,
    soft_dice_per_sample,
    tversky_index,
)

__all__ = [
    # MIScnn functions and factories
    "identify_axis",
    "dice_coefficient",
    "dice_coefficient_loss",
    "dice_soft",
    "dice_soft_loss",
    "dice_weighted",
    "dice_crossentropy",
    "tversky_loss",
    "tversky_crossentropy",
    "categorical_focal_loss",
    "combo_loss",
    "focal_tversky_loss",
    "symmetric_focal_loss",
    "symmetric_focal_tversky_loss",
    "asymmetric_focal_loss",
    "asymmetric_focal_tversky_loss",
    "sym_unified_focal_loss",
    "asym_unified_focal_loss",
    # miseg additions
    "tversky_loss_normalized",
    "tversky_crossentropy_normalized",
    "dice_weighted_normalized",
    "class_weighted_loss",
    "SegmentationLoss",
    "DiceCoefficientLoss",
    "DiceSoftLoss",
    "DiceWeightedLoss",
    "DiceCrossentropyLoss",
    "TverskyLoss",
    "TverskyCrossentropyLoss",
    "CategoricalCrossentropyLoss",
    "CategoricalFocalLoss",
    "ComboLoss",
    "FocalTverskyLoss",
    "SymmetricFocalLoss",
    "AsymmetricFocalLoss",
    "SymmetricFocalTverskyLoss",
    "AsymmetricFocalTverskyLoss",
    "SymUnifiedFocalLoss",
    "AsymUnifiedFocalLoss",
]

_register = keras.saving.register_keras_serializable(package="miseg")
_REDUCTION = "sum_over_batch_size"


# --------------------------------------------------------------------------------------
# Shared per-sample terms (used by the plain functions and the Loss classes alike)
# --------------------------------------------------------------------------------------


def _tversky_per_sample(y_true, y_pred, axis, smooth, alpha, beta, class_weights, normalized):
    """Per-sample ``Σ_c (1 − TI_c)`` (MIScnn's scale) or, normalized, ``mean_c (1 − TI_c)``.

    With class weights the class mean is weighted; MIScnn's scale is always ``C`` times the
    normalized value.
    """
    tp, fn, fp = overlap_sums(y_true, y_pred, axis)
    loss = 1.0 - tversky_index(tp, fn, fp, fn_weight=beta, fp_weight=alpha, smooth=smooth)
    if normalized:
        return class_mean(loss, class_weights)
    if class_weights is None:
        return ops.sum(loss, axis=-1)
    return class_mean(loss, class_weights) * num_classes(y_pred)


def _unified_focal_ce(y_true, y_pred, axis, delta, gamma, asymmetric, class_weights):
    classes = num_classes(y_pred)
    factors = background_foreground(1.0 - delta, delta, classes, y_pred.dtype)
    gammas = background_foreground(gamma, 0.0 if asymmetric else gamma, classes, y_pred.dtype)
    return crossentropy_per_sample(y_true, y_pred, axis, factors, gammas, class_weights)


def _unified_focal_tversky(y_true, y_pred, axis, delta, gamma, asymmetric, class_weights):
    eps = keras.config.epsilon()
    y_pred = ops.clip(y_pred, eps, 1.0 - eps)
    tp, fn, fp = overlap_sums(y_true, y_pred, axis)
    index = tversky_index(tp, fn, fp, fn_weight=delta, fp_weight=1.0 - delta, smooth=eps)
    exponents = background_foreground(
        1.0 if asymmetric else 1.0 - gamma, 1.0 - gamma, num_classes(y_pred), y_pred.dtype
    )
    return class_mean(focal_power(1.0 - index, exponents), class_weights)


def _unified(ftl, fl, weight):
    if weight is None:
        return ftl + fl
    return weight * ftl + (1.0 - weight) * fl


# --------------------------------------------------------------------------------------
# Plain functions (MIScnn names)
# --------------------------------------------------------------------------------------


@_register
def dice_coefficient(y_true: Any, y_pred: Any, smooth: float = 1e-5) -> Any:
    """Global Dice over batch, voxels and classes (background included).

    ``(2·Σ t·p + smooth) / (Σ t + Σ p + smooth)``.

    Args:
        y_true: One-hot ground truth ``(N, x, y[, z], C)``.
        y_pred: Softmax prediction of the same shape.
        smooth: Additive smoothing.

    Returns:
        Scalar in ``[0, 1]`` (1 is perfect).

    Example:
        >>> model.compile("adam", loss=tversky_loss, metrics=[dice_coefficient])
    """
    y_true, y_pred, _ = prepare_inputs(y_true, y_pred)
    return global_dice(y_true, y_pred, smooth)


@_register
def dice_coefficient_loss(y_true: Any, y_pred: Any, smooth: float = 1e-5) -> Any:
    """``1 − dice_coefficient``. Scalar in ``[0, 1]``."""
    return 1.0 - dice_coefficient(y_true, y_pred, smooth)


@_register
def dice_soft(y_true: Any, y_pred: Any, smooth: float = 1e-5) -> Any:
    """Soft Dice per sample and class, averaged over batch and classes.

    Per sample ``n`` and class ``c``: ``(2·Σ t·p + smooth) / (Σ t + Σ p + smooth)`` summed
    over the spatial axes.

    Returns:
        Scalar in ``[0, 1]`` (1 is perfect).

    Example:
        >>> model.compile("adam", loss=tversky_loss, metrics=[dice_soft])  # history "dice_soft"
    """
    y_true, y_pred, axis = prepare_inputs(y_true, y_pred)
    return ops.mean(soft_dice_per_sample(y_true, y_pred, axis, smooth))


@_register
def dice_soft_loss(y_true: Any, y_pred: Any, smooth: float = 1e-5) -> Any:
    """``1 − dice_soft``. Scalar in ``[0, 1]``."""
    return 1.0 - dice_soft(y_true, y_pred, smooth)


@_register
def dice_crossentropy(y_truth: Any, y_pred: Any, smooth: float = 1e-5) -> Any:
    """``dice_soft_loss + mean categorical cross-entropy``.

    The cross-entropy is Keras' ``categorical_crossentropy`` (``y_pred`` divided by its
    class sum, clipped to ``[eps, 1 − eps]``), averaged over batch and voxels, as in MIScnn.
    The first argument keeps MIScnn's name ``y_truth``.
    """
    y_truth, y_pred, axis = prepare_inputs(y_truth, y_pred)
    dice = soft_dice_per_sample(y_truth, y_pred, axis, smooth)
    return ops.mean(1.0 - dice + crossentropy_per_sample(y_truth, y_pred, axis, normalize=True))


@_register
def tversky_loss(
    y_true: Any, y_pred: Any, smooth: float = 1e-6, alpha: float = 0.5, beta: float = 0.5
) -> Any:
    """Tversky loss on MIScnn's scale: ``C − Σ_c TI_c`` per sample, in ``[0, C]`` (default loss).

    ``TI_c = (TP + smooth) / (TP + alpha·FP + beta·FN + smooth)`` per sample and class, with
    soft ``TP/FP/FN`` summed over the spatial axes; ``alpha = beta = 0.5`` (MIScnn's fixed
    values) is the soft Dice. The result is the batch mean, the value Keras reports for
    MIScnn's ``tversky_loss``. :func:`tversky_loss_normalized` is the same divided by ``C``.

    Args:
        y_true: One-hot ground truth ``(N, x, y[, z], C)``.
        y_pred: Softmax prediction of the same shape.
        smooth: Additive smoothing.
        alpha: Weight of false positives.
        beta: Weight of false negatives (raise it to favour recall).

    Returns:
        Scalar in ``[0, C]`` (0 is perfect).

    Example:
        >>> model.compile("adam", loss=tversky_loss)
    """
    y_true, y_pred, axis = prepare_inputs(y_true, y_pred)
    return ops.mean(_tversky_per_sample(y_true, y_pred, axis, smooth, alpha, beta, None, False))


@_register
def tversky_loss_normalized(
    y_true: Any, y_pred: Any, smooth: float = 1e-6, alpha: float = 0.5, beta: float = 0.5
) -> Any:
    """Tversky loss ``mean_c(1 − TI_c)`` in ``[0, 1]``: :func:`tversky_loss` divided by ``C``.

    Its scale does not grow with the number of classes (miseg addition; same arguments as
    :func:`tversky_loss`).

    Returns:
        Scalar in ``[0, 1]`` (0 is perfect).
    """
    y_true, y_pred, axis = prepare_inputs(y_true, y_pred)
    return ops.mean(_tversky_per_sample(y_true, y_pred, axis, smooth, alpha, beta, None, True))


@_register
def tversky_crossentropy(
    y_truth: Any, y_pred: Any, smooth: float = 1e-6, alpha: float = 0.5, beta: float = 0.5
) -> Any:
    """:func:`tversky_loss` (MIScnn's scale, ``[0, C]``) ``+`` mean categorical cross-entropy.

    The cross-entropy is Keras' ``categorical_crossentropy`` (``y_pred`` divided by its
    class sum, clipped to ``[eps, 1 − eps]``), averaged over batch and voxels, as in MIScnn.
    The first argument keeps MIScnn's name ``y_truth``.
    """
    y_truth, y_pred, axis = prepare_inputs(y_truth, y_pred)
    tversky = _tversky_per_sample(y_truth, y_pred, axis, smooth, alpha, beta, None, False)
    return ops.mean(tversky + crossentropy_per_sample(y_truth, y_pred, axis, normalize=True))


@_register
def tversky_crossentropy_normalized(
    y_truth: Any, y_pred: Any, smooth: float = 1e-6, alpha: float = 0.5, beta: float = 0.5
) -> Any:
    """:func:`tversky_loss_normalized` (``[0, 1]``) ``+`` mean categorical cross-entropy.

    Unlike :func:`tversky_crossentropy`, the balance between the two terms does not depend
    on the number of classes (miseg addition).
    """
    y_truth, y_pred, axis = prepare_inputs(y_truth, y_pred)
    tversky = _tversky_per_sample(y_truth, y_pred, axis, smooth, alpha, beta, None, True)
    return ops.mean(tversky + crossentropy_per_sample(y_truth, y_pred, axis, normalize=True))


# --------------------------------------------------------------------------------------
# Loss classes (returned by the factories and by class_weighted_loss)
# --------------------------------------------------------------------------------------


def _base_kwargs(class_weight, name, reduction, dtype):
    return {"class_weight": class_weight, "name": name, "reduction": reduction, "dtype": dtype}


@_register
class DiceCoefficientLoss(SegmentationLoss):
    """``1 −`` global Dice (see :func:`dice_coefficient`); class weights scale each class's sums.

    Args:
        smooth: Additive smoothing.
        class_weight: See :class:`SegmentationLoss`.
    """

    def __init__(
        self,
        smooth: float = 1e-5,
        class_weight: ClassWeight | None = None,
        name: str = "dice_coefficient_loss",
        reduction: str | None = _REDUCTION,
        dtype: Any = None,
    ) -> None:
        super().__init__(**_base_kwargs(class_weight, name, reduction, dtype))
        self.smooth = check_non_negative(smooth, "smooth")

    def compute(self, y_true, y_pred, axis, class_weights):
        return 1.0 - global_dice(y_true, y_pred, self.smooth, class_weights)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "smooth": self.smooth}


@_register
class DiceSoftLoss(SegmentationLoss):
    """``1 −`` soft Dice (see :func:`dice_soft`), weighted class mean when class-weighted."""

    def __init__(
        self,
        smooth: float = 1e-5,
        class_weight: ClassWeight | None = None,
        name: str = "dice_soft_loss",
        reduction: str | None = _REDUCTION,
        dtype: Any = None,
    ) -> None:
        super().__init__(**_base_kwargs(class_weight, name, reduction, dtype))
        self.smooth = check_non_negative(smooth, "smooth")

    def compute(self, y_true, y_pred, axis, class_weights):
        return 1.0 - soft_dice_per_sample(y_true, y_pred, axis, self.smooth, class_weights)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "smooth": self.smooth}


@_register
class DiceWeightedLoss(SegmentationLoss):
    """Soft Dice with fixed per-class ``weights`` (see :func:`dice_weighted`).

    Per sample, with ``D_c`` the soft Dice of class ``c``: ``−mean_c(w_c·D_c)`` (MIScnn's
    value, in ``[−max w, 0]``), or with ``normalized=True`` ``1 − Σ_c w_c·D_c / Σ_c w_c``
    (in ``[0, 1]``). ``class_weight``, if also given, multiplies ``weights``.

    Args:
        weights: One non-negative weight per class (or ``{class: weight}``).
        smooth: Additive smoothing.
        normalized: Use the ``[0, 1]`` form.
        class_weight: See :class:`SegmentationLoss`.
        name: Default ``"dice_weighted"`` (``"dice_weighted_normalized"`` when normalized).
    """

    def __init__(
        self,
        weights: ClassWeight,
        smooth: float = 1e-5,
        normalized: bool = False,
        class_weight: ClassWeight | None = None,
        name: str | None = None,
        reduction: str | None = _REDUCTION,
        dtype: Any = None,
    ) -> None:
        normalized = bool(normalized)
        if name is None:
            name = "dice_weighted_normalized" if normalized else "dice_weighted"
        super().__init__(**_base_kwargs(class_weight, name, reduction, dtype))
        if weights is None:
            raise ConfigurationError(
                f"{name} needs one weight per class, e.g. {name}([0.1, 1.0, 2.0]); got "
                "weights=None."
            )
        self.weights = normalize_class_weight(weights, name="weights")
        self.smooth = check_non_negative(smooth, "smooth")
        self.normalized = normalized

    def compute(self, y_true, y_pred, axis, class_weights):
        weights = resolve_class_weights(self.weights, y_pred, name="weights")
        if class_weights is not None:
            weights = weights * class_weights
        dice = soft_dice_per_sample(y_true, y_pred, axis, self.smooth, weights)
        if self.normalized:
            return 1.0 - dice
        return -dice * ops.sum(weights) / num_classes(y_pred)  # = −mean_c(w_c·D_c)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "weights": class_weight_to_config(self.weights),
            "smooth": self.smooth,
            "normalized": self.normalized,
        }


@_register
class DiceCrossentropyLoss(SegmentationLoss):
    """``(1 − soft Dice) + cross-entropy`` (see :func:`dice_crossentropy`)."""

    def __init__(
        self,
        smooth: float = 1e-5,
        class_weight: ClassWeight | None = None,
        name: str = "dice_crossentropy",
        reduction: str | None = _REDUCTION,
        dtype: Any = None,
    ) -> None:
        super().__init__(**_base_kwargs(class_weight, name, reduction, dtype))
        self.smooth = check_non_negative(smooth, "smooth")

    def compute(self, y_true, y_pred, axis, class_weights):
        dice = soft_dice_per_sample(y_true, y_pred, axis, self.smooth, class_weights)
        ce = crossentropy_per_sample(
            y_true, y_pred, axis, class_weights=class_weights, normalize=True
        )
        return 1.0 - dice + ce

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "smooth": self.smooth}


class _TverskyBase(SegmentationLoss):
    """Shared ``smooth``/``alpha``/``beta``/``normalized`` handling of the Tversky losses."""

    def __init__(self, smooth, alpha, beta, normalized, class_weight, name, reduction, dtype):
        super().__init__(**_base_kwargs(class_weight, name, reduction, dtype))
        self.smooth = check_non_negative(smooth, "smooth")
        self.alpha = check_non_negative(alpha, "alpha")
        self.beta = check_non_negative(beta, "beta")
        self.normalized = bool(normalized)

    def _tversky(self, y_true, y_pred, axis, class_weights):
        return _tversky_per_sample(
            y_true, y_pred, axis, self.smooth, self.alpha, self.beta, class_weights,
            self.normalized,
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "smooth": self.smooth,
            "alpha": self.alpha,
            "beta": self.beta,
            "normalized": self.normalized,
        }


@_register
class TverskyLoss(_TverskyBase):
    """Tversky loss; the defaults compute :func:`tversky_loss` (MIScnn's scale).

    Per sample ``Σ_c (1 − TI_c) = C − Σ_c TI_c`` in ``[0, C]``, or with ``normalized=True``
    ``mean_c (1 − TI_c)`` in ``[0, 1]`` (:func:`tversky_loss_normalized`). Class weights
    give the weighted class mean, times ``C`` on MIScnn's scale. ``reduction=None`` returns
    the per-sample values, which is what MIScnn's ``tversky_loss`` returned.

    Args:
        smooth: Additive smoothing.
        alpha: False-positive weight.
        beta: False-negative weight.
        normalized: Divide by the number of classes.
        class_weight: See :class:`SegmentationLoss`.
        name: Default ``"tversky_loss"`` (``"tversky_loss_normalized"`` when normalized).
    """

    def __init__(
        self,
        smooth: float = 1e-6,
        alpha: float = 0.5,
        beta: float = 0.5,
        normalized: bool = False,
        class_weight: ClassWeight | None = None,
        name: str | None = None,
        reduction: str | None = _REDUCTION,
        dtype: Any = None,
    ) -> None:
        if name is None:
            name = "tversky_loss_normalized" if normalized else "tversky_loss"
        super().__init__(smooth, alpha, beta, normalized, class_weight, name, reduction, dtype)

    def compute(self, y_true, y_pred, axis, class_weights):
        return self._tversky(y_true, y_pred, axis, class_weights)


@_register
class TverskyCrossentropyLoss(_TverskyBase):
    """Tversky loss plus cross-entropy; the defaults compute :func:`tversky_crossentropy`.

    ``normalized=True`` uses the ``[0, 1]`` Tversky term
    (:func:`tversky_crossentropy_normalized`). Arguments as in :class:`TverskyLoss`.
    """

    def __init__(
        self,
        smooth: float = 1e-6,
        alpha: float = 0.5,
        beta: float = 0.5,
        normalized: bool = False,
        class_weight: ClassWeight | None = None,
        name: str | None = None,
        reduction: str | None = _REDUCTION,
        dtype: Any = None,
    ) -> None:
        if name is None:
            name = "tversky_crossentropy_normalized" if normalized else "tversky_crossentropy"
        super().__init__(smooth, alpha, beta, normalized, class_weight, name, reduction, dtype)

    def compute(self, y_true, y_pred, axis, class_weights):
        tversky = self._tversky(y_true, y_pred, axis, class_weights)
        ce = crossentropy_per_sample(
            y_true, y_pred, axis, class_weights=class_weights, normalize=True
        )
        return tversky + ce


@_register
class CategoricalCrossentropyLoss(SegmentationLoss):
    """Keras' categorical cross-entropy (``y_pred`` divided by its class sum), mean over voxels.

    Lets :func:`class_weighted_loss` weight ``"categorical_crossentropy"``.
    """

    def __init__(
        self,
        class_weight: ClassWeight | None = None,
        name: str = "categorical_crossentropy",
        reduction: str | None = _REDUCTION,
        dtype: Any = None,
    ) -> None:
        super().__init__(**_base_kwargs(class_weight, name, reduction, dtype))

    def compute(self, y_true, y_pred, axis, class_weights):
        return crossentropy_per_sample(
            y_true, y_pred, axis, class_weights=class_weights, normalize=True
        )


@_register
class CategoricalFocalLoss(SegmentationLoss):
    """Focal loss ``mean_voxels Σ_c alpha_c·(1 − p_c)^gamma·(−t_c·log p_c)`` (Lin et al.).

    ``y_pred`` is clipped to ``[eps, 1 − eps]``.

    Args:
        alpha: One number for every class (a one-element list counts as one number, as
            NumPy broadcasting made it in MIScnn), one factor per class, or
            ``{class: factor}`` (missing classes get 1). A list of another length than the
            number of classes ``C`` raises a ConfigurationError naming both on the first
            call. The default 0.25 is Lin et al.'s and ``keras.losses.CategoricalFocalLoss``'s.
        gamma: Focusing exponent (``0`` gives alpha-weighted cross-entropy).
        class_weight: See :class:`SegmentationLoss`.
    """

    def __init__(
        self,
        alpha: float | Sequence[float] | Mapping[int, float] = 0.25,
        gamma: float = 2.0,
        class_weight: ClassWeight | None = None,
        name: str = "categorical_focal_loss",
        reduction: str | None = _REDUCTION,
        dtype: Any = None,
    ) -> None:
        super().__init__(**_base_kwargs(class_weight, name, reduction, dtype))
        if not isinstance(alpha, (Mapping, str, bytes)) and np.ndim(alpha) == 1 and len(alpha) == 1:
            alpha = alpha[0]  # one factor for every class
        if isinstance(alpha, (int, float, np.number)) or (
            isinstance(alpha, np.ndarray) and alpha.ndim == 0
        ):
            self.alpha = check_non_negative(alpha, "alpha")
        else:  # per-class factors ({class: factor} or a sequence)
            self.alpha = normalize_class_weight(alpha, name="alpha")
        self.gamma = check_non_negative(gamma, "gamma")

    def compute(self, y_true, y_pred, axis, class_weights):
        if isinstance(self.alpha, float):
            alpha = ops.convert_to_tensor(self.alpha, dtype=y_pred.dtype)
        else:
            alpha = resolve_class_weights(self.alpha, y_pred, name="alpha")
        return crossentropy_per_sample(y_true, y_pred, axis, alpha, self.gamma, class_weights)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "alpha": class_weight_to_config(self.alpha),
            "gamma": self.gamma,
        }


@_register
class ComboLoss(SegmentationLoss):
    """Combo loss ``alpha·CE_beta + (1 − alpha)·(1 − soft Dice)`` (Taghanaki et al. 2019).

    ``CE_beta`` weighs background (class 0) voxels by ``beta`` and foreground voxels by
    ``1 − beta``. ``alpha=None`` gives ``CE_beta + (1 − Dice)``; ``beta=None`` gives plain CE.

    Args:
        alpha: Weight of the cross-entropy term, in ``[0, 1]`` or ``None``.
        beta: Background weight of the cross-entropy, in ``[0, 1]`` or ``None``.
        smooth: Dice smoothing.
        class_weight: See :class:`SegmentationLoss`.
    """

    def __init__(
        self,
        alpha: float | None = 0.5,
        beta: float | None = 0.5,
        smooth: float = 1e-5,
        class_weight: ClassWeight | None = None,
        name: str = "combo_loss",
        reduction: str | None = _REDUCTION,
        dtype: Any = None,
    ) -> None:
        super().__init__(**_base_kwargs(class_weight, name, reduction, dtype))
        self.alpha = check_fraction(alpha, "alpha", allow_none=True)
        self.beta = check_fraction(beta, "beta", allow_none=True)
        self.smooth = check_non_negative(smooth, "smooth")

    def compute(self, y_true, y_pred, axis, class_weights):
        factors = None
        if self.beta is not None:
            factors = background_foreground(
                self.beta, 1.0 - self.beta, num_classes(y_pred), y_pred.dtype
            )
        ce = crossentropy_per_sample(y_true, y_pred, axis, factors, None, class_weights)
        dice_loss = 1.0 - soft_dice_per_sample(y_true, y_pred, axis, self.smooth, class_weights)
        if self.alpha is None:
            return ce + dice_loss
        return self.alpha * ce + (1.0 - self.alpha) * dice_loss

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "alpha": self.alpha,
            "beta": self.beta,
            "smooth": self.smooth,
        }


@_register
class FocalTverskyLoss(SegmentationLoss):
    """Focal Tversky loss ``mean_c (1 − TI_c)^gamma`` (Abraham & Khan 2019).

    ``TI = (TP + smooth) / (TP + delta·FN + (1 − delta)·FP + smooth)``.

    Args:
        delta: False-negative weight in ``[0, 1]``.
        gamma: Focal exponent (``< 1`` focuses on hard classes).
        smooth: Additive smoothing.
        class_weight: See :class:`SegmentationLoss`.
    """

    def __init__(
        self,
        delta: float = 0.7,
        gamma: float = 0.75,
        smooth: float = 1e-6,
        class_weight: ClassWeight | None = None,
        name: str = "focal_tversky_loss",
        reduction: str | None = _REDUCTION,
        dtype: Any = None,
    ) -> None:
        super().__init__(**_base_kwargs(class_weight, name, reduction, dtype))
        self.delta = check_fraction(delta, "delta")
        self.gamma = check_non_negative(gamma, "gamma")
        self.smooth = check_non_negative(smooth, "smooth")

    def compute(self, y_true, y_pred, axis, class_weights):
        tp, fn, fp = overlap_sums(y_true, y_pred, axis)
        index = tversky_index(tp, fn, fp, self.delta, 1.0 - self.delta, self.smooth)
        return class_mean(focal_power(1.0 - index, self.gamma), class_weights)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "delta": self.delta,
            "gamma": self.gamma,
            "smooth": self.smooth,
        }


class _UnifiedFocalBase(SegmentationLoss):
    """Shared ``delta``/``gamma`` handling of the Unified Focal loss family.

    Subclasses set ``_asymmetric`` (a constant) to pick the asymmetric variant.
    """

    _asymmetric = False

    def __init__(self, delta, gamma, class_weight, name, reduction, dtype, unit_gamma):
        super().__init__(**_base_kwargs(class_weight, name, reduction, dtype))
        self.delta = check_fraction(delta, "delta")
        if unit_gamma:  # gamma enters as the exponent 1 - gamma
            self.gamma = check_fraction(gamma, "gamma")
        else:
            self.gamma = check_non_negative(gamma, "gamma")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "delta": self.delta, "gamma": self.gamma}


class _FocalBase(_UnifiedFocalBase):
    def __init__(self, delta, gamma, class_weight, name, reduction, dtype):
        super().__init__(delta, gamma, class_weight, name, reduction, dtype, unit_gamma=False)

    def compute(self, y_true, y_pred, axis, class_weights):
        return _unified_focal_ce(
            y_true, y_pred, axis, self.delta, self.gamma, self._asymmetric, class_weights
        )


class _FocalTverskyBase(_UnifiedFocalBase):
    def __init__(self, delta, gamma, class_weight, name, reduction, dtype):
        super().__init__(delta, gamma, class_weight, name, reduction, dtype, unit_gamma=True)

    def compute(self, y_true, y_pred, axis, class_weights):
        return _unified_focal_tversky(
            y_true, y_pred, axis, self.delta, self.gamma, self._asymmetric, class_weights
        )


class _UnifiedBase(_UnifiedFocalBase):
    def __init__(self, weight, delta, gamma, class_weight, name, reduction, dtype):
        super().__init__(delta, gamma, class_weight, name, reduction, dtype, unit_gamma=True)
        self.weight = check_fraction(weight, "weight", allow_none=True)

    def compute(self, y_true, y_pred, axis, class_weights):
        args = (self.delta, self.gamma, self._asymmetric, class_weights)
        ftl = _unified_focal_tversky(y_true, y_pred, axis, *args)
        fl = _unified_focal_ce(y_true, y_pred, axis, *args)
        return _unified(ftl, fl, self.weight)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "weight": self.weight}


@_register
class SymmetricFocalLoss(_FocalBase):
    """Symmetric focal loss, multi-class (Yeung et al. 2021).

    Per voxel ``Σ_c f_c·(1 − p_c)^gamma·(−t_c·log p_c)`` with ``f_0 = 1 − delta`` for the
    background (class 0) and ``f_c = delta`` for every foreground class; mean over voxels.
    ``y_pred`` is clipped to ``[eps, 1 − eps]``.
    """

    def __init__(
        self,
        delta: float = 0.7,
        gamma: float = 2.0,
        class_weight: ClassWeight | None = None,
        name: str = "symmetric_focal_loss",
        reduction: str | None = _REDUCTION,
        dtype: Any = None,
    ) -> None:
        super().__init__(delta, gamma, class_weight, name, reduction, dtype)


@_register
class AsymmetricFocalLoss(_FocalBase):
    """Asymmetric focal loss: like :class:`SymmetricFocalLoss`, but only the background
    (class 0) is focally suppressed; foreground classes use ``delta·CE``."""

    _asymmetric = True

    def __init__(
        self,
        delta: float = 0.7,
        gamma: float = 2.0,
        class_weight: ClassWeight | None = None,
        name: str = "asymmetric_focal_loss",
        reduction: str | None = _REDUCTION,
        dtype: Any = None,
    ) -> None:
        super().__init__(delta, gamma, class_weight, name, reduction, dtype)


@_register
class SymmetricFocalTverskyLoss(_FocalTverskyBase):
    """Symmetric focal Tversky loss, multi-class (Yeung et al. 2021).

    ``y_pred`` is clipped to ``[eps, 1 − eps]``; per sample and class
    ``TI_c = (TP + eps) / (TP + delta·FN + (1 − delta)·FP + eps)`` and the loss is
    ``mean_c (1 − TI_c)^(1 − gamma)``. ``gamma`` must lie in ``[0, 1]``.
    """

    def __init__(
        self,
        delta: float = 0.7,
        gamma: float = 0.75,
        class_weight: ClassWeight | None = None,
        name: str = "symmetric_focal_tversky_loss",
        reduction: str | None = _REDUCTION,
        dtype: Any = None,
    ) -> None:
        super().__init__(delta, gamma, class_weight, name, reduction, dtype)


@_register
class AsymmetricFocalTverskyLoss(_FocalTverskyBase):
    """Asymmetric focal Tversky loss: background term ``1 − TI_0`` (no focal exponent),
    foreground terms ``(1 − TI_c)^(1 − gamma)``; mean over classes."""

    _asymmetric = True

    def __init__(
        self,
        delta: float = 0.7,
        gamma: float = 0.75,
        class_weight: ClassWeight | None = None,
        name: str = "asymmetric_focal_tversky_loss",
        reduction: str | None = _REDUCTION,
        dtype: Any = None,
    ) -> None:
        super().__init__(delta, gamma, class_weight, name, reduction, dtype)


@_register
class SymUnifiedFocalLoss(_UnifiedBase):
    """Symmetric Unified Focal loss ``weight·symFTL + (1 − weight)·symFL`` (Yeung et al. 2021).

    Both parts share ``delta`` and ``gamma`` (``gamma`` in ``[0, 1]``); ``weight=None``
    gives their plain sum.
    """

    def __init__(
        self,
        weight: float | None = 0.5,
        delta: float = 0.6,
        gamma: float = 0.5,
        class_weight: ClassWeight | None = None,
        name: str = "sym_unified_focal_loss",
        reduction: str | None = _REDUCTION,
        dtype: Any = None,
    ) -> None:
        super().__init__(weight, delta, gamma, class_weight, name, reduction, dtype)


@_register
class AsymUnifiedFocalLoss(_UnifiedBase):
    """Asymmetric Unified Focal loss ``weight·asymFTL + (1 − weight)·asymFL``."""

    _asymmetric = True

    def __init__(
        self,
        weight: float | None = 0.5,
        delta: float = 0.6,
        gamma: float = 0.5,
        class_weight: ClassWeight | None = None,
        name: str = "asym_unified_focal_loss",
        reduction: str | None = _REDUCTION,
        dtype: Any = None,
    ) -> None:
        super().__init__(weight, delta, gamma, class_weight, name, reduction, dtype)


# --------------------------------------------------------------------------------------
# Factories (MIScnn names and signatures)
# --------------------------------------------------------------------------------------


def _is_batch(value: Any) -> bool:
    """True for a tensor or array of rank >= 2 (``y_true``/``y_pred``), not a hyper-parameter."""
    if value is None or isinstance(value, (bool, int, float, str, bytes, Mapping, list, tuple)):
        return False
    shape = getattr(value, "shape", None)
    if shape is None:
        return False
    try:
        return len(shape) >= 2
    except (TypeError, ValueError):  # a symbolic tensor of unknown rank
        return True


def _loss_factory(uncalled_error: str | None = None) -> Callable[[Callable], Callable]:
    """Decorate a MIScnn loss factory so that it also works uncalled, as the loss itself.

    ``factory(y_true, y_pred)`` (two batch tensors, how Keras calls a loss passed as
    ``loss=factory``) returns ``factory()(y_true, y_pred)``, the loss with the default
    parameters; any other call configures a loss as before. The wrapper is registered with
    Keras under the factory's name, so models compiled with it save and load. Factories
    without usable defaults raise ``ConfigurationError(uncalled_error)`` instead.
    """

    def decorate(factory: Callable[..., SegmentationLoss]) -> Callable[..., Any]:
        @functools.wraps(factory)
        def factory_or_loss(*args: Any, **kwargs: Any) -> Any:
            if len(args) == 2 and not kwargs and _is_batch(args[0]) and _is_batch(args[1]):
                if uncalled_error is not None:
                    raise ConfigurationError(uncalled_error)
                return factory()(*args)
            return factory(*args, **kwargs)

        return _register(factory_or_loss)

    return decorate


_UNCALLED_DICE_WEIGHTED = (
    "{0} was used uncalled, as the loss itself, but it needs one weight per class: "
    "pass {0}([w_0, ..., w_C-1]) (or dice_soft_loss for equal weights)."
)


@_loss_factory(_UNCALLED_DICE_WEIGHTED.format("dice_weighted"))
def dice_weighted(weights: ClassWeight) -> DiceWeightedLoss:
    """Soft Dice loss with fixed per-class weights, MIScnn's value ``−mean_c(w_c·D_c)``.

    ``D_c`` is the per-sample soft Dice of class ``c`` (smoothing ``1e-5``); the result is
    negative and lowest (best) at ``−mean_c w_c``. MIScnn returned the ``(N, C)`` tensor
    ``−w_c·D_nc``, whose Keras mean is this value. :func:`dice_weighted_normalized` is
    ``1 − Σ_c w_c·D_c / Σ_c w_c`` in ``[0, 1]``.

    Args:
        weights: One non-negative weight per class (or ``{class: weight}``).

    Returns:
        A :class:`DiceWeightedLoss` named ``"dice_weighted"``.

    Raises:
        ConfigurationError: when used uncalled (``loss=dice_weighted``): it needs weights.

    Example:
        >>> model.compile("adam", loss=dice_weighted([0.1, 1.0, 2.0]))
    """
    return DiceWeightedLoss(weights)


@_loss_factory(_UNCALLED_DICE_WEIGHTED.format("dice_weighted_normalized"))
def dice_weighted_normalized(weights: ClassWeight) -> DiceWeightedLoss:
    """Weighted soft Dice loss ``1 − Σ_c w_c·D_c / Σ_c w_c`` in ``[0, 1]`` (miseg addition).

    Same optimum as :func:`dice_weighted`, but positive and independent of the weights'
    scale.

    Args:
        weights: One non-negative weight per class (or ``{class: weight}``).

    Returns:
        A :class:`DiceWeightedLoss` named ``"dice_weighted_normalized"``.
    """
    return DiceWeightedLoss(weights, normalized=True)


@_loss_factory()
def categorical_focal_loss(
    alpha: float | Sequence[float] | Mapping[int, float] = 0.25, gamma: float = 2.0
) -> CategoricalFocalLoss:
    """Focal loss for one-hot targets (Lin et al. 2017), as MIScnn's.

    Also usable uncalled (``loss=categorical_focal_loss``): ``alpha=0.25, gamma=2``.

    Args:
        alpha: One number for all classes (also a one-element list), one factor per class,
            or ``{class: factor}``. Other lengths than the number of classes raise a
            ConfigurationError on the first call.
        gamma: Focusing exponent; ``gamma=0`` is alpha-weighted cross-entropy.

    Returns:
        A :class:`CategoricalFocalLoss` named ``"categorical_focal_loss"``.

    Example:
        >>> loss = categorical_focal_loss(alpha=[0.25, 0.75], gamma=2.0)
    """
    return CategoricalFocalLoss(alpha, gamma)


@_loss_factory()
def combo_loss(alpha: float | None = 0.5, beta: float | None = 0.5) -> ComboLoss:
    """Combo loss ``alpha·CE_beta + (1 − alpha)·(1 − soft Dice)`` (works multi-class).

    MIScnn's ``combo_loss`` crashed; this is the loss it describes, with a ``1 − Dice`` term
    so the value is non-negative. Also usable uncalled (``loss=combo_loss``).

    Args:
        alpha: Cross-entropy vs Dice balance in ``[0, 1]`` (``None``: plain sum).
        beta: Background weight of the cross-entropy; foreground classes get
            ``1 − beta`` (``None``: unweighted).

    Returns:
        A :class:`ComboLoss` named ``"combo_loss"``.

    Example:
        >>> model.compile("adam", loss=combo_loss(alpha=0.5, beta=0.4))
    """
    return ComboLoss(alpha, beta)


@_loss_factory()
def focal_tversky_loss(
    delta: float = 0.7, gamma: float = 0.75, smooth: float = 1e-6
) -> FocalTverskyLoss:
    """Focal Tversky loss ``mean_{n,c} (1 − TI_nc)^gamma`` for any number of classes.

    Also usable uncalled (``loss=focal_tversky_loss``).

    Returns:
        A :class:`FocalTverskyLoss` named ``"focal_tversky_loss"``.

    Example:
        >>> loss = focal_tversky_loss(delta=0.7, gamma=0.75)
    """
    return FocalTverskyLoss(delta, gamma, smooth)


@_loss_factory()
def symmetric_focal_loss(delta: float = 0.7, gamma: float = 2.0) -> SymmetricFocalLoss:
    """Symmetric focal loss (class 0 background, other classes foreground); 2D and 3D.

    Also usable uncalled (``loss=symmetric_focal_loss``).

    Returns:
        A :class:`SymmetricFocalLoss` named ``"symmetric_focal_loss"``.
    """
    return SymmetricFocalLoss(delta, gamma)


@_loss_factory()
def symmetric_focal_tversky_loss(
    delta: float = 0.7, gamma: float = 0.75
) -> SymmetricFocalTverskyLoss:
    """Symmetric focal Tversky loss for any number of classes.

    Also usable uncalled (``loss=symmetric_focal_tversky_loss``).

    Returns:
        A :class:`SymmetricFocalTverskyLoss` named ``"symmetric_focal_tversky_loss"``.
    """
    return SymmetricFocalTverskyLoss(delta, gamma)


@_loss_factory()
def asymmetric_focal_loss(delta: float = 0.7, gamma: float = 2.0) -> AsymmetricFocalLoss:
    """Asymmetric focal loss (only the background is focally suppressed); 2D and 3D.

    Also usable uncalled (``loss=asymmetric_focal_loss``).

    Returns:
        An :class:`AsymmetricFocalLoss` named ``"asymmetric_focal_loss"``.
    """
    return AsymmetricFocalLoss(delta, gamma)


@_loss_factory()
def asymmetric_focal_tversky_loss(
    delta: float = 0.7, gamma: float = 0.75
) -> AsymmetricFocalTverskyLoss:
    """Asymmetric focal Tversky loss (only foreground classes are focally enhanced).

    Also usable uncalled (``loss=asymmetric_focal_tversky_loss``).

    Returns:
        An :class:`AsymmetricFocalTverskyLoss` named ``"asymmetric_focal_tversky_loss"``.
    """
    return AsymmetricFocalTverskyLoss(delta, gamma)


@_loss_factory()
def sym_unified_focal_loss(
    weight: float | None = 0.5, delta: float = 0.6, gamma: float = 0.5
) -> SymUnifiedFocalLoss:
    """Symmetric Unified Focal loss ``weight·symFTL + (1 − weight)·symFL``.

    Also usable uncalled (``loss=sym_unified_focal_loss``).

    Returns:
        A :class:`SymUnifiedFocalLoss` named ``"sym_unified_focal_loss"``.

    Example:
        >>> model.compile("adam", loss=sym_unified_focal_loss(weight=0.5, delta=0.6, gamma=0.5))
    """
    return SymUnifiedFocalLoss(weight, delta, gamma)


@_loss_factory()
def asym_unified_focal_loss(
    weight: float | None = 0.5, delta: float = 0.6, gamma: float = 0.5
) -> AsymUnifiedFocalLoss:
    """Asymmetric Unified Focal loss ``weight·asymFTL + (1 − weight)·asymFL``.

    Also usable uncalled (``loss=asym_unified_focal_loss``).

    Returns:
        An :class:`AsymUnifiedFocalLoss` named ``"asym_unified_focal_loss"``.

    Example:
        >>> model.compile("adam", loss=asym_unified_focal_loss())
    """
    return AsymUnifiedFocalLoss(weight, delta, gamma)


# --------------------------------------------------------------------------------------
# Class weighting
# --------------------------------------------------------------------------------------

_FUNCTION_LOSSES: dict[str, Callable[..., SegmentationLoss]] = {
    "dice_coefficient_loss": DiceCoefficientLoss,
    "dice_soft_loss": DiceSoftLoss,
    "dice_crossentropy": DiceCrossentropyLoss,
    "tversky_loss": TverskyLoss,
    "tversky_loss_normalized": functools.partial(TverskyLoss, normalized=True),
    "tversky_crossentropy": TverskyCrossentropyLoss,
    "tversky_crossentropy_normalized": functools.partial(
        TverskyCrossentropyLoss, normalized=True
    ),
    "categorical_crossentropy": CategoricalCrossentropyLoss,
}
_FUNCTION_OBJECTS: dict[Callable[..., Any], str] = {
    dice_coefficient_loss: "dice_coefficient_loss",
    dice_soft_loss: "dice_soft_loss",
    dice_crossentropy: "dice_crossentropy",
    tversky_loss: "tversky_loss",
    tversky_loss_normalized: "tversky_loss_normalized",
    tversky_crossentropy: "tversky_crossentropy",
    tversky_crossentropy_normalized: "tversky_crossentropy_normalized",
    keras.losses.categorical_crossentropy: "categorical_crossentropy",
    dice_coefficient: "dice_coefficient",
    dice_soft: "dice_soft",
}
_METRIC_NAMES = ("dice_coefficient", "dice_soft")
# Factories whose default configuration a string name or the uncalled factory stands for.
_FACTORY_DEFAULTS: dict[str, type[SegmentationLoss]] = {
    "categorical_focal_loss": CategoricalFocalLoss,
    "combo_loss": ComboLoss,
    "focal_tversky_loss": FocalTverskyLoss,
    "symmetric_focal_loss": SymmetricFocalLoss,
    "asymmetric_focal_loss": AsymmetricFocalLoss,
    "symmetric_focal_tversky_loss": SymmetricFocalTverskyLoss,
    "asymmetric_focal_tversky_loss": AsymmetricFocalTverskyLoss,
    "sym_unified_focal_loss": SymUnifiedFocalLoss,
    "asym_unified_focal_loss": AsymUnifiedFocalLoss,
}
_FACTORIES = {
    dice_weighted: "dice_weighted",
    dice_weighted_normalized: "dice_weighted_normalized",
    categorical_focal_loss: "categorical_focal_loss",
    combo_loss: "combo_loss",
    focal_tversky_loss: "focal_tversky_loss",
    symmetric_focal_loss: "symmetric_focal_loss",
    asymmetric_focal_loss: "asymmetric_focal_loss",
    symmetric_focal_tversky_loss: "symmetric_focal_tversky_loss",
    asymmetric_focal_tversky_loss: "asymmetric_focal_tversky_loss",
    sym_unified_focal_loss: "sym_unified_focal_loss",
    asym_unified_focal_loss: "asym_unified_focal_loss",
}


def class_weighted_loss(
    loss: str | Callable[..., Any] | SegmentationLoss,
    class_weight: ClassWeight | None,
) -> Any:
    """Return ``loss`` with per-class weights, for 2D and 3D one-hot targets.

    Replaces Keras' ``fit(class_weight=...)``, which cannot weight ``(N, x, y[, z], C)``
    targets. Cross-entropy-type terms weigh each voxel by the weight of its true class (mean
    over voxels, like Keras' class weights); overlap terms (Dice/Tversky) use the weighted
    mean of the per-class terms (times ``C`` for the MIScnn-scale ``tversky_loss``). All-ones
    weights give the unweighted loss.

    Args:
        loss: Any loss of this module: a function (``tversky_loss``, ``dice_soft_loss``,
            ...), a Loss returned by a factory (``combo_loss()``, ...), a factory itself or
            its name as a string (both mean its default configuration), or Keras'
            ``categorical_crossentropy`` (function, name, or a default
            ``keras.losses.CategoricalCrossentropy``).
        class_weight: ``{class: weight}`` (missing classes weigh 1) or one weight per class
            (length checked against ``C`` when the loss is called). ``None`` returns
            ``loss`` unchanged.

    Returns:
        A registered :class:`SegmentationLoss` with the same name as ``loss``; an existing
        class weight on ``loss`` is replaced.

    Raises:
        ConfigurationError: for a loss this module does not know, a metric (``dice_soft``),
            ``dice_weighted`` without weights, or invalid weights; at call time for a weight
            list whose length is not ``C``.

    Example:
        >>> loss = class_weighted_loss(tversky_loss, {0: 0.1, 1: 1.0, 2: 3.0})
        >>> model.compile("adam", loss=loss, metrics=[dice_soft])
    """
    if class_weight is None:
        return loss
    if isinstance(loss, SegmentationLoss):
        return loss.with_class_weight(class_weight)
    if isinstance(loss, keras.losses.CategoricalCrossentropy):
        config = loss.get_config()
        axis = config.get("axis", -1)
        if config.get("from_logits") or config.get("label_smoothing") or axis != -1:
            raise ConfigurationError(
                "class_weighted_loss supports keras.losses.CategoricalCrossentropy only with "
                f"from_logits=False, label_smoothing=0 and axis=-1, got {config!r}."
            )
        return CategoricalCrossentropyLoss(class_weight=class_weight, name=loss.name)
    if isinstance(loss, str):
        key = loss
    else:
        try:
            key = _FUNCTION_OBJECTS.get(loss) or _FACTORIES.get(loss)
        except TypeError:  # unhashable objects
            key = None
    if key in _FACTORY_DEFAULTS:
        return _FACTORY_DEFAULTS[key](class_weight=class_weight)
    if key in _FACTORIES.values():
        raise ConfigurationError(
            f"class_weighted_loss got the factory {key!r} without its weights; pass the loss "
            f"it returns, e.g. class_weighted_loss({key}([...]), class_weight)."
        )
    if key in _METRIC_NAMES:
        raise ConfigurationError(
            f"class_weighted_loss got the metric {key!r}; use the loss "
            f"{key + '_loss'!r} instead."
        )
    if key not in _FUNCTION_LOSSES:
        raise ConfigurationError(
            f"class_weighted_loss does not know the loss {loss!r}. Use one of "
            f"{sorted(_FUNCTION_LOSSES)}, a Loss returned by a factory of "
            "miseg.neural_network.metrics (combo_loss(), asym_unified_focal_loss(), ...), or "
            "a SegmentationLoss subclass."
        )
    return _FUNCTION_LOSSES[key](class_weight=class_weight)
