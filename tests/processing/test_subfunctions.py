"""Tests of miseg.processing.subfunctions against direct numpy/scipy/skimage references."""

from __future__ import annotations

import json

import numpy as np
import pytest
from batchgenerators.augmentations.utils import pad_nd_image, resize_segmentation
from scipy.ndimage import gaussian_filter
from skimage.exposure import equalize_adapthist, equalize_hist, rescale_intensity
from skimage.transform import resize as sk_resize

from miseg.data_loading.sample import Sample
from miseg.errors import ConfigurationError, GeometryError, ShapeMismatchError
from miseg.processing import subfunctions as sfmod
from miseg.processing.subfunctions import (
    Abstract_Subfunction,
    Clipping,
    ContrastStretching,
    GaussianSmoothing,
    HistogramEqualization,
    Normalization,
    Padding,
    Resampling,
    Resize,
    TransformHU,
    call_postprocessing,
)


# ---------------------------------------------------------------------------------- helpers
def make_sample(shape, channels=1, seg=None, spacing=None, seed=0, index="case_0", **extended):
    rng = np.random.default_rng(seed)
    three_dim = len(shape) == 3
    img = rng.normal(100.0, 20.0, size=tuple(shape) + ((channels,) if channels > 1 else ()))
    ext = dict(extended)
    if spacing is not None:
        ext["spacing"] = tuple(spacing)
    sample = Sample(index, img, channels=channels, classes=3, extended=ext, three_dim=three_dim)
    if seg is not None:
        sample.add_segmentation(seg)
    return sample


def sphere(shape, radius, center=None, label=1):
    grids = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    center = [(s - 1) / 2 for s in shape] if center is None else center
    dist2 = sum((g - c) ** 2 for g, c in zip(grids, center))
    return np.where(dist2 <= radius**2, label, 0).astype(np.uint8)


def dice(a, b, label):
    a, b = a == label, b == label
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def softmax_from_labels(labels, classes, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 0.3, size=labels.shape + (classes,))
    logits += 3.0 * np.eye(classes)[labels]
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


# ---------------------------------------------------------------------------------- contract
def test_star_import_exports_miscnn_six_and_new_ones():
    namespace: dict = {}
    exec("from miseg.processing.subfunctions import *", namespace)
    for name in ("Clipping", "Normalization", "Resampling", "Resize", "Padding", "TransformHU",
                 "GaussianSmoothing", "HistogramEqualization", "ContrastStretching",
                 "Abstract_Subfunction"):
        assert name in namespace, name
    assert set(sfmod.__all__) <= set(dir(sfmod))


ALL_SUBFUNCTIONS = [
    Clipping(min=-5, max=7.5),
    Normalization(mode="minmax", smooth=1e-3, per_channel=True),
    Resampling(new_spacing=(1.5, 1, 2), order_img=1, order_seg=0),
    Resize(new_shape=(8, 9, 10), order_img=2),
    Padding(min_size=(8, 8), pad_mode="edge", pad_value_img=-1, pad_value_seg=2,
            shape_must_be_divisible_by=4),
    TransformHU(normalize=False, slope=2, intercept=-1000, clipScan_value=-3000,
                minmaxBound=(-500, 500)),
    GaussianSmoothing(sigma=(1, 2), spacing_aware=True, mode="nearest"),
    HistogramEqualization(adaptive=True, clip_limit=0.02, kernel_size=(4, 4), nbins=64),
    ContrastStretching(percentiles=(1, 99), out_range=(-1, 1)),
]


@pytest.mark.parametrize("sf", ALL_SUBFUNCTIONS, ids=lambda s: type(s).__name__)
def test_config_is_json_and_rebuilds_equal_subfunction(sf):
    config = sf.get_config()
    rebuilt = type(sf)(**json.loads(json.dumps(config)))
    assert rebuilt.get_config() == config
    assert repr(sf).startswith(type(sf).__name__ + "(")
    for key in config:
        assert f"{key}=" in repr(sf)


def test_repr_shows_values():
    assert repr(Clipping(min=-5, max=7.5)) == "Clipping(min=-5, max=7.5)"
    assert repr(Resampling()) == "Resampling(new_spacing=(1, 1, 1), order_img=3, order_seg=1)"
    assert Padding(16).get_config() == {
        "min_size": 16, "pad_mode": "constant", "pad_value_img": 0, "pad_value_seg": 0,
        "shape_must_be_divisible_by": None,
    }


