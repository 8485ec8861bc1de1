"""Classical segmentation methods: thresholding, region growing, watershed and graph cut.

Each method is a class with the same small API (``fit`` on labelled Samples where it learns
anything, ``predict`` on a Sample, ``get_config``/``from_config``), registered under a name
(:func:`method_names`). :class:`ClassicalModel` wraps any of them as a miseg ``Model``, so
cross-validation, detailed validation, model groups and ``miseg evaluate --method NAME``
treat it like a ``Neural_Network``.

========================  ======================  ==============================================
name                      class                   what it learns in ``fit``
========================  ======================  ==============================================
threshold                 WindowThreshold         the Dice-optimal window per class (unless given)
otsu                      OtsuThreshold           which side of Otsu's threshold is which class
multi_otsu                MultiOtsuThreshold      which multi-Otsu region is which class
hysteresis                HysteresisThreshold     low/high thresholds (unless given)
region_growing            RegionGrowing           a Gaussian intensity model (growth window) and
                                                  the Dice-optimal window (unattended seeds) per class
threshold_region_growing  ThresholdRegionGrowing  the Dice-optimal window per class (threshold,
                                                  seeds in its largest components, growth window)
watershed                 MarkerWatershed         a Gaussian intensity model per class (markers)
distance_watershed        DistanceWatershed       the Dice-optimal foreground threshold
graph_cut                 GraphCut                a Gaussian intensity model per class (data term)
========================  ======================  ==============================================

Importing this package does not import TensorFlow.
"""

from miseg.classical._common import resolve_seeds
from miseg.classical.base import ClassicalMethod, build_method, get_method, method_names, register
from miseg.classical.graph_cut import Box, GraphCut
from miseg.classical.model import ClassicalModel
from miseg.classical.region_growing import RegionGrowing
from miseg.classical.threshold_region_growing import ThresholdRegionGrowing
from miseg.classical.thresholding import HysteresisThreshold, MultiOtsuThreshold, OtsuThreshold, WindowThreshold
from miseg.classical.watershed import DistanceWatershed, MarkerWatershed

__all__ = [
    "ClassicalMethod",
    "ClassicalModel",
    "register",
    "get_method",
    "method_names",
    "build_method",
    "resolve_seeds",
    "WindowThreshold",
    "OtsuThreshold",
    "MultiOtsuThreshold",
    "HysteresisThreshold",
    "RegionGrowing",
    "ThresholdRegionGrowing",
    "MarkerWatershed",
    "DistanceWatershed",
    "GraphCut",
    "Box",
]
