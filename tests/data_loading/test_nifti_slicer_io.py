"""Tests of NIFTIslicer_interface: header-only indexing, volume caching, reassembly."""

from __future__ import annotations

import os
import pickle

import nibabel as nib
import numpy as np
import pytest

from miseg.data_loading.interfaces.nifti_slicer_io import NIFTIslicer_interface
from miseg.data_loading.sample import Sample
from miseg.datasets import write_kits_dataset
from miseg.errors import (
    ConfigurationError,
    DataError,
    DataNotFoundError,
    GeometryError,
    MissingSegmentationError,
)

SHAPE = (12, 20, 16)
SPACING = (3.0, 0.8, 0.7)


@pytest.fixture(scope="module")
def kits(tmp_path_factory):
    path = tmp_path_factory.mktemp("kits_slices")
    cases = write_kits_dataset(str(path), n_cases=3, shape=SHAPE, spacing=SPACING, seed=11, unlabeled=1)
    volumes = {c: nib.load(os.path.join(path, c, "imaging.nii.gz")).get_fdata(dtype=np.float32) for c in cases}
    labels = {c: np.asarray(nib.load(os.path.join(path, c, "segmentation.nii.gz")).dataobj) for c in cases[:2]}
    return str(path), cases, volumes, labels


class _CountingLoad:
    """Wraps nibabel.load and counts calls per file name."""

    def __init__(self, load):
        self.load = load
        self.calls: list[str] = []

    def __call__(self, filename, *args, **kwargs):
        self.calls.append(os.path.basename(str(filename)))
        return self.load(filename, *args, **kwargs)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_indices_from_headers_and_slices(kits, axis, monkeypatch):
    path, cases, volumes, labels = kits
    interface = NIFTIslicer_interface(slice_axis=axis, classes=3)
    counter = _CountingLoad(nib.load)
    monkeypatch.setattr(nib, "load", counter)
    indices = interface.initialize(path)
    assert len(indices) == len(cases) * SHAPE[axis]
    assert indices[:2] == [f"{cases[0]}:#:0", f"{cases[0]}:#:1"]
    assert indices[-1] == f"{cases[-1]}:#:{SHAPE[axis] - 1}"
    assert len(counter.calls) == len(cases)  # one header read per case
    for number in (0, SHAPE[axis] // 2, SHAPE[axis] - 1):
        image, extended = interface.load_image(f"{cases[1]}:#:{number}")
        assert image.dtype == np.float32
        np.testing.assert_array_equal(image, np.take(volumes[cases[1]], number, axis=axis))
        seg = interface.load_segmentation(f"{cases[1]}:#:{number}")
        np.testing.assert_array_equal(seg, np.take(labels[cases[1]], number, axis=axis))
        assert extended["type"] == "nifti_slice"
        assert (extended["case"], extended["slice"], extended["slice_axis"]) == (cases[1], number, axis)
        expected_spacing = tuple(s for i, s in enumerate(SPACING) if i != axis)
        np.testing.assert_allclose(extended["spacing"], expected_spacing, rtol=1e-6)
        assert np.asarray(extended["affine"]).shape == (4, 4)


def test_volume_loaded_once_for_consecutive_slices(kits, monkeypatch):
    path, cases, _, _ = kits
    interface = NIFTIslicer_interface(slice_axis=0, classes=3)
    indices = interface.initialize(path)
    counter = _CountingLoad(nib.load)
    monkeypatch.setattr(nib, "load", counter)
    for index in indices:
        interface.load_image(index)
    assert counter.calls.count("imaging.nii.gz") == len(cases)  # MIScnn: once per slice
    counter.calls.clear()
    labelled = [i for i in indices if not i.startswith(cases[-1])]
    for index in labelled:
        interface.load_image(index)
        interface.load_segmentation(index)
    # per case: the image volume, the segmentation volume, one image header for the geometry check
    assert counter.calls.count("segmentation.nii.gz") == 2
    assert len(counter.calls) <= 3 * 2


def test_cache_is_refreshed_when_the_file_changes(tmp_path):
    case_dir = tmp_path / "c"
    case_dir.mkdir()
    nib.Nifti1Image(np.zeros((3, 4, 5), np.float32), np.eye(4)).to_filename(str(case_dir / "imaging.nii.gz"))
    interface = NIFTIslicer_interface()
    interface.initialize(str(tmp_path))
    assert interface.load_image("c:#:1")[0].max() == 0
    nib.Nifti1Image(np.ones((3, 4, 5), np.float32) * 7, np.eye(4)).to_filename(str(case_dir / "imaging.nii.gz"))
    os.utime(case_dir / "imaging.nii.gz", ns=(1, 1))  # a different mtime even on coarse clocks
    assert interface.load_image("c:#:1")[0].max() == 7


def test_caches_are_per_instance(kits):
    path, cases, volumes, _ = kits
    first, second = NIFTIslicer_interface(), NIFTIslicer_interface()
    first.initialize(path)
    second.initialize(path)
    first.load_image(f"{cases[0]}:#:0")
    second.load_image(f"{cases[1]}:#:0")
    np.testing.assert_array_equal(first.load_image(f"{cases[0]}:#:3")[0], volumes[cases[0]][3])
    assert first._cache["image"][0][0] != second._cache["image"][0][0]


def _save_slices(interface, case, volume, out, axis):
    for number in range(volume.shape[axis]):
        index = f"{case}:#:{number}"
        image, extended = interface.load_image(index)
        sample = Sample(index, image, 1, 3, extended, three_dim=False)
        sample.add_prediction(np.take(volume, number, axis=axis).astype(np.int64))
        interface.save_prediction(sample, out)


@pytest.mark.parametrize("axis", [0, 2])
def test_slice_predictions_reassembled_into_volume(kits, tmp_path, axis):
    path, cases, _, labels = kits
    interface = NIFTIslicer_interface(slice_axis=axis, classes=3)
    interface.initialize(path)
    out = str(tmp_path / "pred")
    _save_slices(interface, cases[0], labels[cases[0]], out, axis)
    first = interface.load_prediction(f"{cases[0]}:#:0", out)
    assert first.dtype == np.uint8
    np.testing.assert_array_equal(first, np.take(labels[cases[0]], 0, axis=axis))
    volume = interface.assemble_volume(cases[0], out)
    np.testing.assert_array_equal(volume, labels[cases[0]])
    written_path = interface.save_volume_prediction(cases[0], out)
    assert written_path == os.path.join(out, f"{cases[0]}.nii.gz")
    written = nib.load(written_path)
    source = nib.load(os.path.join(path, cases[0], "imaging.nii.gz"))
    np.testing.assert_allclose(written.affine, source.affine, atol=1e-6)
    assert int(written.header["sform_code"]) == int(source.header["sform_code"])
    assert int(written.header["qform_code"]) == int(source.header["qform_code"])
    assert written.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asarray(written.dataobj), labels[cases[0]])
    assert not [f for f in os.listdir(out) if f.startswith(".")]  # no temporary files


