"""Instance step on small synthetic images with known answers."""

import numpy as np
import pytest

from miseg.errors import ConfigurationError, DataError, LabelError
from miseg.processing.instances import (
    Instances,
    InstanceSegmenter,
    connected_components,
    instance_table,
    split_touching,
)


def disks(shape=(24, 34), centres=((12, 10), (12, 22)), radius=6.5):
    """Label map of overlapping disks (one object) and the truth split (nearest centre)."""
    rows, cols = np.indices(shape)
    dist = np.stack([np.hypot(rows - r, cols - c) for r, c in centres])
    inside = dist.min(axis=0) <= radius
    truth = np.where(inside, dist.argmin(axis=0) + 1, 0)
    return inside.astype(np.uint8), truth


def best_iou(a, b):
    return (a & b).sum() / (a | b).sum()


# ------------------------------------------------------------------------ components
def test_two_touching_disks_are_one_component_and_the_watershed_splits_them():
    label_map, truth = disks()
    components = connected_components(label_map)
    assert components.n == 1
    split = split_touching(components, method="distance", seed_distance=4.0)
    assert split.n == 2 and split.classes.tolist() == [1, 1]
    assert ((split.labels > 0) == (label_map > 0)).all()  # nothing lost or added
    for t in (1, 2):
        ious = [best_iou(truth == t, split.labels == p) for p in (1, 2)]
        assert max(ious) > 0.9


def test_seed_distance_controls_the_split():
    label_map, _ = disks(centres=((12, 10), (12, 21)))  # centres 11 px apart
    components = connected_components(label_map)
    assert split_touching(components, seed_distance=8.0).n == 2
    assert split_touching(components, seed_distance=14.0).n == 1  # seeds must be 14 px apart


def test_seed_distance_is_in_mm_with_anisotropic_spacing():
    label_map, _ = disks(shape=(24, 34), centres=((12, 10), (12, 22)))  # 12 voxels apart along cols
    components = connected_components(label_map)
    assert split_touching(components, seed_distance=8.0, spacing=(1.0, 1.0)).n == 2
    # Along columns a voxel is 0.5 mm: the centres are 6 mm apart, closer than 8 mm.
    assert split_touching(components, seed_distance=8.0, spacing=(1.0, 0.5)).n == 1


def test_component_counts_depend_on_connectivity_2d_and_3d():
    diagonal = np.zeros((6, 6), np.uint8)
    diagonal[1, 1] = diagonal[2, 2] = diagonal[3, 3] = 1
    assert connected_components(diagonal).n == 1  # 8-connectivity by default
    assert connected_components(diagonal, connectivity=4).n == 3
    volume = np.zeros((5, 5, 5), np.uint8)
    volume[1, 1, 1] = volume[2, 2, 2] = 1  # corner neighbours
    volume[3, 0, 0] = volume[3, 0, 1] = 1  # face neighbours
    assert connected_components(volume).n == 2
    assert connected_components(volume, connectivity=18).n == 3
    assert connected_components(volume, connectivity=6).n == 3
    with pytest.raises(ConfigurationError, match="connectivity=8"):
        connected_components(volume, connectivity=8)


def test_components_never_cross_classes_and_keep_their_class():
    label_map = np.zeros((4, 8), np.uint8)
    label_map[1:3, 1:4] = 1
    label_map[1:3, 4:7] = 2  # touching the class-1 block
    label_map[3, 0] = 2  # diagonal to class 1 only: its own component
    inst = connected_components(label_map)
    assert inst.n == 3
    assert sorted(inst.classes.tolist()) == [1, 2, 2]
    np.testing.assert_array_equal(inst.semantic(), label_map)
    only_two = connected_components(label_map, classes=[2])
    assert only_two.n == 2 and only_two.classes.tolist() == [2, 2]


