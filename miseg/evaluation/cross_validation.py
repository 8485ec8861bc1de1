"""k-fold cross-validation with resumable folds and optional fold-parallel execution.

Folder layout (``evaluation_path``)::

    cross_validation.json          the run: samples, k_fold, seed, the folds
    manifest.json                  provenance: versions, git commit, config, folds, seeds, inputs, times
    initial_model.keras            initial weights shipped to workers (executor runs only)
    fold_<i>/sample_list.json      {"TRAINING": [...], "VALIDATION": [...]}
    fold_<i>/history.tsv           per-epoch loss and metrics (train and val_)
    fold_<i>/model.keras           best val_loss model (Keras 3 native format)
    fold_<i>/model.hdf5            the same model as HDF5, MIScnn's file name
    fold_<i>/validation.<name>.png training curves (draw_figures)
    fold_<i>/detailed_validation.tsv (+ .long.tsv, .summary.tsv)   run_detailed_evaluation
    fold_<i>/.complete             written last: the fold finished
    detailed_validation.tsv (+ .long.tsv, .summary.tsv)   all folds (run_detailed_evaluation)
    validation.folds.png           every fold's curves (draw_figures)
    report.html                    self-contained HTML report (draw_figures; ``miseg report``)

Resume: calling ``cross_validation`` again on the same folder skips folds with a
``.complete`` marker and re-runs the others. A folder holding another run (other samples,
``k_fold`` or seed) is refused with :class:`miseg.errors.ConfigurationError`. A split
validation may share the folder (it writes ``sample_list.json``, ``history.tsv``, ... next
to the ``fold_<i>/`` folders); only files both runs would write (the pooled
``detailed_validation.*`` tables, the box plot) make the later run refuse.
"""

from __future__ import annotations

import concurrent.futures
import os
import warnings
from typing import Any, Iterable, Sequence

from miseg.errors import ConfigurationError
from miseg.evaluation import _execution, _folds, _manifest

__all__ = ["cross_validation", "split_folds", "run_fold", "write_fold2disk", "load_disk2fold"]


