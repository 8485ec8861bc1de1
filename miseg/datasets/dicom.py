"""Write a volume and its label map as a DICOM study (CT/MR series + RTSTRUCT and/or SEG).

This makes DICOM pipelines testable offline: any phantom (or real NIfTI volume) becomes a
case folder that :class:`~miseg.data_loading.interfaces.dicom_io.DICOM_interface` reads.
"""

from __future__ import annotations

import datetime
import hashlib
import os
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

from miseg.errors import ConfigurationError, DataError, ShapeMismatchError

__all__ = ["DicomStudyFiles", "write_dicom_study"]

_SOP_CLASSES = {"CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4"}
_CT_INTERCEPT = -1024.0
# A fixed acquisition date keeps the files byte-identical for identical input and seed.
_FIXED_DATETIME = datetime.datetime(2024, 1, 1, 12, 0, 0)


@dataclass(frozen=True)
class DicomStudyFiles:
    """Paths and UIDs of a study written by :func:`write_dicom_study`."""

    case_dir: str
    series_dir: str
    image_files: tuple[str, ...]
    rtstruct: str | None
    seg: str | None
    study_instance_uid: str
    series_instance_uid: str
    frame_of_reference_uid: str


def _label_names(labels: np.ndarray | None, label_names: Mapping[int, str] | Sequence[str] | None
                 ) -> dict[int, str]:
    present = [] if labels is None else [int(v) for v in np.unique(labels) if v != 0]
    if label_names is None:
        return {c: f"label_{c}" for c in range(1, max(present, default=0) + 1)}
    if isinstance(label_names, Mapping):
        names = {int(c): str(n) for c, n in label_names.items()}
    elif isinstance(label_names, (str, bytes)):
        raise ConfigurationError(f"label_names must be a mapping or a sequence of names, got {label_names!r}.")
    else:
        names = {c + 1: str(n) for c, n in enumerate(label_names)}
    missing = sorted(set(present) - set(names))
    if missing:
        raise ConfigurationError(f"label_names={label_names!r} names no ROI for label value(s) {missing}.")
    top = max(names, default=0)
    return {c: names.get(c, f"label_{c}") for c in range(1, top + 1)}