def test_min_volume_is_in_mm3_with_anisotropic_spacing():
    label_map = np.zeros((8, 8, 8), np.uint8)
    label_map[1, 1, 1:5] = 1   # 4 voxels
    label_map[5, 5, 0:6] = 1   # 6 voxels
    label_map[3, 6:8, 6:8] = 2  # 4 voxels of class 2
    # 1 mm^3 voxels: 4 and 6 mm^3, all below 10 mm^3
    assert connected_components(label_map, min_volume=10.0, spacing=(1, 1, 1)).n == 0
    # 2 mm^3 voxels: 8, 12 and 8 mm^3; only the 6-voxel object reaches 10 mm^3
    kept = connected_components(label_map, min_volume=10.0, spacing=(2.0, 1.0, 1.0))
    assert kept.n == 1 and kept.classes.tolist() == [1]
    assert np.count_nonzero(kept.labels) == 6 and kept.labels[5, 5, 0] == 1
    assert connected_components(label_map, min_volume=8.0, spacing=(2.0, 1.0, 1.0)).n == 3


# ----------------------------------------------------------------------------- table
def test_table_volume_centroid_in_patient_coordinates_box_and_means():
    labels = np.zeros((4, 5, 3), np.uint32)
    labels[1:3, 1:4, 1] = 1   # 6 voxels, centroid (1.5, 2, 1)
    labels[0, 0, 0:3] = 2     # 3 voxels, centroid (0, 0, 1)
    inst = Instances(labels, [1, 2])
    affine = np.array([[-0.5, 0, 0, 10.0], [0, 0.8, 0, -20.0], [0, 0, 3.0, 5.0], [0, 0, 0, 1]])
    image = np.zeros(labels.shape, np.float32)
    image[labels == 1] = np.arange(6)          # mean 2.5
    image[labels == 2] = 7.0
    prob = np.zeros(labels.shape + (3,), np.float32)
    prob[..., 0] = 1.0
    prob[labels == 1] = [0.2, 0.8, 0.0]
    prob[labels == 2] = [0.1, 0.3, 0.6]
    table = instance_table(inst, spacing=(0.5, 0.8, 3.0), affine=affine, image=image, probabilities=prob)
    first, second = table.iloc[0], table.iloc[1]
    assert table["instance_id"].tolist() == [1, 2] and table["class"].tolist() == [1, 2]
    assert first["voxel_count"] == 6 and first["volume_mm3"] == pytest.approx(6 * 1.2)
    assert (first["centroid_i"], first["centroid_j"], first["centroid_k"]) == (1.5, 2.0, 1.0)
    assert first["centroid_x"] == pytest.approx(10.0 - 0.5 * 1.5)
    assert first["centroid_y"] == pytest.approx(-20.0 + 0.8 * 2.0)
    assert first["centroid_z"] == pytest.approx(5.0 + 3.0 * 1.0)
    assert [first[f"bbox_start_{a}"] for a in "ijk"] == [1, 1, 1]
    assert [first[f"bbox_stop_{a}"] for a in "ijk"] == [3, 4, 2]
    assert first["mean_intensity"] == pytest.approx(2.5) and second["mean_intensity"] == pytest.approx(7.0)
    assert first["mean_probability"] == pytest.approx(0.8)   # class 1 probability
    assert second["mean_probability"] == pytest.approx(0.6)  # class 2 probability
    assert second["volume_mm3"] == pytest.approx(3 * 1.2)


def test_table_without_affine_uses_spacing_and_multichannel_means():
    labels = np.zeros((4, 4), np.uint32)
    labels[2:4, 1] = 1
    image = np.stack([labels * 2.0, labels * 5.0 + 1], axis=-1)
    table = instance_table(Instances(labels, [1]), spacing=(2.0, 3.0), image=image)
    row = table.iloc[0]
    assert (row["centroid_x"], row["centroid_y"]) == (5.0, 3.0)
    assert "centroid_z" not in table.columns
    assert (row["mean_intensity_c0"], row["mean_intensity_c1"]) == (2.0, 6.0)


def test_empty_label_map_gives_an_empty_table():
    inst = connected_components(np.zeros((5, 5, 5), np.uint8))
    table = instance_table(inst, image=np.zeros((5, 5, 5)))
    assert inst.n == 0 and len(table) == 0 and "volume_mm3" in table.columns


