"""Classical methods on small synthetic images with known answers."""

import json

import numpy as np
import pytest

from miseg.classical import (
    Box,
    DistanceWatershed,
    GraphCut,
    HysteresisThreshold,
    MarkerWatershed,
    MultiOtsuThreshold,
    OtsuThreshold,
    RegionGrowing,
    WindowThreshold,
    get_method,
    method_names,
)
from miseg.data_loading.sample import Sample
from miseg.errors import ConfigurationError, ModelError, ShapeMismatchError


def ball(shape, center, radius):
    grids = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    return sum((g - c) ** 2 for g, c in zip(grids, center)) <= radius * radius


def sample(image, seg=None, classes=2, spacing=None, index="case"):
    image = np.asarray(image, np.float32)
    s = Sample(index, image, 1, classes, extended={"spacing": spacing or (1.0,) * image.ndim},
               three_dim=image.ndim == 3)
    if seg is not None:
        s.add_segmentation(np.asarray(seg, np.uint8))
    return s


def dice(a, b):
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


@pytest.fixture(scope="module")
def noisy_disk():
    """A thresholdable disk (1.0 on 0.0, noise 0.2) and a second case drawn like it."""
    rng = np.random.default_rng(0)
    out = []
    for center in ((16, 16), (13, 18)):
        truth = ball((32, 32), center, 8)
        out.append(sample(truth + rng.normal(0, 0.2, truth.shape), truth, index=f"disk{center}"))
    return out


# ------------------------------------------------------------------------------ registry
def test_registry_lists_every_method_and_configs_round_trip(noisy_disk):
    assert method_names() == sorted(["threshold", "otsu", "multi_otsu", "hysteresis", "region_growing",
                                     "threshold_region_growing",
                                     "watershed", "distance_watershed", "graph_cut"])
    with pytest.raises(ConfigurationError, match="Unknown classical method 'nope'"):
        get_method("nope")
    train, test = noisy_disk
    for name in method_names():
        method = get_method(name)().fit([train])
        config = json.loads(json.dumps(method.get_config()))
        state = json.loads(json.dumps(method.get_state()))
        clone = get_method(name).from_config(config)
        clone.set_state(state)
        assert clone.get_config() == method.get_config()
        np.testing.assert_array_equal(clone.predict(test), method.predict(test))
    with pytest.raises(ConfigurationError, match="takes no argument"):
        get_method("otsu").from_config({"bogus": 1})


# ------------------------------------------------------------------------------ thresholding
def test_window_threshold_fixed_learned_and_multiclass(noisy_disk):
    train, test = noisy_disk
    truth = test.seg_data[..., 0]
    assert dice(WindowThreshold(windows=(0.5, 2.0)).predict(test) == 1, truth) > 0.97
    with pytest.raises(ModelError, match="not been fitted"):
        WindowThreshold().predict(test)
    learned = WindowThreshold().fit([train])
    low, high = learned.class_windows()[1]
    assert 0.3 < low < 0.7 and high > 1.3
    assert dice(learned.predict(test) == 1, truth) > 0.97
    # three classes: a ring (class 2, dark) around a bright core (class 1)
    core, outer = ball((32, 32), (16, 16), 5), ball((32, 32), (16, 16), 10)
    seg = np.where(core, 1, np.where(outer, 2, 0))
    image = np.choose(seg, [0.0, 2.0, 1.0]) + np.random.default_rng(1).normal(0, 0.1, seg.shape)
    case = sample(image, seg, classes=3)
    labels = WindowThreshold().fit([case]).predict(case)
    assert dice(labels == 1, seg == 1) > 0.97 and dice(labels == 2, seg == 2) > 0.97


def test_otsu_learns_which_side_is_the_structure():
    rng = np.random.default_rng(2)
    truth = ball((32, 32), (16, 16), 7)
    dark = sample(np.where(truth, 0.0, 1.0) + rng.normal(0, 0.1, truth.shape), truth)
    assert dice(OtsuThreshold().predict(dark) == 1, truth) < 0.1        # unfitted: bright is class 1
    fitted = OtsuThreshold().fit([dark])
    assert fitted.get_state()["region_classes"] == [1, 0]
    assert dice(fitted.predict(dark) == 1, truth) > 0.97


