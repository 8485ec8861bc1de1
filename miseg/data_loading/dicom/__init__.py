"""DICOM building blocks behind :class:`~miseg.data_loading.interfaces.dicom_io.DICOM_interface`.

A private package: the public entry points are ``DICOM_interface`` and
``miseg.datasets.dicom.write_dicom_study``. The modules are split by concept:

* :mod:`.series`: scanning a case folder, grouping image series, sorting slices, series
  geometry (spacing, origin, direction, affine) and pixel loading in ``(x, y, z)`` order.
* :mod:`.labels`: mapping ROI / segment names to class labels (``structure_dict``).
* :mod:`.rtstruct`: RTSTRUCT parsing, contour rasterisation, contours from masks.
* :mod:`.seg`: DICOM SEG reading (frames placed on a series) and writing (highdicom).

Array convention everywhere: ``(x, y, z) = (column, row, slice)``; patient coordinates are
DICOM LPS millimetres.
"""

from __future__ import annotations

from miseg.data_loading.dicom.series import (
    CaseScan,
    DicomWarning,
    SeriesGeometry,
    build_series,
    load_series_pixels,
    scan_case_folder,
)

__all__ = [
    "CaseScan",
    "DicomWarning",
    "SeriesGeometry",
    "build_series",
    "load_series_pixels",
    "scan_case_folder",
]
