"""Batch assembly for MIScnn's queue-based API (kept for scripts that import it).

miseg's own pipeline builds batches per index in the DataGenerator; these helpers keep
MIScnn's names and semantics, without its silent ``except`` that dropped batches.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["create_batches", "collect_batch", "update_queue"]


def collect_batch(img_queue: Sequence[tuple], start: int, end: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Stack queue items ``start:end`` into ``(img, seg or None)``."""
    items = img_queue[start:end]
    img = np.stack([item[0] for item in items])
    if all(len(item) > 1 and item[1] is not None for item in items):
        return img, np.stack([item[1] for item in items])
    return img, None


def update_queue(img_queue: list, batch_size: int, incomplete_batches: bool = False, last_index: bool = False) -> None:
    """Remove batched items from the queue (everything at the end of a run)."""
    if incomplete_batches or last_index:
        del img_queue[:]
    else:
        del img_queue[: (len(img_queue) // batch_size) * batch_size]


def create_batches(img_queue: list, batch_size: int, incomplete_batches: bool = True,
                   last_index: bool = False) -> list[tuple[np.ndarray, Any]]:
    """Cut the queue into batches of ``batch_size``.

    The remainder is emitted as a smaller batch when ``incomplete_batches`` or at the last
    index (without re-using already batched items, unlike MIScnn's "stock-up"); otherwise
    it stays queued for the next call.
    """
    batches = []
    full = len(img_queue) // batch_size
    for b in range(full):
        batches.append(collect_batch(img_queue, b * batch_size, (b + 1) * batch_size))
    if (incomplete_batches or last_index) and len(img_queue) % batch_size:
        batches.append(collect_batch(img_queue, full * batch_size, len(img_queue)))
    update_queue(img_queue, batch_size, incomplete_batches, last_index)
    return batches
