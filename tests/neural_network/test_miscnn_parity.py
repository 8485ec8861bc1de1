"""MIScnn-named losses and metrics compute MIScnn 1.4's values (scale, reduction, smoothing).

Each reference below is written from MIScnn's formulas (section 6.3 of the API notes) in
NumPy and float64. It returns what MIScnn's function returned, unreduced (a scalar, the
per-sample ``(N,)`` Tversky values, or the ``(N, C)`` ``dice_weighted`` tensor);
:func:`keras_value` then applies Keras' default ``sum_over_batch_size`` reduction, which
is the value Keras reported for MIScnn. miseg must report the same value.

MIScnn's focal losses index the class axis as ``[:, :, :, 0]`` / ``[:, :, :, 1]``, which is
right only for 2D binary batches. The references apply MIScnn's background term to class 0
and its foreground term to every other class of the last axis: for 2D binary input that is
exactly MIScnn's formula, elsewhere it is the multi-class fix miseg keeps.
"""

import keras
import numpy as np
import pytest

import miseg.neural_network.metrics as M

EPS = 1e-7  # keras.config.epsilon()
GEOMETRIES = {
    "2d-c2": ((3, 8, 8), 2),
    "2d-c4": ((3, 8, 8), 4),
    "3d-c2": ((2, 6, 6, 6), 2),
    "3d-c3": ((2, 6, 6, 6), 3),
}
WEIGHTS = [0.3, 1.0, 2.5, 0.7]
ALPHA = [0.25, 0.75, 0.5, 1.0]


def make_batch(spatial, classes, activation, seed):
    """Seeded one-hot truth and a softmax or (unnormalised) sigmoid prediction, float32."""
    rng = np.random.default_rng(seed)
    frequencies = np.linspace(2, 1, classes)
    labels = rng.choice(classes, size=spatial, p=frequencies / frequencies.sum())
    y_true = np.eye(classes)[labels].astype(np.float32)
    logits = rng.normal(scale=1.5, size=spatial + (classes,))
    if activation == "softmax":
        y_pred = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    else:
        y_pred = 1.0 / (1.0 + np.exp(-logits))
    return y_true, y_pred.astype(np.float32)


def keras_value(output):
    """Keras' default reduction of a loss output: the mean of all its elements."""
    return float(np.mean(output))


# --------------------------------------------------------------------------------------
# MIScnn's formulas in NumPy (float64)
# --------------------------------------------------------------------------------------


def _f64(t, p):
    return np.asarray(t, np.float64), np.asarray(p, np.float64)


def _spatial(a):
    return tuple(range(1, a.ndim - 1))


def _counts(t, p):
    axes = _spatial(t)
    return np.sum(t * p, axes), np.sum(t * (1 - p), axes), np.sum((1 - t) * p, axes)


def miscnn_dice_coefficient(t, p, smooth=1e-5):
    t, p = _f64(t, p)
    return (2 * np.sum(t * p) + smooth) / (np.sum(t) + np.sum(p) + smooth)


def _soft_dice_nc(t, p, smooth=1e-5):
    axes = _spatial(t)
    return (2 * np.sum(t * p, axes) + smooth) / (np.sum(t, axes) + np.sum(p, axes) + smooth)


def miscnn_dice_soft(t, p, smooth=1e-5):
    return np.mean(_soft_dice_nc(*_f64(t, p), smooth))


def miscnn_dice_weighted(t, p, weights, smooth=1e-5):
    return -(_soft_dice_nc(*_f64(t, p), smooth) * np.asarray(weights))  # (N, C)


def keras_categorical_crossentropy(t, p):
    """Keras' categorical_crossentropy: normalise over classes, clip, -Σ t log p."""
    t, p = _f64(t, p)
    p = np.clip(p / p.sum(-1, keepdims=True), EPS, 1 - EPS)
    return -np.sum(t * np.log(p), -1)


def miscnn_dice_crossentropy(t, p):
    return (1 - miscnn_dice_soft(t, p)) + np.mean(keras_categorical_crossentropy(t, p))


def miscnn_tversky_loss(t, p, smooth=1e-6):
    t, p = _f64(t, p)
    tp, fn, fp = _counts(t, p)
    tversky = (tp + smooth) / (tp + 0.5 * fn + 0.5 * fp + smooth)
    return t.shape[-1] - np.sum(tversky, -1)  # (N,)


def miscnn_tversky_crossentropy(t, p):
    return miscnn_tversky_loss(t, p) + np.mean(keras_categorical_crossentropy(t, p))


def miscnn_categorical_focal_loss(t, p, alpha, gamma=2.0):
    t, p = _f64(t, p)
    p = np.clip(p, EPS, 1 - EPS)
    loss = np.asarray(alpha) * (1 - p) ** gamma * (-t * np.log(p))
    return np.mean(np.sum(loss, -1))


