"""Running one training/validation fold, in this process or in an executor's worker.

``execute_fold`` is the single place where a fold is trained and its results are written;
``FoldTask`` and ``run_fold_task`` carry it into another process (a
``concurrent.futures.ProcessPoolExecutor`` or a Dask ``Client.get_executor()``).

A task cannot carry a live Keras model across processes reliably (strategies, GPU state), so
a ``Neural_Network`` travels as :class:`NetworkSpec`: the constructor settings (preprocessor,
architecture, loss, metrics, hyper-parameters; all picklable) plus the path of the initial
weights that the driver dumped to ``<evaluation_path>/initial_model.keras``. The worker
builds the network and loads those weights, so every fold starts where a serial run would.
"""

from __future__ import annotations

import concurrent.futures
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

from miseg.errors import ConfigurationError
from miseg.evaluation import _folds


@dataclass
class NetworkSpec:
    """Everything a worker needs to rebuild a ``Neural_Network`` with given initial weights."""

    preprocessor: Any
    architecture: Any
    loss: Any
    metrics: list
    learning_rate: float
    batch_queue_size: int
    workers: int
    multi_gpu: bool
    use_multiprocessing: bool
    mixed_precision: bool
    tta: bool
    keep_largest_component: bool
    prediction_batch_size: int | None
    weights_path: str
    verbose: Any = "auto"
    shuffle_batches: bool = True

    @classmethod
    def from_network(cls, network: Any, weights_path: str) -> "NetworkSpec":
        if network.strategy is not None and not network.multi_gpu:
            warnings.warn(
                "cross_validation(executor=...): the network's custom tf.distribute strategy "
                "cannot travel to a worker process; folds there train without it.",
                UserWarning,
                stacklevel=3,
            )
        return cls(
            preprocessor=network.preprocessor,
            architecture=network.architecture,
            loss=network.loss,
            metrics=list(network.metrics),
            learning_rate=network.learning_rate,
            batch_queue_size=network.batch_queue_size,
            workers=network.workers,
            multi_gpu=network.multi_gpu,
            use_multiprocessing=network.use_multiprocessing,
            mixed_precision=network.mixed_precision,
            tta=network.tta,
            keep_largest_component=network.keep_largest_component,
            prediction_batch_size=network.prediction_batch_size,
            weights_path=weights_path,
            verbose=getattr(network, "verbose", "auto"),
            shuffle_batches=getattr(network, "shuffle_batches", True),
        )

    def build(self) -> Any:
        from miseg.neural_network.model import Neural_Network

        network = Neural_Network(
            self.preprocessor, architecture=self.architecture, loss=self.loss,
            metrics=list(self.metrics), learning_rate=self.learning_rate,
            batch_queue_size=self.batch_queue_size, workers=self.workers,
            multi_gpu=self.multi_gpu, use_multiprocessing=self.use_multiprocessing,
            mixed_precision=self.mixed_precision, tta=self.tta,
            keep_largest_component=self.keep_largest_component,
            prediction_batch_size=self.prediction_batch_size,
        )
        network.verbose = self.verbose
        network.shuffle_batches = self.shuffle_batches
        # Weights only: the architecture was just built in this process (inside the strategy
        # scope and dtype policy), so no custom-layer deserialisation is involved.
        network.model.load_weights(self.weights_path)
        network.initialization_weights = network.model.get_weights()
        return network


def check_executor(executor: Any, driver: str) -> None:
    """Refuse, before anything is submitted, an executor that cannot run folds.

    A ``ProcessPoolExecutor`` whose start method is ``fork`` (the default on Linux before
    Python 3.14) copies the parent's TensorFlow runtime into the workers, where it hangs
    without an error; such a pool is refused at once.

    Raises:
        ConfigurationError: for an object without ``submit`` or a fork-based process pool.
    """
    if executor is None:
        return
    if not hasattr(executor, "submit"):
        raise ConfigurationError(f"{driver}: executor must be a concurrent.futures.Executor, got {executor!r}.")
    if not isinstance(executor, concurrent.futures.ProcessPoolExecutor):
        return
    context = getattr(executor, "_mp_context", None)
    method = context.get_start_method() if context is not None else None
    if method == "fork":
        raise ConfigurationError(
            f"{driver}: the executor is a ProcessPoolExecutor with the 'fork' start method "
            f"(the default on Linux); TensorFlow in forked workers hangs. Create it with "
            f"ProcessPoolExecutor(n, mp_context=multiprocessing.get_context(\"spawn\"))."
        )


def is_network(model: Any) -> bool:
    from miseg.neural_network.model import Neural_Network

    return isinstance(model, Neural_Network)


