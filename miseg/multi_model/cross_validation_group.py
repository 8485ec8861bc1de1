"""CrossValidationGroup: one model per cross-validation fold, used together as an ensemble."""

from __future__ import annotations

import os
from typing import Any, Sequence

from miseg.errors import ConfigurationError
from miseg.evaluation import _execution, _folds
from miseg.multi_model.model import Model
from miseg.multi_model.model_group import Model_Group, member_dir

__all__ = ["CrossValidationGroup"]


class CrossValidationGroup(Model_Group):
    """``folds`` members: the given model and ``folds - 1`` copies, one per fold.

    :meth:`evaluate` trains member ``i`` on every fold but ``i`` and validates it on fold
    ``i``; :meth:`predict` (inherited) then averages the fold models, as nnU-Net does with
    its five fold models. Every member starts from the given model's initial weights.

    Args:
        model: The model to train per fold (it becomes member 0).
        preprocessor: The shared Preprocessor.
        folds: Number of folds (>= 2). MIScnn created ``folds + 1`` models; miseg creates
            exactly ``folds``.
        verify_preprocessor: Require the model to use ``preprocessor``.

    Example:
        >>> group = CrossValidationGroup(model, pp, folds=5)
        >>> group.evaluate(ids, evaluation_path="evaluation_cv", epochs=100, seed=0)
        >>> group.predict(test_ids)          # ensemble of the five fold models
    """

    def __init__(self, model: Model, preprocessor: Any, folds: int, verify_preprocessor: bool = True) -> None:
        folds = _folds.check_positive_int(folds, "folds")
        if folds < 2:
            raise ConfigurationError(f"folds={folds} is too small; a cross-validation needs folds >= 2.")
        members = [model]
        for _ in range(folds - 1):
            member = model.copy()
            if hasattr(model, "initialization_weights") and hasattr(member, "initialization_weights"):
                member.initialization_weights = list(model.initialization_weights)
            members.append(member)
        super().__init__(members, preprocessor, verify_preprocessor)
        self.folds = folds
        self.fold_splits: list[tuple[list, list]] | None = None

    def copy(self) -> "CrossValidationGroup":
        """A group of copies of the fold members (weights included)."""
        clone = object.__new__(CrossValidationGroup)
        Model_Group.__init__(clone, [m.copy() for m in self.models], self.preprocessor, self.verify_preprocessor)
        clone.folds = self.folds
        clone.fold_splits = None if self.fold_splits is None else [(list(t), list(v)) for t, v in self.fold_splits]
        return clone

    def evaluate(  # type: ignore[override]  (MIScnn's signature differs from Model.evaluate)
        self,
        samples: Sequence[Any],
        evaluation_path: str = "evaluation",
        epochs: int = 20,
        iterations: int | None = None,
        callbacks: Any = None,
        *,
        seed: int | None = None,
        save_models: bool = True,
        draw_figures: bool = False,
        class_weight: Any = None,
    ) -> list[dict]:
        """Split ``samples`` into ``folds`` folds and train member ``i`` on fold ``i``'s split.

        Member ``i`` writes to ``<evaluation_path>/group_<i>/``: ``sample_list.json``,
        ``history.tsv``, ``model.keras`` and ``model.hdf5`` (best ``val_loss``, with ``save_models``),
        ``validation.*.png`` (``draw_figures``) and a ``.complete`` marker.

        Args:
            samples: Case indices (at least ``folds``).
            evaluation_path: Output folder.
            epochs: Epochs per fold.
            iterations: Batches per epoch.
            callbacks: Keras callbacks (copied per fold) or a factory ``fold -> callbacks``.
            seed: Seed of the split.
            save_models: Keep each member's best checkpoint.
            draw_figures: Write each member's training curves.
            class_weight: Passed to each member's ``evaluate``.

        Returns:
            One history dict per fold. The split is kept in ``fold_splits``.
        """
        samples = _folds.check_sample_list(samples, "samples")
        seed = _folds.check_seed(seed)
        if self.folds > len(samples):
            raise ConfigurationError(
                f"folds={self.folds} is larger than the number of samples ({len(samples)}); "
                f"every fold needs at least one validation sample."
            )
        epochs = _folds.check_positive_int(epochs, "epochs")
        iterations = _folds.check_positive_int(iterations, "iterations", allow_none=True)
        splits = _folds.folds_to_splits(_folds.split_into_folds(samples, self.folds, seed))
        histories = []
        for position, (member, (training, validation)) in enumerate(
                zip(self.models, _folds.progress(splits, "Cross-validation group", unit="fold"))):
            directory = member_dir(evaluation_path, position)
            os.makedirs(directory, exist_ok=True)
            _folds.write_sample_list(os.path.join(directory, _folds.SAMPLE_LIST_FILE), training, validation)
            histories.append(_execution.execute_fold(
                member, position, training, validation, directory, epochs=epochs,
                iterations=iterations, callbacks=callbacks, save_models=save_models,
                draw_figures=draw_figures, run_detailed_evaluation=False, metrics=None,
                class_weight=class_weight, extra={"type": "cross_validation_group", "seed": seed},
            ))
        self.fold_splits = splits
        return histories
