"""Private helpers shared by the subfunctions: parameter checks and inverse-step records."""

from __future__ import annotations

import numbers
from typing import Any, Sequence

import numpy as np

from miseg.errors import ConfigurationError, GeometryError, ShapeMismatchError


def float_dtype(dtype: np.dtype) -> type:
    """float64 stays float64; every other dtype (ints, float16/32) computes as float32."""
    return np.float64 if np.dtype(dtype) == np.float64 else np.float32


def spatial_ndim(sample: Any) -> int:
    """Number of spatial axes of a channels-last sample."""
    return sample.img_data.ndim - 1


def is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_order(name: str, value: Any) -> int:
    """Validate a spline interpolation order (0..5)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or not 0 <= value <= 5:
        raise ConfigurationError(f"{name} must be an integer spline order in 0..5, got {value!r}.")
    return int(value)


def check_sequence(
    name: str,
    value: Any,
    *,
    integer: bool,
    minimum: float,
    strict: bool,
    allow_scalar: bool = True,
) -> tuple:
    """Validate a scalar or sequence of numbers; returns a tuple (scalars as 1-tuples).

    ``minimum`` is the lower bound, exclusive when ``strict``.
    """
    items: Sequence[Any]
    if is_number(value) and allow_scalar:
        items = (value,)
    elif isinstance(value, (list, tuple, np.ndarray)) and len(value) > 0:
        items = list(np.asarray(value).ravel()) if isinstance(value, np.ndarray) else value
    else:
        raise ConfigurationError(
            f"{name} must be a {'number or ' if allow_scalar else ''}non-empty sequence of "
            f"numbers, got {value!r}."
        )
    checked = []
    for item in items:
        if isinstance(item, np.generic):
            item = item.item()
        ok_type = isinstance(item, numbers.Integral) if integer else is_number(item)
        if not ok_type or isinstance(item, bool):
            kind = "integers" if integer else "numbers"
            raise ConfigurationError(f"{name} must contain {kind}, got {value!r}.")
        if not np.isfinite(item) or (item <= minimum if strict else item < minimum):
            bound = f"> {minimum}" if strict else f">= {minimum}"
            raise ConfigurationError(f"{name} entries must be finite and {bound}, got {value!r}.")
        checked.append(int(item) if integer else float(item))
    return tuple(checked)


def per_axis(
    name: str, values: tuple, ndim: int, sample: Any, error: type = ConfigurationError
) -> tuple:
    """Broadcast a 1-tuple to ``ndim`` axes, or check that the length matches."""
    if len(values) == 1:
        return values * ndim
    if len(values) != ndim:
        raise error(
            f"Case {sample.index!r}: {name} has {len(values)} entries but the case has {ndim} "
            f"spatial axes (shape {tuple(sample.img_data.shape)})."
        )
    return values


def push_record(sample: Any, key: str, record: dict) -> None:
    """Append a JSON-friendly inverse-step record to ``sample.extended[key]``."""
    history = list(sample.extended.get(key) or [])
    history.append(record)
    sample.extended[key] = history


def find_record(
    sample: Any, key: str, shape_field: str, spatial_shape: tuple, owner: str, strict: bool = True
) -> dict | None:
    """The last record of ``key`` whose ``shape_field`` equals ``spatial_shape``.

    Several resizing/padding steps in one pipeline each leave a record; walking back from
    the newest one and matching on the current prediction shape finds the step to undo.
    Returns ``None`` when the sample has no record list (e.g. a sample from old MIScnn code).
    When no record matches, ``strict`` raises ``ShapeMismatchError``; otherwise the newest
    record is returned.
    """
    history = sample.extended.get(key)
    if not history:
        return None
    for record in reversed(history):
        if tuple(record[shape_field]) == tuple(spatial_shape):
            return record
    if not strict:
        return history[-1]
    raise ShapeMismatchError(
        f"Case {sample.index!r}: {owner}.postprocessing got a prediction of spatial shape "
        f"{tuple(spatial_shape)}, but preprocessing produced "
        f"{[tuple(r[shape_field]) for r in history]}; the prediction does not belong to this "
        f"step's output grid."
    )


def missing_record(sample: Any, owner: str, key: str) -> GeometryError:
    return GeometryError(
        f"Case {sample.index!r}: {owner}.postprocessing needs extended[{key!r}], which "
        f"{owner}.preprocessing writes; run preprocessing on this sample first."
    )


def prediction_spatial(
    prediction: np.ndarray, ndim: int, activation_output: bool, sample: Any, owner: str
) -> tuple:
    """Spatial shape of a label map ``(x, y[, z])`` (optionally ``(..., 1)``) or activation map."""
    expected = ndim + 1 if activation_output else ndim
    label_with_axis = not activation_output and prediction.ndim == ndim + 1 and (
        prediction.shape[-1] == 1
    )
    if prediction.ndim == expected or label_with_axis:
        return tuple(prediction.shape[:ndim])
    kind = "activation map (x, y[, z], C)" if activation_output else "label map (x, y[, z])"
    raise ShapeMismatchError(
        f"Case {sample.index!r}: {owner}.postprocessing expected a {ndim}D {kind}, got an "
        f"array of shape {tuple(prediction.shape)}."
    )