def test_abstract_subfunction_requires_both_methods():
    with pytest.raises(TypeError):
        Abstract_Subfunction()

    class OnlyPre(Abstract_Subfunction):
        def preprocessing(self, sample, training=True):
            sample.img_data = sample.img_data + 1

    with pytest.raises(TypeError):
        OnlyPre()


class _OldStyle(Abstract_Subfunction):
    """MIScnn <= 1.0 custom subfunction: postprocessing(self, prediction)."""

    def preprocessing(self, sample, training=True):
        sample.img_data = sample.img_data * 2

    def postprocessing(self, prediction):  # the old signature on purpose
        return prediction + 10


class _NewStyle(Abstract_Subfunction):
    def preprocessing(self, sample, training=True):
        sample.img_data = sample.img_data * 2

    def postprocessing(self, sample, prediction, activation_output=False):
        return prediction + (100 if activation_output else 1) + len(sample.index)


class _SamplePrediction:
    def postprocessing(self, sample, prediction):
        return prediction * len(sample.index)


class _KeywordActivation:
    def postprocessing(self, prediction, *, activation_output=False):
        return prediction - (1 if activation_output else 2)


def test_call_postprocessing_adapts_to_signature():
    sample = make_sample((4, 4))
    pred = np.zeros((4, 4), dtype=np.int64)
    assert np.all(call_postprocessing(_OldStyle(), sample, pred, False) == 10)
    assert np.all(call_postprocessing(_OldStyle(), sample, pred, True) == 10)
    assert np.all(call_postprocessing(_NewStyle(), sample, pred, True) == 100 + 6)
    assert np.all(call_postprocessing(_NewStyle(), sample, pred, False) == 1 + 6)
    assert np.all(call_postprocessing(_SamplePrediction(), sample, pred + 1, False) == 6)
    assert np.all(call_postprocessing(_KeywordActivation(), sample, pred, True) == -1)
    assert np.all(call_postprocessing(_KeywordActivation(), sample, pred, False) == -2)

    class NoArgs:
        def postprocessing(self):
            return None

    with pytest.raises(ConfigurationError, match="NoArgs"):
        call_postprocessing(NoArgs(), sample, pred, False)


def test_pipeline_with_old_style_subfunction_in_reverse_order():
    seg = sphere((12, 10, 9), 3)
    sample = make_sample((12, 10, 9), seg=seg, spacing=(1.0, 1.0, 1.0))
    pipeline = [_OldStyle(), Resize((16, 16, 16)), Padding((20, 16, 17))]
    for sf in pipeline:
        sf.preprocessing(sample, training=True)
    assert sample.spatial_shape == (20, 16, 17)
    pred = sample.seg_data[..., 0].astype(np.int64)
    for sf in reversed(pipeline):
        pred = call_postprocessing(sf, sample, pred, False)
    assert pred.shape == seg.shape
    assert np.all(pred[seg == 0] >= 10)  # the old subfunction ran (+10)
    assert dice(pred - 10, seg, 1) > 0.9


# ---------------------------------------------------------------------------------- Clipping
def test_clipping_values_and_no_mutation():
    sample = make_sample((7, 5), channels=2, seg=np.ones((7, 5)))
    original = sample.img_data
    backup = original.copy()
    seg_before = sample.seg_data.copy()
    Clipping(min=90, max=110).preprocessing(sample)
    np.testing.assert_array_equal(sample.img_data, np.clip(backup, 90, 110))
    np.testing.assert_array_equal(original, backup)
    assert sample.img_data is not original
    np.testing.assert_array_equal(sample.seg_data, seg_before)
    pred = np.arange(35).reshape(7, 5)
    assert Clipping(min=0, max=1).postprocessing(sample, pred) is pred


def test_clipping_one_sided_and_invalid():
    sample = make_sample((5, 5, 5))
    backup = sample.img_data.copy()
    Clipping(min=None, max=100).preprocessing(sample)
    np.testing.assert_array_equal(sample.img_data, np.minimum(backup, 100))
    with pytest.raises(ConfigurationError, match=r"min=5.*max=5"):
        Clipping(min=5, max=5)
    with pytest.raises(ConfigurationError, match=r"min=10.*max=-3"):
        Clipping(min=10, max=-3)
    with pytest.raises(ConfigurationError, match="both are None"):
        Clipping(None, None)
    with pytest.raises(ConfigurationError, match="max"):
        Clipping(0, "high")


