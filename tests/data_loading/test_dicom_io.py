"""DICOM_interface and write_dicom_study on synthetic studies (offline)."""

from __future__ import annotations

import json
import os
import shutil
import warnings

import nibabel as nib
import numpy as np
import pydicom
import pytest
from scipy import ndimage

from miseg.data_loading.dicom.series import LPS_TO_RAS, DicomWarning
from miseg.data_loading.interfaces.dicom_io import DICOM_interface
from miseg.data_loading.sample import Sample
from miseg.datasets.dicom import write_dicom_study
from miseg.errors import (
    ConfigurationError,
    CorruptFileError,
    DataError,
    DataNotFoundError,
    GeometryError,
    LabelError,
    MissingSegmentationError,
    ShapeMismatchError,
    UnsafeIndexError,
)

SHAPE = (32, 28, 12)  # non-square slices catch row/column mix-ups
SPACING = (0.7, 0.9, 2.5)
NAMES = {1: "Liver", 2: "Tumor"}


def make_phantom(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """HU volume and a two-class label map: an ellipsoid with a hole, and a small ellipsoid."""
    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(*(np.arange(n, dtype=float) for n in SHAPE), indexing="ij")
    organ = ((x - 13) / 9) ** 2 + ((y - 13) / 8) ** 2 + ((z - 6) / 4.5) ** 2 <= 1
    hole = ((x - 12) ** 2 + (y - 13) ** 2 <= 5) & (np.abs(z - 6) <= 2)
    lesion = ((x - 26) / 3.5) ** 2 + ((y - 8) / 4) ** 2 + ((z - 6) / 3) ** 2 <= 1
    labels = np.zeros(SHAPE, np.uint8)
    labels[organ & ~hole] = 1
    labels[lesion] = 2
    body = ((x - 16) / 15) ** 2 + ((y - 13) / 13) ** 2 <= 1
    image = np.where(body, 30.0, -1000.0) + 30.0 * (labels == 1) + 90.0 * (labels == 2)
    image += rng.normal(0, 12, SHAPE)
    return np.round(image).astype(np.float32), labels


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def in_plane_boundary(labels: np.ndarray) -> np.ndarray:
    """Voxels with an in-plane 8-neighbour of another label."""
    footprint = np.zeros((3, 3, 3), bool)
    footprint[:, :, 1] = True
    lo = ndimage.grey_erosion(labels, footprint=footprint, mode="nearest")
    hi = ndimage.grey_dilation(labels, footprint=footprint, mode="nearest")
    return lo != hi


@pytest.fixture
def phantom():
    return make_phantom()


@pytest.fixture
def study(tmp_path, phantom):
    image, labels = phantom
    files = write_dicom_study(str(tmp_path / "cases" / "case_01"), image, labels, SPACING,
                              label_names=NAMES)
    return tmp_path / "cases", files


def make_interface(**kwargs) -> DICOM_interface:
    kwargs.setdefault("classes", 3)
    return DICOM_interface(**kwargs)


def prediction_sample(interface, index, labels, extended=None):
    sample = Sample(index, np.zeros(labels.shape, np.float32), 1, interface.classes,
                    extended or {}, three_dim=True)
    sample.add_prediction(labels)
    return sample


# ---------------------------------------------------------------------------- image series
def test_image_roundtrip_hu_geometry(study, phantom):
    root, files = study
    io = make_interface()
    assert io.initialize(str(root)) == ["case_01"]
    image, ext = io.load_image("case_01")
    assert image.shape == SHAPE and image.dtype == np.float32
    np.testing.assert_array_equal(image, phantom[0])
    assert ext["type"] == "dicom" and ext["hu"] is True and ext["modality"] == "CT"
    assert ext["slope"] == 1.0 and ext["intercept"] == -1024.0
    np.testing.assert_allclose(ext["spacing"], SPACING)
    np.testing.assert_allclose(ext["direction"], np.eye(3), atol=1e-9)
    assert ext["series_uid"] == files.series_instance_uid
    assert ext["frame_of_reference_uid"] == files.frame_of_reference_uid
    # Independent reference: each file's own header.
    headers = [pydicom.dcmread(f) for f in files.image_files]
    assert ext["sop_instance_uids"] == [str(h.SOPInstanceUID) for h in headers]
    np.testing.assert_allclose(ext["origin"], [float(v) for v in headers[0].ImagePositionPatient])
    stored = headers[3].pixel_array  # (rows, cols) of slice 3
    np.testing.assert_array_equal(image[:, :, 3], stored.T.astype(np.float32) - 1024)
    affine = np.asarray(ext["affine"])
    for k, h in enumerate(headers):
        ras = affine @ [0, 0, k, 1]
        np.testing.assert_allclose(ras, LPS_TO_RAS @ ([float(v) for v in h.ImagePositionPatient] + [1]),
                                   atol=1e-5)
    json.dumps(ext)  # JSON-friendly


def test_slices_sorted_by_position_not_file_name_oblique(tmp_path, phantom):
    image, labels = phantom
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    iop = (c, s, 0.0, 0.0, 0.0, -1.0)  # oblique coronal-ish slices
    files = write_dicom_study(str(tmp_path / "root" / "p"), image, labels, SPACING,
                              orientation=iop, origin=(10.0, -20.0, 30.0), with_rtstruct=False)
    rng = np.random.default_rng(1)
    names = rng.permutation(len(files.image_files))
    for f, n in zip(files.image_files, names):  # scramble the file names and nest a folder
        os.makedirs(os.path.join(files.series_dir, "x"), exist_ok=True)
        os.rename(f, os.path.join(files.series_dir, "x", f"{n:03d}"))
    io = make_interface()
    io.initialize(str(tmp_path / "root"))
    loaded, ext = io.load_image("p")
    np.testing.assert_array_equal(loaded, image)
    row, col = np.array(iop[:3]), np.array(iop[3:])
    np.testing.assert_allclose(np.asarray(ext["direction"]),
                               np.stack([row, col, np.cross(row, col)], axis=1), atol=1e-6)
    np.testing.assert_allclose(ext["origin"], [10.0, -20.0, 30.0], atol=1e-5)
    # voxel (i, j, k) -> RAS through the affine agrees with the DICOM definition
    lps = np.array([10.0, -20.0, 30.0]) + 5 * SPACING[0] * row + 7 * SPACING[1] * col \
        + 2 * SPACING[2] * np.cross(row, col)
    np.testing.assert_allclose(np.asarray(ext["affine"]) @ [5, 7, 2, 1], LPS_TO_RAS @ [*lps, 1], atol=1e-5)


def test_mr_series_is_not_hu(tmp_path, phantom):
    image, _ = phantom
    write_dicom_study(str(tmp_path / "r" / "mr"), image + 1000, None, SPACING, modality="MR")
    io = make_interface()
    io.initialize(str(tmp_path / "r"))
    loaded, ext = io.load_image("mr")
    np.testing.assert_array_equal(loaded, image + 1000)
    assert ext["hu"] is False and ext["modality"] == "MR"
    assert io.has_segmentation("mr") is False
    with pytest.raises(MissingSegmentationError, match="mr"):
        io.load_segmentation("mr")


def test_single_slice_case_2d(tmp_path, phantom):
    image, labels = phantom
    write_dicom_study(str(tmp_path / "r" / "s"), image[:, :, 6:7], labels[:, :, 6:7], SPACING,
                      label_names=NAMES)
    io = make_interface(three_dim=False)
    io.initialize(str(tmp_path / "r"))
    img2d, ext = io.load_image("s")
    assert img2d.shape == SHAPE[:2] and len(ext["spacing"]) == 2
    np.testing.assert_array_equal(img2d, image[:, :, 6])
    seg = io.load_segmentation("s")
    assert seg.shape == SHAPE[:2]
    assert dice(seg == 1, labels[:, :, 6] == 1) > 0.95
    write_dicom_study(str(tmp_path / "r" / "vol"), image, None, SPACING)
    with pytest.raises(DataError, match=r"'vol'.*12 slices.*three_dim=True"):
        io.load_image("vol")


def test_load_image_sitk(study):
    root, _ = study
    io = make_interface()
    io.initialize(str(root))
    img, ext = io.load_image_sitk("case_01")
    assert img.GetSize() == SHAPE
    np.testing.assert_allclose(img.GetSpacing(), SPACING)
    np.testing.assert_allclose(img.GetOrigin(), ext["origin"])


# ---------------------------------------------------------------------------- RTSTRUCT in
def test_rtstruct_labels_roundtrip(study, phantom):
    root, _ = study
    _, labels = phantom
    io = make_interface(structure_dict={"Liver": 1, "Tumor": 2})
    io.initialize(str(root))
    seg = io.load_segmentation("case_01")
    assert seg.shape == SHAPE and seg.dtype == np.uint8
    for c in (1, 2):
        assert dice(seg == c, labels == c) > 0.9
    differ = seg != labels
    assert differ.sum() <= 0.02 * (labels > 0).sum()
    assert not (differ & ~in_plane_boundary(labels)).any()  # boundary-only differences
    hole = np.zeros(SHAPE, bool)
    hole[11:14, 12:15, 5:8] = True
    assert (seg[hole] == 0).all()  # inner contour cut the hole (even-odd filling)


def test_default_mapping_and_mask_background(study, phantom):
    root, _ = study
    _, labels = phantom
    io = make_interface(mask_background=0)
    io.initialize(str(root))
    seg = io.load_segmentation("case_01")  # no structure_dict: ROI number = class
    assert dice(seg == 2, labels == 2) > 0.9
    io2 = make_interface(classes=2, mask_background=7)
    io2.initialize(str(root))
    with pytest.warns(DicomWarning, match="Tumor"):
        seg2 = io2.load_segmentation("case_01")
    assert set(np.unique(seg2)) == {1, 7}


def test_structure_dict_case_insensitive_and_unmatched_warning(study, phantom):
    root, _ = study
    _, labels = phantom
    io = make_interface(structure_dict={"  LIVER ": 1})
    io.initialize(str(root))
    with pytest.warns(DicomWarning, match=r"match no class.*'Tumor'"):
        seg = io.load_segmentation("case_01")
    assert dice(seg == 1, labels == 1) > 0.9 and not (seg == 2).any()
    strict = make_interface(structure_dict={"liver": 1, "Tumor": 2}, case_insensitive=False)
    strict.initialize(str(root))
    with pytest.warns(DicomWarning, match=r"\['Liver'\]"):
        seg = strict.load_segmentation("case_01")
    assert not (seg == 1).any() and (seg == 2).any()


def _copy_contours(rtstruct_path: str, src_roi: int, dst_roi: int) -> None:
    ds = pydicom.dcmread(rtstruct_path)
    items = {int(i.ReferencedROINumber): i for i in ds.ROIContourSequence}
    items[dst_roi].ContourSequence = items[src_roi].ContourSequence
    ds.save_as(rtstruct_path)


def test_overlapping_rois_later_structure_dict_entry_wins(study, phantom):
    root, files = study
    _copy_contours(files.rtstruct, 1, 2)  # ROI "Tumor" now covers exactly "Liver"
    liver_first = make_interface(structure_dict={"Liver": 1, "Tumor": 2})
    liver_first.initialize(str(root))
    tumor_first = make_interface(structure_dict={"Tumor": 2, "Liver": 1})
    tumor_first.initialize(str(root))
    a = liver_first.load_segmentation("case_01")
    b = tumor_first.load_segmentation("case_01")
    assert (a == 2).sum() > 0 and not (a == 1).any()
    assert (b == 1).sum() == (a == 2).sum() and not (b == 2).any()
    carve = make_interface(structure_dict={"Liver": 1, "Tumor": 0})  # 0 carves out
    carve.initialize(str(root))
    assert not carve.load_segmentation("case_01").any()


# ---------------------------------------------------------------------------- SEG in
def test_seg_input_exact_and_choice_between_label_objects(tmp_path, phantom):
    image, labels = phantom
    root = tmp_path / "r"
    write_dicom_study(str(root / "c"), image, labels, SPACING, label_names=NAMES, with_seg=True)
    io = make_interface()
    io.initialize(str(root))
    with pytest.raises(DataError, match=r"2 label objects.*annotation_tag"):
        io.load_segmentation("c")
    only_seg = make_interface(annotation_tag=r"^seg")
    only_seg.initialize(str(root))
    np.testing.assert_array_equal(only_seg.load_segmentation("c"), labels)
    by_name = make_interface(annotation_tag="seg", structure_dict={"tumor": 1, "liver": 2})
    by_name.initialize(str(root))
    swapped = by_name.load_segmentation("c")
    np.testing.assert_array_equal(swapped == 2, labels == 1)
    np.testing.assert_array_equal(swapped == 1, labels == 2)
    only_rt = make_interface(annotation_tag="rtstruct")
    only_rt.initialize(str(root))
    assert dice(only_rt.load_segmentation("c") == 1, labels == 1) > 0.9
    assert only_rt.get_rtStruct_file("c").endswith("rtstruct.dcm")


# ---------------------------------------------------------------------------- predictions out
def test_save_prediction_seg_exact_and_references_source(study, phantom, tmp_path):
    root, files = study
    _, labels = phantom
    io = make_interface(structure_dict={"Liver": 1, "Tumor": 2})
    io.initialize(str(root))
    _, ext = io.load_image("case_01")
    out = tmp_path / "pred"
    io.save_prediction(prediction_sample(io, "case_01", labels, ext), str(out))
    assert sorted(os.listdir(out)) == ["case_01.seg.dcm"]  # no temporary files left
    np.testing.assert_array_equal(io.load_prediction("case_01", str(out)), labels)
    seg = pydicom.dcmread(out / "case_01.seg.dcm")
    assert seg.Modality == "SEG" and seg.SegmentationType == "BINARY"
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["Liver", "Tumor"]
    referenced = {str(i.ReferencedSOPInstanceUID)
                  for i in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced == set(ext["sop_instance_uids"])
    assert str(seg.ReferencedSeriesSequence[0].SeriesInstanceUID) == files.series_instance_uid
    assert str(seg.FrameOfReferenceUID) == files.frame_of_reference_uid


def test_save_prediction_rtstruct_roundtrip(study, phantom, tmp_path):
    root, files = study
    _, labels = phantom
    io = make_interface(output_format="rtstruct", structure_dict={"Liver": 1, "Tumor": 2})
    io.initialize(str(root))
    out = tmp_path / "pred"
    io.save_prediction(prediction_sample(io, "case_01", labels), str(out))
    back = io.load_prediction("case_01", str(out))
    for c in (1, 2):
        assert dice(back == c, labels == c) > 0.9
    assert not ((back != labels) & ~in_plane_boundary(labels)).any()
    rt = pydicom.dcmread(out / "case_01.rtstruct.dcm")
    assert [r.ROIName for r in rt.StructureSetROISequence] == ["Liver", "Tumor"]
    slice_z = {str(pydicom.dcmread(f).SOPInstanceUID): float(pydicom.dcmread(f).ImagePositionPatient[2])
               for f in files.image_files}
    for roi in rt.ROIContourSequence:
        for contour in roi.ContourSequence:  # every contour lies on its referenced slice
            z = np.asarray(contour.ContourData, float)[2::3]
            ref = str(contour.ContourImageSequence[0].ReferencedSOPInstanceUID)
            np.testing.assert_allclose(z, slice_z[ref], atol=1e-3)


def test_save_prediction_nifti_affine_and_probabilities(study, phantom, tmp_path):
    root, _ = study
    _, labels = phantom
    io = make_interface(output_format="nifti")
    io.initialize(str(root))
    _, ext = io.load_image("case_01")
    out = tmp_path / "pred"
    io.save_prediction(prediction_sample(io, "case_01", labels, ext), str(out))
    img = nib.load(out / "case_01.nii.gz")
    np.testing.assert_allclose(img.affine, ext["affine"], atol=1e-5)
    np.testing.assert_array_equal(np.asarray(img.dataobj), labels)
    np.testing.assert_array_equal(io.load_prediction("case_01", str(out)), labels)
    probs = np.stack([labels == c for c in range(3)], axis=-1).astype(np.float32)
    sample = Sample("case_01", np.zeros(SHAPE, np.float32), 1, 3, ext, three_dim=True)
    sample.add_prediction(probs, activation_output=True)
    io.save_prediction(sample, str(out))
    np.testing.assert_array_equal(io.load_prediction("case_01", str(out)), probs)
    with pytest.raises(DataError, match="activation output"):
        make_interface(output_format="seg").save_prediction(sample, str(out))


def test_prediction_errors(study, phantom, tmp_path):
    root, _ = study
    _, labels = phantom
    io = make_interface()
    io.initialize(str(root))
    with pytest.raises(DataNotFoundError, match="case_01.seg.dcm"):
        io.load_prediction("case_01", str(tmp_path / "nothing"))
    with pytest.raises(ShapeMismatchError, match="case_01"):
        io.save_prediction(prediction_sample(io, "case_01", labels[:, :, :10]), str(tmp_path / "p"))
    with pytest.raises(LabelError, match=r"\[0, 2\]"):
        io.save_prediction(prediction_sample(io, "case_01", labels * 2), str(tmp_path / "p"))
    with pytest.raises(UnsafeIndexError):
        io.save_prediction(prediction_sample(io, "../case_01", labels), str(tmp_path / "p"))
    with pytest.raises(DataError, match="no prediction"):
        io.save_prediction(Sample("case_01", np.zeros(SHAPE), 1, 3, three_dim=True), str(tmp_path / "p"))


def test_empty_prediction_writes_valid_seg(study, tmp_path):
    root, _ = study
    io = make_interface()
    io.initialize(str(root))
    empty = np.zeros(SHAPE, np.uint8)
    io.save_prediction(prediction_sample(io, "case_01", empty), str(tmp_path / "p"))
    np.testing.assert_array_equal(io.load_prediction("case_01", str(tmp_path / "p")), empty)


# ---------------------------------------------------------------------------- bad input
def test_case_discovery(tmp_path, phantom):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        make_interface().initialize(str(tmp_path / "missing"))
    root = tmp_path / "root"
    root.mkdir()
    (root / "loose.dcm").write_bytes(b"x")
    with pytest.raises(DataNotFoundError, match="own sub-folder"):
        make_interface().initialize(str(root))
    for name in ("case_10", "case_2", "other"):
        (root / name).mkdir()
    assert make_interface().initialize(str(root)) == ["case_2", "case_10", "other"]
    assert make_interface(pattern=r"case_\d+").initialize(str(root)) == ["case_2", "case_10"]
    io = make_interface()
    io.initialize(str(root))
    with pytest.raises(DataNotFoundError, match="case_99"):
        io.load_image("case_99")


def test_folder_without_dicom_files(tmp_path):
    case = tmp_path / "r" / "empty_case"
    case.mkdir(parents=True)
    (case / "notes.txt").write_text("no images here")
    io = make_interface()
    io.initialize(str(tmp_path / "r"))
    with pytest.warns(DicomWarning, match="notes.txt"):
        with pytest.raises(DataNotFoundError, match=r"empty_case.*no DICOM"):
            io.load_image("empty_case")


def test_non_dicom_file_among_slices_is_skipped(study, phantom):
    root, files = study
    junk = os.path.join(files.series_dir, "README.txt")
    with open(junk, "w") as handle:
        handle.write("exported by some viewer\n" * 20)
    io = make_interface()
    io.initialize(str(root))
    with pytest.warns(DicomWarning, match="README.txt"):
        image, _ = io.load_image("case_01")
    np.testing.assert_array_equal(image, phantom[0])


def test_two_series_need_series_uid(tmp_path, phantom):
    image, labels = phantom
    root = tmp_path / "r"
    a = write_dicom_study(str(root / "c" / "a"), image, labels, SPACING, with_rtstruct=False)
    b = write_dicom_study(str(root / "c" / "b"), image + 5, None, SPACING, seed=1)
    io = make_interface()
    io.initialize(str(root))
    with pytest.raises(DataError, match=rf"2 image series.*{a.series_instance_uid}.*series_uid") as err:
        io.load_image("c")
    assert b.series_instance_uid in str(err.value)
    pick = make_interface(series_uid=b.series_instance_uid)
    pick.initialize(str(root))
    np.testing.assert_array_equal(pick.load_image("c")[0], image + 5)
    per_case = make_interface(series_uid={"c": a.series_instance_uid})
    per_case.initialize(str(root))
    np.testing.assert_array_equal(per_case.load_image("c")[0], image)
    wrong = make_interface(series_uid="1.2.3")
    wrong.initialize(str(root))
    with pytest.raises(DataNotFoundError, match="1.2.3"):
        wrong.load_image("c")


def _edit_slices(files, edit) -> None:
    for k, path in enumerate(files.image_files):
        ds = pydicom.dcmread(path)
        edit(k, ds)
        ds.save_as(path)


def test_rtstruct_in_other_frame_of_reference(study):
    root, files = study
    ds = pydicom.dcmread(files.rtstruct)
    ds.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID = "1.2.3.4.5"
    for roi in ds.StructureSetROISequence:
        roi.ReferencedFrameOfReferenceUID = "1.2.3.4.5"
    ds.save_as(files.rtstruct)
    io = make_interface()
    io.initialize(str(root))
    with pytest.raises(GeometryError, match=rf"rtstruct.dcm.*1\.2\.3\.4\.5.*{files.frame_of_reference_uid}"):
        io.load_segmentation("case_01")


def test_contours_outside_image_are_clipped_or_skipped(study, phantom):
    root, files = study
    _, labels = phantom
    ds = pydicom.dcmread(files.rtstruct)
    liver = next(i for i in ds.ROIContourSequence if int(i.ReferencedROINumber) == 1)
    for contour in liver.ContourSequence:
        pts = np.asarray(contour.ContourData, float).reshape(-1, 3)
        pts[:, 0] += 10 * SPACING[0]  # 10 voxels to +x (L): the organ leaves the image
        contour.ContourData = [f"{v:.4f}" for v in pts.ravel()]
    far = pydicom.Dataset()
    far.ContourGeometricType = "CLOSED_PLANAR"
    far.NumberOfContourPoints = 3
    far.ContourData = ["0", "0", "500", "5", "0", "500", "0", "5", "500"]  # far above the series
    liver.ContourSequence.append(far)
    ds.save_as(files.rtstruct)
    io = make_interface(structure_dict={"Liver": 1})
    io.initialize(str(root))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        seg = io.load_segmentation("case_01")
    messages = " ".join(str(w.message) for w in record if issubclass(w.category, DicomWarning))
    assert "'Liver': 1 contour(s) on slices outside the series were skipped" in messages
    assert "extending outside the image were clipped" in messages
    expected = np.zeros_like(labels)
    expected[10:] = labels[:-10] == 1
    assert (seg[:10] == 1).sum() == 0
    assert dice(seg == 1, expected == 1) > 0.9


def test_seg_that_does_not_match_series(tmp_path, phantom):
    image, labels = phantom
    root = tmp_path / "r"
    other = write_dicom_study(str(tmp_path / "other"), image[:, :20], labels[:, :20], SPACING,
                              with_rtstruct=False, with_seg=True)
    write_dicom_study(str(root / "c"), image, None, SPACING)
    shutil.copy(other.seg, root / "c" / "foreign_seg.dcm")
    io = make_interface()
    io.initialize(str(root))
    with pytest.raises(GeometryError, match=r"foreign_seg.dcm.*does not belong"):
        io.load_segmentation("c")
    # Same grid size and frame of reference, but frames at positions the series lacks.
    shifted = write_dicom_study(str(tmp_path / "shifted"), image, labels, SPACING, with_rtstruct=False,
                                with_seg=True, origin=(0.0, 0.0, 100.0))
    own = write_dicom_study(str(root / "d"), image, None, SPACING, origin=(0.0, 0.0, 0.0))
    seg = pydicom.dcmread(shifted.seg)
    seg.FrameOfReferenceUID = own.frame_of_reference_uid
    seg.save_as(root / "d" / "seg.dcm")
    io.initialize(str(root))
    with pytest.raises(GeometryError, match=r"seg.dcm.*match no slice"):
        io.load_segmentation("d")


@pytest.mark.parametrize(
    "edit, error",
    [
        (lambda k, ds: None if k != 5 else setattr(ds, "ImagePositionPatient",
                                                   [*ds.ImagePositionPatient[:2], ds.ImagePositionPatient[2] + 1.0]),
         "uneven slice spacing"),
        (lambda k, ds: setattr(ds, "ImageOrientationPatient", [0, 1, 0, 1, 0, 0]) if k == 4 else None,
         "mixed series"),
        (lambda k, ds: setattr(ds, "ImagePositionPatient", [0, 0, 0]), "share the position"),
    ],
    ids=["uneven", "mixed", "duplicate"],
)
def test_series_geometry_errors(study, edit, error):
    root, files = study
    _edit_slices(files, edit)
    io = make_interface()
    io.initialize(str(root))
    with pytest.raises(GeometryError, match=error):
        io.load_image("case_01")


def test_missing_slice_is_reported(study):
    root, files = study
    os.remove(files.image_files[4])
    io = make_interface()
    io.initialize(str(root))
    with pytest.raises(GeometryError, match=r"1 slice\(s\) missing.*IM_0003.*IM_0005"):
        io.load_image("case_01")


def test_gantry_tilt_warns_and_keeps_positions_exact(study, phantom):
    root, files = study
    shift = 0.4  # mm along y per slice: about 9 degrees of tilt at 2.5 mm spacing
    _edit_slices(files, lambda k, ds: setattr(
        ds, "ImagePositionPatient",
        [ds.ImagePositionPatient[0], float(ds.ImagePositionPatient[1]) + k * shift, ds.ImagePositionPatient[2]]))
    io = make_interface()
    io.initialize(str(root))
    with pytest.warns(DicomWarning, match=r"gantry tilt of 9\.09 degrees"):
        image, ext = io.load_image("case_01")
    np.testing.assert_array_equal(image, phantom[0])
    affine = np.asarray(ext["affine"])
    for k, path in enumerate(files.image_files):
        ipp = [float(v) for v in pydicom.dcmread(path).ImagePositionPatient]
        np.testing.assert_allclose(affine @ [0, 0, k, 1], LPS_TO_RAS @ [*ipp, 1], atol=1e-5)


# ---------------------------------------------------------------------------- configuration
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"mask_background": "0"}, "mask_background"),
        ({"mask_background": 1.5}, "mask_background"),
        ({"mask_background": True}, "mask_background"),
        ({"structure_dict": {"Liver": 3}}, r"structure_dict\['Liver'\]=3"),
        ({"structure_dict": {"Liver": 1, "LIVER": 2}}, "same name"),
        ({"structure_dict": ["Liver"]}, "structure_dict"),
        ({"output_format": "png"}, "output_format"),
        ({"pattern": "("}, "pattern"),
        ({"annotation_tag": 5}, "annotation_tag"),
        ({"classes": 1}, "classes"),
        ({"series_uid": 12}, "series_uid"),
    ],
)
def test_configuration_errors(kwargs, match):
    with pytest.raises(ConfigurationError, match=match):
        make_interface(**kwargs)