def test_assemble_reports_missing_slices(kits, tmp_path):
    path, cases, _, labels = kits
    interface = NIFTIslicer_interface(classes=3)
    interface.initialize(path)
    out = str(tmp_path)
    _save_slices(interface, cases[0], labels[cases[0]], out, 0)
    os.remove(os.path.join(out, f"{cases[0]}:#:4.npy"))
    with pytest.raises(DataNotFoundError, match=r"1 of 12 slice predictions.*slices 4"):
        interface.assemble_volume(cases[0], out)


def test_missing_segmentation_and_bad_indices(kits):
    path, cases, _, _ = kits
    interface = NIFTIslicer_interface(classes=3)
    interface.initialize(path)
    assert interface.has_segmentation(f"{cases[0]}:#:0")
    assert not interface.has_segmentation(f"{cases[2]}:#:0")
    with pytest.raises(MissingSegmentationError, match=cases[2]):
        interface.load_segmentation(f"{cases[2]}:#:0")
    with pytest.raises(DataNotFoundError, match="out of range"):
        interface.load_image(f"{cases[0]}:#:{SHAPE[0]}")
    with pytest.raises(DataNotFoundError, match="slicer index"):
        interface.load_image(cases[0])
    with pytest.raises(DataNotFoundError):
        interface.load_prediction(f"{cases[0]}:#:0", path)


