"""Tests of miseg.neural_network.metrics against independent NumPy references."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import miseg.neural_network.metrics as M
from miseg.errors import ConfigurationError, DataError, ShapeMismatchError

EPS = 1e-7  # keras.config.epsilon(); checked in test_epsilon_is_keras_default
GEOMETRIES = {
    "2d-c2": ((2, 8, 8), 2),
    "2d-c3": ((2, 8, 8), 3),
    "3d-c2": ((2, 6, 6, 6), 2),
    "3d-c3": ((2, 6, 6, 6), 3),
}


def make_batch(spatial, classes, seed=0):
    """Seeded, class-imbalanced one-hot truth and softmax prediction, rounded to float32."""
    rng = np.random.default_rng(seed)
    frequencies = {2: [0.7, 0.3], 3: [0.5, 0.3, 0.2]}[classes]
    labels = rng.choice(classes, size=spatial, p=frequencies)
    y_true = np.eye(classes)[labels].astype(np.float32)
    logits = rng.normal(scale=1.5, size=spatial + (classes,))
    y_pred = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return y_true, y_pred.astype(np.float32)


# --------------------------------------------------------------------------------------
# NumPy references (written from the formulas, loops over samples and classes)
# --------------------------------------------------------------------------------------


def _flat(a):
    a = np.asarray(a, dtype=np.float64)
    return a.reshape(a.shape[0], -1, a.shape[-1])


def _ones(t, w):
    return np.ones(t.shape[-1]) if w is None else np.asarray(w, dtype=np.float64)


def ref_counts(t, p):
    t, p = _flat(t), _flat(p)
    n_samples, _, classes = t.shape
    tp, fn, fp, st, sp = (np.zeros((n_samples, classes)) for _ in range(5))
    for n in range(n_samples):
        for c in range(classes):
            tp[n, c] = np.sum(t[n, :, c] * p[n, :, c])
            fn[n, c] = np.sum(t[n, :, c] * (1 - p[n, :, c]))
            fp[n, c] = np.sum((1 - t[n, :, c]) * p[n, :, c])
            st[n, c] = np.sum(t[n, :, c])
            sp[n, c] = np.sum(p[n, :, c])
    return tp, fn, fp, st, sp


def ref_weighted_class_mean(values, w):
    """Mean over samples of the w-weighted mean over classes."""
    return np.mean([np.sum(w * row) / np.sum(w) for row in values])


def ref_dice_coefficient(t, p, w=None, smooth=1e-5):
    w = _ones(t, w)
    tf_, pf = _flat(t), _flat(p)
    num = den = 0.0
    for c in range(tf_.shape[-1]):
        num += w[c] * np.sum(tf_[..., c] * pf[..., c])
        den += w[c] * (np.sum(tf_[..., c]) + np.sum(pf[..., c]))
    return (2 * num + smooth) / (den + smooth)


def ref_dice_per_class(t, p, smooth=1e-5):
    tp, _, _, st, sp = ref_counts(t, p)
    return (2 * tp + smooth) / (st + sp + smooth)


def ref_dice_soft(t, p, w=None, smooth=1e-5):
    return ref_weighted_class_mean(ref_dice_per_class(t, p, smooth), _ones(t, w))


def ref_ce(t, p, w=None, factors=None, gammas=None):
    """Mean over voxels of w[true class] * Σ_c f_c (1 - p_c)^g_c (-t_c log p_c)."""
    w = _ones(t, w)
    tf_, pf = _flat(t), np.clip(_flat(p), EPS, 1 - EPS)
    classes = tf_.shape[-1]
    f = np.ones(classes) if factors is None else np.broadcast_to(factors, (classes,))
    g = np.zeros(classes) if gammas is None else np.broadcast_to(gammas, (classes,))
    total, count = 0.0, 0
    for n in range(tf_.shape[0]):
        for v in range(tf_.shape[1]):
            terms = f * (1 - pf[n, v]) ** g * (-tf_[n, v] * np.log(pf[n, v]))
            total += w[np.argmax(tf_[n, v])] * np.sum(terms)
            count += 1
    return total / count


def ref_tversky(t, p, w=None, smooth=1e-6, alpha=0.5, beta=0.5, normalized=False):
    """MIScnn's scale: C times the (weighted) class mean of 1 - TI; normalized: the mean."""
    tp, fn, fp, _, _ = ref_counts(t, p)
    ti = (tp + smooth) / (tp + alpha * fp + beta * fn + smooth)
    mean = ref_weighted_class_mean(1 - ti, _ones(t, w))
    return mean if normalized else t.shape[-1] * mean


