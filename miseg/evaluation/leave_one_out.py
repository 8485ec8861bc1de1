"""Leave-one-out validation: every case is validated once by a model trained on all others."""

from __future__ import annotations

import concurrent.futures
from typing import Any, Iterable, Sequence

from miseg.evaluation import _folds

__all__ = ["leave_one_out"]


def leave_one_out(
    sample_list: Sequence[Any],
    model: Any,
    epochs: int = 20,
    iterations: int | None = None,
    callbacks: Any = None,
    evaluation_path: str = "evaluation",
    *,
    seed: int | None = None,
    draw_figures: bool = False,
    save_models: bool = False,
    return_output: bool = False,
    single_holdout: bool = False,
    executor: concurrent.futures.Executor | None = None,
    metrics: Iterable[str] | None = None,
    class_weight: Any = None,
) -> list[dict] | dict | None:
    """Leave-one-out: ``len(sample_list)`` runs, each holding out one case.

    MIScnn's ``leave_one_out`` held out a *single* random case (and removed it from the
    caller's list). miseg runs the real leave-one-out: a cross-validation with
    ``k_fold = len(sample_list)`` and a detailed evaluation of every held-out case, so it
    resumes, can run folds in parallel (``executor``) and writes the pooled per-case table to
    ``<evaluation_path>/detailed_validation.tsv`` (MIScnn's file), next to ``fold_<i>/``
    folders. ``single_holdout=True`` gives MIScnn's single hold-out run (one random case,
    seeded), written directly into ``evaluation_path``.

    Args:
        sample_list: Case indices (at least 2); the caller's list is not modified.
        model: The model (reset to its initial weights with a fresh optimizer per run).
        epochs: Epochs per run.
        iterations: Batches per epoch.
        callbacks: Keras callbacks (copied per run) or a factory ``run -> callbacks``.
        evaluation_path: Output folder.
        seed: Seed of the case order (and of the single hold-out).
        draw_figures: Training curves per run and the detailed-validation figures.
        save_models: Keep each run's best model (off by default: one model per case).
        return_output: Return the history dicts (a single dict with ``single_holdout``).
        single_holdout: MIScnn's behaviour (one hold-out case) instead of the full loop.
        executor: Run the folds in an executor's workers (see ``cross_validation``).
        metrics: Metric names of the detailed evaluation.
        class_weight: Passed to ``model.evaluate``.

    Returns:
        With ``return_output``: one history dict per case (a dict for ``single_holdout``).

    Example:
        >>> leave_one_out(ids, model, epochs=30, evaluation_path="evaluation_loo", seed=0)
        >>> read_table("evaluation_loo/detailed_validation.tsv")
    """
    samples = _folds.check_sample_list(sample_list, minimum=2)
    if single_holdout:
        from miseg.evaluation.split_validation import split_validation

        return split_validation(
            samples, model, percentage=1.0 / (len(samples) + 1), epochs=epochs,
            iterations=iterations, evaluation_path=evaluation_path, draw_figures=draw_figures,
            run_detailed_evaluation=True, callbacks=callbacks, save_models=save_models,
            return_output=return_output, seed=seed, metrics=metrics, class_weight=class_weight,
        )
    from miseg.evaluation.cross_validation import cross_validation

    return cross_validation(
        samples, model, k_fold=len(samples), epochs=epochs, iterations=iterations,
        evaluation_path=evaluation_path, draw_figures=draw_figures, run_detailed_evaluation=True,
        callbacks=callbacks, save_models=save_models, return_output=return_output, seed=seed,
        executor=executor, metrics=metrics, class_weight=class_weight,
    )