# ---------------------------------------------------------------------------------- Normalization
@pytest.mark.parametrize("shape,channels", [((9, 7), 1), ((9, 7), 3), ((5, 6, 7), 2)])
def test_normalization_modes_against_numpy(shape, channels):
    base = make_sample(shape, channels=channels)
    img = base.img_data.astype(np.float64)
    smooth = 1e-6
    refs = {
        "z-score": (img - img.mean()) / (img.std() + smooth),
        "minmax": (img - img.min()) / (img.max() - img.min() + smooth),
        "grayscale": np.round(255 * (img - img.min()) / (img.max() - img.min() + smooth)),
    }
    for mode, ref in refs.items():
        sample = make_sample(shape, channels=channels)
        Normalization(mode=mode).preprocessing(sample)
        assert sample.img_data.dtype == np.float64
        np.testing.assert_allclose(sample.img_data, ref, rtol=1e-10, atol=1e-10)


def test_normalization_per_channel_and_dtype():
    sample = make_sample((6, 7, 8), channels=2)
    sample.img_data[..., 1] = sample.img_data[..., 1] * 50 + 1000
    img = sample.img_data.copy()
    sample.img_data = sample.img_data.astype(np.float32)
    Normalization(per_channel=True).preprocessing(sample)
    assert sample.img_data.dtype == np.float32
    for c in range(2):
        ref = (img[..., c] - img[..., c].mean()) / (img[..., c].std() + 1e-6)
        np.testing.assert_allclose(sample.img_data[..., c], ref, rtol=1e-4, atol=1e-4)
        assert abs(sample.img_data[..., c].mean()) < 1e-4
        assert abs(sample.img_data[..., c].std() - 1) < 1e-4


def test_normalization_smooth_only_in_denominator():
    sample = Sample("flat", np.full((4, 4), 7.0), 1, 2, three_dim=False)
    Normalization(mode="z-score", smooth=1e-3).preprocessing(sample)
    np.testing.assert_array_equal(sample.img_data, 0.0)  # MIScnn gave smooth/smooth = 1
    sample = Sample("flat", np.full((4, 4), 7.0), 1, 2, three_dim=False)
    Normalization(mode="minmax", smooth=1e-3).preprocessing(sample)
    np.testing.assert_array_equal(sample.img_data, 0.0)


def test_normalization_foreground_only():
    img = np.zeros((10, 10))
    img[2:8, 2:8] = np.arange(36).reshape(6, 6) + 10
    sample = Sample("fg", img.copy(), 1, 2, three_dim=False)
    Normalization(foreground_only=True).preprocessing(sample)
    fg = img[img > 0]
    np.testing.assert_allclose(sample.img_data[..., 0], (img - fg.mean()) / (fg.std() + 1e-6))
    empty = Sample("empty", np.zeros((4, 4)), 1, 2, three_dim=False)
    with pytest.warns(RuntimeWarning, match="empty"):
        Normalization(foreground_only=True, mode="minmax").preprocessing(empty)


def test_normalization_invalid_parameters():
    with pytest.raises(ConfigurationError, match="zscore"):
        Normalization(mode="zscore")
    with pytest.raises(ConfigurationError, match="smooth"):
        Normalization(smooth=-1)


# ---------------------------------------------------------------------------------- Resampling
def test_resampling_shape_math_spacing_and_records():
    seg = np.zeros((10, 20, 30), dtype=np.uint8)
    seg[2:8, 5:15, 5:25] = 1
    seg[4:6, 8:12, 10:20] = 2
    affine = np.diag([2.0, 1.0, 0.5, 1.0])
    sample = make_sample((10, 20, 30), seg=seg, spacing=(2, 1, 0.5), affine=affine)
    Resampling(new_spacing=(1, 1, 1)).preprocessing(sample, training=True)
    assert sample.spatial_shape == (20, 20, 15)
    assert sample.seg_data.shape == (20, 20, 15, 1)
    assert sample.spacing == (1.0, 1.0, 1.0)
    assert sample.extended["original_shape"] == (10, 20, 30)
    assert sample.extended["original_spacing"] == (2.0, 1.0, 0.5)
    assert sample.extended["affine"] is affine
    assert set(np.unique(sample.seg_data)) == {0, 1, 2}
    assert sample.seg_data.dtype == np.uint8
    json.dumps({k: v for k, v in sample.extended.items() if k != "affine"})


def test_resampling_image_matches_skimage_reference():
    sample = make_sample((9, 11), channels=2, spacing=(0.5, 1.5))
    img = sample.img_data.copy()
    Resampling(new_spacing=1.0, order_img=3).preprocessing(sample, training=False)
    new_shape = (5, 17)  # 9 * 0.5 = 4.5 and 11 * 1.5 = 16.5 round half up
    assert sample.spatial_shape == new_shape
    for c in range(2):
        ref = sk_resize(img[..., c], new_shape, order=3, mode="edge", clip=True,
                        anti_aliasing=False)
        np.testing.assert_allclose(sample.img_data[..., c], ref, rtol=1e-10)
    assert sample.spacing == (1.0, 1.0)


