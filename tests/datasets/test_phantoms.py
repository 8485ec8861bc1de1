"""Tests of the phantom data sets and the MNI152 template case."""

from __future__ import annotations

import importlib.util
import os
import time

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from miseg.data_loading.interfaces.image_io import Image_interface
from miseg.data_loading.interfaces.nifti_io import NIFTI_interface
from miseg.datasets import (
    load_mni152,
    make_2d_phantom,
    make_kits_phantom,
    write_image_dataset,
    write_kits_dataset,
    write_mni152_dataset,
)
from miseg.errors import ConfigurationError

SMALL = (32, 64, 64)
SPACING = (3.0, 0.8, 0.8)


@pytest.fixture(scope="module")
def phantom():
    return make_kits_phantom(SMALL, SPACING, seed=0)


# ----------------------------------------------------------------------------- KiTS
def test_kits_shapes_dtypes_labels_affine(phantom):
    image, labels, affine = phantom
    assert image.shape == labels.shape == SMALL
    assert image.dtype == np.float32 and labels.dtype == np.uint8
    assert set(np.unique(labels)) == {0, 1, 2}
    np.testing.assert_allclose(np.diag(affine)[:3], SPACING)
    np.testing.assert_allclose(affine[:3, :3], np.diag(SPACING))
    # the volume centre sits at the world origin
    centre = affine @ np.append((np.asarray(SMALL) - 1) / 2.0, 1.0)
    np.testing.assert_allclose(centre[:3], 0.0, atol=1e-9)


def test_kits_hounsfield_ranges(phantom):
    image, labels, _ = phantom
    assert -1024 <= image.min() and image.max() <= 3071
    corner = image[:, :3, :3]  # air outside the body
    assert abs(float(np.median(corner)) + 1000) < 15
    assert 8 < float(corner.std()) < 25  # noise of 10-20 HU
    kidney, tumour = image[labels == 1], image[labels == 2]
    assert 40 < float(kidney.mean()) < 200  # medulla ~35 HU mixed with a 150-200 HU cortex
    assert 50 < float(np.median(tumour)) < 120
    assert float(np.percentile(kidney, 95)) > float(np.percentile(tumour, 95))  # enhanced cortex
    assert image.max() > 500  # spine
    body = image > -500
    fat_and_tissue = image[body]
    assert (fat_and_tissue < -50).mean() > 0.05  # a subcutaneous fat layer exists


def test_kits_organs_inside_body(phantom):
    image, labels, _ = phantom
    body = ndimage.binary_fill_holes(ndimage.binary_opening(image > -500, iterations=1))
    assert np.all(body[labels > 0])
    # two kidneys: on both sides of the mid-line (axis 2)
    kidney_cols = np.nonzero((labels > 0).any(axis=(0, 1)))[0]
    assert kidney_cols.min() < SMALL[2] / 2 < kidney_cols.max()
    assert ndimage.label(labels > 0)[1] >= 2


def test_kits_determinism_and_variation(phantom):
    image, labels, affine = phantom
    image2, labels2, affine2 = make_kits_phantom(SMALL, SPACING, seed=0)
    np.testing.assert_array_equal(image, image2)
    np.testing.assert_array_equal(labels, labels2)
    other_image, other_labels, _ = make_kits_phantom(SMALL, SPACING, seed=1)
    assert not np.array_equal(labels, other_labels)
    assert np.abs(image - other_image).mean() > 5
    generator_result = make_kits_phantom(SMALL, SPACING, seed=np.random.default_rng(0))
    np.testing.assert_array_equal(generator_result[1], labels)


@pytest.mark.parametrize("seed", range(5))
def test_kits_every_case_has_kidney_and_tumour(seed):
    _, labels, _ = make_kits_phantom((24, 48, 48), (3.0, 1.0, 1.0), seed=seed)
    counts = np.bincount(labels.ravel(), minlength=3)
    assert counts[1] > 100 and counts[2] > 5


def test_kits_invalid_arguments(tmp_path):
    with pytest.raises(ConfigurationError, match="shape"):
        make_kits_phantom((64, 128))
    with pytest.raises(ConfigurationError, match="spacing"):
        make_kits_phantom(SMALL, (3.0, 0.0, 0.8))
    with pytest.raises(ConfigurationError, match="unlabeled"):
        write_kits_dataset(str(tmp_path), n_cases=2, unlabeled=3)


def test_write_kits_dataset_full_size_timing(tmp_path):
    start = time.perf_counter()
    cases = write_kits_dataset(str(tmp_path), n_cases=10, shape=(64, 128, 128), seed=0, unlabeled=2)
    elapsed = time.perf_counter() - start
    print(f"\nwrite_kits_dataset: 10 cases of 64x128x128 in {elapsed:.2f} s")
    assert elapsed < 60
    assert cases == [f"case_{i:05d}" for i in range(10)]
    for i, case in enumerate(cases):
        files = sorted(os.listdir(tmp_path / case))
        assert files == (["imaging.nii.gz", "segmentation.nii.gz"] if i < 8 else ["imaging.nii.gz"])
    img = nib.load(str(tmp_path / cases[3] / "imaging.nii.gz"))
    assert img.get_data_dtype() == np.int16 and img.shape == (64, 128, 128)
    np.testing.assert_allclose(img.header.get_zooms(), SPACING, rtol=1e-6)
    ref_image, ref_labels, ref_affine = make_kits_phantom(seed=np.random.SeedSequence(0).spawn(10)[3])
    np.testing.assert_array_equal(np.asarray(img.dataobj), np.rint(ref_image))
    np.testing.assert_allclose(img.affine, ref_affine, atol=1e-4)
    seg = nib.load(str(tmp_path / cases[3] / "segmentation.nii.gz"))
    np.testing.assert_array_equal(np.asarray(seg.dataobj), ref_labels)


