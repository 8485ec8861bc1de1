"""Neural_Network: a Keras 3 model wrapped around a Preprocessor (MIScnn's central class)."""

from __future__ import annotations

import contextlib
import os
import time
import zipfile
from typing import Any, Iterator, Sequence

import keras
import numpy as np

from miseg.errors import ConfigurationError, CorruptFileError, DataNotFoundError, ModelError
from miseg.multi_model.model import Model
from miseg.neural_network.data_generator import DataGenerator
from miseg.neural_network.metrics import class_weighted_loss, dice_soft, tversky_loss
from miseg.utils.fileio import atomic_path

__all__ = ["Neural_Network"]

_MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
_FOLDER_MODEL_FILE = "model.keras"  # the file inside a folder written by dump("model")


class Neural_Network(Model):
    """Build, train and apply a segmentation network on a Preprocessor's data.

    Args:
        preprocessor: The Preprocessor (decides input shape, channels, classes).
        architecture: An ``Abstract_Architecture``; a fresh standard U-Net by default.
        loss: Loss function or ``keras.losses.Loss``.
        metrics: Metrics; ``[dice_soft]`` by default (a fresh list per instance).
        learning_rate: Adam learning rate.
        batch_queue_size: Batches prepared ahead of the model (Keras ``max_queue_size``).
        workers: Processes producing batches in parallel with training (0: in the
            training loop itself).
        multi_gpu: Build under ``tf.distribute.MirroredStrategy``.
        strategy: Any ``tf.distribute.Strategy`` to build and train under (wins over
            ``multi_gpu``).
        mixed_precision: Build with the ``mixed_float16`` policy (float32 output layer).
        use_multiprocessing: Workers are processes (default) rather than threads.
        tta: Average mirrored predictions in ``predict`` (test-time augmentation).
        keep_largest_component: Postprocess label predictions by keeping the largest
            connected component of each foreground class.
        prediction_batch_size: Patches per forward pass at prediction (default: the
            preprocessor's batch size).

    Attributes:
        verbose: Keras ``fit`` verbosity (``"auto"``, 0, 1 or 2); the environment variable
            ``MISEG_QUIET`` silences training output and progress bars.
        run_config: The run config recorded in manifests (``miseg`` commands set it).
        hash_inputs: Manifests record the SHA-256 of every input file (default: size and
            modification time only).
        training_manifest: Provenance of the current weights (see
            :mod:`miseg.utils.manifest`): the last ``train``/``evaluate`` run, or the
            manifest of the loaded model; :meth:`dump` writes it to
            ``<model>.manifest.json`` and ``predict`` writes ``<output_path>/manifest.json``.

    Example:
        >>> model = Neural_Network(preprocessor=pp, architecture=UNet_standard(depth=3))
        >>> model.train(train_ids, epochs=10)
        >>> model.predict(test_ids)                 # writes predictions/<index>.nii.gz
    """

    def __init__(
        self,
        preprocessor: Any,
        architecture: Any = None,
        loss: Any = tversky_loss,
        metrics: Sequence[Any] | None = None,
        learning_rate: float = 0.0001,
        batch_queue_size: int = 2,
        workers: int = 1,
        multi_gpu: bool = False,
        *,
        strategy: Any = None,
        mixed_precision: bool = False,
        use_multiprocessing: bool = True,
        tta: bool = False,
        keep_largest_component: bool = False,
        prediction_batch_size: int | None = None,
    ) -> None:
        super().__init__(preprocessor)
        if architecture is None:
            from miseg.neural_network.architecture.unet.standard import Architecture

            architecture = Architecture()
        self.architecture = architecture
        self.loss = loss
        self.metrics = list(metrics) if metrics is not None else [dice_soft]
        if not learning_rate > 0:
            raise ConfigurationError(f"learning_rate must be positive, got {learning_rate!r}.")
        self.learning_rate = learning_rate
        self.batch_queue_size = batch_queue_size
        self.workers = workers
        self.multi_gpu = multi_gpu
        self.use_multiprocessing = use_multiprocessing
        self.mixed_precision = mixed_precision
        self.tta = tta
        self.keep_largest_component = keep_largest_component
        self.prediction_batch_size = prediction_batch_size
        self.shuffle_batches = True
        self.verbose: Any = "auto"
        self.run_config: dict | None = None  # the run config recorded in manifests (``miseg`` commands)
        self.hash_inputs = False  # manifests record the SHA-256 of every input file
        self.training_manifest: dict | None = None  # provenance of the current weights
        if strategy is None and multi_gpu:
            import tensorflow as tf

            strategy = tf.distribute.MirroredStrategy(
                cross_device_ops=tf.distribute.HierarchicalCopyAllReduce()
            )
        self.strategy = strategy
        self._class_weight: Any = None
        self._compiled_with: tuple | None = None
        self._loaded_from: str | None = None  # the file load() read (export: "trained or loaded")
        self.model = self.build_model()
        self.initialization_weights = self.model.get_weights()

    # ------------------------------------------------------------------ building
    def _scope(self) -> Any:
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    @contextlib.contextmanager
    def _policy(self) -> Iterator[None]:
        if not self.mixed_precision:
            yield
            return
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy("mixed_float16")
        try:
            yield
        finally:
            keras.config.set_dtype_policy(previous)

    def input_shape(self) -> tuple:
        pp = self.preprocessor
        dims = 3 if self.three_dim else 2
        if pp.analysis == "fullimage":
            return (None,) * dims + (self.channels,)
        return tuple(pp.patch_shape) + (self.channels,)

    def build_model(self) -> keras.Model:
        """Create the architecture's model for this preprocessor and compile it."""
        with self._scope(), self._policy():
            builder = self.architecture.create_model_3D if self.three_dim else self.architecture.create_model_2D
            model = builder(self.input_shape(), n_labels=self.classes)
        self.model = model
        self._compile()
        return model

    def _effective_loss(self) -> Any:
        if self._class_weight is None:
            return self.loss
        return class_weighted_loss(self.loss, self._class_weight)

    def _signature(self) -> tuple:
        return (id(self.loss), tuple(id(m) for m in self.metrics), _freeze(self._class_weight))

    def _compile(self) -> None:
        with self._scope():
            optimizer = keras.optimizers.Adam(learning_rate=self.learning_rate)
            self.model.compile(optimizer=optimizer, loss=self._effective_loss(), metrics=list(self.metrics))
        self._compiled_with = self._signature()

    def _sync_compilation(self, class_weight: Any) -> None:
        """Recompile when loss, metrics or class weights changed; apply a new learning rate."""
        self._class_weight = class_weight
        if self._compiled_with != self._signature():
            self._compile()
        optimizer = self.model.optimizer
        if float(keras.ops.convert_to_numpy(optimizer.learning_rate)) != float(self.learning_rate):
            optimizer.learning_rate = self.learning_rate

    def _check_channels(self) -> None:
        expected = self.model.input_shape[-1]
        if expected != self.preprocessor.data_io.interface.channels:
            raise ModelError(
                f"The model expects {expected} input channels, but the preprocessor's interface "
                f"serves {self.preprocessor.data_io.interface.channels}."
            )

    # ------------------------------------------------------------------ training
    def _verbosity(self) -> Any:
        return 0 if os.environ.get("MISEG_QUIET") else self.verbose

    def _generator(self, samples: Sequence[Any], training: bool, validation: bool = False,
                   iterations: int | None = None) -> DataGenerator:
        return DataGenerator(
            list(samples), self.preprocessor, training=training, validation=validation,
            shuffle=self.shuffle_batches, iterations=iterations,
            workers=max(1, self.workers), use_multiprocessing=self.use_multiprocessing and self.workers > 0,
            max_queue_size=self.batch_queue_size, divisor=self._divisor(),
        )

    def _divisor(self) -> tuple[int, ...] | None:
        """fullimage: the network's total downsampling per axis (images are padded to it)."""
        if self.preprocessor.analysis != "fullimage":
            return None
        return downsampling_factors(self.model)

    def _cleanup(self) -> None:
        pp = self.preprocessor
        if pp.prepare_batches:
            pp.data_io.batch_cleanup()

    @contextlib.contextmanager
    def _recording(self, cases: dict[str, Sequence[Any]], **fields: Any) -> Iterator[None]:
        """Time a training run; when it succeeds, its manifest becomes ``training_manifest``."""
        from miseg.utils.manifest import network_manifest

        run = network_manifest(self, "training", cases, previous=self.training_manifest, **fields)
        with run.stage("training"):
            yield
        self.training_manifest = run.finish()

    def train(self, sample_list: Sequence[Any], epochs: int = 20, iterations: int | None = None,
              callbacks: Sequence[Any] | None = None, class_weight: Any = None) -> keras.callbacks.History:
        """Fit on ``sample_list``.

        The run's manifest (versions, git commit, cases, input files, seeds, wall times) is
        kept in ``training_manifest`` and written next to the model by :meth:`dump`.

        Args:
            sample_list: Case indices.
            epochs: Epochs.
            iterations: Batches per epoch (default: every case's patches once).
            callbacks: Keras callbacks.
            class_weight: ``{class: weight}`` or a sequence per class; applied inside the
                loss so it works for 2D and 3D segmentation outputs.

        Returns:
            The Keras History.
        """
        self._check_channels()
        self._sync_compilation(class_weight)
        generator = self._generator(sample_list, training=True, iterations=iterations)
        with self._recording({"training": sample_list}, epochs=epochs, iterations=iterations,
                             class_weight=class_weight):
            try:
                return self.model.fit(generator, epochs=epochs, callbacks=list(callbacks or []),
                                      verbose=self._verbosity())
            finally:
                self._cleanup()

    def evaluate(self, training_samples: Sequence[Any], validation_samples: Sequence[Any],
                 epochs: int = 20, iterations: int | None = None,
                 callbacks: Sequence[Any] | None = None, class_weight: Any = None) -> keras.callbacks.History:
        """Fit on ``training_samples`` with ``validation_samples`` scored after every epoch."""
        self._check_channels()
        self._sync_compilation(class_weight)
        train_gen = self._generator(training_samples, training=True, iterations=iterations)
        val_gen = self._generator(validation_samples, training=True, validation=True)
        with self._recording({"training": training_samples, "validation": validation_samples},
                             epochs=epochs, iterations=iterations, class_weight=class_weight):
            try:
                return self.model.fit(train_gen, validation_data=val_gen, epochs=epochs,
                                      callbacks=list(callbacks or []), verbose=self._verbosity())
            finally:
                self._cleanup()

    # ------------------------------------------------------------------ prediction
    def _check_indices(self, sample_list: Sequence[Any]) -> None:
        known = set(map(str, self.preprocessor.data_io.get_indiceslist()))
        missing = [i for i in sample_list if str(i) not in known]
        if missing:
            raise DataNotFoundError(
                f"Cannot predict samples {missing[:5]}: they are not among the data set's "
                f"{len(known)} cases in {getattr(self.preprocessor.data_io, 'input_path', '?')!r}."
            )

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict_on_batch(batch), dtype=np.float32)

    def _predict_probabilities(self, plan: Any, flips: Sequence[tuple[int, ...]]) -> np.ndarray:
        """Merged class probabilities of one case, averaged over the given flips."""
        batch_size = self.prediction_batch_size or self.preprocessor.batch_size

        def batches() -> Iterator[np.ndarray]:
            for start in range(0, len(plan), batch_size):
                x = plan.patches(start, start + batch_size)
                total = None
                for axes in flips:
                    out = self._forward(np.flip(x, axes) if axes else x)
                    out = np.flip(out, axes) if axes else out
                    total = out if total is None else total + out
                yield total / len(flips)

        return self.preprocessor.merge(plan, batches())

    def _flips(self, tta: bool) -> list[tuple[int, ...]]:
        dims = 3 if self.three_dim else 2
        flips = [()] + [(axis,) for axis in range(1, dims + 1)] if tta else [()]
        aug = self.preprocessor.data_augmentation
        infaug = set(aug.infaug_axes(dims)) if aug is not None else set()
        # MIScnn's inference augmentation (infaug): the network sees the flipped input. Flips
        # commute and undo themselves, so it composes with TTA as a symmetric difference.
        return [tuple(sorted(set(f) ^ infaug)) for f in flips]

    def _mirrored_members(self, sample: Any, plan: Any,
                          flips: Sequence[tuple[int, ...]]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Mean probabilities (network space) and each flip's map in the original image space."""
        maps = [self._predict_probabilities(plan, [axes]) for axes in flips]
        members = [self.preprocessor.finish_prediction(sample, m, True) for m in maps]
        return np.mean(maps, axis=0, dtype=np.float32), members

    def predict(self, sample_list: Sequence[Any], return_output: bool = False,
                activation_output: bool = False, tta: bool | None = None,
                instances: Any = False, uncertainty: bool = False,
                review_threshold: Any = None) -> list[Any] | None:
        """Predict cases, in their original image space.

        Args:
            sample_list: Case indices (they need no segmentation).
            return_output: Return the predictions instead of writing them through the
                interface (``<output_path>/<index>.nii.gz`` for NIfTI).
            activation_output: Probabilities ``(..., classes)`` instead of labels.
            tta: Average over mirrored inputs (default: the ``tta`` attribute).
            instances: Also produce instances: ``True`` (default settings) or a
                :class:`~miseg.processing.instances.InstanceSegmenter`. They are written
                next to the semantic output (``<index>.instances.<ext>`` and
                ``<index>.instances.tsv``, see ``save_instances`` of the interface).
            uncertainty: Also measure the uncertainty (:mod:`miseg.evaluation.uncertainty`)
                from the mirrored predictions, which are then always used (the un-mirrored
                input and one mirror per spatial axis are the "members"). Writes
                ``<index>.entropy.nii.gz`` and ``<index>.variance.nii.gz`` (the interface's
                float format) and ``<output_path>/uncertainty.tsv``.
            review_threshold: The review rule of the uncertainty table: a calibration file,
                a ``ReviewRule``, a threshold on ``member_dice``, or ``None`` (default rule);
                see :func:`~miseg.evaluation.uncertainty.load_review_rule`.

        Returns:
            With ``return_output``, one array per case: labels ``(x, y[, z])`` or
            probabilities ``(x, y[, z], classes)``; with ``instances`` a
            ``(prediction, Instances)`` pair per case; with ``uncertainty`` a
            ``CaseUncertainty`` is appended to the tuple.
        """
        from miseg.processing.instances import resolve_segmenter

        started = time.perf_counter()
        segmenter = resolve_segmenter(instances)
        self._check_channels()
        self._check_indices(sample_list)
        pp = self.preprocessor
        if segmenter is not None and not return_output:
            from miseg.processing.instances import check_instance_output

            check_instance_output(pp.data_io.interface)  # fail before any prediction is written
        recorder = None
        if uncertainty:
            from miseg.evaluation.uncertainty import UncertaintyRecorder

            recorder = UncertaintyRecorder(pp.data_io, review_threshold)
        flips = self._flips(True if recorder is not None else (self.tta if tta is None else tta))
        results = []
        for index in _progress(sample_list, "Predicting"):
            sample = pp.load_sample(index, training=False)
            plan = pp.prediction_plan(sample, self._divisor())
            if recorder is None:
                probabilities = self._predict_probabilities(plan, flips)
            else:
                probabilities, members = self._mirrored_members(sample, plan, flips)
            prediction = pp.finish_prediction(sample, probabilities, activation_output)
            if self.keep_largest_component and not activation_output:
                from miseg.processing.postprocessing import keep_largest_component

                prediction = keep_largest_component(prediction, self.classes)
            found = None
            if segmenter is not None:
                from miseg.processing.instances import predicted_instances

                original, found = predicted_instances(pp, sample, probabilities, prediction,
                                                      activation_output, segmenter)
            measured = None
            if recorder is not None:
                labels = np.argmax(prediction, axis=-1) if activation_output else prediction
                measured = recorder.measure(index, members, labels)
            extras = tuple(x for x in (found, measured) if x is not None)
            if return_output:
                results.append((prediction, *extras) if extras else prediction)
                continue
            if found is not None:
                from miseg.processing.instances import check_instance_capacity, save_instances

                check_instance_capacity(pp.data_io.interface, found, index)  # before any write
            sample.add_prediction(prediction, activation_output)
            pp.data_io.save_prediction(sample)
            if found is not None:
                save_instances(pp.data_io.interface, original, found, pp.data_io.output_path)
            if measured is not None:
                recorder.save_maps(sample, measured)
        if recorder is not None and not return_output:
            recorder.write_table()
        if not return_output:  # <output_path>/manifest.json
            from miseg.utils.manifest import write_prediction_manifest

            write_prediction_manifest(self, sample_list, time.perf_counter() - started)
        return results if return_output else None

    def predict_augmentated(self, sample_index: Any) -> list[np.ndarray]:
        """Probability maps of one case for each single-axis mirror (un-averaged, MIScnn API).

        Returns:
            A list of ``dims`` maps ``(x, y[, z], classes)``, mirrored along spatial axis 1..dims.
        """
        self._check_indices([sample_index])
        pp = self.preprocessor
        sample = pp.load_sample(sample_index, training=False)
        plan = pp.prediction_plan(sample, self._divisor())
        dims = 3 if self.three_dim else 2
        return [
            pp.finish_prediction(sample, self._predict_probabilities(plan, [(axis,)]), True)
            for axis in range(1, dims + 1)
        ]

    # ------------------------------------------------------------------ state
    def reset_weights(self) -> None:
        """Restore the initial weights (optimizer state is kept; use ``reset`` for both)."""
        self.model.set_weights(self.initialization_weights)
        self.training_manifest = None  # the weights no longer come from that run

    def reset(self) -> None:
        """Restore the initial weights and start a fresh optimizer."""
        self.reset_weights()
        self._compile()

    def copy(self) -> "Neural_Network":
        """A new Neural_Network with the same settings and a copy of the weights."""
        clone = Neural_Network(
            self.preprocessor, architecture=self.architecture, loss=self.loss, metrics=list(self.metrics),
            learning_rate=self.learning_rate, batch_queue_size=self.batch_queue_size, workers=self.workers,
            use_multiprocessing=self.use_multiprocessing, mixed_precision=self.mixed_precision, tta=self.tta,
            keep_largest_component=self.keep_largest_component,
            prediction_batch_size=self.prediction_batch_size,
        )
        clone.model.set_weights(self.model.get_weights())
        return clone

    @staticmethod
    def model_path(file_path: str) -> str:
        """The file :meth:`dump` writes for ``file_path``.

        ``.keras``, ``.h5`` and ``.hdf5`` names are the file itself. Any other path is a
        folder, as MIScnn's SavedModel was: ``"model"`` -> ``"model/model.keras"``.
        """
        path = os.fspath(file_path)
        return path if path.lower().endswith(_MODEL_SUFFIXES) else os.path.join(path, _FOLDER_MODEL_FILE)

    def dump(self, file_path: str) -> str:
        """Save the model, atomically.

        Args:
            file_path: A ``.keras`` file (Keras 3's format), an ``.h5``/``.hdf5`` file
                (HDF5, MIScnn's format), or an extension-less path such as MIScnn's
                ``"./model"``: a folder that gets ``model.keras`` (created when missing;
                other files in it are left alone), so ``file_path`` exists afterwards and
                ``load(file_path)`` reads it.

        Returns:
            The written file (``model/model.keras`` for ``"model"``).

        Raises:
            ConfigurationError: when an extension-less ``file_path`` is an existing file.
        """
        folder = os.fspath(file_path)
        path = self.model_path(folder)
        if path != folder and os.path.lexists(folder) and not os.path.isdir(folder):
            raise ConfigurationError(
                f"Cannot dump the model to {folder!r}: an extension-less path is saved as a "
                f"folder holding {_FOLDER_MODEL_FILE}, but a file of that name exists. Remove "
                f"it or pass a file name ending in .keras, .h5 or .hdf5."
            )
        suffix = os.path.splitext(path)[1]
        with atomic_path(path, suffix=suffix) as tmp:
            self.model.save(tmp)
        from miseg.utils.manifest import write_model_manifest

        write_model_manifest(self, path)
        return path

    def load(self, file_path: str, custom_objects: dict | None = None) -> None:
        """Load a model saved by :meth:`dump` (or by MIScnn as HDF5) and recompile it.

        Args:
            file_path: A model file, a folder written by ``dump("model")`` (its
                ``model.keras``), a Keras 3 model folder (``config.json``), or an
                extension-less path whose ``<path>.keras`` an earlier miseg version wrote.
            custom_objects: Extra Keras objects for deserialisation (miseg's own layers
                and losses are registered already).

        Raises:
            DataNotFoundError: when no model is found at ``file_path``.
            CorruptFileError: when the file cannot be read as a Keras model.
            ModelError: when the model expects another number of input channels.
        """
        import miseg.neural_network.architecture  # noqa: F401  (registers custom layers)

        path = _stored_model(os.fspath(file_path))
        try:
            model = keras.models.load_model(path, custom_objects=custom_objects, compile=False)
        except (OSError, ValueError, zipfile.BadZipFile, KeyError) as exc:
            raise CorruptFileError(f"Model file {path!r} cannot be loaded: {exc}") from exc
        if model.input_shape[-1] != self.channels:
            raise ModelError(
                f"Model file {path!r} expects {model.input_shape[-1]} input channels, but the "
                f"preprocessor's interface serves {self.channels}."
            )
        self.model = model
        self._compile()
        self.initialization_weights = self.model.get_weights()
        self._loaded_from = path
        from miseg.utils.manifest import read_model_manifest

        self.training_manifest = read_model_manifest(path)

    def export(self, path: str, format: str = "savedmodel", *, allow_untrained: bool = False,
               overwrite: bool = False, opset: int | None = None, verify: bool = True) -> Any:
        """Export for inference outside miseg, with the preprocessing plan (JSON) beside it.

        Args:
            path: A SavedModel folder, or an ``.onnx``/``.keras`` file.
            format: ``"savedmodel"`` (TF Serving), ``"onnx"`` (tf2onnx; run with
                onnxruntime) or ``"keras"``.
            allow_untrained: Export a network that was never trained or loaded.
            overwrite: Replace an earlier export at ``path``.
            opset: ONNX opset (default: tf2onnx's).
            verify: Compare the exported model's output with Keras on a random patch.

        Returns:
            An ``ExportResult`` (``model_path``, ``plan_path``, ``format``); see
            :func:`miseg.neural_network.export.export_network` and the plan's schema there.
        """
        from miseg.neural_network.export import export_network

        return export_network(self, path, format, allow_untrained=allow_untrained, overwrite=overwrite,
                              opset=opset, verify=verify)


def _stored_model(path: str) -> str:
    """The file (or Keras model folder) that ``Neural_Network.load(path)`` reads."""
    legacy = path + ".keras"  # earlier miseg versions turned dump("model") into model.keras
    if os.path.isdir(path):
        inner = os.path.join(path, _FOLDER_MODEL_FILE)
        if os.path.isfile(inner):
            return inner
        if os.path.isfile(os.path.join(path, "config.json")):
            return path
        if os.path.isfile(legacy):
            return legacy
        hint = (" It holds a TensorFlow SavedModel (MIScnn on TF 2.x), which Keras 3 cannot "
                "load as a model; save it again as .keras or .hdf5 with TensorFlow 2.15 or older."
                if os.path.isfile(os.path.join(path, "saved_model.pb")) else "")
        raise DataNotFoundError(f"The folder {path!r} holds no {_FOLDER_MODEL_FILE} (written by dump).{hint}")
    if os.path.isfile(path):
        return path
    if not path.lower().endswith(_MODEL_SUFFIXES) and os.path.isfile(legacy):
        return legacy
    raise DataNotFoundError(f"No model file or folder at {path!r}.")


def downsampling_factors(model: keras.Model) -> tuple[int, ...]:
    """Product of the pooling sizes and convolution strides per spatial axis of a model.

    An upper bound of the factor that input sizes must be divisible by (strided
    convolutions inside attention gates are counted too, which only pads a little more).
    """
    rank = len(model.input_shape) - 2
    factors = [1] * rank
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if "Transpose" in type(layer).__name__ or "UpSampling" in type(layer).__name__:
            continue
        step = getattr(layer, "pool_size", None) or getattr(layer, "strides", None)
        if step is None:
            continue
        step = (step,) * rank if isinstance(step, int) else tuple(step)
        if len(step) == rank:
            factors = [f * int(s) for f, s in zip(factors, step)]
    return tuple(factors)


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, float(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(float(v) for v in value)
    return value


def _progress(items: Sequence[Any], desc: str) -> Any:
    if len(items) < 2 or os.environ.get("MISEG_QUIET"):
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="case")
