"""RTSTRUCT: parsing, rasterising contours onto a series, and writing contours from masks.

Rasterisation rules (documented behaviour of ``DICOM_interface``):

* Only ``CLOSED_PLANAR`` contours are filled; ``POINT`` / ``OPEN_PLANAR`` ones are ignored.
* Every point of a contour is mapped LPS -> voxel coordinates with the series affine. The
  contour must be planar on one slice: all its points within ``slice_tol`` (in slices) of the
  nearest slice. Non-planar and between-slice contours are skipped with a warning.
* Contours on slices outside the series (a partial series) are skipped with a warning;
  contours that leave the image in-plane are clipped to it with a warning.
* Several contours of one ROI on one slice combine with the even-odd rule (XOR), so a
  contour inside another cuts a hole.
"""

from __future__ import annotations

import datetime
import warnings
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

from miseg.data_loading.dicom.series import DicomWarning, SeriesGeometry
from miseg.errors import CorruptFileError, DataError

__all__ = [
    "RTSTRUCT_SOP_CLASS_UID",
    "Contour",
    "ROI",
    "read_rtstruct",
    "rtstruct_frame_of_reference_uids",
    "rtstruct_series_uids",
    "rasterise_roi",
    "mask_to_contours",
    "build_rtstruct",
]

RTSTRUCT_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.481.3"
_STUDY_COMPONENT_SOP_CLASS = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management (RT convention)
_COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255),
            (255, 128, 0), (128, 0, 255), (0, 128, 128), (128, 128, 0)]


@dataclass(eq=False)
class Contour:
    """One contour: LPS points ``(n, 3)``, its geometric type and referenced slice UIDs."""

    points: np.ndarray
    geometric_type: str
    referenced_sop_instance_uids: tuple[str, ...] = ()


@dataclass(eq=False)
class ROI:
    """One structure of an RTSTRUCT: number, name, frame of reference and contours."""

    number: int
    name: str
    frame_of_reference_uid: str | None
    contours: list[Contour] = field(default_factory=list)


def read_rtstruct(source: str | Dataset) -> tuple[Dataset, list[ROI]]:
    """Parse an RTSTRUCT into its ROIs.

    ROIs and their contours are matched through ``ReferencedROINumber`` (not by position in
    the two sequences).

    Args:
        source: A file path (files without preamble/meta are accepted) or a dataset.

    Returns:
        ``(dataset, rois)`` with the ROIs in ``StructureSetROISequence`` order.

    Raises:
        CorruptFileError: when the file cannot be read.
        DataError: when it is not an RTSTRUCT.
    """
    name = source if isinstance(source, str) else str(getattr(source, "filename", "<dataset>"))
    if isinstance(source, str):
        try:
            ds = pydicom.dcmread(source, force=True)
        except Exception as exc:
            raise CorruptFileError(f"Cannot read RTSTRUCT {source!r}: {exc}") from exc
    else:
        ds = source
    if str(ds.get("Modality", "")).upper() != "RTSTRUCT":
        raise DataError(f"{name!r} is not an RTSTRUCT (Modality={ds.get('Modality')!r}).")
    rois: dict[int, ROI] = {}
    for item in ds.get("StructureSetROISequence", []):
        number = int(item.ROINumber)
        rois[number] = ROI(
            number=number,
            name=str(item.get("ROIName", "") or f"ROI_{number}"),
            frame_of_reference_uid=(
                str(item.ReferencedFrameOfReferenceUID)
                if item.get("ReferencedFrameOfReferenceUID") else None
            ),
        )
    orphans = []
    for item in ds.get("ROIContourSequence", []):
        number = int(item.ReferencedROINumber)
        if number not in rois:
            orphans.append(number)
            continue
        for contour in item.get("ContourSequence", []):
            data = np.asarray([float(v) for v in contour.get("ContourData", [])], dtype=np.float64)
            if data.size == 0 or data.size % 3:
                continue
            refs = tuple(
                str(ref.ReferencedSOPInstanceUID)
                for ref in contour.get("ContourImageSequence", [])
                if "ReferencedSOPInstanceUID" in ref
            )
            rois[number].contours.append(
                Contour(data.reshape(-1, 3), str(contour.get("ContourGeometricType", "") or ""), refs)
            )
    if orphans:
        warnings.warn(
            f"{name!r}: ROIContourSequence refers to ROI number(s) {orphans} missing from "
            f"StructureSetROISequence; their contours are ignored.",
            DicomWarning,
            stacklevel=2,
        )
    return ds, list(rois.values())


def rtstruct_frame_of_reference_uids(ds: Dataset) -> set[str]:
    """Frames of reference an RTSTRUCT declares (referenced FoR sequence and per-ROI UIDs)."""
    uids = {
        str(item.FrameOfReferenceUID)
        for item in ds.get("ReferencedFrameOfReferenceSequence", [])
        if item.get("FrameOfReferenceUID")
    }
    uids |= {
        str(item.ReferencedFrameOfReferenceUID)
        for item in ds.get("StructureSetROISequence", [])
        if item.get("ReferencedFrameOfReferenceUID")
    }
    return uids