def test_write_kits_dataset_without_segmentation(tmp_path):
    cases = write_kits_dataset(str(tmp_path), n_cases=2, shape=(8, 16, 16), with_segmentation=False)
    interface = NIFTI_interface(classes=3)
    assert interface.initialize(str(tmp_path)) == cases
    assert not any(interface.has_segmentation(c) for c in cases)


# ----------------------------------------------------------------------------- 2D
def test_2d_phantom_properties():
    image, mask = make_2d_phantom((96, 80), seed=3)
    assert image.shape == mask.shape == (96, 80)
    assert image.dtype == np.uint8 and mask.dtype == np.uint8
    assert set(np.unique(mask)) == {0, 1, 2}
    means = [image[mask == c].mean() for c in range(3)]
    assert means[0] < means[1] < means[2]  # background < cytoplasm < nucleus
    np.testing.assert_array_equal(make_2d_phantom((96, 80), seed=3)[0], image)
    assert not np.array_equal(make_2d_phantom((96, 80), seed=4)[1], mask)
    image16, mask16 = make_2d_phantom((96, 80), seed=3, bits=16)
    np.testing.assert_array_equal(mask16, mask)
    assert image16.dtype == np.uint16 and image16.max() > 255
    rgb, _ = make_2d_phantom((96, 80), seed=3, rgb=True)
    assert rgb.shape == (96, 80, 3) and rgb.dtype == np.uint8
    nucleus, background = rgb[mask == 2].mean(axis=0), rgb[mask == 0].mean(axis=0)
    assert nucleus.sum() < background.sum() and nucleus[2] > nucleus[1]  # purple on pale pink


def test_write_image_dataset_through_interface(tmp_path):
    cases = write_image_dataset(str(tmp_path), n_cases=4, shape=(48, 48), seed=2, rgb=True)
    interface = Image_interface(classes=3, img_type="rgb")
    assert interface.initialize(str(tmp_path)) == cases
    image, _ = interface.load_image(cases[2])
    reference, mask = make_2d_phantom((48, 48), seed=np.random.SeedSequence(2).spawn(4)[2], rgb=True)
    np.testing.assert_array_equal(image, reference)
    np.testing.assert_array_equal(interface.load_segmentation(cases[2]), mask)
    with pytest.raises(ConfigurationError, match="bits=16"):
        write_image_dataset(str(tmp_path / "x"), bits=16, img_format="jpg")


# ----------------------------------------------------------------------------- MNI152 (real)
def _nilearn_available() -> bool:
    return importlib.util.find_spec("nilearn") is not None


@pytest.mark.skipif(not _nilearn_available(), reason="nilearn (which ships the MNI152 files) is not installed")
def test_mni152_case_through_nifti_interface(tmp_path):
    source = load_mni152()
    assert source["t1"].shape == (197, 233, 189)
    assert write_mni152_dataset(tmp_path, downsample=4) == ["mni152"]
    interface = NIFTI_interface(classes=4)
    assert interface.initialize(str(tmp_path)) == ["mni152"]
    image, extended = interface.load_image("mni152")
    labels = interface.load_segmentation("mni152")
    assert image.shape == labels.shape == (50, 59, 48)  # ceil(197/4), ceil(233/4), ceil(189/4)
    assert image.dtype == np.float32 and labels.dtype == np.uint8
    expected = np.diag([4.0, 4.0, 4.0, 1.0])
    expected[:3, 3] = (-98.0, -134.0, -72.0)
    np.testing.assert_allclose(extended["affine"], expected, atol=1e-4)
    np.testing.assert_allclose(extended["affine"][:3, 3], source["t1"].affine[:3, 3])
    assert extended["spacing"] == (4.0, 4.0, 4.0)
    assert (extended["qform_code"], extended["sform_code"]) == (0, 2)  # as in the template
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    counts = np.bincount(labels.ravel(), minlength=4)[1:]
    fractions = counts / counts.sum()
    # offline_data.md at 1 mm: CSF 160k, GM 1.09M, WM 636k of 1.887M brain voxels
    np.testing.assert_allclose(fractions, [0.085, 0.578, 0.337], atol=0.03)
    # brain voxels keep about 1/64 of the 1.887 M 1 mm brain voxels
    assert abs(counts.sum() - 1.887e6 / 64) / (1.887e6 / 64) < 0.05
    class_means = [image[labels == c].mean() for c in (1, 2, 3)]
    assert class_means[0] < class_means[1] < class_means[2]  # CSF < GM < WM on T1
    assert image[labels == 0].mean() < class_means[0]
