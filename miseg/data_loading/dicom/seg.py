"""DICOM SEG: reading frames onto a series grid, and writing label maps (via highdicom).

A SEG frame is placed on the slice it references (``ReferencedSOPInstanceUID`` in its
derivation image sequence) when that slice is part of the series; otherwise on the slice at
its ``ImagePositionPatient`` (same frame of reference). Frames that fit neither, or whose
size, orientation or pixel spacing differ from the series, raise ``GeometryError``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from miseg.data_loading.dicom.series import DicomWarning, SeriesGeometry
from miseg.errors import CorruptFileError, DataError, GeometryError

__all__ = ["SegFrames", "read_seg", "place_seg_frames", "build_seg"]


@dataclass(eq=False)
class SegFrames:
    """The frames of a DICOM SEG with the metadata needed to place them.

    Attributes:
        path: Source file.
        frames: ``(n, rows, cols)`` float32 in ``[0, 1]`` (BINARY: 0/1; FRACTIONAL: scaled).
        segment_numbers: Segment number of each frame.
        positions: ``ImagePositionPatient`` of each frame (``None`` when absent).
        referenced_sop_instance_uids: Source slice UID of each frame (``None`` when absent).
        orientation: ``ImageOrientationPatient`` (6 values) or ``None``.
        pixel_spacing: ``PixelSpacing`` (row, column) or ``None``.
        segments: ``[(segment number, segment label)]``.
        frame_of_reference_uid: The SEG's ``FrameOfReferenceUID`` or ``None``.
        segmentation_type: ``"BINARY"`` or ``"FRACTIONAL"``.
    """

    path: str
    frames: np.ndarray
    segment_numbers: np.ndarray
    positions: list[np.ndarray | None]
    referenced_sop_instance_uids: list[str | None]
    orientation: np.ndarray | None
    pixel_spacing: np.ndarray | None
    segments: list[tuple[int, str]]
    frame_of_reference_uid: str | None
    segmentation_type: str


def _first(groups: Sequence[Dataset], keyword: str) -> Dataset | None:
    for group in groups:
        if group is not None and keyword in group and len(group[keyword].value):
            return group[keyword].value[0]
    return None


def read_seg(path: str) -> SegFrames:
    """Read a DICOM SEG with highdicom and collect per-frame placement information.

    Args:
        path: The SEG file.

    Returns:
        A :class:`SegFrames`.

    Raises:
        CorruptFileError: when the file cannot be read or decoded.
        DataError: when it is not a segmentation.
    """
    import highdicom as hd

    try:
        seg = hd.seg.segread(path)
    except Exception as exc:
        raise CorruptFileError(f"Cannot read DICOM SEG {path!r}: {exc}") from exc
    try:
        frames = np.asarray(seg.get_stored_frames(), dtype=np.float32)
    except Exception as exc:
        raise CorruptFileError(f"Cannot decode the frames of DICOM SEG {path!r}: {exc}") from exc
    if frames.ndim == 2:
        frames = frames[np.newaxis]
    seg_type = str(seg.SegmentationType)
    if seg_type == "FRACTIONAL":
        frames /= float(seg.get("MaximumFractionalValue", 255) or 255)

    shared = seg.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in seg else None
    per_frame = list(seg.get("PerFrameFunctionalGroupsSequence", []))
    if len(per_frame) < len(frames):
        raise DataError(
            f"DICOM SEG {path!r} has {len(frames)} frames but only {len(per_frame)} per-frame "
            f"functional group items."
        )
    if len(per_frame) > len(frames):
        warnings.warn(
            f"DICOM SEG {path!r} has {len(frames)} frame(s) (NumberOfFrames) but {len(per_frame)} "
            f"per-frame functional group items; the extra items are ignored.",
            DicomWarning,
            stacklevel=2,
        )
        per_frame = per_frame[: len(frames)]
    numbers, positions, refs = [], [], []
    for group in per_frame:
        ident = _first([group, shared], "SegmentIdentificationSequence")
        if ident is None:
            raise DataError(f"DICOM SEG {path!r}: a frame has no SegmentIdentificationSequence.")
        numbers.append(int(ident.ReferencedSegmentNumber))
        plane = _first([group, shared], "PlanePositionSequence")
        positions.append(
            np.asarray([float(v) for v in plane.ImagePositionPatient])
            if plane is not None and "ImagePositionPatient" in plane else None
        )
        uid = None
        derivation = _first([group, shared], "DerivationImageSequence")
        if derivation is not None:
            source = _first([derivation], "SourceImageSequence")
            if source is not None and "ReferencedSOPInstanceUID" in source:
                uid = str(source.ReferencedSOPInstanceUID)
        refs.append(uid)
    orientation_item = _first(per_frame[:1] + [shared], "PlaneOrientationSequence")
    measures = _first(per_frame[:1] + [shared], "PixelMeasuresSequence")
    segments = [
        (int(item.SegmentNumber), str(item.get("SegmentLabel", "") or f"segment_{item.SegmentNumber}"))
        for item in seg.SegmentSequence
    ]
    return SegFrames(
        path=path,
        frames=frames,
        segment_numbers=np.asarray(numbers, dtype=np.int64),
        positions=positions,
        referenced_sop_instance_uids=refs,
        orientation=(
            np.asarray([float(v) for v in orientation_item.ImageOrientationPatient])
            if orientation_item is not None else None
        ),
        pixel_spacing=(
            np.asarray([float(v) for v in measures.PixelSpacing])
            if measures is not None and "PixelSpacing" in measures else None
        ),
        segments=segments,
        frame_of_reference_uid=str(seg.FrameOfReferenceUID) if "FrameOfReferenceUID" in seg else None,
        segmentation_type=seg_type,
    )


def place_seg_frames(
    seg: SegFrames,
    geometry: SeriesGeometry,
    sop_instance_uids: Sequence[str],
    assignments: Sequence[tuple[int, str, int]],
    background: int = 0,
    dtype: Any = np.uint8,
    case: Any = None,
    slice_tol: float = 0.25,
) -> np.ndarray:
    """Paint the frames of a SEG onto a series grid as a label map ``(x, y, z)``.

    Args:
        seg: Frames from :func:`read_seg`.
        geometry: The image series geometry.
        sop_instance_uids: Slice UIDs in slice order.
        assignments: ``[(segment number, label, class)]`` in painting order (later ones win).
        background: Value of unlabelled voxels.
        dtype: Output dtype.
        case: Case index for messages.
        slice_tol: How far (in slices) a frame position may lie from a slice.

    Returns:
        The label map.

    Raises:
        GeometryError: when the frames do not fit the series (size, orientation, pixel
            spacing, frame of reference, or a frame that is on no slice of the series).
    """
    label = f"Case {case!r}: DICOM SEG {seg.path!r}" if case is not None else f"DICOM SEG {seg.path!r}"
    nx, ny, nz = geometry.shape
    if seg.frames.shape[1:] != (ny, nx):
        raise GeometryError(
            f"{label} has frames of {seg.frames.shape[1]}x{seg.frames.shape[2]} pixels (rows x "
            f"columns) but the image series has {ny}x{nx}: the SEG does not belong to this series."
        )
    series_frame = geometry.frame_of_reference_uid
    if seg.frame_of_reference_uid and series_frame and seg.frame_of_reference_uid != series_frame:
        raise GeometryError(
            f"{label} has FrameOfReferenceUID {seg.frame_of_reference_uid} but the image series has "
            f"{series_frame}: the SEG does not belong to this series."
        )
    iop = np.concatenate([geometry.row_direction, geometry.column_direction])
    if seg.orientation is not None and not np.allclose(seg.orientation, iop, atol=1e-3):
        raise GeometryError(
            f"{label} has orientation {seg.orientation.round(4).tolist()} but the image series has "
            f"{iop.round(4).tolist()}."
        )
    if seg.pixel_spacing is not None:
        expected = np.asarray([geometry.pixel_spacing[1], geometry.pixel_spacing[0]])
        if not np.allclose(seg.pixel_spacing, expected, rtol=1e-3, atol=1e-4):
            raise GeometryError(
                f"{label} has pixel spacing {seg.pixel_spacing.tolist()} but the image series has "
                f"{expected.tolist()}."
            )

    slice_of_uid = {uid: k for k, uid in enumerate(sop_instance_uids)}
    slices = np.empty(len(seg.frames), dtype=np.int64)
    unplaced = []
    for f, (uid, pos) in enumerate(zip(seg.referenced_sop_instance_uids, seg.positions)):
        if uid is not None and uid in slice_of_uid:
            slices[f] = slice_of_uid[uid]
            continue
        if pos is not None:
            i, j, k = geometry.lps_to_voxel(pos)[0]
            kr = int(round(k))
            if abs(i) <= 0.05 and abs(j) <= 0.05 and abs(k - kr) <= slice_tol and 0 <= kr < nz:
                slices[f] = kr
                continue
        unplaced.append(f + 1)
    if unplaced:
        example = unplaced[0] - 1
        pos = seg.positions[example]
        raise GeometryError(
            f"{label}: {len(unplaced)} of {len(seg.frames)} frame(s) (e.g. frame {unplaced[0]}, "
            f"referenced SOPInstanceUID {seg.referenced_sop_instance_uids[example]}, position "
            f"{None if pos is None else pos.round(3).tolist()}) match no slice of the image series "
            f"(neither by referenced instance nor by position)."
        )

    label_map = np.full((nx, ny, nz), background, dtype=dtype)
    for number, _, cls in assignments:
        for f in np.flatnonzero(seg.segment_numbers == number):
            on = seg.frames[f].T >= 0.5
            label_map[:, :, slices[f]][on] = cls
    return label_map


def build_seg(
    label_map: np.ndarray,
    source_images: Sequence[Dataset],
    segment_names: Mapping[int, str],
    *,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
    series_description: str = "miseg SEG",
    software_version: str = "miseg",
) -> Dataset:
    """Write a label map as a BINARY DICOM SEG referencing the source series (highdicom).

    Args:
        label_map: Integer array ``(x, y, z)`` on the series grid (``z`` in slice order).
        source_images: Slice datasets in slice order (headers suffice).
        segment_names: ``class -> segment label`` for every segment to write; segment number
            = class. Empty frames are omitted; a class absent from the map is still described.
        series_instance_uid: UID of the new series (generated when ``None``).
        sop_instance_uid: UID of the instance (generated when ``None``).
        series_description: ``SeriesDescription``.
        software_version: ``SoftwareVersions``.

    Returns:
        A ``highdicom.seg.Segmentation`` (a pydicom ``Dataset``), ready for ``save_as``.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    label_map = np.asarray(label_map)
    if label_map.ndim != 3 or label_map.shape[2] != len(source_images):
        raise DataError(
            f"Label map of shape {label_map.shape} does not match {len(source_images)} source slices."
        )
    if not segment_names:
        raise DataError("build_seg needs at least one segment (class) to describe.")
    numbers = sorted(int(c) for c in segment_names)
    if numbers != list(range(1, numbers[-1] + 1)):
        raise DataError(f"Segment numbers must run 1..N without gaps, got {numbers}.")
    if label_map.min() < 0 or label_map.max() > numbers[-1]:
        raise DataError(
            f"Label map values {int(label_map.min())}..{int(label_map.max())} exceed the described "
            f"segments 1..{numbers[-1]}."
        )
    algorithm = hd.AlgorithmIdentificationSequence(
        name="miseg", version=software_version, family=codes.cid7162.ArtificialIntelligence
    )
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=c,
            segment_label=str(segment_names[c])[:64],
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
        )
        for c in numbers
    ]
    pixel_array = np.ascontiguousarray(label_map.transpose(2, 1, 0)).astype(
        np.uint8 if numbers[-1] < 256 else np.uint16
    )
    return hd.seg.Segmentation(
        source_images=list(source_images),
        pixel_array=pixel_array,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=series_instance_uid or generate_uid(),
        series_number=9002,
        sop_instance_uid=sop_instance_uid or generate_uid(),
        instance_number=1,
        manufacturer="miseg",
        manufacturer_model_name="miseg",
        software_versions=software_version,
        device_serial_number="0",
        series_description=series_description,
    )
