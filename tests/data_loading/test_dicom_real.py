"""DICOM reading on real files: pydicom's test files, pydicom-data's SEG, dicompyler's RTSTRUCT.

Downloaded fixtures land in the ignored cache (``miseg.datasets.fixtures``). A test skips only
when the package registry cannot be reached, and never on CI (``CI`` set), where it must run.
"""

from __future__ import annotations

import os
import shutil
import warnings

import numpy as np
import pydicom
import pytest

from miseg.data_loading.dicom.rtstruct import read_rtstruct
from miseg.data_loading.dicom.seg import place_seg_frames, read_seg
from miseg.data_loading.dicom.series import DicomWarning, SeriesGeometry
from miseg.data_loading.interfaces.dicom_io import DICOM_interface
from miseg.data_loading.sample import Sample
from miseg.datasets.dicom import write_dicom_study
from miseg.datasets.fixtures import FixtureUnavailableError, default_cache_dir, fetch_fixture
from miseg.errors import ConfigurationError, DataNotFoundError, GeometryError


def fixture_path(name: str, cache_dir=None) -> str:
    try:
        return str(fetch_fixture(name, cache_dir=cache_dir))
    except FixtureUnavailableError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"package registry unreachable, cannot fetch {name}: {exc}")


def case_folder(tmp_path, files, case="case") -> str:
    folder = tmp_path / "cases" / case
    folder.mkdir(parents=True)
    for f in files:
        shutil.copy(f, folder / os.path.basename(f))
    return str(tmp_path / "cases")


def patch_frame_of_reference(paths, uid: str) -> None:
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.FrameOfReferenceUID = uid
        ds.save_as(path)


# ---------------------------------------------------------------------------- image series
def test_ct_small_hu_and_spacing(tmp_path):
    path = fixture_path("pydicom/CT_small.dcm")
    io = DICOM_interface()
    io.initialize(case_folder(tmp_path, [path]))
    image, ext = io.load_image("case")
    ds = pydicom.dcmread(path)
    assert image.shape == (128, 128, 1)
    expected = ds.pixel_array.T.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(image[:, :, 0], expected)
    assert image.min() == 128 - 1024  # stored minimum 128, intercept -1024
    np.testing.assert_allclose(ext["spacing"], [0.661468, 0.661468, 5.0])  # 1 slice: SliceThickness
    assert ext["hu"] is True and ext["intercept"] == -1024.0
    np.testing.assert_allclose(ext["origin"], [float(v) for v in ds.ImagePositionPatient])


def test_ct5n_series_sorted_by_position(tmp_path):
    first = fixture_path("pydicom/dicomdirtests/98892001/CT5N/2062")
    root = os.path.dirname(os.path.dirname(first))  # .../98892001 holds CT2N and CT5N
    io = DICOM_interface(pattern="CT5N")
    assert io.initialize(root) == ["CT5N"]
    image, ext = io.load_image("CT5N")
    headers = {f: pydicom.dcmread(os.path.join(root, "CT5N", f)) for f in os.listdir(os.path.join(root, "CT5N"))}
    by_z = sorted(headers.values(), key=lambda h: float(h.ImagePositionPatient[2]))
    assert image.shape == (16, 16, 5)
    # File names and InstanceNumber run against the z order: sorting must use positions.
    assert ext["sop_instance_uids"] == [str(h.SOPInstanceUID) for h in by_z]
    assert [int(h.InstanceNumber) for h in by_z] == [10, 9, 8, 7, 6]
    np.testing.assert_allclose(ext["spacing"], [0.488281, 0.488281, 2.5], atol=1e-6)
    np.testing.assert_allclose(ext["origin"], [-72.199997, -143.0, -1.2375], atol=1e-6)
    for k, h in enumerate(by_z):
        expected = h.pixel_array.T * float(h.RescaleSlope) + float(h.RescaleIntercept)
        np.testing.assert_array_equal(image[:, :, k], expected)


# ---------------------------------------------------------------------------- DICOM SEG
def _geometry_of_seg(seg) -> tuple[SeriesGeometry, list[str]]:
    """A series grid rebuilt from a SEG's own plane positions (its CT is not shipped)."""
    positions = np.stack(seg.positions)
    order = np.argsort(positions[:, 2])
    step = positions[order[1]] - positions[order[0]] if len(order) > 1 else np.array([0, 0, 1.0])
    rows, cols = seg.frames.shape[1:]
    geometry = SeriesGeometry(
        shape=(cols, rows, len(order)),
        pixel_spacing=(float(seg.pixel_spacing[1]), float(seg.pixel_spacing[0])),
        origin=positions[order[0]],
        row_direction=seg.orientation[:3],
        column_direction=seg.orientation[3:],
        slice_step=step,
        frame_of_reference_uid=seg.frame_of_reference_uid,
    )
    return geometry, [seg.referenced_sop_instance_uids[i] for i in order]