def ref_dice_weighted(t, p, w=None, normalized=False):
    """-mean_c(weights_c * w_c * D_c) (MIScnn), or 1 - weighted class mean (normalized)."""
    weights = np.array(_weights(t.shape[-1])) * _ones(t, w)
    dice = ref_dice_per_class(t, p)
    if normalized:
        return 1 - ref_weighted_class_mean(dice, weights)
    return -np.mean([np.sum(weights * row) / t.shape[-1] for row in dice])


def ref_focal_tversky(t, p, w=None, delta=0.7, gamma=0.75, smooth=1e-6):
    tp, fn, fp, _, _ = ref_counts(t, p)
    ti = (tp + smooth) / (tp + delta * fn + (1 - delta) * fp + smooth)
    return ref_weighted_class_mean(np.maximum(1 - ti, EPS) ** gamma, _ones(t, w))


def bg_fg(background, foreground, classes):
    return np.array([background] + [foreground] * (classes - 1), dtype=np.float64)


def ref_unified_fl(t, p, w=None, delta=0.7, gamma=2.0, asymmetric=False):
    classes = t.shape[-1]
    gammas = bg_fg(gamma, 0.0 if asymmetric else gamma, classes)
    return ref_ce(t, p, w, bg_fg(1 - delta, delta, classes), gammas)


def ref_unified_ftl(t, p, w=None, delta=0.7, gamma=0.75, asymmetric=False):
    classes = t.shape[-1]
    tp, fn, fp, _, _ = ref_counts(t, np.clip(np.asarray(p, np.float64), EPS, 1 - EPS))
    ti = (tp + EPS) / (tp + delta * fn + (1 - delta) * fp + EPS)
    exponents = bg_fg(1.0 if asymmetric else 1 - gamma, 1 - gamma, classes)
    return ref_weighted_class_mean(np.maximum(1 - ti, EPS) ** exponents, _ones(t, w))


def ref_unified(t, p, w=None, weight=0.5, delta=0.6, gamma=0.5, asymmetric=False):
    ftl = ref_unified_ftl(t, p, w, delta, gamma, asymmetric)
    fl = ref_unified_fl(t, p, w, delta, gamma, asymmetric)
    return ftl + fl if weight is None else weight * ftl + (1 - weight) * fl


def ref_combo(t, p, w=None, alpha=0.5, beta=0.5):
    factors = None if beta is None else bg_fg(beta, 1 - beta, t.shape[-1])
    ce = ref_ce(t, p, w, factors)
    dice_loss = 1 - ref_dice_soft(t, p, w)
    return ce + dice_loss if alpha is None else alpha * ce + (1 - alpha) * dice_loss


def _alpha(classes):
    return [0.25, 0.75, 1.5][:classes]


def _weights(classes):
    return [0.5, 2.0, 1.25][:classes]


