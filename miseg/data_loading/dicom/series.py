"""Case folders, image series and their geometry.

A case folder (any depth) is scanned once: every readable DICOM file is sorted by its
``Modality`` into image slices (grouped by ``SeriesInstanceUID``), RTSTRUCT objects and SEG
objects. File names play no part. An image series is then sorted along its slice normal and
its geometry is derived from ``ImagePositionPatient`` / ``ImageOrientationPatient`` /
``PixelSpacing`` alone (never from ``SliceThickness`` when two or more slices exist).

Array convention: ``(x, y, z) = (column, row, slice)``, so for slice ``k`` the pixel at
``array[i, j, k]`` is ``ds.pixel_array[j, i]`` of the ``k``-th slice in normal order.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from miseg.errors import CorruptFileError, DataError, DataNotFoundError, GeometryError

__all__ = [
    "DicomWarning",
    "DicomFile",
    "CaseScan",
    "SeriesGeometry",
    "DicomSeries",
    "scan_case_folder",
    "build_series",
    "load_series_pixels",
    "LPS_TO_RAS",
]

#: Flip from DICOM patient coordinates (LPS) to NIfTI world coordinates (RAS).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

# Objects that carry patient geometry but are not image slices of a series.
_NON_IMAGE_MODALITIES = frozenset(
    {"RTSTRUCT", "SEG", "RTPLAN", "RTDOSE", "RTRECORD", "SR", "KO", "PR", "REG", "DOC", "RWV"}
)
_DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"


class DicomWarning(UserWarning):
    """A DICOM problem that miseg worked around (file skipped, contour clipped, name unmatched)."""


@dataclass(eq=False)
class DicomFile:
    """One DICOM file found in a case: its path, its header and how it had to be read."""

    path: str
    header: Dataset
    forced: bool = False

    def read(self) -> Dataset:
        """Read the whole file (pixel data included)."""
        try:
            return pydicom.dcmread(self.path, force=self.forced)
        except Exception as exc:  # pydicom raises many types on truncated files
            raise CorruptFileError(f"Cannot read DICOM file {self.path!r}: {exc}") from exc


@dataclass(eq=False)
class CaseScan:
    """The DICOM content of one case folder, classified by ``Modality``.

    Attributes:
        folder: The scanned folder.
        images: ``SeriesInstanceUID -> [DicomFile]`` for image slices.
        rtstructs: RTSTRUCT objects.
        segs: DICOM SEG objects.
        skipped: Files that are not DICOM (a warning was issued for each).
        ignored: DICOM files of other kinds (RT plan/dose, SR, DICOMDIR, ...).
    """

    folder: str
    images: dict[str, list[DicomFile]] = field(default_factory=dict)
    rtstructs: list[DicomFile] = field(default_factory=list)
    segs: list[DicomFile] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def describe_series(self) -> list[str]:
        """One line per image series: UID, modality, description and slice count."""
        lines = []
        for uid, files in self.images.items():
            h = files[0].header
            desc = str(h.get("SeriesDescription", "") or "")
            lines.append(f"{uid} ({h.get('Modality', '?')}, {desc!r}, {len(files)} file(s))")
        return lines


def _read_header(path: str) -> tuple[Dataset, bool] | None:
    """Read a header, falling back to ``force=True`` for files without preamble/meta."""
    try:
        return pydicom.dcmread(path, stop_before_pixels=True), False
    except InvalidDicomError:
        pass
    except Exception:
        return None
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        # force=True "reads" any bytes; accept only what has the core identifying elements.
        if "SOPClassUID" in ds and ("Modality" in ds or "SOPInstanceUID" in ds):
            str(ds.SOPClassUID)
            return ds, True
    except Exception:
        return None
    return None


def scan_case_folder(folder: str, case: Any = None) -> CaseScan:
    """Classify every DICOM file below ``folder`` (recursively) by ``Modality``.

    Non-DICOM files are skipped with a :class:`DicomWarning` naming them; hidden files are
    skipped silently.

    Args:
        folder: The case folder.
        case: The case index, used in messages.

    Returns:
        A :class:`CaseScan`.

    Raises:
        DataNotFoundError: when the folder is missing or holds no DICOM file at all.
    """
    label = f"Case {case!r}: " if case is not None else ""
    if not os.path.isdir(folder):
        raise DataNotFoundError(f"{label}DICOM case folder {folder!r} does not exist.")
    scan = CaseScan(folder=folder)
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = os.path.join(root, name)
            result = _read_header(path)
            if result is None:
                scan.skipped.append(path)
                warnings.warn(
                    f"{label}skipping {path!r}: not a readable DICOM file.", DicomWarning,
                    stacklevel=3,
                )
                continue
            header, forced = result
            entry = DicomFile(path, header, forced)
            modality = str(header.get("Modality", "")).upper()
            sop_class = str(header.get("SOPClassUID", ""))
            if sop_class == _DICOMDIR_SOP_CLASS or name.upper() == "DICOMDIR":
                scan.ignored.append(path)
            elif modality == "RTSTRUCT":
                scan.rtstructs.append(entry)
            elif modality == "SEG":
                scan.segs.append(entry)
            elif modality not in _NON_IMAGE_MODALITIES and "Rows" in header and (
                "ImagePositionPatient" in header or "PerFrameFunctionalGroupsSequence" in header
            ):
                uid = str(header.get("SeriesInstanceUID", ""))
                scan.images.setdefault(uid, []).append(entry)
            else:
                scan.ignored.append(path)
    if not (scan.images or scan.rtstructs or scan.segs):
        extra = f" ({len(scan.skipped)} non-DICOM file(s) skipped)" if scan.skipped else ""
        raise DataNotFoundError(f"{label}no DICOM image or label file in folder {folder!r}{extra}.")
    return scan


@dataclass(frozen=True, eq=False)
class SeriesGeometry:
    """Voxel grid of an image series in DICOM patient coordinates (LPS, mm).

    Attributes:
        shape: ``(columns, rows, slices)``, the array shape in ``(x, y, z)`` order.
        pixel_spacing: ``(column spacing, row spacing)`` = ``(PixelSpacing[1], PixelSpacing[0])``.
        origin: Centre of voxel ``(0, 0, 0)`` (``ImagePositionPatient`` of the first slice).
        row_direction: Unit vector along ``x`` (first triplet of ``ImageOrientationPatient``).
        column_direction: Unit vector along ``y`` (second triplet).
        slice_step: Vector from one slice centre to the next (``z``); not perpendicular to
            the slices under gantry tilt, which makes the affine sheared but exact.
        frame_of_reference_uid: ``FrameOfReferenceUID`` of the series, or ``None``.
    """

    shape: tuple[int, int, int]
    pixel_spacing: tuple[float, float]
    origin: np.ndarray
    row_direction: np.ndarray
    column_direction: np.ndarray
    slice_step: np.ndarray
    frame_of_reference_uid: str | None = None

    @property
    def normal(self) -> np.ndarray:
        """Unit slice normal, ``row_direction x column_direction``."""
        n = np.cross(self.row_direction, self.column_direction)
        return n / np.linalg.norm(n)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size along ``(x, y, z)`` in mm (the norms of the affine's columns)."""
        return (
            float(self.pixel_spacing[0]),
            float(self.pixel_spacing[1]),
            float(np.linalg.norm(self.slice_step)),
        )

    @property
    def direction(self) -> np.ndarray:
        """3x3 matrix whose columns are the unit directions of ``x``, ``y``, ``z`` (LPS)."""
        step = self.slice_step / np.linalg.norm(self.slice_step)
        return np.stack([self.row_direction, self.column_direction, step], axis=1)

    @property
    def tilt_degrees(self) -> float:
        """Angle between the slice step and the slice normal (gantry tilt), in degrees."""
        step = self.slice_step / np.linalg.norm(self.slice_step)
        cos = abs(float(np.dot(step, self.normal)))
        return math.degrees(math.acos(min(1.0, cos)))

    @property
    def affine_lps(self) -> np.ndarray:
        """4x4 matrix mapping voxel indices ``(i, j, k, 1)`` to LPS millimetres."""
        affine = np.eye(4)
        affine[:3, 0] = self.row_direction * self.pixel_spacing[0]
        affine[:3, 1] = self.column_direction * self.pixel_spacing[1]
        affine[:3, 2] = self.slice_step
        affine[:3, 3] = self.origin
        return affine

    @property
    def affine_ras(self) -> np.ndarray:
        """4x4 voxel-to-RAS matrix (the NIfTI affine of the ``(x, y, z)`` array)."""
        return LPS_TO_RAS @ self.affine_lps

    def lps_to_voxel(self, points: np.ndarray) -> np.ndarray:
        """Continuous voxel coordinates ``(i, j, k)`` of LPS points of shape ``(n, 3)``."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        inverse = np.linalg.inv(self.affine_lps)
        return points @ inverse[:3, :3].T + inverse[:3, 3]

    def voxel_to_lps(self, ijk: np.ndarray) -> np.ndarray:
        """LPS points of continuous voxel coordinates of shape ``(n, 3)``."""
        ijk = np.asarray(ijk, dtype=np.float64).reshape(-1, 3)
        affine = self.affine_lps
        return ijk @ affine[:3, :3].T + affine[:3, 3]


@dataclass(eq=False)
class DicomSeries:
    """A sorted image series: its files in slice order and its geometry."""

    series_uid: str
    files: list[DicomFile]
    geometry: SeriesGeometry
    modality: str
    description: str

    @property
    def sop_instance_uids(self) -> list[str]:
        """``SOPInstanceUID`` of each slice, in slice (``z``) order."""
        return [str(f.header.SOPInstanceUID) for f in self.files]

    @property
    def headers(self) -> list[Dataset]:
        """Slice headers (no pixel data) in slice order."""
        return [f.header for f in self.files]


def _floats(header: Dataset, keyword: str, count: int, path: str, case_label: str) -> np.ndarray:
    value = header.get(keyword)
    if value is None:
        raise GeometryError(
            f"{case_label}{path!r} has no {keyword}; cannot place the slice in space."
        )
    values = np.asarray([float(v) for v in value], dtype=np.float64)
    if values.size != count:
        raise GeometryError(f"{case_label}{path!r}: {keyword} has {values.size} values, expected {count}.")
    return values


def build_series(files: Sequence[DicomFile], series_uid: str = "", case: Any = None,
                 spacing_rtol: float = 0.02, position_atol: float = 0.01) -> DicomSeries:
    """Sort the slices of one series along the slice normal and derive its geometry.

    Slices are sorted by ``ImagePositionPatient`` projected on the normal (cross product of
    the two ``ImageOrientationPatient`` triplets). The inter-slice distance comes from the
    positions, not from ``SliceThickness`` (which is only used for single-slice series).

    Args:
        files: The slices of one ``SeriesInstanceUID``.
        series_uid: The UID, for messages.
        case: The case index, for messages.
        spacing_rtol: Relative tolerance on slice distances before they count as uneven.
        position_atol: Absolute tolerance on positions, in mm.

    Returns:
        A :class:`DicomSeries`.

    Raises:
        GeometryError: on mixed slice sizes/orientations/pixel spacings, duplicate positions,
            missing slices, uneven slice spacing or non-collinear slice positions.
        DataError: on multi-frame (enhanced) image objects.

    A gantry tilt is accepted with a :class:`DicomWarning`: the affine then has a sheared
    slice axis, so voxel-to-patient mapping stays exact.
    """
    label = f"Case {case!r}, series {series_uid}: " if case is not None else f"Series {series_uid}: "
    if not files:
        raise DataNotFoundError(f"{label}no image slices.")
    for f in files:
        if int(f.header.get("NumberOfFrames", 1) or 1) > 1:
            raise DataError(
                f"{label}{f.path!r} is a multi-frame (enhanced) image object with "
                f"{f.header.NumberOfFrames} frames; only single-frame image series are supported."
            )

    first = files[0]
    orientation = _floats(first.header, "ImageOrientationPatient", 6, first.path, label)
    pixel_spacing = _floats(first.header, "PixelSpacing", 2, first.path, label)
    rows, cols = int(first.header.Rows), int(first.header.Columns)
    for f in files[1:]:
        h = f.header
        problems = []
        if (int(h.Rows), int(h.Columns)) != (rows, cols):
            problems.append(f"size {h.Rows}x{h.Columns} vs {rows}x{cols}")
        iop = _floats(h, "ImageOrientationPatient", 6, f.path, label)
        if not np.allclose(iop, orientation, atol=1e-4):
            problems.append(f"orientation {iop.round(4).tolist()} vs {orientation.round(4).tolist()}")
        ps = _floats(h, "PixelSpacing", 2, f.path, label)
        if not np.allclose(ps, pixel_spacing, rtol=1e-4, atol=1e-5):
            problems.append(f"pixel spacing {ps.tolist()} vs {pixel_spacing.tolist()}")
        if problems:
            raise GeometryError(
                f"{label}mixed series: {f.path!r} differs from {first.path!r} in "
                + "; ".join(problems) + "."
            )

    row_dir = orientation[:3] / np.linalg.norm(orientation[:3])
    col_dir = orientation[3:] / np.linalg.norm(orientation[3:])
    normal = np.cross(row_dir, col_dir)
    normal /= np.linalg.norm(normal)
    positions = np.stack([_floats(f.header, "ImagePositionPatient", 3, f.path, label) for f in files])
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    files = [files[i] for i in order]
    positions = positions[order]
    along = along[order]

    if len(files) == 1:
        h = first.header
        thickness = h.get("SpacingBetweenSlices") or h.get("SliceThickness")
        step_length = float(thickness) if thickness not in (None, "") and float(thickness) > 0 else 1.0
        step = normal * step_length
    else:
        gaps = np.diff(along)
        duplicate = np.flatnonzero(gaps <= position_atol)
        if duplicate.size:
            k = int(duplicate[0])
            raise GeometryError(
                f"{label}slices {files[k].path!r} and {files[k + 1].path!r} share the position "
                f"{positions[k].round(3).tolist()} (several acquisitions or echoes in one series?)."
            )
        typical = float(np.median(gaps))
        tol = max(spacing_rtol * typical, position_atol)
        bad = np.flatnonzero(np.abs(gaps - typical) > tol)
        if bad.size:
            k = int(bad[0])
            ratio = gaps[k] / typical
            if ratio > 1.5 and abs(ratio - round(ratio)) * typical <= tol * round(ratio):
                raise GeometryError(
                    f"{label}{round(ratio) - 1} slice(s) missing between {files[k].path!r} and "
                    f"{files[k + 1].path!r}: gap of {gaps[k]:.4g} mm where the series spacing is "
                    f"{typical:.4g} mm ({len(bad)} irregular gap(s) in total)."
                )
            raise GeometryError(
                f"{label}uneven slice spacing: distances between consecutive slices range from "
                f"{gaps.min():.4g} to {gaps.max():.4g} mm (median {typical:.4g} mm, first "
                f"irregular gap after {files[k].path!r}); resample the series or split it."
            )
        step = (positions[-1] - positions[0]) / (len(files) - 1)
        expected = positions[0] + np.arange(len(files))[:, None] * step
        deviation = np.linalg.norm(positions - expected, axis=1).max()
        if deviation > max(position_atol, spacing_rtol * float(np.linalg.norm(step))):
            raise GeometryError(
                f"{label}slice positions are not on a line (deviation up to {deviation:.3g} mm); "
                f"the series mixes several stacks."
            )

    geometry = SeriesGeometry(
        shape=(cols, rows, len(files)),
        pixel_spacing=(float(pixel_spacing[1]), float(pixel_spacing[0])),
        origin=positions[0].copy(),
        row_direction=row_dir,
        column_direction=col_dir,
        slice_step=np.asarray(step, dtype=np.float64),
        frame_of_reference_uid=(
            str(first.header.FrameOfReferenceUID) if "FrameOfReferenceUID" in first.header else None
        ),
    )
    tilt = geometry.tilt_degrees
    if tilt > 0.05:
        warnings.warn(
            f"{label}gantry tilt of {tilt:.2f} degrees: slices are not perpendicular to the "
            f"slice direction. The affine is sheared so positions stay exact; resample before "
            f"using tools that expect orthogonal axes.",
            DicomWarning,
            stacklevel=2,
        )
    return DicomSeries(
        series_uid=series_uid,
        files=files,
        geometry=geometry,
        modality=str(first.header.get("Modality", "") or ""),
        description=str(first.header.get("SeriesDescription", "") or ""),
    )


def load_series_pixels(series: DicomSeries, case: Any = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Read the pixels of a sorted series into an ``(x, y, z[, c])`` float32 array.

    The modality transform (``RescaleSlope``/``RescaleIntercept`` or a modality LUT) is applied
    per slice, so CT values come out in Hounsfield units.

    Args:
        series: A series from :func:`build_series`.
        case: The case index, for messages.

    Returns:
        ``(volume, info)`` with ``info = {"slope", "intercept", "samples_per_pixel"}``
        (slope/intercept of the first slice; 1.0/0.0 when absent).
    """
    from pydicom.pixels import apply_modality_lut

    label = f"Case {case!r}: " if case is not None else ""
    cols, rows, n = series.geometry.shape
    samples = int(series.files[0].header.get("SamplesPerPixel", 1) or 1)
    shape = (cols, rows, n) if samples == 1 else (cols, rows, n, samples)
    volume = np.empty(shape, dtype=np.float32)
    for k, entry in enumerate(series.files):
        ds = entry.read()
        try:
            pixels = ds.pixel_array
        except Exception as exc:
            raise CorruptFileError(f"{label}cannot decode the pixel data of {entry.path!r}: {exc}") from exc
        if samples == 1:
            pixels = apply_modality_lut(pixels, ds)
            volume[:, :, k] = np.asarray(pixels, dtype=np.float32).T
        else:
            volume[:, :, k, :] = np.asarray(pixels, dtype=np.float32).transpose(1, 0, 2)
    h = series.files[0].header
    info = {
        "slope": float(h.get("RescaleSlope", 1.0) or 1.0),
        "intercept": float(h.get("RescaleIntercept", 0.0) or 0.0),
        "samples_per_pixel": samples,
    }
    return volume, info