def test_liver_1frame_seg():
    # pydicom cut this file from the 3-frame liver.dcm and kept all 3 per-frame items.
    with pytest.warns(DicomWarning, match="1 frame.*3 per-frame"):
        seg = read_seg(fixture_path("pydicom/liver_1frame.dcm"))
    assert seg.segmentation_type == "BINARY" and seg.segments == [(1, "Liver")]
    assert seg.frames.shape == (1, 512, 512) and int(seg.frames.sum()) == 36233
    geometry, uids = _geometry_of_seg(seg)
    label_map = place_seg_frames(seg, geometry, uids, [(1, "Liver", 1)])
    assert label_map.shape == (512, 512, 1) and int(label_map.sum()) == 36233
    np.testing.assert_array_equal(label_map[:, :, 0], seg.frames[0].T)  # (rows, cols) -> (x, y)


def test_liver_3frame_seg_placed_by_position_through_interface(tmp_path):
    path = fixture_path("pydicom-data/liver.dcm")
    seg = read_seg(path)
    assert seg.frames.shape == (3, 512, 512)
    assert [int(f.sum()) for f in seg.frames] == [36233, 35645, 35220]
    z = [p[2] for p in seg.positions]
    np.testing.assert_allclose(z, [-128.69, -127.69, -126.69])
    # A CT series on the SEG's grid (its own CT is not shipped): same frame of reference and
    # positions, other SOP instance UIDs, so frames are placed by plane position.
    files = write_dicom_study(
        str(tmp_path / "cases" / "liver"), np.zeros((512, 512, 3), np.float32), None,
        (0.810547, 0.810547, 1.0), origin=seg.positions[0],
    )
    patch_frame_of_reference(files.image_files, seg.frame_of_reference_uid)
    shutil.copy(path, tmp_path / "cases" / "liver" / "liver_seg.dcm")
    io = DICOM_interface(structure_dict={"liver": 1})
    io.initialize(str(tmp_path / "cases"))
    label_map = io.load_segmentation("liver")
    assert label_map.shape == (512, 512, 3)
    assert [int(label_map[:, :, k].sum()) for k in range(3)] == [36233, 35645, 35220]
    np.testing.assert_array_equal(label_map[:, :, 2], seg.frames[2].T)
    # The same SEG against a series one slice higher does not fit: clear error.
    shifted = write_dicom_study(
        str(tmp_path / "bad" / "liver"), np.zeros((512, 512, 3), np.float32), None,
        (0.810547, 0.810547, 1.0), origin=seg.positions[0] + np.array([0, 0, 10.0]),
    )
    patch_frame_of_reference(shifted.image_files, seg.frame_of_reference_uid)
    shutil.copy(path, tmp_path / "bad" / "liver" / "liver_seg.dcm")
    io.initialize(str(tmp_path / "bad"))
    with pytest.raises(GeometryError, match=r"liver_seg.dcm.*3 of 3 frame\(s\).*match no slice"):
        io.load_segmentation("liver")


# ---------------------------------------------------------------------------- RTSTRUCT
def test_pydicom_rtstruct_parsed_and_rasterised(tmp_path):
    path = fixture_path("pydicom/rtstruct.dcm")  # no preamble / file meta: needs force
    ds, rois = read_rtstruct(path)
    assert [(r.number, r.name) for r in rois] == [(1, "patient"), (2, "Isocenter 1"), (3, "Isocenter 2")]
    assert [c.geometric_type for c in rois[0].contours] == ["CLOSED_PLANAR"] * 3
    assert sorted({float(z) for c in rois[0].contours for z in c.points[:, 2]}) == [-200.0, -190.0, -180.0]
    assert [c.geometric_type for c in rois[1].contours] == ["POINT"]
    io = DICOM_interface()
    data = io.get_ROI_data(path)
    assert data[0]["ROI_Name"] == "patient" and data[0]["ROI_Sequence"][1]["points"]["z"][0] == -190.0

    # A 10 mm grid around the phantom's rectangles (x -200..200, y -150..150) on z -200..-180.
    files = write_dicom_study(str(tmp_path / "cases" / "phantom"), np.zeros((51, 41, 3), np.float32), None,
                              (10.0, 10.0, 10.0), origin=(-250.0, -200.0, -200.0))
    patch_frame_of_reference(files.image_files, str(ds.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID))
    shutil.copy(path, tmp_path / "cases" / "phantom" / "structures")
    io = DICOM_interface(structure_dict={"Patient": 1})
    io.initialize(str(tmp_path / "cases"))
    with pytest.warns(DicomWarning, match="Isocenter"):
        label_map = io.load_segmentation("phantom")
    for k in range(3):
        assert label_map[6:45, 6:35, k].all()  # interior of x -190..190, y -140..140
        outside = np.ones((51, 41), bool)
        outside[5:46, 5:36] = False
        assert not label_map[:, :, k][outside].any()