# name -> (builder(classes) -> loss, reference(t, p, w))
LOSSES = {
    "dice_coefficient_loss": (
        lambda c: M.dice_coefficient_loss,
        lambda t, p, w: 1 - ref_dice_coefficient(t, p, w),
    ),
    "dice_soft_loss": (lambda c: M.dice_soft_loss, lambda t, p, w: 1 - ref_dice_soft(t, p, w)),
    "dice_crossentropy": (
        lambda c: M.dice_crossentropy,
        lambda t, p, w: 1 - ref_dice_soft(t, p, w) + ref_ce(t, p, w),
    ),
    "tversky_loss": (lambda c: M.tversky_loss, ref_tversky),
    "tversky_loss_normalized": (
        lambda c: M.tversky_loss_normalized,
        lambda t, p, w: ref_tversky(t, p, w, normalized=True),
    ),
    "tversky_crossentropy": (
        lambda c: M.tversky_crossentropy,
        lambda t, p, w: ref_tversky(t, p, w) + ref_ce(t, p, w),
    ),
    "tversky_crossentropy_normalized": (
        lambda c: M.tversky_crossentropy_normalized,
        lambda t, p, w: ref_tversky(t, p, w, normalized=True) + ref_ce(t, p, w),
    ),
    "categorical_crossentropy": (lambda c: "categorical_crossentropy", ref_ce),
    "dice_weighted": (lambda c: M.dice_weighted(_weights(c)), ref_dice_weighted),
    "dice_weighted_normalized": (
        lambda c: M.dice_weighted_normalized(_weights(c)),
        lambda t, p, w: ref_dice_weighted(t, p, w, normalized=True),
    ),
    "categorical_focal_loss": (
        lambda c: M.categorical_focal_loss(_alpha(c), gamma=2.0),
        lambda t, p, w: ref_ce(t, p, w, np.array(_alpha(t.shape[-1])), 2.0),
    ),
    "combo_loss": (lambda c: M.combo_loss(), ref_combo),
    "combo_loss_custom": (
        lambda c: M.combo_loss(alpha=0.3, beta=0.8),
        lambda t, p, w: ref_combo(t, p, w, alpha=0.3, beta=0.8),
    ),
    "combo_loss_none": (
        lambda c: M.combo_loss(alpha=None, beta=None),
        lambda t, p, w: ref_combo(t, p, w, alpha=None, beta=None),
    ),
    "focal_tversky_loss": (lambda c: M.focal_tversky_loss(), ref_focal_tversky),
    "symmetric_focal_loss": (lambda c: M.symmetric_focal_loss(), ref_unified_fl),
    "asymmetric_focal_loss": (
        lambda c: M.asymmetric_focal_loss(),
        lambda t, p, w: ref_unified_fl(t, p, w, asymmetric=True),
    ),
    "symmetric_focal_tversky_loss": (lambda c: M.symmetric_focal_tversky_loss(), ref_unified_ftl),
    "asymmetric_focal_tversky_loss": (
        lambda c: M.asymmetric_focal_tversky_loss(),
        lambda t, p, w: ref_unified_ftl(t, p, w, asymmetric=True),
    ),
    "sym_unified_focal_loss": (lambda c: M.sym_unified_focal_loss(), ref_unified),
    "asym_unified_focal_loss": (
        lambda c: M.asym_unified_focal_loss(),
        lambda t, p, w: ref_unified(t, p, w, asymmetric=True),
    ),
    "asym_unified_focal_loss_none": (
        lambda c: M.asym_unified_focal_loss(weight=None, delta=0.7, gamma=0.25),
        lambda t, p, w: ref_unified(t, p, w, None, 0.7, 0.25, asymmetric=True),
    ),
}


def evaluate(loss, t, p):
    if isinstance(loss, str):
        loss = M.class_weighted_loss(loss, [1.0] * t.shape[-1])
    return float(keras.ops.convert_to_numpy(loss(t, p)))


def assert_close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------------------
# API surface
# --------------------------------------------------------------------------------------

MISCNN_NAMES = [
    "identify_axis", "dice_coefficient", "dice_coefficient_loss", "dice_soft", "dice_soft_loss",
    "dice_weighted", "dice_crossentropy", "tversky_loss", "tversky_crossentropy",
    "categorical_focal_loss", "combo_loss", "focal_tversky_loss", "symmetric_focal_loss",
    "symmetric_focal_tversky_loss", "asymmetric_focal_loss", "asymmetric_focal_tversky_loss",
    "sym_unified_focal_loss", "asym_unified_focal_loss",
]  # fmt: skip


def test_star_import_exports_metric_names_only():
    namespace = {}
    exec("from miseg.neural_network.metrics import *", namespace)
    names = set(namespace) - {"__builtins__"}
    assert set(MISCNN_NAMES) | {"class_weighted_loss"} <= names
    assert not names & {"tf", "np", "K", "keras", "ops", "Any", "Sequence", "Callable"}
    assert names == set(M.__all__)


def test_epsilon_is_keras_default():
    assert keras.config.epsilon() == EPS


def test_identify_axis():
    assert M.identify_axis((2, 8, 8, 3)) == [1, 2]
    assert M.identify_axis(tf.TensorShape([None, 6, 6, 6, 2])) == [1, 2, 3]
    with pytest.raises(DataError):
        M.identify_axis((8, 8, 3))
    with pytest.raises(ValueError):  # MIScnn raised ValueError; DataError is one
        M.identify_axis((1, 2, 3, 4, 5, 6))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_names_are_miscnn_names(name):
    loss = LOSSES[name][0](3)
    if isinstance(loss, str):
        loss = M.class_weighted_loss(loss, [1, 1, 1])
    got = loss.__name__ if callable(loss) and not isinstance(loss, keras.losses.Loss) else loss.name
    expected = name.replace("_custom", "").replace("_none", "")
    assert got == expected
    weighted = M.class_weighted_loss(loss, [1.0, 2.0, 3.0])
    assert weighted.name == expected
    assert isinstance(weighted, keras.losses.Loss)