# ------------------------------------------------------------------ probability split
def test_probability_watershed_splits_where_the_probability_dips():
    label_map = np.zeros((12, 32), np.uint8)
    label_map[2:10, 2:30] = 1  # one convex bar: the distance map has a single ridge
    prob1 = np.where(label_map == 1, 0.98, 0.02).astype(np.float32)
    prob1[2:10, 15:17] = 0.6  # a valley across the bar
    prob = np.stack([1 - prob1, prob1], axis=-1)
    components = connected_components(label_map)
    assert split_touching(components, method="distance", seed_distance=5.0).n == 1
    split = split_touching(components, method="probability", seed_distance=5.0, probabilities=prob)
    assert split.n == 2
    left, right = split.labels[5, 5], split.labels[5, 26]
    assert left != right and (split.labels[:, :15][label_map[:, :15] > 0] == left).all()


def test_segmenter_on_a_probability_map_gives_mean_probability():
    label_map, _ = disks()
    prob1 = np.where(label_map == 1, 0.9, 0.1).astype(np.float32)
    prob = np.stack([1 - prob1, prob1], axis=-1)
    inst = InstanceSegmenter(split="distance", seed_distance=4.0)(prob, spacing=(1.0, 1.0))
    assert inst.n == 2
    np.testing.assert_allclose(inst.table["mean_probability"], 0.9, atol=1e-6)


# ------------------------------------------------------------------------ bad input
def test_probabilities_that_do_not_sum_to_one_are_refused():
    label_map, _ = disks()
    sigmoids = np.stack([np.full(label_map.shape, 0.7), 0.7 * label_map], axis=-1).astype(np.float32)
    with pytest.raises(DataError, match="do not sum to 1"):
        InstanceSegmenter()(sigmoids, case="c7")
    with pytest.raises(DataError, match=r"span \[0, 1.5\]"):
        InstanceSegmenter()(sigmoids * 1.5 / 0.7, case="c7")
    half = np.full(label_map.shape + (2,), 0.4, np.float32)
    with pytest.raises(DataError, match="Case 'c7'.*do not sum to 1"):
        split_touching(connected_components(label_map), method="probability", probabilities=half, case="c7")


def test_negative_labels_are_refused():
    bad = np.zeros((6, 6), np.int16)
    bad[1, 1] = -1
    with pytest.raises(LabelError, match="negative.*-1"):
        connected_components(bad, case="c3")
    with pytest.raises(LabelError, match="Case 'c3'"):
        InstanceSegmenter()(bad, case="c3")


def test_bad_settings_are_refused():
    with pytest.raises(ConfigurationError, match="split"):
        InstanceSegmenter(split="voronoi")
    with pytest.raises(ConfigurationError, match="seed_distance"):
        InstanceSegmenter(seed_distance=0)
    with pytest.raises(ConfigurationError, match="min_volume"):
        connected_components(np.ones((3, 3), np.uint8), min_volume=-1)
    with pytest.raises(ConfigurationError, match="probabilities"):
        InstanceSegmenter(split="probability")(np.ones((3, 3), np.uint8))


def test_from_instance_map_renumbers_and_takes_majority_class():
    instance_map = np.array([[0, 7, 7], [3, 3, 0], [3, 0, 9]])
    classes = np.array([[0, 2, 2], [1, 1, 0], [2, 0, 1]])
    inst = Instances.from_instance_map(instance_map, class_map=classes)
    assert inst.n == 3 and inst.labels.max() == 3
    assert inst.classes.tolist() == [1, 2, 1]  # ids 3 -> 1 (class 1 by majority), 7 -> 2, 9 -> 3


def test_min_volume_also_drops_small_parts_after_splitting():
    label_map, _ = disks()
    area = int(label_map.sum())
    segmenter = InstanceSegmenter(split="distance", seed_distance=4.0, min_volume=0.75 * area)
    assert connected_components(label_map, min_volume=0.75 * area).n == 1  # the whole pair is kept
    assert segmenter(label_map).n == 0  # each half is below the minimum
    assert InstanceSegmenter(split="distance", seed_distance=4.0, min_volume=0.3 * area)(label_map).n == 2
