"""Percentage split validation: one training run validated on a random hold-out set."""

from __future__ import annotations

import os
from typing import Any, Iterable, Sequence

import numpy as np

from miseg.evaluation import _execution, _folds, _manifest

__all__ = ["split_validation"]


def split_validation(
    sample_list: Sequence[Any],
    model: Any,
    percentage: float = 0.2,
    epochs: int = 20,
    iterations: int | None = None,
    evaluation_path: str = "evaluation",
    draw_figures: bool = False,
    run_detailed_evaluation: bool = False,
    callbacks: Any = None,
    save_models: bool = True,
    return_output: bool = False,
    seed: int | None = None,
    *,
    metrics: Iterable[str] | None = None,
    class_weight: Any = None,
) -> dict[str, list[float]] | None:
    """Hold out ``ceil(len(sample_list) * percentage)`` random cases, train on the rest.

    Unlike MIScnn, the caller's list is never modified, the evaluation folder is created
    before training, and ``save_models``/``callbacks`` are honoured (the model starts from its
    initial weights with a fresh optimizer).

    Files in ``evaluation_path``: ``sample_list.json``, ``history.tsv``, ``model.keras`` and
    ``model.hdf5`` (best ``val_loss``, with ``save_models``), ``manifest.json`` (versions, git
    commit, config, case lists, seeds, input files, wall times), ``validation.*.png``
    (``draw_figures``) and the ``detailed_validation.*`` tables (``run_detailed_evaluation``).
    A finished run leaves a ``.complete`` marker; running again overwrites the split's own
    results. The folder may hold a cross-validation (``cross_validation.json``,
    ``fold_<i>/``); the split is refused only when it would overwrite that run's pooled
    ``detailed_validation.*`` files.

    Args:
        sample_list: Case indices.
        model: The model.
        percentage: Validation fraction, strictly between 0 and 1.
        epochs: Epochs.
        iterations: Batches per epoch.
        evaluation_path: Output folder.
        draw_figures: Write the training curves (and detailed-validation figures).
        run_detailed_evaluation: Score the validation cases per class.
        callbacks: Keras callbacks (copied) or a factory ``run -> callbacks`` (called with 0).
        save_models: Keep the best model.
        return_output: Return the history dict (``history.tsv`` is written either way).
        seed: Seed of the split (``np.random.default_rng(seed)``).
        metrics: Metric names of the detailed evaluation.
        class_weight: Passed to ``model.evaluate``.

    Returns:
        The history dict with ``return_output``, else ``None``.

    Raises:
        ConfigurationError: for invalid settings, or when a cross-validation in
            ``evaluation_path`` wrote files this run would overwrite.

    Example:
        >>> split_validation(ids, model, percentage=0.2, epochs=50, seed=1, draw_figures=True)
    """
    samples = _folds.check_sample_list(sample_list, minimum=2)
    n_val = _folds.validation_size(len(samples), percentage)
    seed = _folds.check_seed(seed)
    epochs = _folds.check_positive_int(epochs, "epochs")
    iterations = _folds.check_positive_int(iterations, "iterations", allow_none=True)
    if run_detailed_evaluation or metrics is not None:
        from miseg.evaluation.detailed_validation import resolve_detailed_metrics

        resolve_detailed_metrics(metrics)
    if model is not None:
        from miseg.multi_model._calls import check_class_weight

        check_class_weight(model, class_weight)
    cv_files = _folds.cross_validation_files(evaluation_path)
    _folds.refuse_collisions(evaluation_path, _planned_files(draw_figures, run_detailed_evaluation),
                             cv_files, "a cross-validation's")
    order = np.random.default_rng(seed).permutation(len(samples))
    validation = [samples[i] for i in sorted(order[:n_val])]
    training = [samples[i] for i in sorted(order[n_val:])]
    os.makedirs(evaluation_path, exist_ok=True)
    _folds.write_sample_list(os.path.join(evaluation_path, _folds.SAMPLE_LIST_FILE), training, validation)
    with _manifest.evaluation_run(  # <evaluation_path>/manifest.json
        "split_validation", model, samples, evaluation_path, [(evaluation_path, training, validation)], [0],
        {"split": seed}, percentage=float(percentage), epochs=epochs, iterations=iterations,
    ) as run, run.stage("folds"):
        history = _execution.execute_fold(
            model, 0, training, validation, evaluation_path, epochs=epochs, iterations=iterations,
            callbacks=callbacks, save_models=save_models, draw_figures=draw_figures,
            run_detailed_evaluation=run_detailed_evaluation, metrics=metrics, class_weight=class_weight,
            extra={"type": "split_validation", "percentage": float(percentage), "seed": seed},
            keep=sorted(cv_files),
        )
    return history if return_output else None


def _planned_files(draw_figures: bool, detailed: bool) -> list[str]:
    """The split's files that a cross-validation can also write into the same folder."""
    if not detailed:
        return []
    tables = [_folds.DETAILED_FILE, _folds.DETAILED_LONG_FILE, _folds.DETAILED_SUMMARY_FILE]
    return tables + ([_folds.DETAILED_BOXPLOT_FILE] if draw_figures else [])
