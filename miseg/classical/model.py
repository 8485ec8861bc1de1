"""ClassicalModel: a classical method behind miseg's ``Model`` interface.

With it, ``cross_validation``, ``split_validation``, ``leave_one_out``,
``detailed_validation``, ``Model_Group`` and ``miseg evaluate --method NAME`` treat a
classical method exactly like a ``Neural_Network``: same folders, tables and figures.
Training is ``method.fit`` on the preprocessed training cases (one pass, no epochs), and a
saved model is a JSON file (``model.json``): the method's name, config and learned values.
No Keras is involved.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Mapping, Sequence

import numpy as np

from miseg.classical.base import ClassicalMethod, build_method
from miseg.errors import (
    ConfigurationError,
    CorruptFileError,
    DataNotFoundError,
    MissingSegmentationError,
    ModelError,
)
from miseg.multi_model.model import Model
from miseg.utils.fileio import atomic_path, read_json_object

__all__ = ["ClassicalModel", "MODEL_FILE"]

MODEL_FILE = "model.json"
_FORMAT = 1


class _LazySamples(Sequence):
    """Preprocessed training Samples, loaded one at a time when iterated."""

    def __init__(self, preprocessor: Any, indices: Sequence[Any]) -> None:
        self.preprocessor = preprocessor
        self.indices = list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: Any) -> Any:
        if isinstance(position, slice):
            return [self[i] for i in range(*position.indices(len(self)))]
        return self.preprocessor.load_sample(self.indices[position], training=True)


class ClassicalModel(Model):
    """A :class:`~miseg.classical.base.ClassicalMethod` used as a miseg ``Model``.

    Cases go through the preprocessor's subfunctions before the method sees them (so e.g.
    ``Resampling`` or ``Clipping`` apply; thresholds are in the preprocessed intensities),
    and predictions are mapped back to the original image space and written through the
    data interface, like ``Neural_Network.predict``.

    Args:
        preprocessor: The Preprocessor (interface, subfunctions); patch settings are unused.
        method: A method instance or a registered name (see
            :func:`miseg.classical.method_names`).
        method_config: Constructor arguments when ``method`` is a name.
        score_training: ``train``/``evaluate`` also score the training cases, so the history
            holds ``loss``/``dice`` next to ``val_loss``/``val_dice``.

    Attributes:
        method: The method.
        metrics: ``["dice"]``: the quantity in the histories (``loss = 1 - dice``, the mean
            foreground Dice over the cases).

    Example:
        >>> model = ClassicalModel(pp, "region_growing", {"criterion": "confidence_connected"})
        >>> cross_validation(ids, model, k_fold=3, run_detailed_evaluation=True, seed=0)
        >>> model.train(ids); model.predict(new_ids)     # writes predictions/<index>.nii.gz
    """

    def __init__(self, preprocessor: Any, method: ClassicalMethod | str = "otsu",
                 method_config: Mapping[str, Any] | None = None, *, score_training: bool = True) -> None:
        super().__init__(preprocessor)
        self.method = build_method(method, method_config)
        if self.method.channel >= self.channels:
            raise ConfigurationError(
                f"{type(self.method).__name__} works on channel {self.method.channel}, but the interface "
                f"serves {self.channels} channel(s)."
            )
        self.score_training = bool(score_training)
        self.metrics = ["dice"]

    # ------------------------------------------------------------------ training
    def train(self, sample_list: Sequence[Any], epochs: int = 20, iterations: int | None = None,
              callbacks: Sequence[Any] | None = None, class_weight: Any = None) -> dict[str, list[float]]:
        """Fit the method on the (labelled) cases; ``epochs``, ``iterations``, ``callbacks``
        and ``class_weight`` do not apply to classical methods and are ignored.

        Returns:
            A one-row history: ``{"loss": [1 - dice], "dice": [dice]}`` on the training cases
            with ``score_training``, else ``{}``.
        """
        cases = self._cases(sample_list)
        self.method.fit(_LazySamples(self.preprocessor, cases))
        if not self.score_training:
            return {}
        dice = self.score(cases)
        return {"loss": [1.0 - dice], "dice": [dice]}

    def evaluate(self, training_samples: Sequence[Any], validation_samples: Sequence[Any],
                 epochs: int = 20, iterations: int | None = None,
                 callbacks: Sequence[Any] | None = None, class_weight: Any = None) -> dict[str, list[float]]:
        """Fit on ``training_samples`` and score ``validation_samples``.

        Returns:
            A one-row history with ``val_loss``/``val_dice`` (and ``loss``/``dice`` with
            ``score_training``).
        """
        history = self.train(training_samples)
        dice = self.score(self._cases(validation_samples))
        history.update({"val_loss": [1.0 - dice], "val_dice": [dice]})
        return history

    def score(self, sample_list: Sequence[Any]) -> float:
        """Mean foreground Dice of the method's predictions over labelled cases."""
        from miseg.evaluation.metrics import compute_dice

        values = []
        data_io = self.preprocessor.data_io
        for index in self._cases(sample_list):
            prediction = self.predict([index], return_output=True)[0]
            truth = data_io.sample_loader(index, load_seg=True).seg_data[..., 0]
            dice = compute_dice(truth, prediction, self.classes)
            values.append(float(np.mean(dice[1:] if self.classes > 1 else dice)))
        return float(np.mean(values)) if values else float("nan")

    # ------------------------------------------------------------------ prediction
    def predict(self, sample_list: Sequence[Any], return_output: bool = False,
                activation_output: bool = False, seeds: Mapping[Any, Any] | None = None
                ) -> list[np.ndarray] | None:
        """Segment cases, in their original image space.

        Args:
            sample_list: Case indices (they need no segmentation).
            return_output: Return the predictions instead of writing them through the
                interface (like ``Neural_Network.predict``).
            activation_output: One-hot maps ``(..., classes)`` instead of labels (what
                ``Model_Group`` averages: a majority vote).
            seeds: ``{case index: seeds}`` for interactive use (see
                :func:`miseg.classical.resolve_seeds`; coordinates refer to the
                preprocessed image). Cases without an entry are segmented unattended.

        Returns:
            With ``return_output``, one array per case.
        """
        cases = self._cases(sample_list, labelled=False)
        if seeds is not None and not isinstance(seeds, Mapping):
            raise ConfigurationError(
                f"seeds must map case indices to seeds (e.g. {{{cases[0]!r}: [(x, y, z)]}}), "
                f"got {type(seeds).__name__}."
            )
        pp = self.preprocessor
        started = time.perf_counter()
        results = []
        for index in cases:
            sample = pp.load_sample(index, training=False)
            labels = self._segment(sample, None if seeds is None else seeds.get(index))
            onehot = np.eye(self.classes, dtype=np.float32)[labels]
            prediction = pp.finish_prediction(sample, onehot, activation_output)
            if not activation_output:
                prediction = np.asarray(prediction).astype(np.int64)
            if return_output:
                results.append(prediction)
            else:
                sample.add_prediction(prediction, activation_output)
                pp.data_io.save_prediction(sample)
        if not return_output:  # <output_path>/manifest.json, as Neural_Network.predict writes
            from miseg.utils.manifest import write_prediction_manifest

            write_prediction_manifest(self, cases, time.perf_counter() - started)
        return results if return_output else None

    def _segment(self, sample: Any, seeds: Any) -> np.ndarray:
        labels = np.asarray(self.method.predict(sample, seeds))
        if labels.shape != tuple(sample.spatial_shape):
            raise ModelError(
                f"Case {sample.index!r}: {type(self.method).__name__} returned shape {labels.shape}, the image "
                f"is {tuple(sample.spatial_shape)}."
            )
        if labels.size and (labels.min() < 0 or labels.max() >= self.classes):
            raise ModelError(
                f"Case {sample.index!r}: {type(self.method).__name__} returned labels {labels.min()}..{labels.max()}, "
                f"outside 0..{self.classes - 1}."
            )
        return labels.astype(np.int64)

    def _cases(self, sample_list: Sequence[Any], labelled: bool = True) -> list:
        if isinstance(sample_list, (str, bytes)):
            raise ConfigurationError(f"sample_list must be a list of case indices, got {sample_list!r}.")
        cases = list(sample_list)
        data_io = self.preprocessor.data_io
        known = {str(i) for i in data_io.get_indiceslist()}
        missing = [i for i in cases if str(i) not in known]
        if missing:
            raise DataNotFoundError(
                f"Cases {missing[:5]} are not among the data set's {len(known)} cases in "
                f"{getattr(data_io, 'input_path', '?')!r}."
            )
        if labelled:
            unlabelled = [i for i in cases if not data_io.has_segmentation(i)]
            if unlabelled:
                raise MissingSegmentationError(
                    f"Cases {unlabelled[:5]} have no segmentation; fitting and scoring need labels."
                )
        return cases

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget what the method learned (its constructor arguments stay)."""
        self.method.reset()

    def copy(self) -> "ClassicalModel":
        """An independent copy with the same method settings and learned values."""
        method = type(self.method).from_config(self.method.get_config())
        method.set_state(self.method.get_state())
        return ClassicalModel(self.preprocessor, method, score_training=self.score_training)

    @staticmethod
    def model_path(file_path: str) -> str:
        """The file a path names: a ``.json`` path itself, anything else a folder holding ``model.json``."""
        path = os.fspath(file_path)
        return path if path.lower().endswith(".json") else os.path.join(path, MODEL_FILE)

    def dump(self, file_path: str) -> str:
        """Save the method's name, config and learned values as JSON (atomically).

        Returns:
            The written file (``<folder>/model.json`` when ``file_path`` is not a ``.json`` path).
        """
        path = self.model_path(file_path)
        from miseg import __version__

        payload = {
            "type": type(self).__name__, "format": _FORMAT, "miseg_version": __version__,
            "method": self.method.method_name, "config": self.method.get_config(),
            "state": self.method.get_state(), "classes": self.classes, "channels": self.channels,
            "three_dim": self.three_dim,
        }
        with atomic_path(path, suffix=".json") as tmp:
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(payload, handle, indent=2)
                handle.write("\n")
        return path

    def load(self, file_path: str, custom_objects: dict | None = None) -> None:
        """Load a model written by :meth:`dump` (the method is replaced by the stored one).

        Raises:
            DataNotFoundError: when there is no file.
            CorruptFileError: when it is not a classical model file.
            ModelError: when it was saved for other classes, channels or dimensionality.
        """
        path = self.model_path(file_path)
        payload = read_json_object(path, "Classical model file")
        if payload.get("type") != type(self).__name__ or "method" not in payload:
            raise CorruptFileError(f"{path!r} is not a ClassicalModel file (no 'type': 'ClassicalModel' and 'method').")
        for key in ("classes", "channels", "three_dim"):
            if key in payload and payload[key] != getattr(self, key):
                raise ModelError(
                    f"Classical model {path!r} was saved for {key}={payload[key]!r}, the preprocessor's interface "
                    f"has {key}={getattr(self, key)!r}."
                )
        try:
            method = build_method(payload["method"], payload.get("config") or {})
            method.set_state(payload.get("state") or {})
        except ConfigurationError as exc:
            raise CorruptFileError(f"Classical model file {path!r}: {exc}") from exc
        self.method = method

    @classmethod
    def from_file(cls, file_path: str, preprocessor: Any) -> "ClassicalModel":
        """A ClassicalModel read from a file written by :meth:`dump`."""
        model = cls(preprocessor, "otsu")
        model.load(file_path)
        return model
