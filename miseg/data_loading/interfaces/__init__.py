"""Data interfaces: one file per storage format, all following :class:`Abstract_IO`.

Interface classes are imported lazily, so ``import miseg.data_loading.interfaces`` stays
fast and a format's optional dependencies are only needed when it is used.
:data:`DATA_INTERFACES` (MIScnn's name: ``miscnn_data_interfaces``) maps MIScnn's short
names to the classes, and is lazy too: a class is imported when it is looked up.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

from miseg.data_loading.interfaces.abstract_io import Abstract_IO

__all__ = [
    "Abstract_IO",
    "NIFTI_interface",
    "NIFTIslicer_interface",
    "Image_interface",
    "Dictionary_interface",
    "DICOM_interface",
    "DATA_INTERFACES",
    "miscnn_data_interfaces",
    "get_data_interface_from_file_term",
]

_LOCATIONS = {
    "NIFTI_interface": "nifti_io",
    "Dictionary_interface": "dictionary_io",
    "NIFTIslicer_interface": "nifti_slicer_io",
    "Image_interface": "image_io",
    "DICOM_interface": "dicom_io",
}

# MIScnn's short names, in MIScnn's order (the order decides file-term lookups).
_SHORT_NAMES = {
    "NIFTI": "NIFTI_interface",
    "DICT": "Dictionary_interface",
    "NIFTI_S": "NIFTIslicer_interface",
    "IMG": "Image_interface",
    "DICOM": "DICOM_interface",
}


def _load(name: str) -> type:
    module = importlib.import_module(f"{__name__}.{_LOCATIONS[name]}")
    return getattr(module, name)


class _InterfaceRegistry(Mapping):
    """Read-only mapping of MIScnn's short names to interface classes, imported on lookup."""

    def __getitem__(self, name: str) -> type:
        if name not in _SHORT_NAMES:
            raise KeyError(
                f"{name!r} is not a data interface name; known: {', '.join(_SHORT_NAMES)}"
            )
        return _load(_SHORT_NAMES[name])

    def __iter__(self) -> Iterator[str]:
        return iter(_SHORT_NAMES)

    def __len__(self) -> int:
        return len(_SHORT_NAMES)

    def __contains__(self, name: object) -> bool:
        return name in _SHORT_NAMES

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: {v}" for k, v in _SHORT_NAMES.items()) + "}"


#: MIScnn's short names -> interface classes (``"NIFTI"``, ``"DICT"``, ``"NIFTI_S"``,
#: ``"IMG"``, ``"DICOM"``), in MIScnn's order. Read-only; classes are imported on lookup, so
#: listing the names imports nothing. Example: ``DATA_INTERFACES["NIFTI"](classes=3)``.
DATA_INTERFACES: Mapping[str, type] = _InterfaceRegistry()
#: MIScnn's name of :data:`DATA_INTERFACES` (the same object).
miscnn_data_interfaces = DATA_INTERFACES


def __getattr__(name: str) -> Any:
    if name in _LOCATIONS:
        return _load(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


def get_data_interface_from_file_term(term: str) -> type | None:
    """Return the first interface class (MIScnn order) whose format uses files ending in ``term``.

    Args:
        term: A file ending such as ``".nii.gz"``, ``".png"`` or ``".dcm"``.

    Returns:
        The interface class, or ``None`` when no interface claims the ending.

    Example:
        >>> get_data_interface_from_file_term(".nii.gz").__name__
        'NIFTI_interface'
    """
    for cls in DATA_INTERFACES.values():
        if cls.check_file_termination(term):
            return cls
    return None