def test_two_dimensional_file_rejected(tmp_path):
    (tmp_path / "flat").mkdir()
    nib.Nifti1Image(np.zeros((8, 9), np.float32), np.eye(4)).to_filename(str(tmp_path / "flat" / "imaging.nii.gz"))
    with pytest.raises(DataError, match=r"flat.*\(8, 9\)"):
        NIFTIslicer_interface().initialize(str(tmp_path))


def test_segmentation_geometry_checked(tmp_path):
    (tmp_path / "c").mkdir()
    shifted = np.eye(4)
    shifted[1, 3] = 2.0
    nib.Nifti1Image(np.zeros((3, 4, 5), np.float32), np.eye(4)).to_filename(str(tmp_path / "c" / "imaging.nii.gz"))
    nib.Nifti1Image(np.zeros((3, 4, 5), np.uint8), shifted).to_filename(str(tmp_path / "c" / "segmentation.nii.gz"))
    interface = NIFTIslicer_interface()
    interface.initialize(str(tmp_path))
    with pytest.raises(GeometryError, match="'c'"):
        interface.load_segmentation("c:#:0")


def test_invalid_slice_axis():
    for axis in (3, -1, "0", 1.0):
        with pytest.raises(ConfigurationError, match="slice_axis"):
            NIFTIslicer_interface(slice_axis=axis)


def test_pickle_roundtrip(kits):
    path, cases, volumes, _ = kits
    interface = NIFTIslicer_interface(slice_axis=1, pattern="case_0000[01]")
    assert len(interface.initialize(path)) == 2 * SHAPE[1]
    interface.load_image(f"{cases[0]}:#:0")
    clone = pickle.loads(pickle.dumps(interface))
    assert clone._cache == {}
    np.testing.assert_array_equal(clone.load_image(f"{cases[0]}:#:5")[0], volumes[cases[0]][:, 5])
    assert NIFTIslicer_interface.check_file_termination(".nii.gz")
    assert not NIFTIslicer_interface.check_file_termination(".dcm")


def test_save_prediction_accepts_miscnn_slicer_form(kits, tmp_path):
    """MIScnn's slicer is called as (pred, index, output_path); the Abstract_IO form still works."""
    path, cases, _, labels = kits
    interface = NIFTIslicer_interface(slice_axis=0, classes=3)
    interface.initialize(path)
    out = str(tmp_path / "pred")
    index = f"{cases[0]}:#:4"
    expected = labels[cases[0]][4]
    interface.save_prediction(expected.astype(np.int64), index, out)  # MIScnn's positional form
    np.testing.assert_array_equal(interface.load_prediction(index, out), expected)
    other = f"{cases[0]}:#:5"
    interface.save_prediction(labels[cases[0]][5][..., None], out, index=other)  # keyword form
    np.testing.assert_array_equal(interface.load_prediction(other, out), labels[cases[0]][5])
    image, extended = interface.load_image(index)
    sample = Sample(index, image, 1, 3, extended, three_dim=False)
    sample.add_prediction(np.zeros_like(expected, dtype=np.int64))
    interface.save_prediction(sample, out)  # Abstract_IO form overwrites
    assert not interface.load_prediction(index, out).any()
    with pytest.raises(TypeError):
        interface.save_prediction(expected, index, out, out)
    with pytest.raises(TypeError):
        interface.save_prediction(expected, index, out, index=index)