def write_dicom_study(
    path: str,
    image_hu: np.ndarray,
    labels: np.ndarray | None,
    spacing: Sequence[float],
    label_names: Mapping[int, str] | Sequence[str] | None = None,
    modality: str = "CT",
    seed: int = 0,
    with_rtstruct: bool = True,
    with_seg: bool = False,
    *,
    origin: Sequence[float] | None = None,
    orientation: Sequence[float] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    patient_id: str = "MISEG_PHANTOM",
) -> DicomStudyFiles:
    """Write an image volume (and labels) as a DICOM case folder.

    Layout of ``path``: ``image/IM_0000.dcm ...`` (one file per slice, ``z`` order),
    ``rtstruct.dcm`` (when ``with_rtstruct``) and ``seg.dcm`` (when ``with_seg``). With both
    label objects, read it with ``DICOM_interface(annotation_tag="rtstruct")`` or ``"seg"``.

    CT pixels are stored as int16 with ``RescaleIntercept=-1024`` and ``RescaleSlope=1`` (so
    the HU values are rounded to integers); MR pixels are stored as rounded int16 values.
    UIDs are derived from ``seed`` and the content, so identical input gives identical files
    and different volumes never share UIDs.

    Args:
        path: Case folder to create (may exist).
        image_hu: Volume ``(x, y, z)`` = (column, row, slice), HU for CT.
        labels: Integer label map of the same shape (0 = background), or ``None``.
        spacing: Voxel size ``(x, y, z)`` in mm.
        label_names: ROI/segment names: ``{label: name}`` or names of labels ``1..n``
            (default ``"label_<c>"``).
        modality: ``"CT"`` or ``"MR"``.
        seed: Seed of the UID generator.
        with_rtstruct: Write an RTSTRUCT with one ROI per label (ROINumber = label).
        with_seg: Write a BINARY DICOM SEG with one segment per label (segment number = label).
        origin: LPS position of voxel ``(0, 0, 0)`` (default: volume centred on 0).
        orientation: ``ImageOrientationPatient`` (row direction, column direction).
        patient_id: ``PatientID`` and ``PatientName``.

    Returns:
        A :class:`DicomStudyFiles` with the written paths and UIDs.

    Example:
        >>> img = np.zeros((32, 32, 12), np.float32); lab = np.zeros(img.shape, np.uint8)
        >>> lab[8:20, 8:20, 3:9] = 1
        >>> files = write_dicom_study("dicom_cases/case_0", img, lab, (0.8, 0.8, 2.5),
        ...                           with_seg=True)                  # doctest: +SKIP
        >>> os.path.basename(files.seg)                               # doctest: +SKIP
        'seg.dcm'
    """
    from miseg.data_loading.dicom.rtstruct import build_rtstruct
    from miseg.data_loading.dicom.seg import build_seg
    from miseg.data_loading.dicom.series import SeriesGeometry

    modality = str(modality).upper()
    if modality not in _SOP_CLASSES:
        raise ConfigurationError(f"modality must be 'CT' or 'MR', got {modality!r}.")
    image = np.asarray(image_hu)
    if image.ndim != 3:
        raise DataError(f"image_hu must be a 3D (x, y, z) array, got shape {image.shape}.")
    if not np.isfinite(image).all():
        raise DataError("image_hu contains NaN or infinite values.")
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != 3 or min(spacing) <= 0:
        raise ConfigurationError(f"spacing must be three positive sizes (x, y, z) in mm, got {spacing!r}.")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != image.shape:
            raise ShapeMismatchError(f"labels of shape {labels.shape} do not match image_hu {image.shape}.")
        if not np.issubdtype(labels.dtype, np.integer) and not np.array_equal(labels, np.round(labels)):
            raise DataError("labels must hold integer label values.")
        labels = labels.astype(np.int64)
        if labels.min() < 0:
            raise DataError(f"labels must be >= 0, found {int(labels.min())}.")
    iop = np.asarray([float(v) for v in orientation], dtype=np.float64)
    if iop.size != 6 or abs(float(np.dot(iop[:3], iop[3:]))) > 1e-6:
        raise ConfigurationError(f"orientation must be two orthogonal direction triplets, got {orientation!r}.")
    row_dir = iop[:3] / np.linalg.norm(iop[:3])
    col_dir = iop[3:] / np.linalg.norm(iop[3:])
    normal = np.cross(row_dir, col_dir)
    nx, ny, nz = image.shape
    rotation = np.stack([row_dir, col_dir, normal], axis=1)
    if origin is None:
        half = (np.asarray([nx, ny, nz]) - 1) * np.asarray(spacing) / 2.0
        origin_arr = -(rotation @ half)
    else:
        origin_arr = np.asarray([float(v) for v in origin], dtype=np.float64)

    if modality == "CT":
        stored = np.round(image.astype(np.float64)) - _CT_INTERCEPT
    else:
        stored = np.round(image.astype(np.float64))
    if stored.min() < -32768 or stored.max() > 32767:
        raise DataError(
            f"image_hu values {float(image.min())}..{float(image.max())} do not fit int16 storage "
            f"(CT intercept {_CT_INTERCEPT})."
        )
    stored = stored.astype(np.int16)

    names = _label_names(labels, label_names) if labels is not None else {}
    if with_seg and labels is not None and not names:
        raise DataError("with_seg=True needs at least one label (the label map is empty).")

    digest = hashlib.sha256()
    for part in (image.astype(np.float64).tobytes(), b"" if labels is None else labels.tobytes(),
                 repr((spacing, origin_arr.tolist(), iop.tolist(), modality, patient_id)).encode()):
        digest.update(part)
    fingerprint = digest.hexdigest()

    def uid(kind: str) -> str:
        return generate_uid(entropy_srcs=["miseg", str(seed), fingerprint, kind])

    study_uid, series_uid, frame_uid = uid("study"), uid("series"), uid("frame")
    sop_class = _SOP_CLASSES[modality]
    date, time = _FIXED_DATETIME.strftime("%Y%m%d"), _FIXED_DATETIME.strftime("%H%M%S")

    series_dir = os.path.join(path, "image")
    os.makedirs(series_dir, exist_ok=True)
    datasets, files = [], []
    for k in range(nz):
        sop_uid = uid(f"slice{k}")
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = sop_uid
        ds.PatientName = f"{patient_id}^"
        ds.PatientID = patient_id
        ds.PatientBirthDate = ""
        ds.PatientSex = "O"
        ds.StudyInstanceUID = study_uid
        ds.StudyDate = date
        ds.StudyTime = time
        ds.StudyID = "1"
        ds.AccessionNumber = ""
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = "miseg phantom"
        ds.Modality = modality
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = 1
        ds.SeriesDescription = f"miseg phantom {modality}"
        ds.FrameOfReferenceUID = frame_uid
        ds.PositionReferenceIndicator = ""
        ds.Manufacturer = "miseg"
        ds.InstanceNumber = k + 1
        ds.AcquisitionNumber = 1
        ds.ContentDate = date
        ds.ContentTime = time
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        position = origin_arr + k * spacing[2] * normal
        ds.ImagePositionPatient = [round(float(v), 6) for v in position]
        ds.ImageOrientationPatient = [round(float(v), 6) for v in iop]
        ds.PixelSpacing = [spacing[1], spacing[0]]  # (row spacing, column spacing)
        ds.SliceThickness = spacing[2]
        ds.SliceLocation = round(float(position @ normal), 6)
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = ny
        ds.Columns = nx
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        if modality == "CT":
            ds.RescaleIntercept = _CT_INTERCEPT
            ds.RescaleSlope = 1.0
            ds.RescaleType = "HU"
            ds.KVP = ""
            ds.WindowCenter = 40
            ds.WindowWidth = 400
        else:
            ds.ScanningSequence = "RM"
            ds.SequenceVariant = "NONE"
            ds.ScanOptions = ""
            ds.MRAcquisitionType = "3D"
            ds.EchoTime = ""
            ds.EchoTrainLength = ""
            ds.SpacingBetweenSlices = spacing[2]
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).astype("<i2").tobytes()
        file = os.path.join(series_dir, f"IM_{k:04d}.dcm")
        ds.save_as(file, enforce_file_format=True)
        datasets.append(ds)
        files.append(file)

    rtstruct_path = seg_path = None
    if labels is not None and (with_rtstruct or with_seg):
        if with_rtstruct:
            geometry = SeriesGeometry(
                shape=(nx, ny, nz),
                pixel_spacing=(spacing[0], spacing[1]),
                origin=origin_arr,
                row_direction=row_dir,
                column_direction=col_dir,
                slice_step=normal * spacing[2],
                frame_of_reference_uid=frame_uid,
            )
            rt = build_rtstruct(
                labels, datasets, geometry, names,
                series_instance_uid=uid("rtstruct-series"), sop_instance_uid=uid("rtstruct"),
                structure_set_label="phantom", content_datetime=_FIXED_DATETIME,
            )
            rtstruct_path = os.path.join(path, "rtstruct.dcm")
            rt.save_as(rtstruct_path, enforce_file_format=True)
        if with_seg:
            seg = build_seg(
                labels, datasets, names,
                series_instance_uid=uid("seg-series"), sop_instance_uid=uid("seg"),
            )
            seg_path = os.path.join(path, "seg.dcm")
            seg.save_as(seg_path)
    return DicomStudyFiles(
        case_dir=str(path),
        series_dir=series_dir,
        image_files=tuple(files),
        rtstruct=rtstruct_path,
        seg=seg_path,
        study_instance_uid=study_uid,
        series_instance_uid=series_uid,
        frame_of_reference_uid=frame_uid,
    )
