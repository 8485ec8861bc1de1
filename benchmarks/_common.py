"""Shared set-up of the benchmarks: a phantom data set and a pipeline over it."""

from __future__ import annotations

import os
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MISEG_QUIET", "1")


from miseg import Data_Augmentation, Data_IO, Preprocessor
from miseg.data_loading.interfaces import NIFTI_interface
from miseg.datasets import write_kits_dataset
from miseg.processing.subfunctions import Clipping, Normalization


def phantom_pipeline(n_cases=6, shape=(64, 128, 128), patch=(64, 64, 64), batch_size=2,
                     full_augmentation=True, root=None, seed=0):
    """A KiTS-like phantom data set on disk and a Preprocessor with augmentation over it."""
    root = root or tempfile.mkdtemp(prefix="miseg_bench_")
    data = os.path.join(root, "data")
    if not os.path.isdir(data):
        write_kits_dataset(data, n_cases=n_cases, shape=shape, seed=seed)
    dio = Data_IO(NIFTI_interface(classes=3), data, output_path=os.path.join(root, "pred"),
                  batch_path=os.path.join(root, "batches"), seed=seed)
    aug = Data_Augmentation(elastic_deform=full_augmentation, mirror=full_augmentation, seed=seed)
    pp = Preprocessor(dio, batch_size=batch_size, subfunctions=[Clipping(min=-200, max=400), Normalization()],
                      data_aug=aug, prepare_subfunctions=True, analysis="patchwise-crop", patch_shape=patch,
                      patches_per_sample=2)
    pp.run_subfunctions(dio.get_indiceslist(), backup=False)  # the cache only, no MIScnn-style copies
    return pp, dio.get_indiceslist()


class PeakRSS:
    """Samples this process's resident memory in a thread; ``peak`` in bytes."""

    def __init__(self, interval=0.01):
        import psutil

        self._proc = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self):
        self.baseline = self._proc.memory_info().rss
        self.peak = self.baseline
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result