def test_multi_otsu_maps_intensity_regions_to_classes():
    rng = np.random.default_rng(3)
    seg = np.zeros((30, 30), np.uint8)
    seg[:, 10:20], seg[:, 20:] = 2, 1                                   # class 2 is the middle intensity
    image = np.choose(seg, [0.0, 2.0, 1.0]) + rng.normal(0, 0.1, seg.shape)
    case = sample(image, seg, classes=3)
    assert (MultiOtsuThreshold().predict(case) == seg).mean() < 0.5      # unfitted: region r is class r
    labels = MultiOtsuThreshold().fit([case]).predict(case)
    assert (labels == seg).mean() > 0.99


def test_hysteresis_keeps_connected_dim_parts_only():
    image = np.zeros((20, 40), np.float32)
    image[8:12, 2:10] = 1.0     # strong core
    image[8:12, 10:20] = 0.5    # dim tail touching it
    image[8:12, 28:36] = 0.5    # dim blob on its own
    labels = HysteresisThreshold(low=0.3, high=0.8).predict(sample(image))
    assert labels[10, 15] == 1 and labels[10, 5] == 1 and labels[10, 30] == 0
    truth = np.zeros_like(image, bool)
    truth[8:12, 2:20] = True
    fitted = HysteresisThreshold().fit([sample(image, truth)])
    low, high = fitted.thresholds()
    assert 0 < low < 0.5 <= high + 1e-6
    np.testing.assert_array_equal(fitted.predict(sample(image)), truth.astype(np.int64))


def test_smoothing_uses_gaussian_smoothing_and_leaves_the_sample_alone():
    rng = np.random.default_rng(4)
    truth = ball((40, 40), (20, 20), 10)
    case = sample(truth + rng.normal(0, 0.6, truth.shape), truth)
    before = case.img_data.copy()
    plain = dice(OtsuThreshold().predict(case) == 1, truth)
    smoothed = dice(OtsuThreshold(smoothing=1.5).predict(case) == 1, truth)
    assert smoothed > plain + 0.1 and smoothed > 0.9
    np.testing.assert_array_equal(case.img_data, before)


# ------------------------------------------------------------------------------ region growing
def test_region_growing_grows_only_from_its_seeds_2d():
    image = (ball((32, 32), (8, 8), 5) | ball((32, 32), (22, 22), 5)).astype(np.float32)
    case = sample(image)
    method = RegionGrowing(lower=0.5, upper=1.5)
    labels = method.predict(case, seeds=[(8, 8)])
    np.testing.assert_array_equal(labels == 1, ball((32, 32), (8, 8), 5))
    mask = np.zeros((32, 32), bool)
    mask[21:24, 21:24] = True
    np.testing.assert_array_equal(method.predict(case, seeds=mask) == 1, ball((32, 32), (22, 22), 5))
    both = method.predict(case, seeds={1: [(8, 8), (22, 22)]})
    np.testing.assert_array_equal(both == 1, image > 0)


def test_region_growing_3d_is_spacing_aware():
    image = np.zeros((16, 16, 16), np.float32)
    image[:, :, 6:10] = 1.0                                    # a slab, open along axes 0 and 1
    case = sample(image, spacing=(2.0, 1.0, 1.0))
    labels = RegionGrowing(lower=0.5, upper=1.5, max_distance=6.0).predict(case, seeds=[(8, 8, 8)])
    grown = np.argwhere(labels == 1)
    extent = grown.max(axis=0) - grown.min(axis=0)
    assert extent[0] == 6 and extent[1] == 12                 # +-3 voxels of 2 mm, +-6 voxels of 1 mm
    assert set(np.unique(grown[:, 2])) <= set(range(6, 10))


def test_confidence_connected_and_unattended_seeds_3d():
    rng = np.random.default_rng(5)
    truth = ball((16, 16, 16), (8, 8, 8), 5)
    case = sample(truth * 1.0 + rng.normal(0, 0.15, truth.shape), truth)
    confident = RegionGrowing(criterion="confidence_connected", multiplier=3.0)
    assert dice(confident.predict(case, seeds=[(8, 8, 8)]) == 1, truth) > 0.9
    with pytest.raises(ModelError, match="no intensity model"):
        RegionGrowing().predict(case)
    other_truth = ball((16, 16, 16), (7, 9, 8), 4)
    other = sample(other_truth * 1.0 + rng.normal(0, 0.15, truth.shape), other_truth)
    fitted = RegionGrowing().fit([case])
    assert dice(fitted.predict(other) == 1, other_truth) > 0.95