def test_pydicom_rtstruct_with_unrelated_ct_is_a_geometry_error(tmp_path):
    ct = fixture_path("pydicom/CT_small.dcm")
    rt = fixture_path("pydicom/rtstruct.dcm")
    io = DICOM_interface()
    io.initialize(case_folder(tmp_path, [ct, rt]))
    with pytest.raises(GeometryError, match=r"rtstruct.dcm.*2010020400001\.2.*20040119072730\.12322"):
        io.load_segmentation("case")


def test_dicompyler_body_contour_on_real_ct(tmp_path):
    ct = fixture_path("dicompyler-core/ct.0.dcm")
    rt = fixture_path("dicompyler-core/rtss.dcm")
    io = DICOM_interface(structure_dict={"body": 1})
    io.initialize(case_folder(tmp_path, [ct, rt]))
    image, ext = io.load_image("case")
    assert image.shape == (512, 512, 1)
    np.testing.assert_allclose(ext["spacing"], [1.074219, 1.074219, 3.0])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        body = io.load_segmentation("case")
    messages = " ".join(str(w.message) for w in record)
    assert "'Heart'" in messages and "'Lt Lung'" in messages  # unmatched ROI names listed
    assert "137 contour(s) on slices outside the series were skipped" in messages  # 1 of 98 slices
    assert int(body.sum()) == 40396
    assert abs(float(image[body == 1].mean()) - 1.6) < 1.0
    assert float(image[body == 0].mean()) < -900
    assert io.get_ROI_names("case")[:2] == [[1, "BODY"], [2, "Areola"]]


@pytest.mark.parametrize("output_format", ["seg", "rtstruct"])
def test_prediction_on_real_ct_roundtrips(tmp_path, output_format):
    ct = fixture_path("dicompyler-core/ct.0.dcm")
    rt = fixture_path("dicompyler-core/rtss.dcm")
    io = DICOM_interface(structure_dict={"BODY": 1}, output_format=output_format)
    io.initialize(case_folder(tmp_path, [ct, rt]))
    image, ext = io.load_image("case")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DicomWarning)
        body = io.load_segmentation("case")
    sample = Sample("case", image, 1, 2, ext, three_dim=True)
    sample.add_prediction(body)
    io.save_prediction(sample, str(tmp_path / "pred"))
    np.testing.assert_array_equal(io.load_prediction("case", str(tmp_path / "pred")), body)
    written = pydicom.dcmread(tmp_path / "pred" / f"case.{output_format}.dcm")
    source = pydicom.dcmread(ct)
    assert written.StudyInstanceUID == source.StudyInstanceUID and written.PatientID == source.PatientID


# ---------------------------------------------------------------------------- fixture helper
def test_fetch_fixture_names_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MISEG_CACHE", str(tmp_path / "cache"))
    assert default_cache_dir() == tmp_path / "cache"
    with pytest.raises(ConfigurationError, match="nosuchsource"):
        fetch_fixture("nosuchsource/file.dcm")
    with pytest.raises(ConfigurationError, match="<source>/<file>"):
        fetch_fixture("dicompyler-core/../../etc/passwd")
    with pytest.raises(DataNotFoundError, match="not_a_file.dcm"):
        fetch_fixture("pydicom/not_a_file.dcm")
    cached = fixture_path("dicompyler-core/rtss.dcm")  # the shared cache (default location)
    fresh = fixture_path("dicompyler-core/rtss.dcm", cache_dir=tmp_path / "own")  # uses pip
    assert fresh == str(tmp_path / "own" / "dicompyler-core" / "rtss.dcm")
    with open(cached, "rb") as a, open(fresh, "rb") as b:
        assert a.read() == b.read()
    archives = list((tmp_path / "own" / "_downloads").iterdir())
    assert [p.name for p in archives] == ["dicompyler-core-0.5.6.tar.gz"]
    again = fetch_fixture("dicompyler-core/ct.0.dcm", cache_dir=tmp_path / "own")  # no new download
    assert again.stat().st_size > 500_000
    assert list((tmp_path / "own" / "_downloads").iterdir()) == archives
    with pytest.raises(DataNotFoundError, match="missing.dcm"):
        fetch_fixture("dicompyler-core/missing.dcm", cache_dir=tmp_path / "own")
