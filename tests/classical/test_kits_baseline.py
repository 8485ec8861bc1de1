"""The classical KiTS baseline of ``benchmarks/classical_vs_unet.py``: a learned intensity
window and region growing from automatic seeds reach kidney Dice >= 0.7 on KiTS-like phantoms."""

import importlib.util
import os

import numpy as np
import pytest

from miseg.data_loading.sample import Sample
from miseg.datasets import make_kits_phantom

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHAPE, SPACING = (32, 64, 64), (6.0, 1.6, 1.6)   # the benchmark's phantoms


def _benchmark():
    spec = importlib.util.spec_from_file_location(
        "classical_vs_unet", os.path.join(ROOT, "benchmarks", "classical_vs_unet.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _case(seed):
    image, labels, _ = make_kits_phantom(SHAPE, spacing=SPACING, seed=seed)
    sample = Sample(f"case_{seed}", np.clip(image, -79, 304)[..., None], 1, 3,   # the benchmark's Clipping
                    extended={"spacing": SPACING}, three_dim=True)
    sample.add_segmentation(labels[..., None])
    return sample


def _dice(a, b):
    return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


@pytest.fixture(scope="module")
def phantoms():
    return [_case(seed) for seed in range(8)]


def test_threshold_and_region_growing_reach_kidney_dice_0_7(phantoms):
    bench = _benchmark()
    train, test = phantoms[:5], phantoms[5:]
    method = bench.ThresholdRegionGrowing().fit(train)
    low, high = method.get_state()["window"]
    assert 80 < low < high < 304          # the enhanced cortex, above soft tissue and liver
    scores = []
    for sample in test:
        seeds = method.seeds(sample)
        assert len(seeds) == 2             # one per kidney
        labels = method.predict(sample)
        assert set(np.unique(labels).tolist()) <= {0, 1}
        scores.append(_dice(labels == 1, sample.seg_data[..., 0] == 1))
    assert np.mean(scores) >= bench.KIDNEY_TARGET == 0.7, scores
    assert min(scores) > 0.6, scores


def test_hole_filling_adds_the_medulla(phantoms):
    bench = _benchmark()
    train, test = phantoms[:5], phantoms[5]
    truth = test.seg_data[..., 0] == 1
    plain = bench.ThresholdRegionGrowing().fit(train).predict(test) == 1
    filled = bench.ThresholdRegionGrowing(fill_holes=True).fit(train).predict(test) == 1
    assert (filled >= plain).all() and _dice(filled, truth) > _dice(plain, truth) + 0.05