def cross_validation(
    sample_list: Sequence[Any],
    model: Any,
    k_fold: int = 3,
    epochs: int = 20,
    iterations: int | None = None,
    evaluation_path: str = "evaluation",
    draw_figures: bool = False,
    run_detailed_evaluation: bool = False,
    callbacks: Any = None,
    save_models: bool = True,
    return_output: bool = False,
    *,
    seed: int | None = None,
    executor: concurrent.futures.Executor | None = None,
    metrics: Iterable[str] | None = None,
    class_weight: Any = None,
    uncertainty: bool = False,
    instances: Any = False,
) -> list[dict] | None:
    """Train and validate ``model`` on ``k_fold`` folds of ``sample_list``.

    Each fold starts from the model's initial weights with a fresh optimizer
    (``model.reset()``) and fresh callbacks. The caller's ``sample_list`` is not modified.

    Args:
        sample_list: Case indices (str or int).
        model: A ``Neural_Network`` (or another ``miseg.multi_model.Model``).
        k_fold: Number of folds, ``2 <= k_fold <= len(sample_list)``.
        epochs: Epochs per fold.
        iterations: Batches per epoch (default: every case once).
        evaluation_path: Output folder (see the module docstring for its layout).
        draw_figures: Write ``validation.loss.png``/``validation.<metric>.png`` per fold
            (plus box plots and overlays with the detailed evaluation) and the HTML report
            ``report.html`` (see :func:`miseg.report.write_report`).
        run_detailed_evaluation: Predict each fold's validation cases and write
            ``detailed_validation.tsv`` per fold and for all folds together. Cases are
            scored with the fold's final weights (as in MIScnn), not the best checkpoint.
        callbacks: Keras callbacks, deep-copied for every fold, or a factory
            ``fold -> list of callbacks`` (needed for callbacks that cannot be copied;
            with an executor the factory must be picklable, i.e. a top-level function).
        save_models: Keep each fold's best model (``fold_<i>/model.keras`` and MIScnn's
            ``fold_<i>/model.hdf5``).
        return_output: Return the list of per-fold history dicts (``history.tsv`` is
            written either way).
        seed: Seed of the fold split (``np.random.default_rng(seed)``); ``None`` draws a
            random split, which is stored, so a resumed run reuses it.
        executor: A ``concurrent.futures.Executor``; each pending fold then runs as a task
            in a worker process, e.g. ``ProcessPoolExecutor(k,
            mp_context=multiprocessing.get_context("spawn"))`` (never fork with TensorFlow)
            or a Dask cluster: ``Client("tcp://scheduler:8786").get_executor()``. Workers
            rebuild the network from its settings and ``initial_model.keras``, so the
            preprocessor, data interface, architecture, loss, metrics and callbacks must be
            picklable, and ``evaluation_path`` and the data must be reachable under the same
            paths from every worker (a shared file system). Dask workers are daemonic
            processes: use ``Neural_Network(..., workers=0)`` or
            ``use_multiprocessing=False`` there. The caller's model is not trained. A
            process pool with the ``fork`` start method (Linux's default) is refused at
            once: TensorFlow in forked workers hangs.
        metrics: Metric names of the detailed evaluation (``None``: its defaults).
        class_weight: Passed to ``model.evaluate``.
        uncertainty: With ``run_detailed_evaluation``, score each validation case's
            uncertainty (``detailed_validation(..., uncertainty=True)``) and calibrate the
            review threshold on all folds into ``<evaluation_path>/uncertainty_calibration.json``
            (for ``predict(review_threshold=...)`` / ``miseg predict --review-threshold``).
        instances: With ``run_detailed_evaluation``, add instance metrics to the fold tables
            (``True`` or an ``InstanceSegmenter``; see ``detailed_validation``).

    Returns:
        With ``return_output``, one history dict per fold (folds finished by an earlier run
        are read back from their ``history.tsv``); otherwise ``None``.

    Raises:
        ConfigurationError: for an invalid ``k_fold``, metric names, a fork-based process
            pool, or a folder holding another run's results.

    Example:
        >>> cross_validation(ids, model, k_fold=5, epochs=100, evaluation_path="evaluation",
        ...                  draw_figures=True, run_detailed_evaluation=True, seed=42)
    """
    samples = _folds.check_sample_list(sample_list)
    k_fold = _folds.check_k_fold(k_fold, len(samples))
    seed = _folds.check_seed(seed)
    epochs, iterations = _check_training(epochs, iterations)
    if run_detailed_evaluation or metrics is not None:
        from miseg.evaluation.detailed_validation import resolve_detailed_metrics

        resolve_detailed_metrics(metrics)
    _execution.check_executor(executor, "cross_validation")
    detail_options = _detail_options(run_detailed_evaluation, uncertainty, instances)
    if model is not None:
        from miseg.multi_model._calls import check_class_weight

        check_class_weight(model, class_weight)
    planned = []
    if run_detailed_evaluation:
        planned += [_folds.DETAILED_FILE, _folds.DETAILED_LONG_FILE, _folds.DETAILED_SUMMARY_FILE]
        planned += [_folds.DETAILED_BOXPLOT_FILE] if draw_figures else []
    planned += [_folds.FOLDS_FIGURE_FILE] if draw_figures else []
    _folds.refuse_collisions(evaluation_path, planned, _folds.split_run_files(evaluation_path),
                             "a split validation's")
    splits = _folds.prepare_run(samples, k_fold, seed, evaluation_path)
    pending = _pending_folds(splits, evaluation_path, epochs, iterations, run_detailed_evaluation)
    settings = dict(
        epochs=epochs, iterations=iterations, callbacks=callbacks, save_models=save_models,
        draw_figures=draw_figures, run_detailed_evaluation=run_detailed_evaluation,
        metrics=metrics, class_weight=class_weight, detail_options=detail_options,
    )
    histories: dict[int, dict] = {}
    folds = [(_folds.fold_dir(evaluation_path, f), tr, va) for f, (tr, va) in enumerate(splits)]
    with _manifest.evaluation_run(  # <evaluation_path>/manifest.json
        "cross_validation", model, samples, evaluation_path, folds, pending,
        {"split": _folds.read_json(os.path.join(evaluation_path, _folds.RUN_FILE)).get("seed")},
        k_fold=k_fold, leave_one_out=k_fold == len(samples), epochs=epochs, iterations=iterations,
        executor=None if executor is None else type(executor).__name__,
    ) as run:
        with run.stage("folds"):
            if executor is None:
                for fold in _folds.progress(pending, "Cross-validation", unit="fold"):
                    training, validation = splits[fold]
                    histories[fold] = _execution.execute_fold(
                        model, fold, training, validation, _folds.fold_dir(evaluation_path, fold), **settings
                    )
            elif pending:
                histories.update(_run_with_executor(executor, model, splits, pending, evaluation_path, settings))
        for fold in range(k_fold):
            if fold not in histories:
                histories[fold] = _folds.read_history(_folds.fold_dir(evaluation_path, fold))
        ordered = [histories[fold] for fold in range(k_fold)]
        with run.stage("summary"):
            _summarise(ordered, model, evaluation_path, k_fold, draw_figures, run_detailed_evaluation)
            if uncertainty:
                from miseg.evaluation.uncertainty import calibrate_from_tables

                calibrate_from_tables([_folds.fold_dir(evaluation_path, f) for f in range(k_fold)],
                                      output=evaluation_path)
    if draw_figures:
        _write_report(evaluation_path)
    return ordered if return_output else None