def test_resampling_round_trip_sphere_labels_and_activations():
    shape = (15, 22, 17)
    seg = sphere(shape, 5.5)
    sample = make_sample(shape, seg=seg, spacing=(1.4, 0.8, 1.1))
    resampling = Resampling(new_spacing=(1.0, 1.0, 1.0))
    resampling.preprocessing(sample, training=False)
    assert sample.spatial_shape == (21, 18, 19)
    labels = sample.seg_data[..., 0].astype(np.int64)
    back = resampling.postprocessing(sample, labels, activation_output=False)
    assert back.shape == shape and back.dtype == np.int64
    assert dice(back, seg, 1) > 0.9
    assert sample.spacing == (1.4, 0.8, 1.1)  # geometry describes the returned grid again

    probs = softmax_from_labels(labels, classes=3)
    back_probs = resampling.postprocessing(sample, probs, activation_output=True)
    assert back_probs.shape == shape + (3,)
    assert back_probs.dtype == np.float32
    np.testing.assert_allclose(back_probs.sum(-1), 1.0, atol=1e-5)
    assert back_probs.min() >= 0
    assert dice(back_probs.argmax(-1), seg, 1) > 0.9


def test_resampling_activation_renormalised_even_with_cubic_order():
    labels = np.zeros((6, 6), dtype=np.int64)
    labels[2:4, 1:5] = 1
    labels[:, 5] = 2
    sample = make_sample((6, 6), spacing=(1.0, 1.0))
    resampling = Resampling(new_spacing=(0.37, 0.53), order_seg=3)
    resampling.preprocessing(sample, training=False)
    probs = softmax_from_labels(sk_resize(labels, sample.spatial_shape, order=0,
                                          preserve_range=True).astype(np.int64), 3)
    back = resampling.postprocessing(sample, probs, activation_output=True)
    assert back.shape == (6, 6, 3)
    np.testing.assert_allclose(back.sum(-1), 1.0, atol=1e-6)
    assert back.min() >= 0.0


def test_resampling_sigmoid_maps_are_not_renormalised():
    sample = make_sample((8, 8), spacing=(2.0, 2.0))
    resampling = Resampling(new_spacing=1.0)
    resampling.preprocessing(sample, training=False)
    scores = np.full(sample.spatial_shape + (2,), 0.8, dtype=np.float32)  # multi-label: sums 1.6
    back = resampling.postprocessing(sample, scores, activation_output=True)
    np.testing.assert_allclose(back, 0.8, atol=1e-6)


def test_resampling_2d_multichannel_odd_shape_label_round_trip():
    seg = sphere((13, 19), 4.5)
    sample = make_sample((13, 19), channels=3, seg=seg, spacing=(0.7, 1.3))
    rs = Resampling(new_spacing=(1.0, 1.0), order_img=1)
    rs.preprocessing(sample, training=True)
    assert sample.shape == (9, 25, 3)
    back = rs.postprocessing(sample, sample.seg_data[..., 0].astype(np.int64))
    assert back.shape == (13, 19)
    assert dice(back, seg, 1) > 0.9
    # Another grid (e.g. a padded network output) is resized from its own shape, as in MIScnn.
    assert rs.postprocessing(sample, np.ones((10, 10), dtype=np.int64)).shape == (13, 19)
    with pytest.raises(ShapeMismatchError, match="case_0"):
        rs.postprocessing(sample, np.zeros((10, 10, 3, 2), dtype=np.int64))


def test_resampling_errors():
    no_spacing = make_sample((6, 6, 6), index="case_42")
    with pytest.raises(GeometryError, match=r"case_42.*no voxel spacing.*Resize"):
        Resampling().preprocessing(no_spacing)
    wrong_len = make_sample((6, 6, 6), spacing=(1.0, 1.0), index="case_7")
    with pytest.raises(GeometryError, match=r"case_7.*spacing"):
        Resampling().preprocessing(wrong_len)
    two_d = make_sample((6, 6), spacing=(1.0, 1.0), index="case_2d")
    with pytest.raises(GeometryError, match=r"case_2d.*new_spacing"):
        Resampling(new_spacing=(1, 1, 1)).preprocessing(two_d)
    with pytest.raises(ConfigurationError, match="new_spacing"):
        Resampling(new_spacing=(1, 0, 1))
    with pytest.raises(ConfigurationError, match="new_spacing"):
        Resampling(new_spacing=(1, -2, 1))
    with pytest.raises(ConfigurationError, match="order_img"):
        Resampling(order_img=7)
    with pytest.raises(ConfigurationError, match="order_seg"):
        Resampling(order_seg=1.5)
    fresh = make_sample((6, 6, 6), spacing=(1, 1, 1), index="case_9")
    with pytest.raises(GeometryError, match=r"case_9.*original_shape"):
        Resampling().postprocessing(fresh, np.zeros((6, 6, 6), dtype=np.int64))