def test_instances_do_not_share_state_and_file_termination():
    a, b = make_interface(), make_interface()
    assert a.structure_dict is None and b.structure_dict is None
    d = {"Liver": 1}
    c = make_interface(structure_dict=d)
    d["Tumor"] = 2
    assert c.structure_dict == {"Liver": 1}
    assert DICOM_interface.check_file_termination(".dcm")
    assert DICOM_interface.check_file_termination(".DCM")
    assert not DICOM_interface.check_file_termination(".nii.gz")


def test_write_dicom_study_is_deterministic(tmp_path, phantom):
    image, labels = phantom
    one = write_dicom_study(str(tmp_path / "a"), image, labels, SPACING)
    two = write_dicom_study(str(tmp_path / "b"), image, labels, SPACING)
    three = write_dicom_study(str(tmp_path / "c"), image, labels, SPACING, seed=1)
    assert one.series_instance_uid == two.series_instance_uid
    assert three.series_instance_uid != one.series_instance_uid
    with open(one.image_files[0], "rb") as f1, open(two.image_files[0], "rb") as f2:
        assert f1.read() == f2.read()
    ds = pydicom.dcmread(one.image_files[0])
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.PixelRepresentation == 1 and ds.BitsAllocated == 16 and ds.RescaleIntercept == -1024
    with pytest.raises(ConfigurationError, match="label_names"):
        write_dicom_study(str(tmp_path / "d"), image, labels, SPACING, label_names=["only_one"])
    with pytest.raises(DataError, match="int16"):
        write_dicom_study(str(tmp_path / "e"), image + 40000, None, SPACING)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean study reads back without any warning
        io = make_interface()
        io.initialize(str(tmp_path))
        io.load_image("a")
        np.testing.assert_array_equal(io.load_segmentation("a") > 0, io.load_segmentation("b") > 0)


