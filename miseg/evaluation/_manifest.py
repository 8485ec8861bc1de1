"""``<evaluation_path>/manifest.json`` of the validation drivers (cross-validation, split,
leave-one-out): environment, config, folds' case lists, seeds, inputs and wall times."""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator, Sequence

from miseg.evaluation import _folds
from miseg.utils.manifest import MANIFEST_FILE, RunManifest, describe_network, network_seeds

__all__ = ["evaluation_run"]


def _fold_records(folds: Sequence[tuple[str, list, list]], ran: Sequence[int]) -> list[dict[str, Any]]:
    records = []
    for fold, (directory, training, validation) in enumerate(folds):
        marker = _folds.read_marker(directory) or {}
        records.append({
            "fold": fold,
            "training": list(training),
            "validation": list(validation),
            "complete": bool(marker) and marker.get("hash") == _folds.fold_hash(training, validation),
            "run_now": fold in ran,
            "finished": marker.get("finished"),
            "stages": marker.get("stages"),
        })
    return records


@contextlib.contextmanager
def evaluation_run(kind: str, model: Any, samples: Sequence[Any], evaluation_path: str,
                   folds: Sequence[tuple[str, list, list]], ran: Sequence[int],
                   seeds: dict[str, Any], **fields: Any) -> Iterator[RunManifest]:
    """Record a validation run; ``<evaluation_path>/manifest.json`` is written when it ends.

    The manifest is also written when the run fails (``"status": "failed"``); a resumed run
    updates it (the earlier run moves to ``previous_runs``).

    Args:
        kind: ``"cross_validation"`` or ``"split_validation"``.
        model: The model (a ``Neural_Network`` contributes its plan, data, inputs and seeds).
        samples: All cases of the run.
        evaluation_path: The run's folder.
        folds: ``(folder, training, validation)`` per fold.
        ran: The folds this call trains (the others were finished by an earlier call).
        seeds: The driver's seeds (e.g. ``{"split": 0}``).
        **fields: More top-level fields (``k_fold``, ``epochs``, ...).
    """
    config = getattr(model, "run_config", None)
    run = RunManifest(kind, config=config, hash_inputs=bool(getattr(model, "hash_inputs", False)))
    preprocessor = getattr(model, "preprocessor", None)
    if preprocessor is not None and getattr(preprocessor, "data_io", None) is not None:
        run.add_inputs(preprocessor.data_io, samples)
    if preprocessor is not None:
        seeds = {**seeds, **network_seeds(model, config)}
        if hasattr(model, "architecture"):
            run.update(plan=describe_network(model))
    run.update(samples=list(samples), seeds=seeds, **fields)
    status = "failed"
    try:
        yield run
        status = "complete"
    finally:
        run.update(status=status, folds=_fold_records(folds, ran))
        run.write(os.path.join(evaluation_path, MANIFEST_FILE))
