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


def in_memory_batches(batches, steps):
    """The baseline: ``steps`` batches cycled from memory, through the same Keras path."""
    import keras

    class InMemory(keras.utils.PyDataset):
        def __len__(self):
            return steps

        def __getitem__(self, idx):
            return batches[idx % len(batches)]

    return InMemory()


def training_ratio(pp, ids, steps, epochs, workers, repeats=5):
    """(miseg pipeline epoch time) / (in-memory epoch time) for the same steps and model.

    Both sides run ``fit`` on the same compiled model with the same batch shapes; the
    in-memory side cycles through precomputed batches, so the difference is the cost the
    pipeline adds (loading, cropping, augmentation, one-hot) that is not hidden behind the
    model's work. The two sides are measured ``repeats`` times, alternating, and the
    median of the paired ratios is reported (robust to the machine's drift).

    Returns:
        ``(median pipeline time, median in-memory time, median paired ratio)``.
    """
    import keras
    import numpy as np

    from miseg.neural_network.architecture.unet import UNet_standard
    from miseg.neural_network.model import Neural_Network

    keras.utils.set_random_seed(0)
    nn = Neural_Network(pp, architecture=UNet_standard(n_filters=16, depth=3), workers=workers,
                        batch_queue_size=4)
    nn.verbose = 0
    batches = [pp.to_batch(pp.training_items(ids[i % len(ids)], pp.batch_size, np.random.default_rng(i)))
               for i in range(4)]
    memory = in_memory_batches(batches, steps)
    nn.train(ids, epochs=1, iterations=2)  # warm-up: graph tracing, worker start
    nn.model.fit(memory, epochs=1, verbose=0)
    pipeline_times, memory_times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        nn.train(ids, epochs=epochs, iterations=steps)
        pipeline_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        nn.model.fit(memory, epochs=epochs, verbose=0)
        memory_times.append(time.perf_counter() - start)
    ratios = [p / m for p, m in zip(pipeline_times, memory_times)]
    return float(np.median(pipeline_times)), float(np.median(memory_times)), float(np.median(ratios))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    pp, ids = phantom_pipeline()
    print("(a) pipeline alone, 3D patch 64^3, batch 2, full augmentation")
    for workers in (0, 1, 2):
        rate = pipeline_throughput(pp, ids, args.batches, workers)
        print(f"    workers={workers}: {rate:.2f} batches/s")
    print(f"(b) training epochs, small 3D U-Net, {args.steps} steps x {args.epochs} epochs, workers={args.workers}")
    pipeline_time, memory_time, ratio = training_ratio(pp, ids, args.steps, args.epochs, args.workers)
    print(f"    miseg pipeline: {pipeline_time:.1f} s   in-memory batches: {memory_time:.1f} s   "
          f"ratio (median of paired runs): {ratio:.2f} (target <= 1.15)")


if __name__ == "__main__":
    main()
