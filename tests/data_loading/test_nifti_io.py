"""Tests of NIFTI_interface on phantom, hand-made and real (nibabel sample) NIfTI files."""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil

import nibabel as nib
import numpy as np
import pytest

from miseg.data_loading.interfaces import get_data_interface_from_file_term
from miseg.data_loading.interfaces.nifti_io import NIFTI_interface
from miseg.data_loading.sample import Sample
from miseg.datasets import make_kits_phantom, write_kits_dataset
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

SHAPE = (16, 32, 24)
SPACING = (3.0, 0.8, 0.7)
SEED = 7
N_CASES = 3


@pytest.fixture(scope="module")
def kits(tmp_path_factory):
    """A small read-only KiTS-like data set: 3 cases, the last without segmentation."""
    path = tmp_path_factory.mktemp("kits")
    cases = write_kits_dataset(str(path), n_cases=N_CASES, shape=SHAPE, spacing=SPACING, seed=SEED, unlabeled=1)
    return str(path), cases


def _reference(i: int):
    child = np.random.SeedSequence(SEED).spawn(N_CASES)[i]
    return make_kits_phantom(SHAPE, SPACING, seed=child)


def _write(path, data, affine=None, qform_code=None, sform_code=None):
    img = nib.Nifti1Image(np.asarray(data), np.eye(4) if affine is None else affine)
    if qform_code is not None:
        img.header.set_qform(img.affine, code=qform_code)
    if sform_code is not None:
        img.header.set_sform(img.affine, code=sform_code)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img.to_filename(str(path))


