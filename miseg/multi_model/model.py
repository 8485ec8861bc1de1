"""Model: the interface shared by single networks and groups of networks."""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from typing import Any, Sequence

__all__ = ["Model"]


class Model(ABC):
    """Base class of ``Neural_Network`` and ``Model_Group``.

    A user subclass may implement just MIScnn's abstract signatures: ``predict(sample_list,
    activation_output=False)`` writing through the Data_IO, ``evaluate(training_samples,
    validation_samples, evaluation_path="evaluation", epochs=20, iterations=None,
    callbacks=None)``, a ``dump(file_path)`` that returns nothing. ``Model_Group``,
    ``CrossValidationGroup`` and the evaluation drivers call such a model with only the
    arguments its signature takes and read its predictions back from the Data_IO.

    Args:
        preprocessor: The Preprocessor (its interface decides dimensionality, channels
            and classes).

    Attributes:
        id: A per-instance identifier (random; not a process-global counter).
    """

    def __init__(self, preprocessor: Any) -> None:
        self.preprocessor = preprocessor
        interface = preprocessor.data_io.interface
        self.three_dim = bool(interface.three_dim)
        self.channels = int(interface.channels)
        self.classes = int(interface.classes)
        self.id = uuid.uuid4().hex[:8]

    @abstractmethod
    def train(self, sample_list: Sequence[Any], epochs: int = 20, iterations: int | None = None,
              callbacks: Sequence[Any] | None = None, class_weight: Any = None) -> Any:
        """Fit on the given cases."""

    @abstractmethod
    def predict(self, sample_list: Sequence[Any], return_output: bool = False,
                activation_output: bool = False) -> Any:
        """Predict the given cases (to files, or returned)."""

    @abstractmethod
    def evaluate(self, training_samples: Sequence[Any], validation_samples: Sequence[Any],
                 epochs: int = 20, iterations: int | None = None,
                 callbacks: Sequence[Any] | None = None, class_weight: Any = None) -> Any:
        """Fit with validation; returns the history."""

    @abstractmethod
    def reset(self) -> None:
        """Restore the initial weights and a fresh optimizer."""

    @abstractmethod
    def copy(self) -> "Model":
        """An independent copy with the same configuration and weights."""

    @abstractmethod
    def dump(self, file_path: str) -> str:
        """Save to ``file_path``; returns the path written."""

    @abstractmethod
    def load(self, file_path: str, custom_objects: dict | None = None) -> None:
        """Load from ``file_path``."""