def model_for_workers(model: Any, evaluation_path: str) -> Any:
    """What a task carries for ``model``: a NetworkSpec, or the (picklable) model itself.

    The initial weights are written to ``<evaluation_path>/initial_model.keras`` without
    changing the caller's model (its current weights are put back).
    """
    if not is_network(model):
        return model
    path = os.path.abspath(os.path.join(evaluation_path, _folds.INITIAL_MODEL_FILE))
    current = model.model.get_weights()
    try:
        model.reset_weights()
        model.dump(path)
    finally:
        model.model.set_weights(current)
    return NetworkSpec.from_network(model, path)


@dataclass
class FoldTask:
    """A picklable description of one fold for :func:`run_fold_task`."""

    fold: int
    training: list
    validation: list
    directory: str
    model: Any
    epochs: int
    iterations: int | None
    callbacks: Any
    save_models: bool
    draw_figures: bool
    run_detailed_evaluation: bool
    metrics: Any
    class_weight: Any
    extra: dict = field(default_factory=dict)
    detail_options: dict = field(default_factory=dict)


def run_fold_task(task: FoldTask) -> dict:
    """Worker entry point: rebuild the model and run the fold. Returns the fold's history."""
    model = task.model.build() if isinstance(task.model, NetworkSpec) else task.model
    history = execute_fold(
        model, task.fold, task.training, task.validation, task.directory,
        epochs=task.epochs, iterations=task.iterations, callbacks=task.callbacks,
        save_models=task.save_models, draw_figures=task.draw_figures,
        run_detailed_evaluation=task.run_detailed_evaluation, metrics=task.metrics,
        class_weight=task.class_weight, extra=task.extra, detail_options=task.detail_options,
    )
    return {"fold": task.fold, "history": history}


def execute_fold(
    model: Any,
    fold: int,
    training: Sequence[Any],
    validation: Sequence[Any],
    directory: str,
    epochs: int,
    iterations: int | None,
    callbacks: Any,
    save_models: bool,
    draw_figures: bool,
    run_detailed_evaluation: bool,
    metrics: Any,
    class_weight: Any = None,
    extra: dict | None = None,
    keep: Sequence[str] = (),
    detail_options: dict | None = None,
) -> dict[str, list[float]]:
    """Train ``model`` from its initial state on one fold and write every result, marker last.

    Writes ``history.tsv``, ``model.keras`` and ``model.hdf5`` (MIScnn's name; both the best
    ``val_loss`` model, the final weights when no epoch improved), ``validation.*.png`` and
    the detailed-validation tables as asked, then ``.complete``. ``keep`` names files of
    another run in ``directory`` that the clean-up of an unfinished run must leave alone.
    ``detail_options`` are passed to :func:`detailed_validation` (e.g. ``uncertainty``,
    ``instances``).

    Returns:
        The fold's history dict.
    """
    from miseg.data_loading.data_io import backup_history
    from miseg.multi_model._calls import call_evaluate

    os.makedirs(directory, exist_ok=True)
    _folds.clear_results(directory, keep=keep)
    model.reset()
    run_callbacks = _folds.fresh_callbacks(callbacks, fold)
    leaf = _folds.keras_backed(model)
    if save_models and leaf:
        run_callbacks.append(_folds.checkpoint(directory))
    started = time.perf_counter()
    result = call_evaluate(
        model, training, validation, epochs=epochs, iterations=iterations,
        callbacks=run_callbacks, class_weight=class_weight, evaluation_path=directory,
    )
    stages = {"training": round(time.perf_counter() - started, 4)}  # wall seconds, for manifest.json
    history = _folds.history_dict(result)
    files = []
    if history:
        files.append(os.path.basename(backup_history(history, directory)))
    if save_models:
        saved = _folds.fold_model_files(directory) if leaf else []
        files.extend(saved or _folds.save_fold_model(model, directory))
    if draw_figures and history:
        from miseg.utils.plotting import plot_validation

        files.extend(os.path.basename(p) for p in plot_validation(history, getattr(model, "metrics", []), directory))
    if run_detailed_evaluation:
        from miseg.evaluation.detailed_validation import detailed_validation

        started = time.perf_counter()
        detailed_validation(validation, model, directory, metrics=metrics, draw_figures=draw_figures,
                            **(detail_options or {}))
        stages["evaluation"] = round(time.perf_counter() - started, 4)
        files.extend([_folds.DETAILED_FILE, _folds.DETAILED_LONG_FILE, _folds.DETAILED_SUMMARY_FILE])
        if draw_figures:
            files.append(_folds.DETAILED_BOXPLOT_FILE)
    _folds.write_marker(directory, {
        "fold": fold,
        "hash": _folds.fold_hash(training, validation),
        "epochs": epochs,
        "iterations": iterations,
        "detailed_evaluation": bool(run_detailed_evaluation),
        "files": files,
        "stages": stages,
        **(extra or {}),
    })
    return history
