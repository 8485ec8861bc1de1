"""Calling any ``Model`` the way its signature allows (miseg models and MIScnn-style ones).

miseg's ``Neural_Network`` and ``Model_Group`` accept extra keywords (``return_output``,
``class_weight``); a user subclass of MIScnn's abstract ``Model`` implements only MIScnn's
signatures: ``predict(sample_list, activation_output=False)`` writes predictions through the
Data_IO, and ``evaluate(training_samples, validation_samples, evaluation_path="evaluation",
epochs=20, iterations=None, callbacks=[])`` takes an evaluation folder. These helpers pass
only what a model's method accepts and read MIScnn-style predictions back from the Data_IO.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

import numpy as np

from miseg.errors import ConfigurationError

__all__ = ["accepts", "predict_arrays", "check_class_weight", "call_train", "call_evaluate"]


def accepts(method: Callable, name: str) -> bool:
    """Whether ``method`` takes the keyword ``name`` (or ``**kwargs``)."""
    try:
        parameters = inspect.signature(method).parameters
    except (TypeError, ValueError):  # builtins without a signature: assume it does
        return True
    if name in parameters and parameters[name].kind is not inspect.Parameter.POSITIONAL_ONLY:
        return True
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def predict_arrays(model: Any, sample_list: Sequence[Any], activation_output: bool,
                   output_path: str | None = None) -> list[np.ndarray]:
    """Predict ``sample_list`` with ``model`` and return one array per case.

    Models whose ``predict`` takes ``return_output`` return their arrays directly. Others
    (MIScnn's ``predict(sample_list, activation_output=False)``) predict each case through
    the Data_IO, which is pointed at ``output_path`` meanwhile (its own path when ``None``;
    restored afterwards), and the prediction is read back with
    ``sample_loader(index, load_pred=True)``.

    Args:
        model: A ``Model``.
        sample_list: Case indices.
        activation_output: Probability maps instead of label maps.
        output_path: Folder for a MIScnn-style model's prediction files.

    Returns:
        One prediction per case, in ``sample_list`` order.
    """
    if accepts(model.predict, "return_output"):
        return list(model.predict(list(sample_list), return_output=True, activation_output=activation_output))
    data_io = model.preprocessor.data_io
    base = data_io.output_path
    results = []
    try:
        if output_path is not None:
            data_io.output_path = output_path
        for index in sample_list:
            model.predict([index], activation_output=activation_output)
            prediction = data_io.sample_loader(index, load_seg=False, load_pred=True).pred_data
            spatial = 3 if model.three_dim else 2
            prediction = np.asarray(prediction)
            if not activation_output and prediction.ndim == spatial + 1 and prediction.shape[-1] == 1:
                prediction = prediction[..., 0]
            results.append(prediction)
    finally:
        data_io.output_path = base
    return results


def check_class_weight(model: Any, class_weight: Any, method: str = "evaluate") -> None:
    """Raise ConfigurationError when ``class_weight`` is set but ``model.<method>`` cannot take it."""
    if class_weight is not None and not accepts(getattr(model, method), "class_weight"):
        raise ConfigurationError(
            f"class_weight={class_weight!r} was given, but {type(model).__name__}.{method} "
            f"has no class_weight parameter; drop it or add the parameter to the model."
        )


def call_train(model: Any, sample_list: Sequence[Any], *, epochs: int, iterations: int | None,
               callbacks: Any, class_weight: Any = None) -> Any:
    """``model.train(sample_list, ...)``, passing ``class_weight`` only to models that take it."""
    check_class_weight(model, class_weight, "train")
    kwargs: dict[str, Any] = {"epochs": epochs, "iterations": iterations, "callbacks": callbacks}
    if accepts(model.train, "class_weight"):
        kwargs["class_weight"] = class_weight
    return model.train(list(sample_list), **kwargs)


def call_evaluate(model: Any, training: Sequence[Any], validation: Sequence[Any], *, epochs: int,
                  iterations: int | None, callbacks: Any, class_weight: Any = None,
                  evaluation_path: str | None = None) -> Any:
    """``model.evaluate(training, validation, ...)`` with the keywords its signature takes.

    ``evaluation_path`` is passed to models that accept it (MIScnn's signature);
    ``class_weight`` to those that accept it.

    Raises:
        ConfigurationError: when ``class_weight`` is given but the model cannot take it.
    """
    check_class_weight(model, class_weight)
    kwargs: dict[str, Any] = {"epochs": epochs, "iterations": iterations, "callbacks": callbacks}
    if accepts(model.evaluate, "class_weight"):
        kwargs["class_weight"] = class_weight
    if evaluation_path is not None and accepts(model.evaluate, "evaluation_path"):
        kwargs["evaluation_path"] = evaluation_path
    return model.evaluate(list(training), list(validation), **kwargs)