def _write_report(evaluation_path: str) -> None:
    """The run's ``report.html``; a failure warns (the trained folds are not lost over it)."""
    from miseg.report import write_report

    try:
        write_report(evaluation_path)
    except Exception as exc:  # noqa: BLE001 - the results are on disk; `miseg report` can retry
        warnings.warn(f"cross_validation: the HTML report of {evaluation_path!r} could not be written "
                      f"({type(exc).__name__}: {exc}); run `miseg report {evaluation_path}` to retry.",
                      UserWarning, stacklevel=3)


def _detail_options(detailed: bool, uncertainty: bool, instances: Any) -> dict:
    """The extra ``detailed_validation`` options of each fold, checked before any training."""
    options: dict[str, Any] = {}
    if uncertainty:
        options["uncertainty"] = True
    if instances is not False and instances is not None:
        options["instances"] = instances
    if options and not detailed:
        raise ConfigurationError(
            "cross_validation: uncertainty= and instances= are part of the detailed evaluation; "
            "pass run_detailed_evaluation=True."
        )
    if len(options) == 2:
        raise ConfigurationError("cross_validation: uncertainty and instances cannot be combined.")
    return options


def _check_training(epochs: Any, iterations: Any) -> tuple[int, int | None]:
    return (_folds.check_positive_int(epochs, "epochs"),
            _folds.check_positive_int(iterations, "iterations", allow_none=True))


def _pending_folds(splits: Sequence[tuple[list, list]], evaluation_path: str, epochs: int,
                   iterations: int | None, detailed: bool) -> list[int]:
    pending = []
    for fold in range(len(splits)):
        marker = _folds.read_marker(_folds.fold_dir(evaluation_path, fold))
        if marker is None:
            pending.append(fold)
            continue
        if (marker.get("epochs"), marker.get("iterations")) != (epochs, iterations):
            warnings.warn(
                f"cross_validation: fold_{fold} in {evaluation_path!r} was completed with "
                f"epochs={marker.get('epochs')}, iterations={marker.get('iterations')} and is "
                f"kept (asked: epochs={epochs}, iterations={iterations}); delete its .complete "
                f"file to train it again.",
                UserWarning,
                stacklevel=3,
            )
        if detailed and not marker.get("detailed_evaluation"):
            warnings.warn(
                f"cross_validation: fold_{fold} was completed without a detailed evaluation; "
                f"delete fold_{fold}/.complete to run it.",
                UserWarning,
                stacklevel=3,
            )
    return pending


