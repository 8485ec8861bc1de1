"""Data interfaces: one file per storage format, all following :class:`Abstract_IO`.

Interface classes are imported lazily, so ``import miseg.data_loading.interfaces`` stays
fast and a format's optional dependencies are only needed when it is used.
"""

from __future__ import annotations

import importlib
from typing import Any

from miseg.data_loading.interfaces.abstract_io import Abstract_IO

__all__ = [
    "Abstract_IO",
    "NIFTI_interface",
    "NIFTIslicer_interface",
    "Image_interface",
    "Dictionary_interface",
    "DICOM_interface",
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


def __getattr__(name: str) -> Any:
    if name in _LOCATIONS:
        return _load(name)
    if name == "miscnn_data_interfaces":
        return {short: _load(cls) for short, cls in _SHORT_NAMES.items()}
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
    for cls_name in _SHORT_NAMES.values():
        cls = _load(cls_name)
        if cls.check_file_termination(term):
            return cls
    return None