# ---------------------------------------------------------------------------------- Resize
def test_resize_shape_spacing_and_round_trip_3d_multichannel():
    shape = (11, 14, 9)
    seg = sphere(shape, 3.5, label=2)
    sample = make_sample(shape, channels=2, seg=seg, spacing=(1.0, 2.0, 3.0))
    img = sample.img_data.copy()
    rz = Resize(new_shape=(16, 16, 16), order_img=3, order_seg=1)
    rz.preprocessing(sample, training=True)
    assert sample.shape == (16, 16, 16, 2)
    assert sample.seg_data.shape == (16, 16, 16, 1)
    np.testing.assert_allclose(sample.spacing, (11 / 16, 28 / 16, 27 / 16))
    assert sample.extended["original_shape"] == shape
    ref = sk_resize(img[..., 1], (16, 16, 16), order=3, mode="edge", clip=True, anti_aliasing=False)
    np.testing.assert_allclose(sample.img_data[..., 1], ref, rtol=1e-10)
    assert set(np.unique(sample.seg_data)) == {0, 2}
    back = rz.postprocessing(sample, sample.seg_data[..., 0].astype(np.int64))
    assert back.shape == shape
    assert dice(back, seg, 2) > 0.9


@pytest.mark.parametrize("kind", ["resize", "resampling"])
def test_prediction_of_another_shape_is_resized_from_its_own_shape(kind):
    """MIScnn resizes any prediction back; the grid it was given need not be the preprocessed one."""
    shape = (11, 14, 9)
    seg = sphere(shape, 3.5, label=2)
    sample = make_sample(shape, seg=seg, spacing=(1.0, 1.0, 1.0))
    sf = Resize((8, 8, 8), order_seg=1) if kind == "resize" else Resampling((1.4, 1.75, 1.125), order_seg=1)
    sf.preprocessing(sample, training=False)
    assert sample.spatial_shape == (8, 8, 8)
    # The matching grid is still inverted exactly as the segmentation was (order_seg).
    exact = sf.postprocessing(sample, sample.seg_data[..., 0].astype(np.int64))
    ref = resize_segmentation(sample.seg_data[..., 0].astype(np.int64), shape, 1)
    np.testing.assert_array_equal(exact, ref)
    # A padded network output (12^3): labels nearest-neighbour, no new values.
    padded = np.zeros((12, 12, 12), np.int64)
    padded[2:10, 2:10, 2:10] = sample.seg_data[..., 0]
    labels = sf.postprocessing(sample, padded)
    assert labels.shape == shape and labels.dtype == np.int64
    np.testing.assert_array_equal(labels, sk_resize(padded, shape, order=0, mode="edge",
                                                    anti_aliasing=False, preserve_range=True))
    assert set(np.unique(labels)) <= {0, 2}
    # Probabilities: linear per class, still a distribution.
    probs = softmax_from_labels(padded, 3)
    back = sf.postprocessing(sample, probs, activation_output=True)
    assert back.shape == shape + (3,)
    np.testing.assert_allclose(back.sum(-1), 1.0, atol=1e-5)
    lin = sk_resize(probs[..., 2].astype(np.float64), shape, order=1, mode="edge", anti_aliasing=False)
    np.testing.assert_allclose(back[..., 2], lin / sum(
        sk_resize(probs[..., c].astype(np.float64), shape, order=1, mode="edge", anti_aliasing=False)
        for c in range(3)), atol=1e-5)
    assert sample.spacing == (1.0, 1.0, 1.0)


