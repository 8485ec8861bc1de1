"""Safe on-disk form of a Sample: arrays in ``.npz`` (no pickle) plus JSON metadata.

Samples backed up to shared folders are read back later, possibly by another user, so the
format must not execute code on load: ``np.load(..., allow_pickle=False)`` and JSON only.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from miseg.data_loading.sample import Sample
from miseg.errors import CorruptFileError, DataNotFoundError
from miseg.utils.fileio import atomic_path

__all__ = ["to_jsonable", "from_jsonable", "save_sample", "load_sample"]


def to_jsonable(value: Any) -> Any:
    """Encode numpy arrays/scalars, tuples and slices into JSON-compatible tagged values."""
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, slice):
        return {"__slice__": [value.start, value.stop, value.step]}
    if isinstance(value, tuple):
        return {"__tuple__": [to_jsonable(v) for v in value]}
    if isinstance(value, list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return {"__repr__": repr(value)}


def from_jsonable(value: Any) -> Any:
    """Inverse of :func:`to_jsonable`."""
    if isinstance(value, list):
        return [from_jsonable(v) for v in value]
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return np.asarray(value["__ndarray__"], dtype=value["dtype"])
        if "__slice__" in value:
            return slice(*value["__slice__"])
        if "__tuple__" in value:
            return tuple(from_jsonable(v) for v in value["__tuple__"])
        if "__repr__" in value and len(value) == 1:
            return value["__repr__"]
        return {k: from_jsonable(v) for k, v in value.items()}
    return value


def save_sample(sample: Sample, prefix: str) -> None:
    """Write ``<prefix>.npz`` (arrays) and ``<prefix>.json`` (metadata), atomically."""
    arrays = {"img_data": sample.img_data}
    if sample.seg_data is not None:
        arrays["seg_data"] = sample.seg_data
    if sample.pred_data is not None:
        arrays["pred_data"] = sample.pred_data
    meta = {
        "index": to_jsonable(sample.index),
        "channels": sample.channels,
        "classes": sample.classes,
        "three_dim": sample.three_dim,
        "extended": to_jsonable(sample.extended),
        "details": to_jsonable(sample.details),
    }
    with atomic_path(prefix + ".npz", suffix=".npz") as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
    with atomic_path(prefix + ".json", suffix=".json") as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(meta, handle)


def load_sample(prefix: str) -> Sample:
    """Read a Sample written by :func:`save_sample`."""
    npz_path, json_path = prefix + ".npz", prefix + ".json"
    if not (os.path.exists(npz_path) and os.path.exists(json_path)):
        raise DataNotFoundError(f"No sample backup at {prefix}.npz/.json.")
    try:
        with open(json_path, encoding="utf-8") as handle:
            meta = json.load(handle)
        with np.load(npz_path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as exc:
        raise CorruptFileError(f"Sample backup {prefix}.npz/.json is unreadable: {exc}") from exc
    sample = Sample(
        from_jsonable(meta["index"]),
        arrays["img_data"],
        meta["channels"],
        meta["classes"],
        extended=from_jsonable(meta["extended"]),
        three_dim=meta.get("three_dim"),
    )
    sample.seg_data = arrays.get("seg_data")
    sample.pred_data = arrays.get("pred_data")
    details = from_jsonable(meta.get("details"))
    if details is not None:
        sample.add_details(details)
    return sample