def test_unattended_region_growing_seeds_a_rare_bright_class():
    # class 1 (a small ball at 1.0) is 0.5 % of the voxels; the background mixes 0.0 and a
    # large bright slab at 3.0, so its Gaussian is wide and, with its 99.5 % prior, the most
    # probable class everywhere: the model-based seed region of class 1 is empty
    rng = np.random.default_rng(11)
    cases, truths = [], []
    for center in ((8, 10, 12), (11, 9, 9)):
        truth = ball((24, 24, 24), center, 2.5)
        image = np.where(truth, 1.0, 0.0)
        image[:, :, 18:] = 3.0
        cases.append(sample(image + rng.normal(0, 0.05, image.shape), truth))
        truths.append(truth)
    assert truths[1].mean() < 0.01
    for seeding in ("window", "model"):          # "model" falls back to the window seeds
        method = RegionGrowing(seeding=seeding).fit([cases[0]])
        seeds = method.seeds(cases[1])
        assert len(seeds.get(1, [])) == 1 and truths[1][seeds[1][0]], seeds
        assert dice(method.predict(cases[1]) == 1, truths[1]) > 0.9
    lo, hi = method.get_state()["windows"]["1"]
    assert 0.1 < lo < 1.0 < hi < 2.0
    with pytest.raises(ConfigurationError, match="seeding="):
        RegionGrowing(seeding="random")


def test_threshold_region_growing_grows_only_seeded_window_components():
    image = np.zeros((32, 32), np.float32)
    big, small = ball((32, 32), (10, 10), 6), ball((32, 32), (25, 25), 2)
    image[big | small] = 1.0
    truth = big | small
    case = sample(image, truth)
    method = get_method("threshold_region_growing")(windows=(0.5, 1.5))
    assert not method.learns
    assert method.seeds(case) == {1: [(10, 10)]}                  # the speck is < 20 % of the disk
    np.testing.assert_array_equal(method.predict(case) == 1, big)
    np.testing.assert_array_equal(method.predict(case, seeds=[(25, 25)]) == 1, small)
    both = get_method("threshold_region_growing")(min_share=0.0).fit([case])
    np.testing.assert_array_equal(both.predict(case) == 1, truth)
    ring = sample(np.where(ball((32, 32), (16, 16), 8) & ~ball((32, 32), (16, 16), 4), 1.0, 0.0))
    filled = get_method("threshold_region_growing")(windows=(0.5, 1.5), fill_holes=True).predict(ring)
    np.testing.assert_array_equal(filled == 1, ball((32, 32), (16, 16), 8))
    with pytest.raises(ModelError, match="not been fitted"):
        get_method("threshold_region_growing")().predict(case)
    with pytest.raises(ConfigurationError, match="classes"):
        get_method("threshold_region_growing")(classes=[0])
    with pytest.raises(ConfigurationError, match=r"classes \[2\] asked"):
        get_method("threshold_region_growing")(classes=[2]).fit([case])


def test_bad_seeds_are_refused_with_the_case_named():
    case = sample(np.zeros((16, 16)), index="c7")
    method = RegionGrowing(lower=0, upper=1)
    with pytest.raises(ConfigurationError, match=r"Case 'c7'.*outside the image"):
        method.predict(case, seeds=[(3, 40)])
    with pytest.raises(ConfigurationError, match=r"Case 'c7'.*has 3 coordinates.*2D image"):
        method.predict(case, seeds=[(3, 4, 5)])
    with pytest.raises(ConfigurationError, match=r"Case 'c7'.*mask is empty"):
        method.predict(case, seeds=np.zeros((16, 16), bool))
    with pytest.raises(ShapeMismatchError, match=r"Case 'c7'.*shape \(8, 8\)"):
        method.predict(case, seeds=np.ones((8, 8), bool))
    with pytest.raises(ConfigurationError, match="seed class 5"):
        method.predict(case, seeds={5: [(1, 1)]})


# ------------------------------------------------------------------------------ watershed
def test_marker_watershed_settles_on_the_edge():
    rng = np.random.default_rng(6)
    truth = ball((32, 32), (16, 16), 9)
    case = sample(truth * 1.0 + rng.normal(0, 0.05, truth.shape), truth)
    markers = {1: [(16, 16)], 0: [(0, 0), (31, 31), (0, 31), (31, 0)]}
    assert dice(MarkerWatershed().predict(case, seeds=markers) == 1, truth) > 0.95
    with pytest.raises(ConfigurationError, match="at least two classes"):
        MarkerWatershed().predict(case, seeds=[(16, 16)])
    assert dice(MarkerWatershed().fit([case]).predict(case) == 1, truth) > 0.95


