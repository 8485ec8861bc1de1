"""Input pipeline benchmark (issue: fast input pipeline).

(a) Batches per second the pipeline alone delivers: 3D KiTS phantoms 64x128x128, full
    augmentation (mirror, rotation, scaling, elastic, intensity transforms), patch 64^3,
    batch 2; in-process and with worker processes as ``fit`` uses them.
(b) Wall time of training epochs fed by Preprocessor+augmentation, divided by the same
    number of steps fed from in-memory arrays, for a small 3D U-Net (target <= 1.15).

Run: ``python benchmarks/pipeline.py`` (prints a table; numbers go into README).
"""

from __future__ import annotations

import argparse
import time

from _common import phantom_pipeline


def pipeline_throughput(pp, ids, n_batches, workers):
    from miseg.neural_network.data_generator import DataGenerator

    gen = DataGenerator(ids, pp, training=True, shuffle=True, iterations=n_batches,
                        workers=max(1, workers), use_multiprocessing=workers > 0, max_queue_size=4)
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    adapter = PyDatasetAdapter(gen, shuffle=False)
    start = time.perf_counter()
    count = 0
    for _ in adapter.get_numpy_iterator():
        count += 1
    adapter.on_epoch_end()
    return count / (time.perf_counter() - start)


def training_ratio(pp, ids, steps, epochs, workers):
    """(miseg pipeline epoch time) / (in-memory epoch time) for the same steps and model."""
    import keras
    import numpy as np

    from miseg.neural_network.architecture.unet import UNet_standard
    from miseg.neural_network.model import Neural_Network

    keras.utils.set_random_seed(0)
    nn = Neural_Network(pp, architecture=UNet_standard(n_filters=16, depth=3), workers=workers,
                        batch_queue_size=4)
    nn.train(ids, epochs=1, iterations=2)  # warm-up: graph tracing, worker start
    start = time.perf_counter()
    nn.train(ids, epochs=epochs, iterations=steps)
    pipeline_time = time.perf_counter() - start

    batches = [pp.to_batch(pp.training_items(ids[i % len(ids)], pp.batch_size, np.random.default_rng(i), augment=False))
               for i in range(4)]
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    model = nn.model
    model.fit(x[:2], y[:2], batch_size=pp.batch_size, epochs=1, verbose=0)
    reps = int(np.ceil(steps * pp.batch_size / len(x)))
    xs, ys = np.concatenate([x] * reps)[: steps * pp.batch_size], np.concatenate([y] * reps)[: steps * pp.batch_size]
    start = time.perf_counter()
    model.fit(xs, ys, batch_size=pp.batch_size, epochs=epochs, verbose=0, shuffle=False)
    memory_time = time.perf_counter() - start
    return pipeline_time, memory_time


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    pp, ids = phantom_pipeline()
    print("(a) pipeline alone, 3D patch 64^3, batch 2, full augmentation")
    for workers in (0, 1, 2):
        rate = pipeline_throughput(pp, ids, args.batches, workers)
        print(f"    workers={workers}: {rate:.2f} batches/s")
    print(f"(b) training epochs, small 3D U-Net, {args.steps} steps x {args.epochs} epochs, workers={args.workers}")
    pipeline_time, memory_time = training_ratio(pp, ids, args.steps, args.epochs, args.workers)
    print(f"    miseg pipeline: {pipeline_time:.1f} s   in-memory arrays: {memory_time:.1f} s   "
          f"ratio: {pipeline_time / memory_time:.2f} (target <= 1.15)")


if __name__ == "__main__":
    main()