def _run_with_executor(executor: Any, model: Any, splits: Sequence[tuple[list, list]],
                       pending: Sequence[int], evaluation_path: str, settings: dict) -> dict[int, dict]:
    carried = _execution.model_for_workers(model, evaluation_path)
    futures = {}
    for fold in pending:
        training, validation = splits[fold]
        task = _execution.FoldTask(
            fold=fold, training=training, validation=validation,
            directory=os.path.abspath(_folds.fold_dir(evaluation_path, fold)), model=carried,
            **settings,
        )
        futures[executor.submit(_execution.run_fold_task, task)] = fold
    histories: dict[int, dict] = {}
    failures: list[tuple[int, BaseException]] = []
    done = concurrent.futures.as_completed(futures)
    for future in _folds.progress(done, "Cross-validation", total=len(futures), unit="fold"):
        fold = futures[future]
        try:
            histories[fold] = future.result()["history"]
        except Exception as exc:  # noqa: BLE001 - collected and re-raised below
            failures.append((fold, exc))
    if failures:
        fold, exc = min(failures, key=lambda item: item[0])
        exc.add_note(
            f"cross_validation: fold(s) {sorted(f for f, _ in failures)} failed in the executor; "
            f"completed folds are kept and a rerun resumes from them."
        )
        raise exc
    return histories


def _summarise(histories: Sequence[dict], model: Any, evaluation_path: str, k_fold: int,
               draw_figures: bool, detailed: bool) -> None:
    """Run-level outputs: all folds' curves and the pooled detailed-validation tables."""
    if draw_figures and any(histories):
        from miseg.utils.plotting import plot_fold_curves

        names = ["loss"] + [_folds.metric_name(m) for m in getattr(model, "metrics", None) or []]
        names = [n for n in dict.fromkeys(names) if any(n in h or "val_" + n in h for h in histories)]
        if names:
            plot_fold_curves(histories, os.path.join(evaluation_path, _folds.FOLDS_FIGURE_FILE), names)
    if detailed:
        pooled = pool_detailed_tables([_folds.fold_dir(evaluation_path, f) for f in range(k_fold)],
                                      evaluation_path)
        if draw_figures and pooled is not None:
            from miseg.utils.plotting import plot_metric_boxplots

            shown = [m for m in ("dice", "hd95", "assd", "iou") if m in pooled.columns]
            plot_metric_boxplots(pooled, os.path.join(evaluation_path, _folds.DETAILED_BOXPLOT_FILE), shown)


def pool_detailed_tables(directories: Sequence[str], evaluation_path: str) -> Any:
    """Combine the folds' ``detailed_validation.long.tsv`` into run-level tables.

    Writes ``detailed_validation.tsv`` (wide), ``.long.tsv`` (with a ``fold`` column) and
    ``.summary.tsv`` to ``evaluation_path``; folds without a table are skipped.

    Returns:
        The pooled long table, or ``None`` when no fold has one.
    """
    import pandas as pd

    from miseg.evaluation.reports import read_table, summary_table, wide_table, write_table

    tables = []
    for directory in directories:
        path = os.path.join(directory, _folds.DETAILED_LONG_FILE)
        if os.path.isfile(path):
            table = read_table(path)
            table.insert(0, "fold", os.path.basename(os.path.normpath(directory)))
            tables.append(table)
    if not tables:
        return None
    pooled = pd.concat(tables, ignore_index=True)
    metric_table = pooled.drop(columns=["fold"])
    write_table(wide_table(metric_table), os.path.join(evaluation_path, _folds.DETAILED_FILE))
    write_table(pooled, os.path.join(evaluation_path, _folds.DETAILED_LONG_FILE))
    write_table(summary_table(metric_table), os.path.join(evaluation_path, _folds.DETAILED_SUMMARY_FILE))
    return pooled


