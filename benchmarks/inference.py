"""Inference benchmark (issue: Gaussian sliding-window inference).

A 3D phantom volume of 128x256x256, patch 64x128x128 with half-patch overlap:
* overhead ratio = wall time of ``Neural_Network.predict`` (load, preprocess, grid, batched
  forward passes, Gaussian merge, argmax, write NIfTI) divided by the time of
  ``keras.Model.predict`` alone on the same stacked patches (target <= 1.10);
* peak resident memory added during ``predict``, against the size of the float32
  probability map.

Run: ``python benchmarks/inference.py``.
"""

from __future__ import annotations

import tempfile
import time

from _common import PeakRSS, phantom_pipeline


def main():
    import keras
    import numpy as np

    from miseg.neural_network.architecture.unet import UNet_standard
    from miseg.neural_network.model import Neural_Network

    root = tempfile.mkdtemp(prefix="miseg_bench_inf_")
    pp, ids = phantom_pipeline(n_cases=1, shape=(128, 256, 256), patch=(64, 128, 128), root=root)
    pp.batch_size = 2
    keras.utils.set_random_seed(0)
    nn = Neural_Network(pp, architecture=UNet_standard(n_filters=8, depth=3), workers=0)
    index = ids[0]

    sample = pp.load_sample(index, training=False)
    plan = pp.prediction_plan(sample)
    patches = plan.patches()
    nn.model.predict(patches, batch_size=2, verbose=0)  # warm-up (traces full and last partial batch)
    start = time.perf_counter()
    nn.model.predict(patches, batch_size=2, verbose=0)
    model_time = time.perf_counter() - start
    del patches

    nn.predict([index])  # warm-up of the full path
    with PeakRSS() as rss:
        start = time.perf_counter()
        nn.predict([index])
        predict_time = time.perf_counter() - start
    prob_bytes = int(np.prod(sample.spatial_shape)) * 3 * 4
    print(f"volume {sample.spatial_shape}, patch {pp.patch_shape}, overlap {pp.prediction_overlap()}, "
          f"{len(plan)} patches")
    print(f"model.predict on stacked patches: {model_time:.1f} s")
    print(f"Neural_Network.predict (end to end): {predict_time:.1f} s   ratio: {predict_time / model_time:.3f} "
          f"(target <= 1.10)")
    print(f"peak RSS added during predict: {(rss.peak - rss.baseline) / 2**20:.0f} MiB; float32 probability map: "
          f"{prob_bytes / 2**20:.0f} MiB; ratio {(rss.peak - rss.baseline) / prob_bytes:.2f}")


if __name__ == "__main__":
    main()