# --------------------------------------------------------------------------------------
# Values against the references
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
def test_metrics_match_reference(geometry):
    spatial, classes = GEOMETRIES[geometry]
    t, p = make_batch(spatial, classes, seed=1)
    assert_close(evaluate(M.dice_coefficient, t, p), ref_dice_coefficient(t, p))
    assert_close(evaluate(M.dice_soft, t, p), ref_dice_soft(t, p))
    assert_close(
        float(M.dice_soft(t, p, smooth=1.0)), ref_dice_soft(t, p, smooth=1.0)
    )


@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_matches_reference(name, geometry):
    spatial, classes = GEOMETRIES[geometry]
    build, reference = LOSSES[name]
    t, p = make_batch(spatial, classes, seed=2)
    assert_close(evaluate(build(classes), t, p), reference(t, p, None))


@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_class_weighted_loss_matches_reference(name, geometry):
    spatial, classes = GEOMETRIES[geometry]
    build, reference = LOSSES[name]
    t, p = make_batch(spatial, classes, seed=3)
    weights = [0.2, 1.7, 3.0][:classes]
    weighted = M.class_weighted_loss(build(classes), weights)
    expected = reference(t, p, np.array(weights))
    assert_close(evaluate(weighted, t, p), expected)
    # the dict form names only the non-default weights (class 0 keeps weight 1)
    as_dict = M.class_weighted_loss(build(classes), {1: 1.7} if classes == 2 else {1: 1.7, 2: 3.0})
    assert_close(evaluate(as_dict, t, p), reference(t, p, np.array([1.0] + weights[1:])))
    # weights must matter: the weighted value differs from the unweighted one
    assert abs(expected - reference(t, p, None)) > 1e-4


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_all_ones_class_weight_equals_base_loss(name):
    build = LOSSES[name][0]
    for spatial, classes in (((2, 8, 8), 3), ((1, 6, 6, 6), 2)):
        t, p = make_batch(spatial, classes, seed=4)
        base = build(classes)
        if isinstance(base, str):
            base = keras.losses.categorical_crossentropy
            expected = float(np.mean(keras.ops.convert_to_numpy(base(t, p))))
        else:
            expected = evaluate(base, t, p)
        ones = M.class_weighted_loss(base, [1.0] * classes)
        assert_close(evaluate(ones, t, p), expected)
        assert_close(evaluate(M.class_weighted_loss(base, {}), t, p), expected)


def test_tversky_has_miscnn_scale_normalized_variant_and_is_configurable():
    t, p = make_batch((2, 8, 8), 3, seed=5)
    tp, fn, fp, _, _ = ref_counts(t, p)
    miscnn = np.mean(3 - np.sum((tp + 1e-6) / (tp + 0.5 * fn + 0.5 * fp + 1e-6), axis=1))
    assert_close(float(M.tversky_loss(t, p)), miscnn)
    assert_close(float(M.tversky_loss_normalized(t, p)) * 3, miscnn)
    assert_close(evaluate(M.TverskyLoss(), t, p), miscnn)
    assert_close(evaluate(M.TverskyLoss(normalized=True), t, p) * 3, miscnn)
    assert M.TverskyLoss(normalized=True).name == "tversky_loss_normalized"
    per_sample = M.TverskyLoss(reduction=None)(t, p)  # what MIScnn's function returned
    assert_close(keras.ops.convert_to_numpy(per_sample), 3 - np.sum((tp + 1e-6) / (
        tp + 0.5 * fn + 0.5 * fp + 1e-6), axis=1))
    # alpha = beta = 0.5 with half the smoothing is exactly the soft Dice loss
    assert_close(
        float(M.tversky_loss_normalized(t, p, smooth=5e-6)), float(M.dice_soft_loss(t, p))
    )
    # a larger FN weight (beta) penalises the missed voxels more
    custom = float(M.tversky_loss(t, p, alpha=0.3, beta=0.7))
    assert_close(custom, ref_tversky(t, p, alpha=0.3, beta=0.7))
    assert_close(evaluate(M.TverskyLoss(alpha=0.3, beta=0.7), t, p), custom)