def split_folds(sample_list: Sequence[Any], k_fold: int = 3, evaluation_path: str = "evaluation",
                seed: int | None = None) -> list[tuple[list, list]]:
    """Split the samples into folds and write ``fold_<i>/sample_list.json`` (no training).

    Together with :func:`run_fold` this lets folds run as separate jobs (e.g. one per
    machine). Calling it again on the same folder keeps the stored split.

    Args:
        sample_list: Case indices.
        k_fold: Number of folds.
        evaluation_path: Output folder.
        seed: Seed of the split.

    Returns:
        ``(training, validation)`` per fold (MIScnn returned nothing).

    Example:
        >>> split_folds(ids, k_fold=5, evaluation_path="evaluation", seed=0)
        >>> run_fold(2, model, epochs=100, evaluation_path="evaluation")
    """
    samples = _folds.check_sample_list(sample_list)
    k_fold = _folds.check_k_fold(k_fold, len(samples))
    return _folds.prepare_run(samples, k_fold, _folds.check_seed(seed), evaluation_path)


def run_fold(
    fold: int,
    model: Any,
    epochs: int = 20,
    iterations: int | None = None,
    evaluation_path: str = "evaluation",
    draw_figures: bool = True,
    callbacks: Any = None,
    save_models: bool = True,
    *,
    run_detailed_evaluation: bool = False,
    metrics: Iterable[str] | None = None,
    class_weight: Any = None,
) -> dict[str, list[float]]:
    """Run one fold written by :func:`split_folds` (``fold_<fold>/sample_list.json``).

    A fold that already has a ``.complete`` marker is not trained again; its stored history
    is returned (delete the marker to force a new run).

    Args:
        fold: Fold number.
        model: The model (reset to its initial weights with a fresh optimizer first).
        epochs: Epochs.
        iterations: Batches per epoch.
        evaluation_path: The folder of :func:`split_folds`.
        draw_figures: Write ``validation.*.png`` (default True, as in MIScnn).
        callbacks: Keras callbacks (copied) or a factory ``fold -> callbacks``.
        save_models: Keep the best model as ``fold_<fold>/model.keras`` and
            ``fold_<fold>/model.hdf5`` (MIScnn's name).
        run_detailed_evaluation: Also write ``detailed_validation.tsv`` for the fold.
        metrics: Metric names of the detailed evaluation.
        class_weight: Passed to ``model.evaluate``.

    Returns:
        The fold's history dict.
    """
    epochs, iterations = _check_training(epochs, iterations)
    if isinstance(fold, bool) or not isinstance(fold, int) or fold < 0:
        raise ConfigurationError(f"fold must be a non-negative int, got {fold!r}.")
    directory = _folds.fold_dir(evaluation_path, fold)
    path = os.path.join(directory, _folds.SAMPLE_LIST_FILE)
    if not os.path.isfile(path):
        from miseg.errors import DataNotFoundError

        raise DataNotFoundError(
            f"No fold {fold} in {evaluation_path!r} (missing {path}); write the folds with "
            f"split_folds(sample_list, k_fold, evaluation_path) first."
        )
    training, validation = load_disk2fold(path)
    if not training or not validation:
        raise ConfigurationError(f"{path!r} needs non-empty TRAINING and VALIDATION lists.")
    if run_detailed_evaluation or metrics is not None:
        from miseg.evaluation.detailed_validation import resolve_detailed_metrics

        resolve_detailed_metrics(metrics)
    marker = _folds.read_marker(directory)
    if marker is not None and marker.get("hash") == _folds.fold_hash(training, validation):
        return _folds.read_history(directory)
    return _execution.execute_fold(
        model, fold, training, validation, directory, epochs=epochs, iterations=iterations,
        callbacks=callbacks, save_models=save_models, draw_figures=draw_figures,
        run_detailed_evaluation=run_detailed_evaluation, metrics=metrics, class_weight=class_weight,
    )


def write_fold2disk(file_path: str, training: Sequence[Any] | None, validation: Sequence[Any] | None) -> str:
    """Write ``{"TRAINING": [...], "VALIDATION": [...]}`` to ``file_path`` (atomically).

    Returns:
        The written path.
    """
    return _folds.write_sample_list(file_path, training, validation)


def load_disk2fold(file_path: str) -> tuple[list | None, list | None]:
    """Read a fold file: ``(training, validation)``, ``None`` for a missing list."""
    return _folds.read_sample_list(file_path)