def _snapshot(root) -> dict:
    result = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            stat = os.stat(full)
            digest = None
            if os.path.isfile(full):
                with open(full, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()
            result[os.path.relpath(full, root)] = (stat.st_mtime_ns, stat.st_size if digest else None, digest)
    return result


def _label_sample(index, labels, classes=3, extended=None):
    sample = Sample(index, np.zeros(labels.shape, np.float32), 1, classes, extended or {}, three_dim=labels.ndim == 3)
    sample.add_prediction(labels.astype(np.int64))
    return sample


# ----------------------------------------------------------------------------- reading
def test_initialize_sorted_indices(kits):
    path, cases = kits
    indices = NIFTI_interface(classes=3).initialize(path)
    assert indices == cases == [f"case_{i:05d}" for i in range(N_CASES)]


def test_initialize_natural_order_directories_only(tmp_path):
    for name in ("case_10", "case_2", "case_1", ".hidden"):
        _write(tmp_path / name / "imaging.nii.gz", np.zeros((4, 4, 4), np.int16))
    (tmp_path / "notes.txt").write_text("not a case")
    (tmp_path / "imaging.nii.gz").write_bytes(b"")  # a stray file is not a case
    assert NIFTI_interface().initialize(str(tmp_path)) == ["case_1", "case_2", "case_10"]


def test_pattern_filter(kits):
    path, _ = kits
    assert NIFTI_interface(pattern=r"case_0000[02]").initialize(path) == ["case_00000", "case_00002"]


def test_load_image_values_dtype_geometry(kits):
    path, cases = kits
    interface = NIFTI_interface(classes=3)
    interface.initialize(path)
    image, extended = interface.load_image(cases[1])
    ref_image, ref_labels, ref_affine = _reference(1)
    assert image.dtype == np.float32
    assert image.shape == SHAPE
    np.testing.assert_array_equal(image, np.rint(ref_image))  # stored as int16 HU
    assert extended["type"] == "nifti"
    np.testing.assert_allclose(extended["spacing"], SPACING, rtol=1e-6)
    assert all(isinstance(s, float) for s in extended["spacing"])
    np.testing.assert_allclose(extended["affine"], ref_affine, atol=1e-4)
    assert (extended["qform_code"], extended["sform_code"]) == (1, 1)
    seg = interface.load_segmentation(cases[1])
    assert seg.dtype == np.uint8
    np.testing.assert_array_equal(seg, ref_labels)


def test_spacing_from_header_zooms_not_affine_diagonal(tmp_path):
    # a rotated affine: its diagonal is not the voxel size (MIScnn's heuristic failed here)
    angle = np.deg2rad(30)
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([2.0, 1.5, 4.0])
    _write(tmp_path / "c" / "imaging.nii.gz", np.ones((5, 6, 7), np.float32), affine)
    interface = NIFTI_interface()
    interface.initialize(str(tmp_path))
    _, extended = interface.load_image("c")
    np.testing.assert_allclose(extended["spacing"], (2.0, 1.5, 4.0), rtol=1e-5)
    np.testing.assert_allclose(extended["affine"], affine, atol=1e-5)


def test_sample_from_interface(kits):
    path, cases = kits
    interface = NIFTI_interface(classes=3)
    interface.initialize(path)
    image, extended = interface.load_image(cases[0])
    sample = Sample(cases[0], image, interface.channels, interface.classes, extended, three_dim=True)
    assert sample.shape == SHAPE + (1,)
    np.testing.assert_allclose(sample.spacing, SPACING, rtol=1e-6)


def test_multichannel_4d_and_5d(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.normal(size=(6, 5, 4, 2)).astype(np.float32)
    _write(tmp_path / "four" / "imaging.nii.gz", data)
    _write(tmp_path / "five" / "imaging.nii", data.reshape(6, 5, 4, 1, 2))
    interface = NIFTI_interface(channels=2)
    assert interface.initialize(str(tmp_path)) == ["five", "four"]
    for case in ("four", "five"):
        image, _ = interface.load_image(case)
        assert image.shape == (6, 5, 4, 2) and image.dtype == np.float32
        np.testing.assert_array_equal(image, data)
        assert Sample(case, image, 2, 2, three_dim=True).shape == (6, 5, 4, 2)


def test_uncompressed_nii_image_and_segmentation(tmp_path):
    labels = np.random.default_rng(1).integers(0, 3, (5, 6, 7)).astype(np.uint8)
    _write(tmp_path / "c" / "imaging.nii", labels.astype(np.float32) * 10)
    _write(tmp_path / "c" / "segmentation.nii", labels)
    interface = NIFTI_interface(classes=3)
    interface.initialize(str(tmp_path))
    np.testing.assert_array_equal(interface.load_image("c")[0], labels * 10.0)
    assert interface.has_segmentation("c")
    np.testing.assert_array_equal(interface.load_segmentation("c"), labels)


def test_real_nibabel_sample_files(tmp_path):
    data_dir = pathlib.Path(nib.__file__).parent / "tests" / "data"
    files = {"nifti1_4d": data_dir / "example4d.nii.gz", "nifti2": data_dir / "example_nifti2.nii.gz"}
    if not all(f.is_file() for f in files.values()):
        pytest.skip("nibabel was installed without its test data files")
    for case, source in files.items():
        (tmp_path / case).mkdir()
        shutil.copy(source, tmp_path / case / "imaging.nii.gz")
    interface = NIFTI_interface(channels=2)
    interface.initialize(str(tmp_path))
    for case, source in files.items():
        image, extended = interface.load_image(case)
        reference = nib.load(str(source))
        np.testing.assert_allclose(image, reference.get_fdata(), rtol=1e-6)
        np.testing.assert_allclose(extended["affine"], reference.affine)
        np.testing.assert_allclose(extended["spacing"], reference.header.get_zooms()[:3])


def test_two_dimensional_nifti(tmp_path):
    image = np.arange(20, dtype=np.float32).reshape(4, 5)
    _write(tmp_path / "flat" / "imaging.nii.gz", image)
    _write(tmp_path / "single" / "imaging.nii.gz", image[:, :, None], affine=np.diag([0.5, 0.25, 2.0, 1.0]))
    interface = NIFTI_interface(three_dim=False)
    interface.initialize(str(tmp_path))
    for case in ("flat", "single"):
        loaded, extended = interface.load_image(case)
        assert loaded.shape == (4, 5)
        np.testing.assert_array_equal(loaded, image)
        assert len(extended["spacing"]) == 2
    assert interface.load_image("single")[1]["spacing"] == (0.5, 0.25)
    # 2D prediction round trip
    interface.save_prediction(_label_sample("single", (image > 9).astype(np.int64)), str(tmp_path / "out"))
    np.testing.assert_array_equal(interface.load_prediction("single", str(tmp_path / "out")), image > 9)


# ----------------------------------------------------------------------------- predictions
def test_save_prediction_geometry_dtype_roundtrip(kits, tmp_path):
    path, cases = kits
    interface = NIFTI_interface(classes=3)
    interface.initialize(path)
    image, extended = interface.load_image(cases[0])
    labels = interface.load_segmentation(cases[0])
    out = tmp_path / "nested" / "predictions"  # missing: must be created
    interface.save_prediction(_label_sample(cases[0], labels, extended=extended), str(out))
    written = nib.load(str(out / f"{cases[0]}.nii.gz"))
    source = nib.load(os.path.join(path, cases[0], "imaging.nii.gz"))
    assert written.shape == SHAPE  # no trailing singleton
    assert written.get_data_dtype() == np.uint8
    np.testing.assert_allclose(written.affine, source.affine, atol=1e-6)
    assert int(written.header["qform_code"]) == int(source.header["qform_code"]) == 1
    assert int(written.header["sform_code"]) == int(source.header["sform_code"]) == 1
    np.testing.assert_allclose(written.header.get_zooms(), source.header.get_zooms(), rtol=1e-6)
    loaded = interface.load_prediction(cases[0], str(out))
    assert loaded.dtype == np.uint8
    np.testing.assert_array_equal(loaded, labels)
    assert sorted(os.listdir(out)) == [f"{cases[0]}.nii.gz"]  # no temporary files left


def test_save_prediction_copies_sform_only_codes(tmp_path):
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = (-98, -134, -72)
    _write(tmp_path / "in" / "brain" / "imaging.nii.gz", np.ones((4, 5, 6), np.uint8), affine,
           qform_code=0, sform_code=2)
    interface = NIFTI_interface()
    interface.initialize(str(tmp_path / "in"))
    interface.save_prediction(_label_sample("brain", np.ones((4, 5, 6))), str(tmp_path / "out"))
    written = nib.load(str(tmp_path / "out" / "brain.nii.gz"))
    assert (int(written.header["qform_code"]), int(written.header["sform_code"])) == (0, 2)
    np.testing.assert_allclose(written.affine, affine)


def test_save_prediction_overwrites(kits, tmp_path):
    path, cases = kits
    interface = NIFTI_interface(classes=3)
    interface.initialize(path)
    for value in (1, 2):
        interface.save_prediction(_label_sample(cases[2], np.full(SHAPE, value)), str(tmp_path))
    assert np.all(interface.load_prediction(cases[2], str(tmp_path)) == 2)


def test_activation_output_kept_as_float32(kits, tmp_path):
    path, cases = kits
    interface = NIFTI_interface(classes=3)
    interface.initialize(path)
    rng = np.random.default_rng(3)
    logits = rng.normal(size=SHAPE + (3,))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    sample = Sample(cases[0], np.zeros(SHAPE), 1, 3, {}, three_dim=True)
    sample.add_prediction(probs, activation_output=True)
    interface.save_prediction(sample, str(tmp_path))
    written = nib.load(str(tmp_path / f"{cases[0]}.nii.gz"))
    assert written.shape == SHAPE + (3,) and written.get_data_dtype() == np.float32
    loaded = interface.load_prediction(cases[0], str(tmp_path))
    np.testing.assert_allclose(loaded, probs, rtol=1e-6)  # MIScnn truncated these to 0/1
    assert 0.0 < loaded.min() < loaded.max() < 1.0


def test_many_classes_use_uint16(kits, tmp_path):
    path, cases = kits
    interface = NIFTI_interface(classes=300)
    interface.initialize(path)
    labels = np.arange(np.prod(SHAPE)).reshape(SHAPE) % 300
    interface.save_prediction(_label_sample(cases[0], labels, classes=300), str(tmp_path))
    loaded = interface.load_prediction(cases[0], str(tmp_path))
    assert loaded.dtype == np.uint16
    np.testing.assert_array_equal(loaded, labels)


def test_prediction_labels_that_do_not_fit_raise(kits, tmp_path):
    path, cases = kits
    interface = NIFTI_interface(classes=3)
    interface.initialize(path)
    with pytest.raises(LabelError, match="case_00000"):
        interface.save_prediction(_label_sample(cases[0], np.full(SHAPE, -1)), str(tmp_path))


def test_prediction_without_source_uses_extended_affine(tmp_path):
    affine = np.diag([1.5, 1.5, 3.0, 1.0])
    affine[:3, 3] = (10, 20, 30)
    _write(tmp_path / "in" / "c" / "imaging.nii.gz", np.zeros((3, 3, 3), np.uint8))
    interface = NIFTI_interface()
    interface.initialize(str(tmp_path / "in"))
    sample = _label_sample("elsewhere", np.ones((4, 4, 4)), extended={"affine": affine})
    interface.save_prediction(sample, str(tmp_path / "out"))
    np.testing.assert_allclose(nib.load(str(tmp_path / "out" / "elsewhere.nii.gz")).affine, affine)


def test_load_prediction_missing(kits, tmp_path):
    path, cases = kits
    interface = NIFTI_interface()
    interface.initialize(path)
    with pytest.raises(DataNotFoundError, match="case_00001"):
        interface.load_prediction(cases[1], str(tmp_path))


# ----------------------------------------------------------------------------- bad input
def test_missing_input_directory(tmp_path):
    missing = str(tmp_path / "nope")
    with pytest.raises(DataNotFoundError, match="nope"):
        NIFTI_interface().initialize(missing)
    with pytest.raises(FileNotFoundError):  # MIScnn users catch IOError/FileNotFoundError
        NIFTI_interface().initialize(missing)


def test_pattern_matching_no_case(kits):
    path, _ = kits
    with pytest.raises(DataNotFoundError) as info:
        NIFTI_interface(pattern=r"patient_\d+").initialize(path)
    assert r"patient_\\d+" in str(info.value) or r"patient_\d+" in str(info.value)
    assert path in str(info.value)


def test_invalid_pattern():
    with pytest.raises(ConfigurationError, match="pattern"):
        NIFTI_interface(pattern="case_(")


def test_case_folder_without_imaging(tmp_path):
    _write(tmp_path / "good" / "imaging.nii.gz", np.zeros((3, 3, 3), np.int16))
    _write(tmp_path / "bad" / "segmentation.nii.gz", np.zeros((3, 3, 3), np.uint8))
    with pytest.raises(DataNotFoundError, match="'bad'"):
        NIFTI_interface().initialize(str(tmp_path))


def test_ambiguous_imaging_files(tmp_path):
    _write(tmp_path / "c" / "imaging.nii.gz", np.zeros((3, 3, 3), np.int16))
    _write(tmp_path / "c" / "imaging.nii", np.zeros((3, 3, 3), np.int16))
    with pytest.raises(DataError, match="imaging.nii.gz, imaging.nii"):
        NIFTI_interface().initialize(str(tmp_path))


def test_truncated_file(tmp_path):
    data = np.random.default_rng(0).normal(size=(20, 20, 20)).astype(np.float32)
    target = tmp_path / "broken" / "imaging.nii.gz"
    _write(target, data)
    raw = target.read_bytes()
    target.write_bytes(raw[: len(raw) // 2])
    interface = NIFTI_interface()
    interface.initialize(str(tmp_path))
    with pytest.raises(CorruptFileError) as info:
        interface.load_image("broken")
    assert "broken" in str(info.value) and "imaging.nii.gz" in str(info.value)


def test_not_a_nifti_file(tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "imaging.nii.gz").write_bytes(b"this is not gzip data at all")
    interface = NIFTI_interface()
    interface.initialize(str(tmp_path))
    with pytest.raises(CorruptFileError, match="junk"):
        interface.load_image("junk")


def test_segmentation_with_different_shape(tmp_path):
    _write(tmp_path / "c" / "imaging.nii.gz", np.zeros((4, 5, 6), np.int16))
    _write(tmp_path / "c" / "segmentation.nii.gz", np.zeros((4, 5, 7), np.uint8))
    interface = NIFTI_interface()
    interface.initialize(str(tmp_path))
    with pytest.raises(ShapeMismatchError) as info:
        interface.load_segmentation("c")
    message = str(info.value)
    assert "(4, 5, 7)" in message and "(4, 5, 6)" in message
    assert "segmentation.nii.gz" in message and "imaging.nii.gz" in message


def test_segmentation_with_different_affine(tmp_path):
    shifted = np.eye(4)
    shifted[0, 3] = 0.5
    _write(tmp_path / "c" / "imaging.nii.gz", np.zeros((4, 5, 6), np.int16))
    _write(tmp_path / "c" / "segmentation.nii.gz", np.zeros((4, 5, 6), np.uint8), affine=shifted)
    interface = NIFTI_interface()
    interface.initialize(str(tmp_path))
    with pytest.raises(GeometryError, match="affine") as info:
        interface.load_segmentation("c")
    assert "0.5" in str(info.value)
    # within tolerance (float32 header rounding) is accepted
    shifted[0, 3] = 1e-5
    _write(tmp_path / "c" / "segmentation.nii.gz", np.zeros((4, 5, 6), np.uint8), affine=shifted)
    assert interface.load_segmentation("c").shape == (4, 5, 6)


def test_two_dimensional_file_to_3d_interface(tmp_path):
    _write(tmp_path / "flat" / "imaging.nii.gz", np.zeros((8, 9), np.float32))
    interface = NIFTI_interface(three_dim=True)
    interface.initialize(str(tmp_path))
    with pytest.raises(DataError) as info:
        interface.load_image("flat")
    assert "flat" in str(info.value) and "(8, 9)" in str(info.value) and "3D" in str(info.value)


def test_three_dimensional_file_to_2d_interface(tmp_path):
    _write(tmp_path / "vol" / "imaging.nii.gz", np.zeros((8, 9, 10), np.float32))
    interface = NIFTI_interface(three_dim=False)
    interface.initialize(str(tmp_path))
    with pytest.raises(DataError, match=r"vol.*\(8, 9, 10\)"):
        interface.load_image("vol")


def test_missing_segmentation(kits):
    path, cases = kits
    interface = NIFTI_interface(classes=3)
    interface.initialize(path)
    assert interface.has_segmentation(cases[0])
    assert not interface.has_segmentation(cases[2])
    with pytest.raises(MissingSegmentationError, match=cases[2]):
        interface.load_segmentation(cases[2])
    with pytest.raises(DataNotFoundError, match="case_99999"):
        interface.load_image("case_99999")


def test_input_directory_unmodified(kits, tmp_path):
    path, cases = kits
    before = _snapshot(path)
    interface = NIFTI_interface(classes=3)
    interface.initialize(path)
    for case in cases:
        image, extended = interface.load_image(case)
        if interface.has_segmentation(case):
            interface.load_segmentation(case)
        interface.save_prediction(_label_sample(case, (image > 0).astype(np.uint8), extended=extended), str(tmp_path))
        interface.load_prediction(case, str(tmp_path))
    assert _snapshot(path) == before


def test_use_before_initialize():
    with pytest.raises(ConfigurationError, match="initialize"):
        NIFTI_interface().load_image("case_00000")


def test_file_termination():
    assert NIFTI_interface.check_file_termination(".nii.gz")
    assert NIFTI_interface.check_file_termination(".nii")
    assert not NIFTI_interface.check_file_termination(".png")
    assert get_data_interface_from_file_term(".nii.gz") is NIFTI_interface
    assert get_data_interface_from_file_term(".nii") is NIFTI_interface


def test_unsafe_indices_rejected(kits, tmp_path):
    path, _ = kits
    interface = NIFTI_interface(classes=3)
    interface.initialize(path)
    with pytest.raises(UnsafeIndexError):
        interface.load_image("../case_00000")
    out = tmp_path / "out"
    with pytest.raises(UnsafeIndexError):
        interface.save_prediction(_label_sample("../escaped", np.ones(SHAPE)), str(out))
    assert not (tmp_path / "escaped.nii.gz").exists()