def test_hand_made_weighted_example():
    # one 2x1 image, 2 classes: voxel A is class 0, voxel B is class 1
    t = np.array([[[[1.0, 0.0]], [[0.0, 1.0]]]], dtype=np.float32)
    p = np.array([[[[0.8, 0.2]], [[0.4, 0.6]]]], dtype=np.float32)
    weights = {0: 1.0, 1: 3.0}
    ce = M.class_weighted_loss("categorical_crossentropy", weights)
    assert_close(evaluate(ce, t, p), (-np.log(0.8) * 1.0 - np.log(0.6) * 3.0) / 2)
    # per-class soft Dice (smooth 1e-5): class 0: 2*0.8/(1+1.2), class 1: 2*0.6/(1+0.8)
    d0 = (1.6 + 1e-5) / (2.2 + 1e-5)
    d1 = (1.2 + 1e-5) / (1.8 + 1e-5)
    dice = M.class_weighted_loss(M.dice_soft_loss, weights)
    assert_close(evaluate(dice, t, p), 1 - (1.0 * d0 + 3.0 * d1) / 4.0)
    assert_close(evaluate(M.dice_soft_loss, t, p), 1 - (d0 + d1) / 2.0)
    # weighting the worse class (1) up raises the loss; weighting it down lowers it
    down = M.class_weighted_loss(M.dice_soft_loss, [1.0, 0.1])
    assert evaluate(down, t, p) < evaluate(M.dice_soft_loss, t, p) < evaluate(dice, t, p)


@pytest.mark.parametrize("geometry", ["2d-c3", "3d-c2"])
def test_focal_losses_with_gamma_zero_are_weighted_crossentropy(geometry):
    spatial, classes = GEOMETRIES[geometry]
    t, p = make_batch(spatial, classes, seed=6)
    alpha = _alpha(classes)
    weighted_ce = evaluate(M.class_weighted_loss("categorical_crossentropy", alpha), t, p)
    assert_close(evaluate(M.categorical_focal_loss(alpha, gamma=0.0), t, p), weighted_ce)
    delta_weights = [0.3] + [0.7] * (classes - 1)
    delta_ce = evaluate(M.class_weighted_loss("categorical_crossentropy", delta_weights), t, p)
    assert_close(evaluate(M.symmetric_focal_loss(delta=0.7, gamma=0.0), t, p), delta_ce)
    assert_close(evaluate(M.asymmetric_focal_loss(delta=0.7, gamma=0.0), t, p), delta_ce)
    # and gamma > 0 down-weights easy voxels, so the focal value is smaller
    assert evaluate(M.symmetric_focal_loss(delta=0.7, gamma=2.0), t, p) < delta_ce


def test_dice_weighted_is_miscnn_value_and_normalized_variant_is_positive():
    t, p = make_batch((2, 8, 8), 3, seed=7)
    dice = ref_dice_per_class(t, p)
    value = M.dice_weighted([0.0, 1.0, 1.0])(t, p)
    assert tuple(value.shape) == ()
    # MIScnn: the Keras mean of the (N, C) tensor -w_c * D_nc
    assert_close(float(value), -np.mean(dice * np.array([0.0, 1.0, 1.0])))
    normalized = M.dice_weighted_normalized([0.0, 1.0, 1.0])(t, p)
    assert_close(float(normalized), 1 - np.mean(dice[:, 1:].mean(axis=1)))
    assert float(value) < 0.0 < float(normalized) < 1.0


@pytest.mark.parametrize("geometry", ["2d-c2", "2d-c3", "3d-c3"])
def test_perfect_prediction(geometry):
    spatial, classes = GEOMETRIES[geometry]
    t, _ = make_batch(spatial, classes, seed=8)
    assert_close(float(M.dice_coefficient(t, t)), 1.0)
    assert_close(float(M.dice_soft(t, t)), 1.0)
    for name, (build, _) in LOSSES.items():
        value = evaluate(build(classes), t, t)
        if name == "dice_weighted":  # MIScnn's value is -mean_c(w_c) at the optimum
            value += np.mean(_weights(classes))
        # (1 - TI)^(1 - gamma) with exponent 0.25-0.5 is steep at 0: eps-level 1 - TI and
        # the clipped prediction leave ~1e-2 there, still far below a random prediction
        bound = 0.05 if "focal_tversky" in name or "unified" in name else 1e-4
        assert -1e-6 <= value < bound, (name, value)


