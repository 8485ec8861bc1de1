"""Model_Group: several models on one preprocessor, trained together and used as an ensemble."""

from __future__ import annotations

import os
import re
from typing import Any, Callable, Sequence

import numpy as np

from miseg.errors import ConfigurationError, CorruptFileError, DataNotFoundError, ShapeMismatchError
from miseg.evaluation import _folds
from miseg.multi_model.model import Model

__all__ = ["Model_Group", "mean_aggregation"]

METADATA_FILE = "metadata.json"
GROUP_FORMAT = 1
_MEMBER_DIR = re.compile(r"^group_(\d+)$")


def member_dir(path: str, position: int) -> str:
    """The folder of member ``position`` below ``path``: ``group_<position>`` (stable names)."""
    return os.path.join(path, f"group_{position}")


def mean_aggregation(sample: Any, predictions: Sequence[np.ndarray]) -> np.ndarray:
    """The default ensemble: the voxel-wise mean of the members' probability maps.

    Args:
        sample: The case's Sample (unused; kept for MIScnn's ``aggregation_func`` signature).
        predictions: One probability map ``(*spatial, classes)`` per member.
    """
    return np.mean(np.stack([np.asarray(p, dtype=np.float32) for p in predictions]), axis=0)


class Model_Group(Model):
    """A group of models sharing one Preprocessor, trained in turn and predicting as an ensemble.

    Members may be ``Neural_Network`` objects or other groups. Member ``i`` stores its
    files in ``group_<i>`` folders (by position, so names are the same in every run).

    Args:
        models: The member models.
        preprocessor: The shared Preprocessor.
        verify_preprocessor: Require every member to use this very preprocessor object.

    Raises:
        ConfigurationError: for an empty group, a member that is not a ``Model``, or (when
            verifying) a member with another preprocessor. MIScnn raised ``RuntimeError``.

    Example:
        >>> group = Model_Group([Neural_Network(pp, architecture=UNet_standard()),
        ...                      Neural_Network(pp, architecture=UNet_residual())], pp)
        >>> group.train(train_ids, epochs=50)
        >>> probabilities = group.predict(test_ids, activation_output=True, return_output=True)
        >>> group.dump("ensemble")           # ensemble/metadata.json + ensemble/group_<i>/
    """

    def __init__(self, models: Sequence[Model], preprocessor: Any, verify_preprocessor: bool = True) -> None:
        super().__init__(preprocessor)
        models = list(models)
        if not models:
            raise ConfigurationError("models=[] is empty; a Model_Group needs at least one member.")
        for position, member in enumerate(models):
            if not isinstance(member, Model):
                raise ConfigurationError(
                    f"models[{position}] is a {type(member).__name__}, not a miseg Model "
                    f"(Neural_Network or Model_Group)."
                )
            if verify_preprocessor and member.preprocessor is not preprocessor:
                raise ConfigurationError(
                    f"models[{position}] uses another Preprocessor than the group; give every "
                    f"member the group's preprocessor or pass verify_preprocessor=False."
                )
            if member.classes != self.classes or member.three_dim != self.three_dim:
                raise ConfigurationError(
                    f"models[{position}] predicts {member.classes} classes "
                    f"({'3D' if member.three_dim else '2D'}), the group "
                    f"{self.classes} ({'3D' if self.three_dim else '2D'})."
                )
        self.models = models
        self.verify_preprocessor = verify_preprocessor

    def __len__(self) -> int:
        return len(self.models)

    @property
    def metrics(self) -> list:
        """The Keras metrics of the first member (used for history plots)."""
        return list(getattr(self.models[0], "metrics", []) or [])

    # ------------------------------------------------------------------ training
    def train(self, sample_list: Sequence[Any], epochs: int = 20, iterations: int | None = None,
              callbacks: Any = None, class_weight: Any = None, *, save_models: bool = True) -> list:
        """Train every member on ``sample_list``, each from its initial state.

        Member ``i`` works with ``data_io.output_path`` set to ``<output_path>/group_<i>``
        (restored afterwards, also on errors) and, with ``save_models``, stores its trained
        model there (``model.keras``, or a group folder for a nested group).

        Args:
            sample_list: Case indices.
            epochs: Epochs per member.
            iterations: Batches per epoch.
            callbacks: Keras callbacks (deep-copied per member) or a factory
                ``position -> callbacks``.
            class_weight: Passed to each member's ``train``.
            save_models: Store each trained member in its folder.

        Returns:
            The members' histories (Keras History objects, or lists for nested groups).
        """
        from miseg.multi_model._calls import call_train, check_class_weight

        for member in self.models:  # fail before the first member trains
            check_class_weight(member, class_weight, "train")
        data_io = self.preprocessor.data_io
        base = data_io.output_path
        histories = []
        try:
            for position, member in enumerate(self.models):
                directory = member_dir(base, position)
                os.makedirs(directory, exist_ok=True)
                data_io.output_path = directory
                member.reset()
                histories.append(call_train(
                    member, sample_list, epochs=epochs, iterations=iterations,
                    callbacks=_folds.fresh_callbacks(callbacks, position), class_weight=class_weight,
                ))
                if save_models:
                    _folds.save_model(member, directory)
        finally:
            data_io.output_path = base
        return histories

    def evaluate(self, training_samples: Sequence[Any], validation_samples: Sequence[Any],
                 epochs: int = 20, iterations: int | None = None, callbacks: Any = None,
                 class_weight: Any = None, *, evaluation_path: str = "evaluation",
                 save_models: bool = True) -> list:
        """Train every member with validation; results go to ``<evaluation_path>/group_<i>``.

        Each member starts from its initial state and writes ``history.tsv`` and, with
        ``save_models``, the best-``val_loss`` model as ``model.keras`` and ``model.hdf5``
        (MIScnn's name). A member whose ``evaluate`` takes ``evaluation_path`` (MIScnn's
        signature) gets its folder; ``class_weight`` is passed only to members that take it.
        Unlike MIScnn, the data's output path is left unchanged.

        Returns:
            One history dict per member.

        Raises:
            ConfigurationError: when ``class_weight`` is given and a member cannot take it.
        """
        from miseg.data_loading.data_io import backup_history
        from miseg.multi_model._calls import call_evaluate, check_class_weight

        for member in self.models:  # fail before the first member trains
            check_class_weight(member, class_weight)
        histories = []
        for position, member in enumerate(self.models):
            directory = member_dir(evaluation_path, position)
            os.makedirs(directory, exist_ok=True)
            member.reset()
            run_callbacks = _folds.fresh_callbacks(callbacks, position)
            if isinstance(member, Model_Group):
                result = member.evaluate(
                    training_samples, validation_samples, epochs=epochs, iterations=iterations,
                    callbacks=callbacks, class_weight=class_weight, evaluation_path=directory,
                    save_models=save_models,
                )
                histories.append(result)
                continue
            leaf = _folds.keras_backed(member)
            if save_models and leaf:
                run_callbacks.append(_folds.checkpoint(directory))
            history = _folds.history_dict(call_evaluate(
                member, training_samples, validation_samples, epochs=epochs, iterations=iterations,
                callbacks=run_callbacks, class_weight=class_weight, evaluation_path=directory,
            ))
            if history:
                backup_history(history, directory)
            if save_models and not (leaf and _folds.fold_model_files(directory)):
                _folds.save_fold_model(member, directory)
            histories.append(history)
        return histories

    # ------------------------------------------------------------------ prediction
    def predict(self, sample_list: Sequence[Any], aggregation_func: Callable | None = None,
                activation_output: bool = False, return_output: bool = False, *,
                uncertainty: bool = False, review_threshold: Any = None) -> list | None:
        """Predict with the ensemble: members' probability maps, aggregated per case.

        Members whose ``predict`` has no ``return_output`` (MIScnn's signature) predict
        through the Data_IO into ``<output_path>/group_<i>/``, and their probability maps are
        read back from there, as in MIScnn.

        Args:
            sample_list: Case indices.
            aggregation_func: ``f(sample, [probability map per member]) -> array``; the
                result is a probability map ``(*spatial, classes)`` or a label map. Default:
                :func:`mean_aggregation` (mean of the probabilities).
            activation_output: Return/save the aggregated probabilities instead of labels
                (the argmax over classes).
            return_output: Return the results instead of saving them through the interface
                to ``data_io.output_path``.
            uncertainty: Also measure the uncertainty from the members' probability maps
                (:mod:`miseg.evaluation.uncertainty`): writes ``<index>.entropy`` and
                ``<index>.variance`` maps and ``<output_path>/uncertainty.tsv``.
            review_threshold: The review rule (see ``Neural_Network.predict``).

        Returns:
            With ``return_output``, one array per case (with ``uncertainty`` a
            ``(prediction, CaseUncertainty)`` pair).

        Raises:
            ConfigurationError: when ``activation_output`` is asked for but the aggregation
                returned a label map.
        """
        if aggregation_func is not None and not callable(aggregation_func):
            raise ConfigurationError(
                f"aggregation_func={aggregation_func!r} is not callable (Model_Group.predict's "
                f"second parameter is the aggregation, as in MIScnn; pass return_output= and "
                f"activation_output= as keywords)."
            )
        from miseg.multi_model._calls import predict_arrays

        aggregate = aggregation_func or mean_aggregation
        data_io = self.preprocessor.data_io
        recorder = None
        if uncertainty:
            from miseg.evaluation.uncertainty import UncertaintyRecorder

            recorder = UncertaintyRecorder(data_io, review_threshold)
        results = []
        for index in _folds.progress(list(sample_list), "Ensemble prediction", unit="case"):
            members = [
                np.asarray(predict_arrays(member, [index], activation_output=True,
                                          output_path=member_dir(data_io.output_path, position))[0])
                for position, member in enumerate(self.models)
            ]
            sample = data_io.sample_loader(index, load_seg=False)
            combined = np.asarray(aggregate(sample, members))
            prediction = self._finish(combined, sample, activation_output)
            measured = None
            if recorder is not None:
                labels = np.argmax(prediction, axis=-1) if activation_output else prediction
                measured = recorder.measure(index, members, labels)
            if return_output:
                results.append(prediction if measured is None else (prediction, measured))
            else:
                sample.add_prediction(prediction, activation_output)
                data_io.save_prediction(sample)
                if measured is not None:
                    recorder.save_maps(sample, measured)
        if recorder is not None and not return_output:
            recorder.write_table()
        return results if return_output else None

    def _finish(self, combined: np.ndarray, sample: Any, activation_output: bool) -> np.ndarray:
        spatial = tuple(sample.spatial_shape)
        if combined.shape == spatial + (self.classes,):
            return combined if activation_output else np.argmax(combined, axis=-1).astype(np.int64)
        if combined.shape in (spatial, spatial + (1,)):
            if activation_output:
                raise ConfigurationError(
                    f"activation_output=True, but aggregation_func returned a label map "
                    f"{combined.shape} for case {sample.index!r}; return probabilities instead."
                )
            return combined.reshape(spatial).astype(np.int64)
        raise ShapeMismatchError(
            f"Case {sample.index!r}: aggregation_func returned shape {combined.shape}; expected "
            f"{spatial + (self.classes,)} (probabilities) or {spatial} (labels)."
        )

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Reset every member to its initial weights with a fresh optimizer."""
        for member in self.models:
            member.reset()

    def copy(self) -> "Model_Group":
        """A group of copies of the members (same preprocessor and settings)."""
        return Model_Group([m.copy() for m in self.models], self.preprocessor, self.verify_preprocessor)

    def dump(self, file_path: str) -> str:
        """Save the group into the folder ``file_path``.

        Layout: ``metadata.json`` (type, format, classes and one entry per member with its
        type and relative path) and one ``group_<i>/`` folder per member, as in MIScnn:
        ``group_<i>/model.keras`` for a network, a nested group's own layout, and for any
        other ``Model`` whatever its ``dump(group_<i>)`` writes there (the folder is created
        first). ``metadata.json`` is written last.

        Returns:
            The folder.
        """
        path = os.fspath(file_path)
        os.makedirs(path, exist_ok=True)
        members = []
        for position, member in enumerate(self.models):
            directory = member_dir(path, position)
            written = _folds.save_model(member, directory)
            members.append({
                "position": position,
                "type": type(member).__name__,
                "path": os.path.relpath(written, path).replace(os.sep, "/"),
            })
        _folds.write_json(os.path.join(path, METADATA_FILE), {
            "type": type(self).__name__,
            "format": GROUP_FORMAT,
            "classes": self.classes,
            "channels": self.channels,
            "three_dim": self.three_dim,
            "members": members,
        })
        return path

    def load(self, file_path: str, custom_objects: dict | None = None) -> None:
        """Load a group saved by :meth:`dump` into this group's members (in position order).

        Member ``i`` loads from the path stored in ``metadata.json``; a folder without it
        (MIScnn's layout: only ``group_<n>/`` sub-folders) is read by ascending ``n``. Each
        member's ``load(path, custom_objects)`` does the work, so the group must be built
        like the saved one.

        Args:
            file_path: The folder written by :meth:`dump`.
            custom_objects: Passed to every member's ``load`` (``{}`` when ``None``).

        Raises:
            DataNotFoundError: when the folder holds no saved group.
            CorruptFileError: for unreadable metadata.
            ConfigurationError: when the stored group does not fit this one (member count,
                types, classes).
        """
        path = os.fspath(file_path)
        stored = self._stored_members(path)
        if len(stored) != len(self.models):
            raise ConfigurationError(
                f"{path!r} holds {len(stored)} members, this group has {len(self.models)}; "
                f"load into a group built like the saved one."
            )
        for position, ((kind, member_path), member) in enumerate(zip(stored, self.models)):
            if kind is not None and kind != type(member).__name__:
                raise ConfigurationError(
                    f"{path!r}: member {position} was a {kind}, this group's is a "
                    f"{type(member).__name__}."
                )
            member.load(member_path, dict(custom_objects) if custom_objects is not None else {})

    def _stored_members(self, path: str) -> list[tuple[str | None, str]]:
        """``(type name or None, path)`` of each saved member, in position order."""
        meta_path = os.path.join(path, METADATA_FILE)
        if os.path.isfile(meta_path):
            meta = _folds.read_json(meta_path)
            members = meta.get("members") if isinstance(meta, dict) else None
            if not isinstance(members, list) or not all(
                    isinstance(e, dict) and "path" in e and "position" in e for e in members):
                raise CorruptFileError(f"{meta_path!r} has no valid 'members' list.")
            if int(meta.get("classes", self.classes)) != self.classes:
                raise ConfigurationError(
                    f"{path!r} was saved for {meta.get('classes')} classes, this group has {self.classes}."
                )
            ordered = sorted(members, key=lambda e: int(e["position"]))
            return [(e.get("type"), os.path.join(path, e["path"])) for e in ordered]
        folders = {}
        if os.path.isdir(path):
            for name in os.listdir(path):
                match = _MEMBER_DIR.match(name)
                if match and os.path.isdir(os.path.join(path, name)):
                    folders[int(match.group(1))] = os.path.join(path, name)
        if not folders:
            raise DataNotFoundError(
                f"No Model_Group at {path!r}: expected {METADATA_FILE} or group_<i>/ member folders."
            )
        return [(None, folders[n]) for n in sorted(folders)]
