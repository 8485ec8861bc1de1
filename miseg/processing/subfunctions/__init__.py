"""Preprocessing subfunctions: reversible per-sample steps run by the Preprocessor."""

from miseg.processing.subfunctions.abstract_subfunction import (
    Abstract_Subfunction,
    call_postprocessing,
)
from miseg.processing.subfunctions.clipping import Clipping
from miseg.processing.subfunctions.contrast_stretching import ContrastStretching
from miseg.processing.subfunctions.gaussian_smoothing import GaussianSmoothing
from miseg.processing.subfunctions.histogram_equalization import HistogramEqualization
from miseg.processing.subfunctions.normalization import Normalization
from miseg.processing.subfunctions.padding import Padding
from miseg.processing.subfunctions.resampling import Resampling
from miseg.processing.subfunctions.resize import Resize
from miseg.processing.subfunctions.transform_HU import TransformHU

__all__ = [
    "Abstract_Subfunction",
    "call_postprocessing",
    "Clipping",
    "Normalization",
    "Resampling",
    "Resize",
    "Padding",
    "TransformHU",
    "GaussianSmoothing",
    "HistogramEqualization",
    "ContrastStretching",
]
