"""miseg's exception types.

Every error miseg raises on purpose derives from :class:`MisegError`, and also from the
built-in type a user would naturally catch (``ValueError`` for bad content or parameters,
``OSError`` for missing or unreadable files), so ``except ValueError`` keeps working in
scripts ported from MIScnn.

Messages name the case (sample index), the file and what is wrong, and say how to fix it
where that is known.
"""

from __future__ import annotations

__all__ = [
    "MisegError",
    "ConfigurationError",
    "DataError",
    "LabelError",
    "ShapeMismatchError",
    "GeometryError",
    "DataNotFoundError",
    "MissingSegmentationError",
    "CorruptFileError",
    "UnsafeIndexError",
    "ModelError",
]


class MisegError(Exception):
    """Base class of every error miseg raises on purpose."""


class ConfigurationError(MisegError, ValueError):
    """A parameter or a combination of parameters is invalid (names the parameter and value)."""


class DataError(MisegError, ValueError):
    """The content of a case is invalid (NaN/Inf, wrong dimensionality, wrong channel count)."""


class LabelError(DataError):
    """A segmentation holds values that are not valid class labels."""


class ShapeMismatchError(DataError):
    """Two arrays that must share a shape do not (image vs segmentation, prediction vs truth)."""


class GeometryError(DataError):
    """Spatial metadata is missing or inconsistent (affines, spacings, DICOM geometry)."""


class DataNotFoundError(MisegError, FileNotFoundError):
    """A directory, case or file that was asked for does not exist."""


class MissingSegmentationError(DataNotFoundError):
    """A case has no segmentation (valid for prediction, not for training or evaluation)."""


class CorruptFileError(MisegError, OSError):
    """A file exists but cannot be read (truncated, wrong format)."""


class UnsafeIndexError(MisegError, ValueError):
    """A sample index would escape the output or batch directory when used as a file name."""


class ModelError(MisegError, ValueError):
    """A model cannot be built, loaded or used as asked (shape, channels, corrupt file)."""