def test_truncated_slice_is_a_corrupt_file(study):
    root, files = study
    with open(files.image_files[3], "rb") as handle:
        data = handle.read()
    with open(files.image_files[3], "wb") as handle:
        handle.write(data[:-500])
    io = make_interface()
    io.initialize(str(root))
    with pytest.raises(CorruptFileError, match=r"'case_01'.*IM_0003.dcm"):
        io.load_image("case_01")


def test_written_series_agrees_with_simpleitk(tmp_path, phantom):
    """An independent DICOM reader (GDCM via SimpleITK) sees the same voxels and geometry."""
    sitk = pytest.importorskip("SimpleITK")
    image, _ = phantom
    iop = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)  # sagittal slices
    files = write_dicom_study(str(tmp_path / "r" / "sag"), image, None, SPACING, orientation=iop,
                              origin=(5.0, -7.0, 11.0))
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(list(reader.GetGDCMSeriesFileNames(files.series_dir)))
    reference = reader.Execute()
    io = make_interface()
    io.initialize(str(tmp_path / "r"))
    loaded, ext = io.load_image("sag")
    np.testing.assert_array_equal(loaded, sitk.GetArrayFromImage(reference).transpose(2, 1, 0))
    np.testing.assert_allclose(ext["spacing"], reference.GetSpacing(), atol=1e-6)
    np.testing.assert_allclose(ext["origin"], reference.GetOrigin(), atol=1e-5)
    np.testing.assert_allclose(np.asarray(ext["direction"]).ravel(), reference.GetDirection(), atol=1e-6)
