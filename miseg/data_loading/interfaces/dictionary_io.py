"""Dictionary interface: cases held in memory as ``{index: (image, seg, pred, details)}``."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np

from miseg.data_loading.interfaces.abstract_io import Abstract_IO
from miseg.errors import ConfigurationError, DataError, DataNotFoundError, MissingSegmentationError

__all__ = ["Dictionary_interface"]


class Dictionary_interface(Abstract_IO):
    """Serves in-memory cases from a dictionary.

    Each value is a tuple ``(image, segmentation?, prediction?, details?)``: only the image is
    required; ``None`` marks a missing segmentation or prediction, and ``details`` is a dict
    merged into the extended dict (e.g. ``{"spacing": (3.0, 0.8, 0.8), "affine": ...}``).

    The caller's dictionary and arrays are never modified: loads return copies, and
    predictions are kept in this interface's own store (:attr:`predictions`), where a new
    prediction replaces an older one. ``load_prediction`` reads that store and falls back to
    the prediction given in the tuple.

    Args:
        dictionary: Mapping from any hashable index to the case tuple.
        channels: Number of image channels.
        classes: Number of segmentation classes, background included.
        three_dim: Whether the images are 3D.

    Example:
        >>> data = {"a": (np.zeros((8, 8, 8)), np.zeros((8, 8, 8), np.uint8)),
        ...         ("b", 2): (np.ones((8, 8, 8)),)}
        >>> interface = Dictionary_interface(data, classes=2)
        >>> interface.initialize(None)
        ['a', ('b', 2)]
        >>> interface.has_segmentation(("b", 2))
        False
    """

    def __init__(
        self, dictionary: Mapping[Any, tuple], channels: int = 1, classes: int = 2, three_dim: bool = True
    ) -> None:
        if not isinstance(dictionary, Mapping):
            raise ConfigurationError(
                f"Dictionary_interface: dictionary must be a mapping of index -> tuple, got "
                f"{type(dictionary).__name__}."
            )
        super().__init__(channels=channels, classes=classes, three_dim=three_dim)
        self.dictionary = dictionary
        self.predictions: dict[Any, np.ndarray] = {}
        self.instance_predictions: dict[Any, Any] = {}

    def _entry(self, index: Any) -> tuple:
        try:
            value = self.dictionary[index]
        except KeyError:
            raise DataNotFoundError(f"Case {index!r} is not a key of the dictionary.") from None
        except TypeError as exc:  # unhashable index
            raise DataNotFoundError(f"Case {index!r} cannot be a dictionary key: {exc}") from None
        if not isinstance(value, (tuple, list)) or not 1 <= len(value) <= 4 or value[0] is None:
            raise DataError(
                f"Case {index!r}: dictionary value must be a tuple (image, seg?, pred?, details?) "
                f"with an image, got {type(value).__name__}"
                + (f" of length {len(value)}." if isinstance(value, (tuple, list)) else ".")
            )
        if len(value) == 4 and value[3] is not None and not isinstance(value[3], Mapping):
            raise DataError(f"Case {index!r}: details (4th tuple item) must be a dict, got {type(value[3]).__name__}.")
        return tuple(value)

    def initialize(self, input_path: Any = None) -> list:
        """Return the dictionary keys in insertion order (``input_path`` is ignored).

        Raises:
            DataNotFoundError: when the dictionary is empty.
            DataError: when a value is not a valid case tuple.
        """
        keys = list(self.dictionary.keys())
        if not keys:
            raise DataNotFoundError("Dictionary_interface: the dictionary holds no cases.")
        for key in keys:
            self._entry(key)
        return keys

    def load_image(self, index: Any) -> tuple[np.ndarray, dict[str, Any]]:
        """Return a copy of the image and ``{"type": "dict", **details}``."""
        value = self._entry(index)
        details = value[3] if len(value) == 4 and value[3] is not None else None
        extended: dict[str, Any] = {"type": "dict"}
        if details is None:
            extended["extra"] = {}
        else:
            extended.update(copy.deepcopy(dict(details)))
        return np.array(value[0], copy=True), extended

    def has_segmentation(self, index: Any) -> bool:
        """Whether the case tuple holds a segmentation."""
        value = self._entry(index)
        return len(value) >= 2 and value[1] is not None

    def load_segmentation(self, index: Any) -> np.ndarray:
        """Return a copy of the segmentation.

        Raises:
            MissingSegmentationError: when the tuple has no segmentation (or ``None``).
        """
        value = self._entry(index)
        if len(value) < 2 or value[1] is None:
            raise MissingSegmentationError(f"Case {index!r}: the dictionary entry has no segmentation.")
        return np.array(value[1], copy=True)

    def save_prediction(self, sample: Any, output_path: Any = None) -> None:
        """Store a copy of ``sample.pred_data`` (``output_path`` is ignored).

        A label map's trailing singleton axis is dropped, as the file interfaces do.
        """
        if sample.pred_data is None:
            raise DataError(f"Case {sample.index!r}: the sample has no prediction (pred_data is None).")
        pred = np.array(sample.pred_data, copy=True)
        spatial = 3 if self.three_dim else 2
        if pred.ndim == spatial + 1 and pred.shape[-1] == 1:
            pred = pred[..., 0]
        self.predictions[sample.index] = pred

    #: Instance maps are kept in memory, without a format limit.
    max_instances = int(np.iinfo(np.uint32).max)

    def save_instances(self, sample: Any, instances: Any, output_path: Any = None) -> None:
        """Keep a copy of the ``Instances`` (map, classes, table) in ``instance_predictions``."""
        from miseg.processing.instances import Instances

        table = None if instances.table is None else instances.table.copy()
        self.instance_predictions[sample.index] = Instances(
            np.array(instances.labels, copy=True), np.array(instances.classes, copy=True), table
        )

    def load_prediction(self, index: Any, output_path: Any = None) -> np.ndarray:
        """Return the stored prediction, else the one in the case tuple.

        Raises:
            DataNotFoundError: when neither exists.
        """
        value = self._entry(index)
        if index in self.predictions:
            return self.predictions[index].copy()
        if len(value) >= 3 and value[2] is not None:
            return np.array(value[2], copy=True)
        raise DataNotFoundError(f"Case {index!r}: no prediction saved or given in the dictionary.")

    @staticmethod
    def check_file_termination(termination: str) -> bool:
        """Always False: the dictionary interface reads no files."""
        return False
