"""Training benchmark: steps/s of ``Neural_Network.train`` on 3D phantoms with augmentation,
against ``keras.Model.fit`` on the same number of in-memory batches (target ratio <= 1.15).

Run: ``python benchmarks/training.py [--workers N]``.
"""

from __future__ import annotations

import argparse

from _common import phantom_pipeline
from pipeline import training_ratio


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    pp, ids = phantom_pipeline()
    pipeline_time, memory_time, ratio = training_ratio(pp, ids, args.steps, args.epochs, args.workers)
    steps = args.steps * args.epochs
    print(f"Neural_Network.train: {steps / pipeline_time:.2f} steps/s; keras fit on in-memory batches: "
          f"{steps / memory_time:.2f} steps/s; time ratio (median of paired runs) {ratio:.2f} (target <= 1.15)")


if __name__ == "__main__":
    main()