def miscnn_focal_tversky_loss(t, p, delta=0.7, gamma=0.75, smooth=1e-6):
    t, p = _f64(t, p)
    tp, fn, fp = _counts(t, p)
    tversky = (tp + smooth) / (tp + delta * fn + (1 - delta) * fp + smooth)
    return np.mean((1 - tversky) ** gamma)


def _focal_ce_terms(t, p, delta, gamma, asymmetric):
    t, p = _f64(t, p)
    p = np.clip(p, EPS, 1 - EPS)
    ce = -t * np.log(p)
    back = (1 - delta) * (1 - p[..., 0]) ** gamma * ce[..., 0]
    fore = [
        delta * (ce[..., c] if asymmetric else (1 - p[..., c]) ** gamma * ce[..., c])
        for c in range(1, t.shape[-1])
    ]
    return np.stack([back] + fore, -1)


def miscnn_symmetric_focal_loss(t, p, delta=0.7, gamma=2.0):
    return np.mean(np.sum(_focal_ce_terms(t, p, delta, gamma, False), -1))


def miscnn_asymmetric_focal_loss(t, p, delta=0.7, gamma=2.0):
    return np.mean(np.sum(_focal_ce_terms(t, p, delta, gamma, True), -1))


def _focal_tversky_terms(t, p, delta, gamma, asymmetric):
    t, p = _f64(t, p)
    tp, fn, fp = _counts(t, np.clip(p, EPS, 1 - EPS))
    dice = (tp + EPS) / (tp + delta * fn + (1 - delta) * fp + EPS)  # (N, C)
    back = 1 - dice[:, 0] if asymmetric else (1 - dice[:, 0]) * (1 - dice[:, 0]) ** -gamma
    fore = [(1 - dice[:, c]) * (1 - dice[:, c]) ** -gamma for c in range(1, t.shape[-1])]
    return np.stack([back] + fore, -1)


def miscnn_symmetric_focal_tversky_loss(t, p, delta=0.7, gamma=0.75):
    return np.mean(_focal_tversky_terms(t, p, delta, gamma, False))


def miscnn_asymmetric_focal_tversky_loss(t, p, delta=0.7, gamma=0.75):
    return np.mean(_focal_tversky_terms(t, p, delta, gamma, True))


def miscnn_unified(t, p, weight=0.5, delta=0.6, gamma=0.5, asymmetric=False):
    ftl = np.mean(_focal_tversky_terms(t, p, delta, gamma, asymmetric))
    fl = np.mean(np.sum(_focal_ce_terms(t, p, delta, gamma, asymmetric), -1))
    return ftl + fl if weight is None else weight * ftl + (1 - weight) * fl


# name -> (miseg loss/metric for C classes, MIScnn reference(t, p) -> unreduced output)
PAIRS = {
    "dice_coefficient": (lambda c: M.dice_coefficient, miscnn_dice_coefficient),
    "dice_coefficient_loss": (
        lambda c: M.dice_coefficient_loss,
        lambda t, p: 1 - miscnn_dice_coefficient(t, p),
    ),
    "dice_soft": (lambda c: M.dice_soft, miscnn_dice_soft),
    "dice_soft_loss": (lambda c: M.dice_soft_loss, lambda t, p: 1 - miscnn_dice_soft(t, p)),
    "dice_weighted": (
        lambda c: M.dice_weighted(WEIGHTS[:c]),
        lambda t, p: miscnn_dice_weighted(t, p, WEIGHTS[: t.shape[-1]]),
    ),
    "dice_crossentropy": (lambda c: M.dice_crossentropy, miscnn_dice_crossentropy),
    "tversky_loss": (lambda c: M.tversky_loss, miscnn_tversky_loss),
    "tversky_crossentropy": (lambda c: M.tversky_crossentropy, miscnn_tversky_crossentropy),
    "categorical_focal_loss": (
        lambda c: M.categorical_focal_loss(ALPHA[:c], gamma=2.0),
        lambda t, p: miscnn_categorical_focal_loss(t, p, ALPHA[: t.shape[-1]], 2.0),
    ),
    "categorical_focal_loss_scalar_alpha": (
        lambda c: M.categorical_focal_loss(0.4, gamma=1.5),
        lambda t, p: miscnn_categorical_focal_loss(t, p, 0.4, 1.5),
    ),
    "focal_tversky_loss": (lambda c: M.focal_tversky_loss(), miscnn_focal_tversky_loss),
    "focal_tversky_loss_custom": (
        lambda c: M.focal_tversky_loss(delta=0.4, gamma=1.5, smooth=1e-4),
        lambda t, p: miscnn_focal_tversky_loss(t, p, 0.4, 1.5, 1e-4),
    ),
    "symmetric_focal_loss": (lambda c: M.symmetric_focal_loss(), miscnn_symmetric_focal_loss),
    "asymmetric_focal_loss": (
        lambda c: M.asymmetric_focal_loss(delta=0.6, gamma=1.0),
        lambda t, p: miscnn_asymmetric_focal_loss(t, p, 0.6, 1.0),
    ),
    "symmetric_focal_tversky_loss": (
        lambda c: M.symmetric_focal_tversky_loss(),
        miscnn_symmetric_focal_tversky_loss,
    ),
    "asymmetric_focal_tversky_loss": (
        lambda c: M.asymmetric_focal_tversky_loss(delta=0.6, gamma=0.5),
        lambda t, p: miscnn_asymmetric_focal_tversky_loss(t, p, 0.6, 0.5),
    ),
    "sym_unified_focal_loss": (lambda c: M.sym_unified_focal_loss(), miscnn_unified),
    "asym_unified_focal_loss": (
        lambda c: M.asym_unified_focal_loss(weight=None, delta=0.7, gamma=0.25),
        lambda t, p: miscnn_unified(t, p, None, 0.7, 0.25, asymmetric=True),
    ),
}