@pytest.mark.parametrize("three_dim", [False, True])
def test_distance_watershed_splits_touching_objects(three_dim):
    shape = (20, 36, 20) if three_dim else (36, 36)
    centers = [(10, 11, 10), (10, 25, 10)] if three_dim else [(18, 11), (18, 25)]
    objects = [ball(shape, c, 7.5) for c in centers]
    union = objects[0] | objects[1]
    from scipy.ndimage import label

    assert label(union)[1] == 1                                # they touch: one component
    case = sample(union * 1.0, union)
    instances = DistanceWatershed(threshold=0.5).predict_instances(case)
    assert set(np.unique(instances)) == {0, 1, 2}
    for obj in objects:
        ids, counts = np.unique(instances[obj], return_counts=True)
        assert counts.max() / obj.sum() > 0.9                  # each object is mostly one instance
    np.testing.assert_array_equal(DistanceWatershed().fit([case]).predict(case) == 1, union)


# ------------------------------------------------------------------------------ graph cut
def weak_edge_image():
    """Uniform intensity with a faint (10 %) circle: intensity models cannot tell the sides apart."""
    image = np.ones((32, 32), np.float32)
    image[ball((32, 32), (16, 16), 10) & ~ball((32, 32), (16, 16), 9)] = 0.9
    border = np.zeros((32, 32), bool)
    border[[0, -1], :] = border[:, [0, -1]] = True
    return image, {1: [(15, 15), (16, 16), (17, 17)], 0: border}


def test_graph_cut_follows_a_weak_edge():
    image, scribbles = weak_edge_image()
    inside = ball((32, 32), (16, 16), 9.5)
    labels = GraphCut(lam=1.0).predict(sample(image), seeds=scribbles)
    assert dice(labels == 1, inside) > 0.9
    potts = GraphCut(lam=1.0, sigma=100.0).predict(sample(image), seeds=scribbles)  # no contrast term
    assert dice(potts == 1, inside) < 0.5


def test_graph_cut_3d_box_and_unattended():
    rng = np.random.default_rng(7)
    truth = ball((16, 16, 16), (8, 8, 8), 5)
    case = sample(truth * 1.0 + rng.normal(0, 0.3, truth.shape), truth, spacing=(2.0, 1.0, 1.0))
    background = np.zeros(truth.shape, bool)
    background[0] = background[-1] = True
    scribbled = GraphCut(lam=2.0).predict(case, seeds={1: [(8, 8, 8)], 0: background})
    assert dice(scribbled == 1, truth) > 0.9
    boxed = GraphCut(lam=2.0).predict(case, seeds=Box((2, 2, 2), (14, 14, 14)))
    assert dice(boxed == 1, truth) > 0.9
    data_only = GraphCut(lam=0.0).fit([case]).predict(case)
    smooth = GraphCut(lam=2.0).fit([case]).predict(case)
    assert dice(smooth == 1, truth) > max(0.9, dice(data_only == 1, truth))


def test_graph_cut_boundary_term_is_spacing_aware():
    image = np.random.default_rng(8).normal(size=(6, 6, 6)).astype(np.float32)
    weights = GraphCut(lam=1.0, sigma=1e6).boundary_weights(image, (2.0, 1.0, 0.5))
    assert weights[0][:-1].mean() == pytest.approx(0.5) and weights[2][:, :, :-1].mean() == pytest.approx(2.0)
    assert not weights[0][-1].any()


def test_graph_cut_refuses_one_class_scribbles_and_bad_boxes():
    case = sample(np.zeros((16, 16)), index="gc")
    with pytest.raises(ConfigurationError, match=r"Case 'gc'.*only class\(es\) \[1\]"):
        GraphCut().predict(case, seeds=[(4, 4)])
    with pytest.raises(ConfigurationError, match=r"Case 'gc'.*only class\(es\) \[0\]"):
        GraphCut().predict(case, seeds={0: [(4, 4)]})
    with pytest.raises(ConfigurationError, match="outside the image"):
        GraphCut().predict(case, seeds=Box((0, 0), (20, 8)))
    with pytest.raises(ConfigurationError, match=r"Case 'gc': box .* does not have 2 coordinates for the 2D image"):
        GraphCut().predict(case, seeds=Box((0, 0, 0), (4, 4, 4)))