def rtstruct_series_uids(ds: Dataset) -> set[str]:
    """Image series an RTSTRUCT references (``RTReferencedSeriesSequence``)."""
    uids = set()
    for frame in ds.get("ReferencedFrameOfReferenceSequence", []):
        for study in frame.get("RTReferencedStudySequence", []):
            for series in study.get("RTReferencedSeriesSequence", []):
                if series.get("SeriesInstanceUID"):
                    uids.add(str(series.SeriesInstanceUID))
    return uids


def rasterise_roi(
    roi: ROI, geometry: SeriesGeometry, source: str = "", slice_tol: float = 0.25
) -> np.ndarray:
    """Fill the closed planar contours of one ROI on the series grid.

    Args:
        roi: The ROI.
        geometry: The image series geometry.
        source: File (and case) named in warnings.
        slice_tol: How far (in slices) a contour point may lie from its slice.

    Returns:
        Boolean mask of shape ``geometry.shape`` (``(x, y, z)``).
    """
    from skimage.draw import polygon

    nx, ny, nz = geometry.shape
    mask = np.zeros((nx, ny, nz), dtype=bool)
    skipped_outside = skipped_between = skipped_nonplanar = clipped = not_closed = 0
    for contour in roi.contours:
        if contour.geometric_type.upper() != "CLOSED_PLANAR":
            not_closed += 1
            continue
        if len(contour.points) < 3:
            continue
        ijk = geometry.lps_to_voxel(contour.points)
        k_mean = float(ijk[:, 2].mean())
        if np.abs(ijk[:, 2] - k_mean).max() > slice_tol:
            skipped_nonplanar += 1
            continue
        k = int(round(k_mean))
        if not -slice_tol <= k_mean <= nz - 1 + slice_tol:
            skipped_outside += 1
            continue
        if abs(k_mean - k) > slice_tol:
            skipped_between += 1
            continue
        inside = (
            (ijk[:, 0] >= -0.5) & (ijk[:, 0] <= nx - 0.5) & (ijk[:, 1] >= -0.5) & (ijk[:, 1] <= ny - 0.5)
        )
        if not inside.all():
            clipped += 1
        rr, cc = polygon(ijk[:, 0], ijk[:, 1], shape=(nx, ny))
        mask[rr, cc, k] ^= True
    problems = []
    if skipped_outside:
        problems.append(f"{skipped_outside} contour(s) on slices outside the series were skipped")
    if skipped_between:
        problems.append(f"{skipped_between} contour(s) between slices (beyond {slice_tol} slice) were skipped")
    if skipped_nonplanar:
        problems.append(f"{skipped_nonplanar} contour(s) not in a slice plane were skipped")
    if clipped:
        problems.append(f"{clipped} contour(s) extending outside the image were clipped")
    if not_closed and not any(c.geometric_type.upper() == "CLOSED_PLANAR" for c in roi.contours):
        problems.append(f"it has only non-CLOSED_PLANAR contours ({not_closed}), nothing to fill")
    if problems:
        warnings.warn(
            f"{source}: ROI {roi.number} {roi.name!r}: " + "; ".join(problems) + ".",
            DicomWarning,
            stacklevel=2,
        )
    return mask


def mask_to_contours(mask2d: np.ndarray) -> list[np.ndarray]:
    """Closed contours ``(n, 2)`` in ``(axis 0, axis 1)`` voxel coordinates of a 2D mask.

    Contours run through the iso-line 0.5 between inside and outside pixel centres, so filling
    them (even-odd, pixel centres inside) gives the mask back up to boundary pixels of thin
    diagonal structures. Holes come out as separate contours.
    """
    from skimage.measure import find_contours

    padded = np.pad(np.asarray(mask2d, dtype=np.float32), 1)
    contours = []
    for c in find_contours(padded, 0.5):
        c = c - 1.0
        if len(c) > 1 and np.allclose(c[0], c[-1]):
            c = c[:-1]
        if len(c) >= 3:
            contours.append(c)
    return contours