def miseg_value(loss, t, p):
    return float(keras.ops.convert_to_numpy(loss(t, p)))


@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
@pytest.mark.parametrize("name", sorted(PAIRS))
def test_miscnn_named_loss_reports_miscnn_value(name, geometry, activation):
    spatial, classes = GEOMETRIES[geometry]
    build, reference = PAIRS[name]
    t, p = make_batch(spatial, classes, activation, seed=sorted(PAIRS).index(name))
    np.testing.assert_allclose(
        miseg_value(build(classes), t, p), keras_value(reference(t, p)), rtol=2e-5, atol=1e-6
    )


@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
def test_per_sample_values_match_miscnn_unreduced_output(geometry):
    spatial, classes = GEOMETRIES[geometry]
    t, p = make_batch(spatial, classes, "softmax", seed=40)
    # MIScnn's tversky_loss returned one value per sample
    per_sample = keras.ops.convert_to_numpy(M.TverskyLoss(reduction=None)(t, p))
    np.testing.assert_allclose(per_sample, miscnn_tversky_loss(t, p), rtol=2e-5)
    # tversky_crossentropy added the batch-mean cross-entropy to each sample's Tversky
    # term; miseg adds each sample's own cross-entropy, so only the batch mean agrees
    per_sample = keras.ops.convert_to_numpy(M.TverskyCrossentropyLoss(reduction=None)(t, p))
    ce = keras_categorical_crossentropy(t, p).reshape(len(t), -1).mean(-1)
    np.testing.assert_allclose(per_sample, miscnn_tversky_loss(t, p) + ce, rtol=2e-5)
    np.testing.assert_allclose(
        per_sample.mean(), keras_value(miscnn_tversky_crossentropy(t, p)), rtol=2e-5
    )
    # dice_weighted's (N, C) tensor: miseg's per-sample values are its class means
    per_sample = M.DiceWeightedLoss(WEIGHTS[:classes], reduction=None)(t, p)
    expected = miscnn_dice_weighted(t, p, WEIGHTS[:classes]).mean(-1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(per_sample), expected, rtol=2e-5)


@pytest.mark.parametrize("geometry", ["2d-c2", "3d-c3"])
def test_normalized_variants_are_scaled_miscnn_losses(geometry):
    spatial, classes = GEOMETRIES[geometry]
    t, p = make_batch(spatial, classes, "sigmoid", seed=41)
    ce = np.mean(keras_categorical_crossentropy(t, p))
    tversky = keras_value(miscnn_tversky_loss(t, p))
    np.testing.assert_allclose(
        miseg_value(M.tversky_loss_normalized, t, p), tversky / classes, rtol=2e-5
    )
    np.testing.assert_allclose(
        miseg_value(M.tversky_crossentropy_normalized, t, p), tversky / classes + ce, rtol=2e-5
    )
    weights = np.asarray(WEIGHTS[:classes])
    dice = _soft_dice_nc(*_f64(t, p))
    np.testing.assert_allclose(
        miseg_value(M.dice_weighted_normalized(weights), t, p),
        1 - np.mean(dice @ weights / weights.sum()),
        rtol=2e-5,
    )


@pytest.mark.parametrize("geometry", ["2d-c2", "3d-c3"])
def test_combo_loss_is_miscnn_intended_formula_plus_constant(geometry):
    """MIScnn's combo_loss crashed; miseg computes the loss it describes, ``+ (1 - alpha)``.

    Intended: ``alpha·CE_beta − (1 − alpha)·soft Dice`` with the cross-entropy weighted
    ``beta`` for the background and ``1 − beta`` for the foreground.
    """
    spatial, classes = GEOMETRIES[geometry]
    t, p = make_batch(spatial, classes, "softmax", seed=42)
    alpha, beta = 0.3, 0.8
    t64, p64 = _f64(t, p)
    factors = np.array([beta] + [1 - beta] * (classes - 1))
    ce = np.mean(np.sum(factors * -t64 * np.log(np.clip(p64, EPS, 1 - EPS)), -1))
    intended = alpha * ce - (1 - alpha) * miscnn_dice_soft(t, p)
    value = miseg_value(M.combo_loss(alpha=alpha, beta=beta), t, p)
    np.testing.assert_allclose(value, intended + (1 - alpha), rtol=2e-5)