def test_resize_without_spacing_and_errors():
    sample = make_sample((7, 9))
    Resize(new_shape=12).preprocessing(sample, training=False)
    assert sample.spatial_shape == (12, 12)
    assert "spacing" not in sample.extended and sample.extended["original_spacing"] is None
    probs = softmax_from_labels(np.zeros((12, 12), dtype=np.int64), 2)
    back = Resize(new_shape=12).postprocessing(sample, probs, activation_output=True)
    assert back.shape == (7, 9, 2)
    np.testing.assert_allclose(back.sum(-1), 1.0, atol=1e-6)
    with pytest.raises(ConfigurationError, match=r"case_1.*new_shape"):
        Resize((8, 8, 8)).preprocessing(make_sample((7, 9), index="case_1"))
    with pytest.raises(ConfigurationError, match="new_shape"):
        Resize((8, 0, 8))
    with pytest.raises(ConfigurationError, match="new_shape"):
        Resize((8, 8.5, 8))


def test_stacked_resizing_and_padding_round_trip():
    shape = (10, 13, 12)
    seg = sphere(shape, 4.0)
    sample = make_sample(shape, seg=seg, spacing=(1.0, 1.0, 1.0))
    steps = [Resize((14, 14, 14), order_seg=0), Padding((16, 18, 16)),
             Resampling(new_spacing=(2.0, 1.0, 1.0), order_seg=0)]
    for sf in steps:
        sf.preprocessing(sample, training=False)
    # Resize sets spacing (10/14, 13/14, 12/14); Padding keeps it; Resampling uses it
    expected = (round(16 * 10 / 14 / 2), round(18 * 13 / 14), round(16 * 12 / 14))
    assert sample.spatial_shape == expected
    np.testing.assert_allclose(sample.spacing, (2.0, 1.0, 1.0))
    pred = sample.seg_data[..., 0].astype(np.int64)
    for sf in reversed(steps):
        pred = sf.postprocessing(sample, pred, False)
    assert pred.shape == shape
    assert dice(pred, seg, 1) > 0.85
    json.dumps(sample.extended)