def _ds_number(value: float) -> str:
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def build_rtstruct(
    label_map: np.ndarray,
    headers: Sequence[Dataset],
    geometry: SeriesGeometry,
    roi_names: Mapping[int, str],
    *,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
    structure_set_label: str = "miseg",
    series_description: str = "miseg RTSTRUCT",
    content_datetime: datetime.datetime | None = None,
) -> Dataset:
    """Write a label map as an RTSTRUCT with one ROI per class (contours per slice).

    Args:
        label_map: Integer array ``(x, y, z)`` on the series grid.
        headers: Slice headers of the source series in slice order (``z``).
        geometry: The series geometry.
        roi_names: ``class -> ROI name`` for every class to write (ROINumber = class). A class
            absent from the label map becomes an ROI without contours.
        series_instance_uid: UID of the new RTSTRUCT series (generated when ``None``).
        sop_instance_uid: UID of the RTSTRUCT instance (generated when ``None``).
        structure_set_label: ``StructureSetLabel``.
        series_description: ``SeriesDescription``.
        content_datetime: Date/time stamped into the object (``now`` when ``None``).

    Returns:
        A complete RTSTRUCT dataset with file meta, ready for ``dcmwrite``.
    """
    label_map = np.asarray(label_map)
    if label_map.shape != tuple(geometry.shape):
        raise DataError(
            f"Label map of shape {label_map.shape} does not match the series grid {geometry.shape}."
        )
    if len(headers) != geometry.shape[2]:
        raise DataError(f"{len(headers)} slice headers for a series of {geometry.shape[2]} slices.")
    first = headers[0]
    now = content_datetime or datetime.datetime.now()
    sop_instance_uid = sop_instance_uid or generate_uid()
    frame_uid = geometry.frame_of_reference_uid or str(first.get("FrameOfReferenceUID", ""))

    ds = Dataset()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTSTRUCT_SOP_CLASS_UID
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta

    ds.SOPClassUID = RTSTRUCT_SOP_CLASS_UID
    ds.SOPInstanceUID = sop_instance_uid
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.InstanceCreationDate = now.strftime("%Y%m%d")
    ds.InstanceCreationTime = now.strftime("%H%M%S")
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
                    "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName",
                    "StudyDescription"):
        setattr(ds, keyword, first.get(keyword, ""))
    ds.Modality = "RTSTRUCT"
    ds.Manufacturer = "miseg"
    ds.SeriesInstanceUID = series_instance_uid or generate_uid()
    ds.SeriesNumber = 9001
    ds.SeriesDescription = series_description
    ds.InstanceNumber = 1
    ds.OperatorsName = ""
    ds.StructureSetLabel = structure_set_label
    ds.StructureSetDate = now.strftime("%Y%m%d")
    ds.StructureSetTime = now.strftime("%H%M%S")

    image_refs = []
    for h in headers:
        ref = Dataset()
        ref.ReferencedSOPClassUID = h.SOPClassUID
        ref.ReferencedSOPInstanceUID = h.SOPInstanceUID
        image_refs.append(ref)
    series_ref = Dataset()
    series_ref.SeriesInstanceUID = first.SeriesInstanceUID
    series_ref.ContourImageSequence = DicomSequence(image_refs)
    study_ref = Dataset()
    study_ref.ReferencedSOPClassUID = _STUDY_COMPONENT_SOP_CLASS
    study_ref.ReferencedSOPInstanceUID = first.StudyInstanceUID
    study_ref.RTReferencedSeriesSequence = DicomSequence([series_ref])
    frame_ref = Dataset()
    frame_ref.FrameOfReferenceUID = frame_uid
    frame_ref.RTReferencedStudySequence = DicomSequence([study_ref])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([frame_ref])

    roi_items, contour_items, observation_items = [], [], []
    for position, (cls, name) in enumerate(sorted(roi_names.items())):
        cls = int(cls)
        roi = Dataset()
        roi.ROINumber = cls
        roi.ReferencedFrameOfReferenceUID = frame_uid
        roi.ROIName = str(name)
        roi.ROIGenerationAlgorithm = "AUTOMATIC"
        roi_items.append(roi)

        contours = []
        class_mask = label_map == cls
        for k in np.flatnonzero(class_mask.any(axis=(0, 1))):
            for c in mask_to_contours(class_mask[:, :, k]):
                ijk = np.column_stack([c, np.full(len(c), float(k))])
                points = geometry.voxel_to_lps(ijk)
                item = Dataset()
                ref = Dataset()
                ref.ReferencedSOPClassUID = headers[k].SOPClassUID
                ref.ReferencedSOPInstanceUID = headers[k].SOPInstanceUID
                item.ContourImageSequence = DicomSequence([ref])
                item.ContourGeometricType = "CLOSED_PLANAR"
                item.NumberOfContourPoints = len(points)
                item.ContourData = [_ds_number(v) for v in points.ravel()]
                contours.append(item)
        roi_contour = Dataset()
        roi_contour.ReferencedROINumber = cls
        roi_contour.ROIDisplayColor = list(_COLOURS[position % len(_COLOURS)])
        if contours:
            roi_contour.ContourSequence = DicomSequence(contours)
        contour_items.append(roi_contour)

        observation = Dataset()
        observation.ObservationNumber = cls
        observation.ReferencedROINumber = cls
        observation.RTROIInterpretedType = "ORGAN"
        observation.ROIInterpreter = ""
        observation_items.append(observation)
    ds.StructureSetROISequence = DicomSequence(roi_items)
    ds.ROIContourSequence = DicomSequence(contour_items)
    ds.RTROIObservationsSequence = DicomSequence(observation_items)
    return ds