def test_mixed_precision_inputs_compute_in_float32():
    t, p = make_batch((2, 8, 8), 3, seed=9)
    for fn in (M.dice_soft, M.tversky_loss, M.dice_crossentropy):
        value = fn(t.astype(np.uint8), p.astype(np.float16))
        assert keras.backend.standardize_dtype(value.dtype) == "float32"
        np.testing.assert_allclose(float(value), float(fn(t, p)), rtol=2e-3)
    value = M.combo_loss()(t, p.astype(np.float16))
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    value64 = M.tversky_loss(t.astype(np.float64), p.astype(np.float64))
    assert keras.backend.standardize_dtype(value64.dtype) == "float64"


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


def test_class_weighted_loss_errors():
    t, p = make_batch((1, 8, 8), 3, seed=10)
    with pytest.raises(ConfigurationError, match="does not know"):
        M.class_weighted_loss(lambda y_true, y_pred: y_pred, [1, 2, 3])
    with pytest.raises(ConfigurationError, match="does not know"):
        M.class_weighted_loss("mean_squared_error", [1, 2, 3])
    with pytest.raises(ConfigurationError, match="got the metric 'dice_soft'"):
        M.class_weighted_loss(M.dice_soft, [1, 2, 3])
    with pytest.raises(ConfigurationError, match="from_logits"):
        M.class_weighted_loss(keras.losses.CategoricalCrossentropy(from_logits=True), [1, 2, 3])
    with pytest.raises(ConfigurationError, match="2 entries but y_pred has 3 classes"):
        M.class_weighted_loss(M.tversky_loss, [1.0, 2.0])(t, p)
    with pytest.raises(ConfigurationError, match="names class"):
        M.class_weighted_loss(M.combo_loss(), {5: 2.0})(t, p)
    with pytest.raises(ConfigurationError, match="3 classes"):
        M.dice_weighted([1.0, 2.0])(t, p)
    for bad in ([1.0, -1.0, 1.0], [0.0, 0.0, 0.0], [1.0, np.nan, 1.0], "abc", {"x": 1.0}, [[1.0]]):
        with pytest.raises(ConfigurationError, match="class_weight"):
            M.class_weighted_loss(M.tversky_loss, bad)
    with pytest.raises(ConfigurationError, match="'dice_weighted' without its weights"):
        M.class_weighted_loss(M.dice_weighted, [1, 2, 3])
    assert M.class_weighted_loss(M.tversky_loss, None) is M.tversky_loss


def test_class_weighted_loss_accepts_names_and_keras_crossentropy():
    t, p = make_batch((2, 8, 8), 3, seed=14)
    w = [0.2, 1.0, 3.0]
    expected = ref_unified(t, p, np.array(w), asymmetric=True)
    assert_close(evaluate(M.class_weighted_loss("asym_unified_focal_loss", w), t, p), expected)
    by_name = M.class_weighted_loss("tversky_loss", w)
    assert_close(evaluate(by_name, t, p), ref_tversky(t, p, np.array(w)))
    cce = M.class_weighted_loss(keras.losses.CategoricalCrossentropy(), w)
    assert_close(evaluate(cce, t, p), ref_ce(t, p, np.array(w)))
    # re-weighting a weighted loss replaces the old weights
    twice = M.class_weighted_loss(M.class_weighted_loss(M.combo_loss(), [5.0, 5.0, 0.1]), w)
    assert_close(evaluate(twice, t, p), ref_combo(t, p, np.array(w)))


@pytest.mark.parametrize(
    "factory, kwargs, parameter",
    [
        (M.combo_loss, {"alpha": 1.5}, "alpha"),
        (M.combo_loss, {"beta": -0.1}, "beta"),
        (M.focal_tversky_loss, {"delta": 2.0}, "delta"),
        (M.symmetric_focal_loss, {"gamma": -1.0}, "gamma"),
        (M.asymmetric_focal_tversky_loss, {"gamma": 1.5}, "gamma"),
        (M.sym_unified_focal_loss, {"weight": 2.0}, "weight"),
        (M.categorical_focal_loss, {"alpha": [1.0, -2.0]}, "alpha"),
        (M.dice_weighted, {"weights": None}, "weights"),
    ],
)
def test_invalid_parameters_raise(factory, kwargs, parameter):
    with pytest.raises(ConfigurationError, match=parameter):
        factory(**kwargs)


