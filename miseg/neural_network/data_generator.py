"""DataGenerator: a Keras ``PyDataset`` that asks the Preprocessor for batch ``idx``.

Unlike MIScnn's generator, ``__getitem__(idx)`` is a pure function of ``(seed, epoch, idx)``:
batch ``idx`` draws its cases from a per-epoch permutation and its patches from a generator
seeded with those numbers. That makes batches reproducible and lets Keras build them in
parallel worker processes (``workers``/``use_multiprocessing``) while the model trains.
"""

from __future__ import annotations

import math
import os
from typing import Any, Sequence

import keras
import numpy as np

from miseg.errors import ConfigurationError

__all__ = ["DataGenerator"]


class DataGenerator(keras.utils.PyDataset):
    """Batches for ``fit``/``predict`` from a Preprocessor.

    Args:
        sample_list: Case indices (list or numpy array).
        preprocessor: The Preprocessor producing the items.
        training: Yield ``(img, one-hot seg)`` training batches; else prediction batches.
        validation: Training batches without augmentation and with fixed crops, so that
            validation metrics are comparable across epochs.
        shuffle: Reshuffle the case order every epoch (training only).
        iterations: Batches per epoch; default ``ceil(cases * patches_per_sample / batch_size)``
            (``patchwise-grid``: ``ceil(grid patches of all cases / batch_size)``, every patch
            once per epoch; more iterations wrap around to the start of the epoch's order).
        seed: Seed of the batch recipes; defaults to the preprocessor's seed.
        workers: Keras workers producing batches ahead of the model.
        use_multiprocessing: Workers are processes (recommended: augmentation is CPU-bound
            Python/NumPy that threads cannot parallelise).
        max_queue_size: Batches prepared ahead.
        divisor: fullimage only: images are padded up to a multiple of this per axis.
    """

    def __init__(
        self,
        sample_list: Sequence[Any] | np.ndarray,
        preprocessor: Any,
        training: bool = False,
        validation: bool = False,
        shuffle: bool = False,
        iterations: int | None = None,
        seed: int | None = None,
        workers: int = 1,
        use_multiprocessing: bool = False,
        max_queue_size: int = 10,
        divisor: Sequence[int] | None = None,
    ) -> None:
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size)
        if isinstance(sample_list, np.ndarray):
            sample_list = sample_list.tolist()
        if not isinstance(sample_list, (list, tuple)):
            raise ConfigurationError(f"sample_list must be a list or numpy array, got {type(sample_list).__name__}.")
        if len(sample_list) == 0:
            raise ConfigurationError("sample_list is empty: there is nothing to train or predict on.")
        if iterations is not None and (not isinstance(iterations, (int, np.integer)) or iterations < 1):
            raise ConfigurationError(f"iterations must be a positive int or None, got {iterations!r}.")
        self.sample_list = list(sample_list)
        self.preprocessor = preprocessor
        self.training = training
        self.validation = validation
        self.shuffle = shuffle
        self.iterations = iterations
        self.seed = int(seed) if seed is not None else int(preprocessor.seed)
        self.epoch = 0
        self.divisor = divisor
        self.worker_niceness = 10
        self._owner_pid = os.getpid()
        self._niced = False
        self._epoch_order: tuple[int, list] | None = None
        self._epoch_grid: tuple[int, list] | None = None
        self._pointers: int | None = None
        self._prediction_batches: list | None = None
        if preprocessor.prepare_subfunctions:
            preprocessor.run_subfunctions(self.sample_list, training, backup=False)
        if preprocessor.prepare_batches:
            self._pointers = preprocessor.run(self.sample_list, training, validation) + 1

    # ------------------------------------------------------------------ sizes
    @property
    def grid_training(self) -> bool:
        """Training batches are made of every grid patch of every case (``patchwise-grid``)."""
        return self.training and self.preprocessor.analysis == "patchwise-grid"

    @property
    def cases_per_batch(self) -> int:
        """Cases loaded for one batch: ``ceil(batch_size / patches_per_sample)``."""
        return max(1, math.ceil(self.preprocessor.batch_size / self.preprocessor.patches_per_sample))

    def __len__(self) -> int:
        if self.iterations is not None:
            return self.iterations
        if self._pointers is not None:
            return self._pointers
        if not self.training:
            return len(self._prediction())
        if self.grid_training:
            return max(1, math.ceil(len(self._grid_order(0)) / self.preprocessor.batch_size))
        n_items = len(self.sample_list) * self.preprocessor.patches_per_sample
        return max(1, math.ceil(n_items / self.preprocessor.batch_size))

    # ------------------------------------------------------------------ batches
    def _prediction(self) -> list:
        if self._prediction_batches is None:
            self._prediction_batches = self.preprocessor.run(self.sample_list, False, False)
        return self._prediction_batches

    def _order(self, epoch: int) -> list[Any]:
        """The epoch's case order (computed once per epoch, not per batch)."""
        if not (self.training and self.shuffle and not self.validation):
            return self.sample_list
        if self._epoch_order is None or self._epoch_order[0] != epoch:
            perm = np.random.default_rng([self.seed, 7, epoch]).permutation(len(self.sample_list))
            self._epoch_order = (epoch, [self.sample_list[i] for i in perm])
        return self._epoch_order[1]

    def _grid_order(self, epoch: int) -> list[tuple[Any, tuple[int, ...]]]:
        """The epoch's ``(case, patch start)`` items: every grid patch of every case.

        Shuffled training draws the case order from ``(seed, epoch)`` and shuffles the
        patches within consecutive groups of ``sample_cache_size`` cases, so a batch mixes
        several cases while each case is still preprocessed about once per epoch. Without
        shuffling (and for validation) the order is case by case, in grid order.
        """
        if self._epoch_grid is not None and self._epoch_grid[0] == epoch:
            return self._epoch_grid[1]
        pp = self.preprocessor
        shuffled = self.shuffle and not self.validation
        order = self._order(epoch)
        group = max(1, int(pp.sample_cache_size)) if shuffled else 1
        items: list[tuple[Any, tuple[int, ...]]] = []
        for g, start in enumerate(range(0, len(order), group)):
            block = [(case, pos) for case in order[start:start + group] for pos in pp.grid_layout(case)]
            if shuffled:
                perm = np.random.default_rng([self.seed, 8, epoch, g]).permutation(len(block))
                block = [block[i] for i in perm]
            items.extend(block)
        if not items:
            raise ConfigurationError("patchwise-grid training found no patches in sample_list.")
        self._epoch_grid = (epoch, items)
        return items

    def _grid_batch(self, idx: int, epoch: int) -> Any:
        pp = self.preprocessor
        order = self._grid_order(epoch)
        start = idx * pp.batch_size
        if self.iterations is None:
            picks = range(start, min(start + pp.batch_size, len(order)))
        else:
            picks = range(start, start + pp.batch_size)
        items: list = []
        for j, k in enumerate(picks):
            case, position = order[k % len(order)]
            rng = np.random.default_rng([self.seed, int(self.validation), epoch, idx, j])
            items.extend(pp.grid_items(case, [position], rng, augment=not self.validation))
        return pp.to_batch(items)

    def _lower_worker_priority(self) -> None:
        """In a worker process, yield the CPU to the model's threads.

        On small machines the model already keeps every core busy; at a lower priority the
        workers use the cycles the model leaves idle instead of slowing its steps down.
        """
        if not self._niced and os.getpid() != self._owner_pid and self.worker_niceness:
            self._niced = True
            try:
                os.nice(self.worker_niceness)
            except (AttributeError, OSError):  # not available on this platform
                pass

    def __getitem__(self, idx: int) -> Any:
        self._lower_worker_priority()
        pp = self.preprocessor
        if self._pointers is not None:
            pointer = idx % self._pointers
            kind = "validation" if self.validation else ("training" if self.training else "prediction")
            img = pp.data_io.batch_load(f"{kind}.{pointer}")
            if not self.training:
                return img
            return img, pp.data_io.batch_load(f"{kind}.{pointer}", img=False)
        if not self.training:
            return self._prediction()[idx][0]
        epoch = 0 if self.validation else self.epoch
        if self.grid_training:
            return self._grid_batch(idx, epoch)
        order = self._order(epoch)
        per_case = pp.patches_per_sample
        items: list = []
        k = self.cases_per_batch
        for j in range(k):
            position = (idx * k + j) % len(order)
            rng = np.random.default_rng([self.seed, int(self.validation), epoch, idx, j])
            items.extend(pp.training_items(order[position], per_case, rng, augment=not self.validation,
                                            divisor=self.divisor))
            if len(items) >= pp.batch_size:
                break
        return pp.to_batch(items[: pp.batch_size])

    def on_epoch_end(self) -> None:
        self.epoch += 1
