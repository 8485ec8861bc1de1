"""Case-folder helpers shared by the file interfaces (NIfTI, slicer, image folders, DICOM).

Format-independent: finding and sorting case folders, locating a case's files, and turning
a prediction into the array a writer stores.
"""

from __future__ import annotations

import os
import re
from typing import Any, Sequence

import numpy as np

from miseg.errors import ConfigurationError, DataError, DataNotFoundError, LabelError

__all__ = [
    "compile_pattern",
    "natural_sort_key",
    "list_case_folders",
    "find_case_file",
    "check_cases_have_file",
    "prediction_array",
]


def compile_pattern(pattern: str | None, owner: str) -> re.Pattern | None:
    """Compile a case-name regex, raising ConfigurationError when it is invalid."""
    if pattern is None:
        return None
    if not isinstance(pattern, str):
        raise ConfigurationError(f"{owner}: pattern must be a regex string or None, got {pattern!r}.")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigurationError(f"{owner}: pattern={pattern!r} is not a valid regex ({exc}).") from exc


def natural_sort_key(name: str) -> tuple:
    """Sort key that orders ``case_2`` before ``case_10`` (ties broken lexicographically)."""
    parts = re.split(r"(\d+)", name)
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), name


def list_case_folders(input_path: str, pattern: re.Pattern | None, owner: str) -> list[str]:
    """Return the case folder names below ``input_path``, naturally sorted.

    Only directories count as cases; hidden entries (starting with ``.``) are skipped.
    ``pattern`` keeps the names it ``fullmatch``-es.

    Raises:
        DataNotFoundError: when the directory is missing or no case folder is left.
    """
    if not os.path.isdir(input_path):
        raise DataNotFoundError(
            f"{owner}: input directory {input_path!r} does not exist or is not a directory."
        )
    names = [e.name for e in os.scandir(input_path) if e.is_dir() and not e.name.startswith(".")]
    if pattern is not None:
        names = [n for n in names if pattern.fullmatch(n)]
    if not names:
        which = "" if pattern is None else f" matching pattern {pattern.pattern!r}"
        raise DataNotFoundError(f"{owner}: no case folder{which} found in {input_path!r}.")
    return sorted(names, key=natural_sort_key)


def find_case_file(case_dir: str, stem: str, extensions: Sequence[str]) -> str | None:
    """Return the path of ``<stem><ext>`` inside ``case_dir`` for the one existing ``ext``.

    Raises:
        DataError: when files with several of the endings exist (ambiguous case).
    """
    found = [os.path.join(case_dir, stem + ext) for ext in extensions]
    found = [p for p in found if os.path.isfile(p)]
    if len(found) > 1:
        names = ", ".join(os.path.basename(p) for p in found)
        raise DataError(f"Case folder {case_dir!r} holds several {stem} files ({names}); keep one.")
    return found[0] if found else None


def check_cases_have_file(
    input_path: str, cases: Sequence[str], stem: str, extensions: Sequence[str], owner: str
) -> None:
    """Raise DataNotFoundError listing the case folders that lack ``<stem><ext>``."""
    missing = [c for c in cases if find_case_file(os.path.join(input_path, c), stem, extensions) is None]
    if missing:
        shown = ", ".join(repr(c) for c in missing[:10]) + (" ..." if len(missing) > 10 else "")
        names = " or ".join(stem + ext for ext in extensions)
        raise DataNotFoundError(
            f"{owner}: {len(missing)} case folder(s) in {input_path!r} have no {names}: {shown}. "
            f"Every case folder needs an image; move other folders out or use pattern=."
        )


def prediction_array(pred: Any, spatial_ndim: int, classes: int, index: Any) -> tuple[np.ndarray, bool]:
    """Bring ``sample.pred_data`` into its on-disk form.

    A label map (integer, boolean or integral float values; trailing singleton axis dropped)
    becomes uint8, or uint16 when ``classes > 255``. An activation map (float, with a class
    axis) becomes float32.

    Returns:
        ``(array, is_label_map)``.

    Raises:
        DataError: when the prediction has the wrong number of axes.
        LabelError: when label values do not fit the label dtype.
    """
    if pred is None:
        raise DataError(f"Case {index!r}: the sample has no prediction (pred_data is None).")
    pred = np.asarray(pred)
    if pred.ndim == spatial_ndim + 1 and pred.shape[-1] == 1:
        pred = pred[..., 0]
    if pred.ndim == spatial_ndim:
        if pred.dtype == bool or np.issubdtype(pred.dtype, np.integer):
            is_label = True
        elif np.issubdtype(pred.dtype, np.floating):
            is_label = bool(np.all(np.isfinite(pred)) and np.all(pred == np.round(pred)))
        else:
            raise DataError(f"Case {index!r}: prediction dtype {pred.dtype} is not numeric.")
        if is_label:
            dtype = np.uint16 if classes > 255 else np.uint8
            if pred.size and (pred.min() < 0 or pred.max() > np.iinfo(dtype).max):
                raise LabelError(
                    f"Case {index!r}: predicted labels span [{pred.min()}, {pred.max()}], which "
                    f"does not fit {np.dtype(dtype).name} (classes={classes})."
                )
            return pred.astype(dtype), True
        return pred.astype(np.float32), False
    if pred.ndim == spatial_ndim + 1:
        return pred.astype(np.float32), False
    raise DataError(
        f"Case {index!r}: prediction of shape {pred.shape} has {pred.ndim} axes; expected "
        f"{spatial_ndim} spatial axes plus an optional class axis."
    )
