"""The touching-nuclei phantom and the real stardist nuclei fixture."""

import numpy as np
import pytest

from miseg.data_loading.interfaces import Image_interface
from miseg.datasets import (
    load_nuclei_instances,
    load_stardist_nuclei,
    make_nuclei_phantom,
    write_nuclei_dataset,
)
from miseg.datasets.fixtures import FixtureUnavailableError
from miseg.errors import ConfigurationError
from miseg.evaluation.instance_metrics import instance_metrics
from miseg.processing.instances import Instances, InstanceSegmenter, connected_components


def touching_pairs(instances):
    """Pairs of different nuclei that share a 4-neighbour border."""
    pairs = set()
    for a, b in ((instances[:-1], instances[1:]), (instances[:, :-1], instances[:, 1:])):
        touch = (a > 0) & (b > 0) & (a != b)
        pairs |= {tuple(sorted(p)) for p in zip(a[touch].tolist(), b[touch].tolist())}
    return pairs


def test_phantom_is_deterministic_consistent_and_has_touching_nuclei():
    image, semantic, instances = make_nuclei_phantom((96, 96), seed=4)
    again = make_nuclei_phantom((96, 96), seed=4)
    for x, y in zip((image, semantic, instances), again):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(instances, make_nuclei_phantom((96, 96), seed=5)[2])
    assert image.dtype == np.uint8 and semantic.dtype == np.uint8 and instances.dtype == np.uint16
    np.testing.assert_array_equal(semantic, (instances > 0).astype(np.uint8))
    n = int(instances.max())
    assert set(np.unique(instances)) == set(range(n + 1))  # consecutive ids
    assert len(touching_pairs(instances)) >= 2
    assert connected_components(semantic).n < n  # touching nuclei merge in the semantic map
    assert image[instances > 0].mean() > 3 * image[instances == 0].mean()  # bright nuclei
    assert make_nuclei_phantom((64, 64), seed=0, touching=0.0)[2].max() == \
        connected_components(make_nuclei_phantom((64, 64), seed=0, touching=0.0)[1]).n
    with pytest.raises(ConfigurationError, match="touching"):
        make_nuclei_phantom(touching=2)


def test_watershed_separates_the_phantom_nuclei_better_than_components():
    pq_components, pq_split = [], []
    for seed in range(3):
        _, semantic, truth = make_nuclei_phantom((128, 128), seed=seed)
        truth_inst = Instances.from_instance_map(truth)
        components = InstanceSegmenter()(semantic)
        split = InstanceSegmenter(split="distance", seed_distance=5.0)(semantic)
        pq_components.append(instance_metrics(truth_inst, components, classes=2)[0]["pq"])
        pq_split.append(instance_metrics(truth_inst, split, classes=2)[0]["pq"])
    assert np.mean(pq_split) > 0.8
    assert np.mean(pq_split) > np.mean(pq_components) + 0.15


def test_written_data_set_reads_through_image_interface(tmp_path):
    cases = write_nuclei_dataset(str(tmp_path), n_cases=2, shape=(64, 64), seed=1, bits=16, img_format="tif")
    assert cases == ["case_00000", "case_00001"]
    interface = Image_interface(classes=2, img_format="tif")
    assert interface.initialize(str(tmp_path)) == cases
    image, _ = interface.load_image(cases[1])
    seg = interface.load_segmentation(cases[1])
    instances = load_nuclei_instances(str(tmp_path), cases[1])
    expected = make_nuclei_phantom((64, 64), seed=np.random.SeedSequence(1).spawn(2)[1], bits=16)
    np.testing.assert_array_equal(image, expected[0])
    np.testing.assert_array_equal(seg, expected[1])
    np.testing.assert_array_equal(instances, expected[2])


def test_stardist_real_nuclei_fixture():
    try:
        image, instances = load_stardist_nuclei()
    except FixtureUnavailableError as exc:
        pytest.skip(f"package registry unreachable: {exc}")
    assert image.shape == instances.shape == (512, 512)
    assert image.dtype == np.uint16 and len(np.unique(instances)) - 1 == 125
    assert image[instances > 0].mean() > image[instances == 0].mean()
    truth = Instances.from_instance_map(instances)
    semantic = (instances > 0).astype(np.uint8)
    pq = [instance_metrics(truth, InstanceSegmenter(split=split, seed_distance=8.0)(semantic), classes=2)[0]["pq"]
          for split in (None, "distance")]
    assert pq[1] > 0.9 and pq[1] > pq[0] + 0.05  # real touching nuclei are separated