def test_shape_errors():
    t, p = make_batch((1, 8, 8), 3)
    with pytest.raises(ShapeMismatchError):
        M.dice_soft(t[..., :2], p)
    with pytest.raises(DataError):
        M.tversky_loss(t[0], p[0])


# --------------------------------------------------------------------------------------
# Factories used uncalled (MIScnn scripts pass ``loss=focal_tversky_loss``)
# --------------------------------------------------------------------------------------

FACTORIES_WITH_DEFAULTS = [
    "categorical_focal_loss", "combo_loss", "focal_tversky_loss", "symmetric_focal_loss",
    "symmetric_focal_tversky_loss", "asymmetric_focal_loss", "asymmetric_focal_tversky_loss",
    "sym_unified_focal_loss", "asym_unified_focal_loss",
]  # fmt: skip


@pytest.mark.parametrize("name", FACTORIES_WITH_DEFAULTS)
def test_uncalled_factory_is_the_default_loss(name):
    factory = getattr(M, name)
    assert isinstance(factory(), keras.losses.Loss) and factory().name == name
    assert keras.saving.get_registered_object(f"miseg>{name}") is factory
    for spatial, classes in (((2, 8, 8), 3), ((2, 6, 6, 6), 2)):
        t, p = make_batch(spatial, classes, seed=15)
        value = factory(t, p)  # what Keras does with loss=factory
        assert tuple(value.shape) == ()
        assert_close(float(value), evaluate(factory(), t, p))
        assert_close(float(factory(tf.constant(t), tf.constant(p))), float(value))
    # class_weighted_loss accepts the uncalled factory like its name
    weighted = M.class_weighted_loss(factory, [0.5, 2.0, 1.0])
    t, p = make_batch((2, 8, 8), 3, seed=16)
    expected = M.class_weighted_loss(factory(), [0.5, 2.0, 1.0])
    assert_close(evaluate(weighted, t, p), evaluate(expected, t, p))


def test_hyper_parameter_calls_still_configure_the_loss():
    t, p = make_batch((2, 8, 8), 2, seed=17)
    focal = M.categorical_focal_loss(np.array([0.3, 0.7]), np.float32(1.0))
    assert isinstance(focal, M.CategoricalFocalLoss) and focal.alpha == [0.3, 0.7]
    assert isinstance(M.combo_loss(0.3, 0.8), M.ComboLoss)
    assert isinstance(M.focal_tversky_loss(0.6, 1.0), M.FocalTverskyLoss)
    expected = ref_focal_tversky(t, p, None, 0.6, 1.0)
    assert_close(evaluate(M.focal_tversky_loss(0.6, 1.0), t, p), expected)


def test_uncalled_dice_weighted_raises_clear_error():
    t, p = make_batch((2, 8, 8), 3, seed=18)
    for factory in (M.dice_weighted, M.dice_weighted_normalized):
        with pytest.raises(ConfigurationError, match="needs one weight per class"):
            factory(t, p)


def test_categorical_focal_alpha_length_rules():
    t, p = make_batch((2, 8, 8), 3, seed=19)
    scalar = evaluate(M.categorical_focal_loss(0.4), t, p)
    assert_close(scalar, ref_ce(t, p, None, np.full(3, 0.4), 2.0))
    # a one-element alpha applies to every class (NumPy broadcasting, as in MIScnn)
    assert_close(evaluate(M.categorical_focal_loss([0.4]), t, p), scalar)
    # the uncalled default is alpha=0.25, gamma=2 (keras.losses.CategoricalFocalLoss's)
    assert_close(float(M.categorical_focal_loss(t, p)), ref_ce(t, p, None, np.full(3, 0.25), 2.0))
    short = M.categorical_focal_loss([0.25, 0.75])
    message = r"alpha=\[0.25, 0.75\] has 2 entries but y_pred has 3 classes"
    with pytest.raises(ConfigurationError, match=message):
        short(t, p)
    # in training the error surfaces as is at the first step, not as a TF graph error
    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1, activation="softmax")(inputs))
    model.compile("adam", loss=short)
    with pytest.raises(ConfigurationError, match=message):
        model.fit(np.zeros((2, 8, 8, 1), np.float32), t, epochs=1, verbose=0)


