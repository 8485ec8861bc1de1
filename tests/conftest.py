"""Shared test settings and helpers: quiet TensorFlow, CPU only, Agg backend."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("MISEG_QUIET", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from miseg.data_loading.interfaces.abstract_io import Abstract_IO  # noqa: E402
from miseg.errors import MissingSegmentationError  # noqa: E402


class MemoryIO(Abstract_IO):
    """A tiny in-test interface over ``{index: (image, seg or None)}``, independent of formats."""

    def __init__(self, cases, channels=1, classes=3, three_dim=True, spacing=None):
        super().__init__(channels, classes, three_dim)
        self.cases = cases
        self.saved = {}
        self.spacing = spacing if spacing is not None else ((2.0, 1.0, 1.0) if three_dim else (1.0, 1.0))

    def initialize(self, input_path):
        return list(self.cases)

    def load_image(self, index):
        return self.cases[index][0], {"type": "memory", "spacing": self.spacing}

    def load_segmentation(self, index):
        seg = self.cases[index][1]
        if seg is None:
            raise MissingSegmentationError(f"Case {index!r} has no segmentation.")
        return seg

    def load_prediction(self, index, output_path):
        return self.saved[index]

    def save_prediction(self, sample, output_path):
        self.saved[sample.index] = sample.pred_data

    @staticmethod
    def check_file_termination(termination):
        return False


@pytest.fixture
def memory_io():
    """The MemoryIO class (tests build their own cases)."""
    return MemoryIO


def blob_cases(n=4, shape=(16, 16, 16), classes=3, seed=0):
    """Cases with a bright sphere (class 1) holding a brighter core (class 2) on noise."""
    rng = np.random.default_rng(seed)
    cases = {}
    grids = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    for i in range(n):
        center = [rng.uniform(s * 0.35, s * 0.65) for s in shape]
        dist = np.sqrt(sum((g - c) ** 2 for g, c in zip(grids, center)))
        radius = min(shape) * rng.uniform(0.22, 0.32)
        seg = (dist < radius).astype(np.uint8)
        if classes > 2:
            seg[dist < radius * 0.45] = 2
        img = seg * 1.0 + rng.normal(0, 0.2, size=shape)
        cases[f"case_{i}"] = (img.astype(np.float32), seg)
    return cases


@pytest.fixture
def blobs():
    return blob_cases
