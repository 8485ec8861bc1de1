"""The contract every data interface fulfils."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

__all__ = ["Abstract_IO"]


class Abstract_IO(ABC):
    """Base class of data interfaces: how cases are found, loaded and saved.

    A subclass serves one storage format. ``Data_IO`` drives it and adds validation,
    label checking and safe file handling, so an interface only reads and writes.

    Args:
        channels: Number of image channels.
        classes: Number of segmentation classes, background included.
        three_dim: Whether the data is 3D (``(x, y, z)``) or 2D (``(x, y)``).

    Example:
        A custom interface for ``.npy`` pairs (``<index>_img.npy`` / ``<index>_seg.npy``)::

            class NPY_interface(Abstract_IO):
                def initialize(self, input_path):
                    self.path = input_path
                    return sorted(f[:-8] for f in os.listdir(input_path)
                                  if f.endswith("_img.npy"))
                def load_image(self, index):
                    return np.load(f"{self.path}/{index}_img.npy"), {"type": "npy"}
                def load_segmentation(self, index):
                    return np.load(f"{self.path}/{index}_seg.npy")
                def load_prediction(self, index, output_path):
                    return np.load(f"{output_path}/{index}.npy")
                def save_prediction(self, sample, output_path):
                    np.save(f"{output_path}/{sample.index}.npy", sample.pred_data)
                @staticmethod
                def check_file_termination(termination):
                    return termination == ".npy"
    """

    def __init__(self, channels: int = 1, classes: int = 2, three_dim: bool = False) -> None:
        self.channels = channels
        self.classes = classes
        self.three_dim = three_dim

    @abstractmethod
    def initialize(self, input_path: str) -> list:
        """Scan ``input_path`` and return the list of case indices (sorted, deterministic)."""

    @abstractmethod
    def load_image(self, index: Any) -> tuple[np.ndarray, dict]:
        """Return ``(image, extended)``: the image array and its metadata dict (geometry)."""

    @abstractmethod
    def load_segmentation(self, index: Any) -> np.ndarray:
        """Return the label map of a case.

        Raises:
            MissingSegmentationError: when the case has no segmentation (prediction-only).
        """

    @abstractmethod
    def load_prediction(self, index: Any, output_path: str) -> np.ndarray:
        """Return a prediction previously written by :meth:`save_prediction`."""

    @abstractmethod
    def save_prediction(self, sample: Any, output_path: str) -> None:
        """Write ``sample.pred_data`` for ``sample.index`` below ``output_path``."""

    @staticmethod
    @abstractmethod
    def check_file_termination(termination: str) -> bool:
        """Whether files ending in ``termination`` (e.g. ``".nii.gz"``) belong to this format."""

    #: Most instances per case that :meth:`save_instances` can store (0: no instance output).
    max_instances: int = 0

    def save_instances(self, sample: Any, instances: Any, output_path: str) -> None:
        """Write an instance label map (``miseg.processing.instances.Instances``) of ``sample``.

        Interfaces that store instance maps override this and set :attr:`max_instances`;
        the instance map goes next to the semantic prediction (``<index>.instances.<ext>``)
        with its table (``<index>.instances.tsv``).

        Raises:
            ConfigurationError: always, for interfaces without instance output.
        """
        from miseg.errors import ConfigurationError

        raise ConfigurationError(
            f"Case {getattr(sample, 'index', None)!r}: {type(self).__name__} cannot write instance "
            f"label maps; override save_instances and max_instances to support them."
        )

    def has_segmentation(self, index: Any) -> bool:
        """Whether a case has a segmentation. Interfaces override this with a cheap check."""
        from miseg.errors import MissingSegmentationError

        try:
            return self.load_segmentation(index) is not None
        except MissingSegmentationError:
            return False