# --------------------------------------------------------------------------------------
# Differentiability
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("geometry", ["2d-c3", "3d-c2"])
def test_losses_are_differentiable_and_descend(geometry):
    spatial, classes = GEOMETRIES[geometry]
    t, _ = make_batch(spatial, classes, seed=11)
    logits0 = np.random.default_rng(12).normal(size=t.shape).astype(np.float32)
    for name, (build, _) in LOSSES.items():
        for loss in (build(classes), M.class_weighted_loss(build(classes), _weights(classes))):
            if isinstance(loss, str):
                continue
            logits = tf.Variable(logits0)
            values = []
            for _ in range(4):
                with tf.GradientTape() as tape:
                    value = loss(t, tf.nn.softmax(logits, axis=-1))
                grad = tape.gradient(value, logits).numpy()
                assert np.all(np.isfinite(grad)) and np.any(grad != 0), name
                values.append(float(value))
                logits.assign_sub(0.5 * grad / np.abs(grad).max())
            assert values[-1] < values[0], (name, values)


# --------------------------------------------------------------------------------------
# Keras integration: history keys, .keras round trip in a fresh process
# --------------------------------------------------------------------------------------

_LOAD_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import miseg  # only the package: importing keras afterwards registers miseg's objects
    import keras
    assert "miseg.neural_network.metrics" in sys.modules
    data = np.load(sys.argv[1])
    out = {}
    for key in ("function", "factory", "uncalled"):
        model = keras.models.load_model(sys.argv[2] + "/" + key + ".keras")
        values = model.evaluate(data["x"], data["y"], batch_size=4, verbose=0, return_dict=True)
        out[key] = {"values": values, "loss": model.loss.get_config()
                    if hasattr(model.loss, "get_config") else model.loss.__name__}
    print("RESULT" + json.dumps(out))
    """
)


def _tiny_model():
    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Softmax()(keras.layers.Conv2D(2, 1)(inputs))
    return keras.Model(inputs, outputs)


def test_compile_fit_history_and_keras_round_trip_in_fresh_process(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(13)
    x = rng.normal(size=(4, 8, 8, 1)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[(x[..., 0] > 0.3).astype(int)]
    np.savez(tmp_path / "data.npz", x=x, y=y)
    setups = {
        "function": (M.tversky_loss, [M.dice_soft, M.dice_coefficient]),
        "factory": (
            M.class_weighted_loss(M.combo_loss(alpha=0.3, beta=0.6), {0: 0.5, 1: 2.0}),
            [M.asym_unified_focal_loss(), M.dice_soft],
        ),
        "uncalled": (M.focal_tversky_loss, [M.sym_unified_focal_loss, M.dice_soft]),
    }
    expected = {}
    for key, (loss, metrics) in setups.items():
        model = _tiny_model()
        model.compile(keras.optimizers.Adam(0.01), loss=loss, metrics=metrics)
        history = model.fit(x, y, batch_size=4, epochs=1, verbose=0).history
        metric_names = [getattr(m, "name", getattr(m, "__name__", None)) for m in metrics]
        assert set(metric_names) | {"loss"} <= set(history), history.keys()
        expected[key] = model.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
        model.save(tmp_path / f"{key}.keras")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    env["PYTHONPATH"] = str(Path(M.__file__).resolve().parents[2])
    proc = subprocess.run(
        [sys.executable, "-c", _LOAD_SCRIPT, str(tmp_path / "data.npz"), str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")][-1]
    loaded = json.loads(line[len("RESULT"):])
    for key in setups:
        assert set(loaded[key]["values"]) == set(expected[key])
        for metric, value in expected[key].items():
            np.testing.assert_allclose(loaded[key]["values"][metric], value, rtol=1e-5)
    assert loaded["function"]["loss"] == "tversky_loss"
    assert loaded["uncalled"]["loss"] == "focal_tversky_loss"
    factory = loaded["factory"]["loss"]
    assert factory["name"] == "combo_loss"
    assert (factory["alpha"], factory["beta"]) == (0.3, 0.6)
    assert factory["class_weight"] == {"0": 0.5, "1": 2.0}