# ---------------------------------------------------------------------------------- Padding
@pytest.mark.parametrize(
    "shape,channels", [((5, 7), 1), ((5, 7), 2), ((3, 10, 6), 1), ((3, 10, 6), 3)]
)
def test_padding_against_np_pad_and_round_trip(shape, channels):
    seg = np.ones(shape, dtype=np.uint8)
    sample = make_sample(shape, channels=channels, seg=seg)
    img = sample.img_data.copy()
    min_size = (8,) * len(shape)
    pad = Padding(min_size=min_size, pad_value_img=-7.5, pad_value_seg=2)
    pad.preprocessing(sample, training=True)
    target = tuple(max(s, 8) for s in shape)
    widths = [((t - s) // 2, (t - s) - (t - s) // 2) for s, t in zip(shape, target)]
    np.testing.assert_array_equal(
        sample.img_data, np.pad(img, widths + [(0, 0)], constant_values=-7.5))
    np.testing.assert_array_equal(
        sample.seg_data, np.pad(seg[..., None], widths + [(0, 0)], constant_values=2))
    coords = sample.extended["orig_crop_coords"]
    assert coords == [[w[0], w[0] + s] for w, s in zip(widths, shape)]
    assert json.loads(json.dumps(coords)) == coords

    labels = sample.seg_data[..., 0].astype(np.int64)
    np.testing.assert_array_equal(pad.postprocessing(sample, labels, False), seg)
    probs = np.random.default_rng(1).random(target + (3,)).astype(np.float32)
    back = pad.postprocessing(sample, probs, True)
    assert back.shape == shape + (3,)
    np.testing.assert_array_equal(back, probs[tuple(slice(a, b) for a, b in coords)])


def test_padding_divisibility_matches_batchgenerators_and_never_crops():
    sample = make_sample((5, 13, 17), seg=np.zeros((5, 13, 17)))
    img = sample.img_data.copy()
    Padding(min_size=(8, 8, 8), shape_must_be_divisible_by=(4, 4, 8)).preprocessing(sample)
    ref, slicer = pad_nd_image(np.moveaxis(img, -1, 0), (8, 8, 8), "constant",
                               {"constant_values": 0}, return_slicer=True,
                               shape_must_be_divisible_by=(4, 4, 8))
    assert sample.spatial_shape == (8, 16, 24) == ref.shape[1:]
    np.testing.assert_array_equal(np.moveaxis(sample.img_data, -1, 0), ref)
    expected = [[s.start, s.stop] for s in slicer[1:]]
    assert sample.extended["orig_crop_coords"] == expected

    divisible_only = make_sample((16, 15))
    Padding(None, shape_must_be_divisible_by=16).preprocessing(divisible_only)
    assert divisible_only.spatial_shape == (16, 16)


def test_padding_modes():
    seg = np.arange(20).reshape(4, 5) % 3
    sample = make_sample((4, 5), seg=seg)
    img = sample.img_data.copy()
    Padding(min_size=(7, 8), pad_mode="edge").preprocessing(sample)
    widths = [(1, 2), (1, 2)]
    np.testing.assert_array_equal(sample.img_data[..., 0], np.pad(img[..., 0], widths, mode="edge"))
    np.testing.assert_array_equal(sample.seg_data[..., 0], np.pad(seg, widths, mode="edge"))
    sample = make_sample((4, 5), seg=seg)
    Padding(min_size=(7, 8), pad_mode="mean", pad_value_seg=0).preprocessing(sample)
    np.testing.assert_allclose(sample.img_data[..., 0], np.pad(img[..., 0], widths, mode="mean"))
    np.testing.assert_array_equal(sample.seg_data[..., 0], np.pad(seg, widths))  # labels kept


def test_padding_errors():
    with pytest.raises(ConfigurationError, match="min_size"):
        Padding(min_size=(8, 0))
    with pytest.raises(ConfigurationError, match="both are None"):
        Padding(None)
    with pytest.raises(ConfigurationError, match="pad_mode"):
        Padding(8, pad_mode="empty")
    with pytest.raises(ConfigurationError, match="shape_must_be_divisible_by"):
        Padding(8, shape_must_be_divisible_by=0)
    with pytest.raises(ConfigurationError, match="pad_value_seg"):
        Padding(8, pad_value_seg="zero")
    with pytest.raises(ConfigurationError, match=r"case_3d.*min_size"):
        Padding((8, 8)).preprocessing(make_sample((4, 4, 4), index="case_3d"))
    fresh = make_sample((4, 4), index="case_p")
    with pytest.raises(GeometryError, match=r"case_p.*orig_crop_coords"):
        Padding(8).postprocessing(fresh, np.zeros((4, 4)))


# ---------------------------------------------------------------------------------- TransformHU
def test_transform_hu_uses_clipscan_value_and_keeps_input(capsys):
    raw = np.array([[-3000, -2000, 0], [24, 1024, 1424]], dtype=np.int16)
    sample = Sample("ct", raw, 1, 2, three_dim=False)
    stored = sample.img_data
    TransformHU(normalize=False, clipScan_value=-3000).preprocessing(sample)
    expected = raw.astype(np.float64) - 1024
    expected[raw == -3000] = -1024  # out-of-field voxels become air (stored value 0)
    np.testing.assert_array_equal(sample.img_data[..., 0], expected)
    assert sample.img_data.dtype == np.float32
    np.testing.assert_array_equal(stored[..., 0], raw)  # input untouched
    assert capsys.readouterr().out == ""


def test_transform_hu_normalize_and_bounds():
    raw = np.linspace(-500.0, 2500.0, 24).reshape(2, 3, 4)
    sample = Sample("ct3d", raw.copy(), 1, 2, three_dim=True)
    hu = TransformHU(minmaxBound=(-1000, 400))
    assert (hu.BOUND_MIN, hu.BOUND_MAX) == (-1000.0, 400.0)
    hu.preprocessing(sample)
    ref = np.clip((raw - 1024 + 1000) / 1400, 0, 1)
    np.testing.assert_allclose(sample.img_data[..., 0], ref)


def test_transform_hu_metadata_sources():
    raw = np.array([[0.0, 10.0], [-2000.0, 5.0]])
    from_details = Sample("a", raw.copy(), 1, 2, three_dim=False)
    from_details.add_details({"slope": 2.0, "intercept": -100.0})
    TransformHU(normalize=False).preprocessing(from_details)
    np.testing.assert_array_equal(from_details.img_data[..., 0], [[-100, -80], [-100, -90]])

    from_dicom = Sample("b", raw.copy(), 1, 2, three_dim=False,
                        extended={"RescaleSlope": "0.5", "RescaleIntercept": "-10"})
    TransformHU(normalize=False, clipScan_value=None).preprocessing(from_dicom)
    np.testing.assert_array_equal(from_dicom.img_data[..., 0], [[-10, -5], [-1010, -7.5]])

    already_hu = Sample("c", raw.copy(), 1, 2, three_dim=False, extended={"hu": True})
    TransformHU(normalize=False, clipScan_value=None).preprocessing(already_hu)
    np.testing.assert_array_equal(already_hu.img_data[..., 0], raw)


def test_transform_hu_errors():
    with pytest.raises(ConfigurationError, match="minmaxBound"):
        TransformHU(minmaxBound=(400, -1000))
    with pytest.raises(ConfigurationError, match="slope"):
        TransformHU(slope=float("nan"))
    with pytest.raises(ConfigurationError, match="clipScan_value"):
        TransformHU(clipScan_value="air")


# ---------------------------------------------------------------------------------- new ones
@pytest.mark.parametrize("shape,channels", [((12, 9), 2), ((7, 8, 9), 1)])
def test_gaussian_smoothing_against_scipy(shape, channels):
    sample = make_sample(shape, channels=channels)
    img = sample.img_data.copy()
    GaussianSmoothing(sigma=1.5).preprocessing(sample)
    for c in range(channels):
        np.testing.assert_allclose(sample.img_data[..., c], gaussian_filter(img[..., c], 1.5))
    pred = np.zeros(shape, dtype=np.int64)
    assert GaussianSmoothing().postprocessing(sample, pred) is pred


def test_gaussian_smoothing_spacing_aware():
    sample = make_sample((8, 9, 10), spacing=(2.0, 1.0, 0.5))
    img = sample.img_data.copy()
    GaussianSmoothing(sigma=2.0, spacing_aware=True).preprocessing(sample)
    ref = gaussian_filter(img[..., 0], (1.0, 2.0, 4.0))  # 2 mm over spacings 2, 1, 0.5
    np.testing.assert_allclose(sample.img_data[..., 0], ref)
    with pytest.raises(GeometryError, match="case_0"):
        GaussianSmoothing(spacing_aware=True).preprocessing(make_sample((5, 5)))
    with pytest.raises(ConfigurationError, match="sigma"):
        GaussianSmoothing(sigma=-1)
    with pytest.raises(ConfigurationError, match="mode"):
        GaussianSmoothing(mode="edge")


@pytest.mark.parametrize("shape,channels", [((16, 12), 2), ((10, 12, 8), 1)])
def test_histogram_equalization_against_skimage(shape, channels):
    sample = make_sample(shape, channels=channels)
    img = sample.img_data.copy()
    HistogramEqualization(nbins=64).preprocessing(sample)
    for c in range(channels):
        np.testing.assert_allclose(sample.img_data[..., c], equalize_hist(img[..., c], nbins=64))
    sample = make_sample(shape, channels=channels)
    HistogramEqualization(adaptive=True, clip_limit=0.03, kernel_size=4).preprocessing(sample)
    for c in range(channels):
        ch = img[..., c]
        ref = equalize_adapthist((ch - ch.min()) / (ch.max() - ch.min()), kernel_size=4,
                                 clip_limit=0.03)
        np.testing.assert_allclose(sample.img_data[..., c], ref)
    assert 0.0 <= sample.img_data.min() and sample.img_data.max() <= 1.0


def test_histogram_equalization_errors():
    with pytest.raises(ConfigurationError, match="clip_limit"):
        HistogramEqualization(clip_limit=2)
    with pytest.raises(ConfigurationError, match="nbins"):
        HistogramEqualization(nbins=1)
    with pytest.raises(ConfigurationError, match="kernel_size"):
        HistogramEqualization(adaptive=True, kernel_size=(4, 0))
    with pytest.raises(ConfigurationError, match=r"case_0.*kernel_size"):
        HistogramEqualization(adaptive=True, kernel_size=(4, 4, 4)).preprocessing(
            make_sample((8, 8))
        )


def test_contrast_stretching_against_percentiles():
    sample = make_sample((9, 10, 11), channels=2)
    sample.img_data[..., 1] = 5.0  # a constant channel
    img = sample.img_data.copy()
    ContrastStretching(percentiles=(5, 95), out_range=(-1, 1)).preprocessing(sample)
    low, high = np.percentile(img[..., 0], (5, 95))
    ref = np.clip((img[..., 0] - low) / (high - low), 0, 1) * 2 - 1
    np.testing.assert_allclose(sample.img_data[..., 0], ref, atol=1e-12)
    np.testing.assert_array_equal(sample.img_data[..., 1], -1.0)
    ref_sk = rescale_intensity(img[..., 0], in_range=(low, high), out_range=(-1.0, 1.0))
    np.testing.assert_allclose(sample.img_data[..., 0], ref_sk)


def test_contrast_stretching_errors():
    with pytest.raises(ConfigurationError, match="percentiles"):
        ContrastStretching(percentiles=(50, 50))
    with pytest.raises(ConfigurationError, match="percentiles"):
        ContrastStretching(percentiles=(-1, 90))
    with pytest.raises(ConfigurationError, match="percentiles"):
        ContrastStretching(percentiles=(10, 101))
    with pytest.raises(ConfigurationError, match="out_range"):
        ContrastStretching(out_range=(1, 0))
