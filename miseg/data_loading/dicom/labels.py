"""Mapping ROI / segment names to class labels (``structure_dict``)."""

from __future__ import annotations

import warnings
from typing import Any, Mapping, Sequence

from miseg.data_loading.dicom.series import DicomWarning
from miseg.errors import ConfigurationError

__all__ = ["normalise_name", "validate_structure_dict", "assign_classes"]


def normalise_name(name: Any, case_insensitive: bool) -> str:
    """Collapse whitespace (and case, when asked) so ``" Lt  Lung"`` matches ``"lt lung"``."""
    text = " ".join(str(name).split())
    return text.casefold() if case_insensitive else text


def validate_structure_dict(
    structure_dict: Mapping[str, int] | None, classes: int, case_insensitive: bool
) -> dict[str, int] | None:
    """Check a ``structure_dict`` and return a copy (insertion order kept).

    Raises:
        ConfigurationError: when it is not a mapping, a key is not a string, a value is not an
            integer class in ``[0, classes)``, or two keys collide after normalisation while
            mapping to different classes.
    """
    if structure_dict is None:
        return None
    if not isinstance(structure_dict, Mapping):
        raise ConfigurationError(
            f"structure_dict must be a mapping of ROI/segment name to class label, got "
            f"{type(structure_dict).__name__}: {structure_dict!r}."
        )
    result: dict[str, int] = {}
    seen: dict[str, tuple[str, int]] = {}
    for name, value in structure_dict.items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError(f"structure_dict keys must be non-empty ROI names, got {name!r}.")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < classes:
            raise ConfigurationError(
                f"structure_dict[{name!r}]={value!r} is not a class label in [0, {classes - 1}] "
                f"(classes={classes}); 0 carves a structure out of earlier ones."
            )
        key = normalise_name(name, case_insensitive)
        if key in seen and seen[key][1] != value:
            raise ConfigurationError(
                f"structure_dict maps {seen[key][0]!r} -> {seen[key][1]} and {name!r} -> {value}, "
                f"which are the same name with case_insensitive={case_insensitive}."
            )
        seen[key] = (name, int(value))
        result[name] = int(value)
    return result


def assign_classes(
    items: Sequence[tuple[int, str]],
    structure_dict: Mapping[str, int] | None,
    classes: int,
    case_insensitive: bool,
    kind: str,
    source: str,
) -> list[tuple[int, str, int]]:
    """Decide which ROI/segment becomes which class, in painting order.

    With a ``structure_dict`` the painting order is the dict's order (later entries overwrite
    earlier ones where they overlap). Without one, the ROI number / segment number is the
    class label, painted in increasing order.

    Args:
        items: ``(number, name)`` of each ROI (RTSTRUCT ``ROINumber``) or segment
            (SEG ``SegmentNumber``).
        structure_dict: Name -> class, or ``None``.
        classes: Number of classes (background included).
        case_insensitive: Whether names match regardless of case.
        kind: ``"ROI"`` or ``"segment"``, for messages.
        source: The file, for messages.

    Returns:
        ``[(number, name, class)]`` in painting order. Names that map to no class are listed
        in a :class:`DicomWarning`.
    """
    chosen: list[tuple[int, str, int]] = []
    if structure_dict is None:
        unused = []
        for number, name in sorted(items, key=lambda item: item[0]):
            if 1 <= number < classes:
                chosen.append((number, name, number))
            else:
                unused.append(f"{number}: {name!r}")
        if unused:
            warnings.warn(
                f"{source}: {kind}s without a class (no structure_dict, so {kind} number = class "
                f"label, and classes={classes}): {', '.join(unused)}. Pass structure_dict to map "
                f"them by name.",
                DicomWarning,
                stacklevel=3,
            )
        return chosen

    by_name: dict[str, list[tuple[int, str]]] = {}
    for number, name in items:
        by_name.setdefault(normalise_name(name, case_insensitive), []).append((number, name))
    used: set[int] = set()
    missing = []
    for dict_name, cls in structure_dict.items():
        matches = by_name.get(normalise_name(dict_name, case_insensitive), [])
        if not matches:
            missing.append(dict_name)
        for number, name in matches:
            chosen.append((number, name, cls))
            used.add(number)
    unmatched = [name for number, name in items if number not in used]
    if unmatched:
        warnings.warn(
            f"{source}: {len(unmatched)} {kind} name(s) match no class in structure_dict and are "
            f"ignored: {unmatched}. structure_dict names: {list(structure_dict)}"
            + (f"; not found in the file: {missing}." if missing else "."),
            DicomWarning,
            stacklevel=3,
        )
    return chosen
