"""Tests of Image_interface: 8/16-bit, RGB, TIFF, palette and 16-bit label maps, predictions."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from miseg.data_loading.interfaces import get_data_interface_from_file_term
from miseg.data_loading.interfaces.image_io import Image_interface
from miseg.data_loading.sample import Sample
from miseg.datasets import make_2d_phantom, write_image_dataset
from miseg.errors import (
    ConfigurationError,
    CorruptFileError,
    DataError,
    DataNotFoundError,
    LabelError,
    MissingSegmentationError,
)


def _case(root, name, image, mask=None, fmt="png", mask_name=None):
    case_dir = root / name
    case_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(case_dir / f"imaging.{fmt}")
    if mask is not None:
        target = case_dir / (mask_name or f"segmentation.{fmt}")
        (mask if isinstance(mask, Image.Image) else Image.fromarray(mask)).save(target)
    return case_dir


def _label_sample(index, labels, classes=3):
    sample = Sample(index, np.zeros(labels.shape, np.float32), 1, classes, {}, three_dim=False)
    sample.add_prediction(labels.astype(np.int64))
    return sample


def test_grayscale_8_bit(tmp_path):
    image, mask = make_2d_phantom((40, 48), seed=0)
    _case(tmp_path, "a", image, mask)
    interface = Image_interface(classes=3)
    assert (interface.channels, interface.three_dim) == (1, False)
    assert interface.initialize(str(tmp_path)) == ["a"]
    loaded, extended = interface.load_image("a")
    assert loaded.dtype == np.uint8 and loaded.shape == (40, 48)  # Pillow (rows, cols)
    np.testing.assert_array_equal(loaded, image)
    assert extended == {"type": "image", "spacing": (1.0, 1.0)}
    np.testing.assert_array_equal(interface.load_segmentation("a"), mask)
    assert set(np.unique(mask)) == {0, 1, 2}


@pytest.mark.parametrize("fmt", ["png", "tif"])
def test_grayscale_16_bit_values_kept(tmp_path, fmt):
    image, mask = make_2d_phantom((32, 32), seed=1, bits=16)
    assert image.max() > 255
    _case(tmp_path, "a", image, mask, fmt=fmt)
    interface = Image_interface(img_format=fmt)
    interface.initialize(str(tmp_path))
    loaded, _ = interface.load_image("a")
    assert loaded.dtype == np.uint16
    np.testing.assert_array_equal(loaded, image)


def test_rgb_image_and_luminance(tmp_path):
    image, mask = make_2d_phantom((30, 34), seed=2, rgb=True)
    _case(tmp_path, "a", image, mask)
    rgb = Image_interface(classes=3, img_type="rgb")
    assert rgb.channels == 3
    rgb.initialize(str(tmp_path))
    loaded, _ = rgb.load_image("a")
    assert loaded.shape == (30, 34, 3) and loaded.dtype == np.uint8
    np.testing.assert_array_equal(loaded, image)
    gray = Image_interface(classes=3, img_type="grayscale")
    gray.initialize(str(tmp_path))
    luminance = image.astype(float) @ np.array([0.299, 0.587, 0.114])  # ITU-R 601-2
    assert np.abs(gray.load_image("a")[0].astype(float) - luminance).max() <= 1.0
    # grayscale files become 3 equal channels for an RGB interface, 16-bit values kept
    image16, _ = make_2d_phantom((20, 20), seed=3, bits=16)
    _case(tmp_path, "b", image16)
    loaded16, _ = rgb.load_image("b")
    assert loaded16.shape == (20, 20, 3)
    np.testing.assert_array_equal(loaded16[..., 2], image16)


def test_palette_label_png_keeps_indices(tmp_path):
    labels = np.zeros((16, 16), np.uint8)
    labels[4:12, 4:12] = 1
    labels[6:9, 6:9] = 2
    mask = Image.fromarray(labels, mode="P")
    palette = [0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 9)  # red/green colours
    mask.putpalette(palette)
    _case(tmp_path, "a", np.zeros((16, 16), np.uint8), mask)
    interface = Image_interface(classes=3)
    interface.initialize(str(tmp_path))
    assert Image.open(tmp_path / "a" / "segmentation.png").mode == "P"
    np.testing.assert_array_equal(interface.load_segmentation("a"), labels)


def test_16_bit_label_map_preserved(tmp_path):
    labels = (np.arange(24 * 24).reshape(24, 24) * 7 % 1000).astype(np.uint16)
    _case(tmp_path, "a", np.zeros((24, 24), np.uint8), labels)
    interface = Image_interface(classes=1000)
    interface.initialize(str(tmp_path))
    loaded = interface.load_segmentation("a")
    assert loaded.max() == 997
    np.testing.assert_array_equal(loaded, labels)


def test_rgb_masks(tmp_path):
    labels = np.random.default_rng(0).integers(0, 3, (10, 10)).astype(np.uint8)
    _case(tmp_path, "grey", np.zeros((10, 10), np.uint8), np.repeat(labels[..., None], 3, axis=-1))
    coloured = np.zeros((10, 10, 3), np.uint8)
    coloured[..., 0] = labels * 100
    _case(tmp_path, "colour", np.zeros((10, 10), np.uint8), coloured)
    interface = Image_interface(classes=3)
    interface.initialize(str(tmp_path))
    np.testing.assert_array_equal(interface.load_segmentation("grey"), labels)
    with pytest.raises(LabelError, match="colour"):
        interface.load_segmentation("colour")


@pytest.mark.parametrize("classes, dtype, mode", [(3, np.uint8, "L"), (300, np.uint16, "I;16")])
def test_prediction_roundtrip(tmp_path, classes, dtype, mode):
    image, mask = make_2d_phantom((32, 40), seed=4)
    _case(tmp_path / "in", "a", image, mask)
    interface = Image_interface(classes=classes)
    interface.initialize(str(tmp_path / "in"))
    labels = mask.astype(np.int64) * (1 if classes == 3 else 140)
    out = tmp_path / "out" / "deeper"
    interface.save_prediction(_label_sample("a", labels, classes), str(out))
    assert os.listdir(out) == ["a.png"]
    with Image.open(out / "a.png") as written:
        assert written.mode == mode and written.size == (40, 32)
    loaded = interface.load_prediction("a", str(out))
    assert loaded.dtype == dtype
    np.testing.assert_array_equal(loaded, labels)


def test_prediction_of_jpeg_data_is_lossless_png(tmp_path):
    write_image_dataset(str(tmp_path / "in"), n_cases=2, shape=(32, 32), seed=5, img_format="jpg", rgb=True)
    assert sorted(os.listdir(tmp_path / "in" / "case_00000")) == ["imaging.jpg", "segmentation.png"]
    interface = Image_interface(classes=3, img_type="rgb", img_format="jpg")
    assert interface.initialize(str(tmp_path / "in")) == ["case_00000", "case_00001"]
    mask = interface.load_segmentation("case_00000")  # falls back to the lossless PNG mask
    assert set(np.unique(mask)) <= {0, 1, 2}
    interface.save_prediction(_label_sample("case_00000", mask), str(tmp_path / "out"))
    assert os.listdir(tmp_path / "out") == ["case_00000.png"]
    np.testing.assert_array_equal(interface.load_prediction("case_00000", str(tmp_path / "out")), mask)


def test_activation_prediction_saved_as_npy(tmp_path):
    _case(tmp_path / "in", "a", np.zeros((8, 9), np.uint8))
    interface = Image_interface(classes=3)
    interface.initialize(str(tmp_path / "in"))
    out = str(tmp_path / "out")
    interface.save_prediction(_label_sample("a", np.ones((8, 9))), out)
    probs = np.random.default_rng(0).dirichlet(np.ones(3), size=(8, 9))
    sample = Sample("a", np.zeros((8, 9)), 1, 3, {}, three_dim=False)
    sample.add_prediction(probs, activation_output=True)
    interface.save_prediction(sample, out)
    assert os.listdir(out) == ["a.npy"]  # the older label image would shadow the new map
    loaded = interface.load_prediction("a", out)
    assert loaded.dtype == np.float32
    np.testing.assert_allclose(loaded, probs, rtol=1e-6)


def test_tiff_dataset_16_bit(tmp_path):
    cases = write_image_dataset(str(tmp_path), n_cases=3, shape=(24, 28), seed=6, img_format="tif", bits=16)
    interface = Image_interface(classes=3, img_format="tif", pattern=r"case_0000[12]")
    assert interface.initialize(str(tmp_path)) == cases[1:]
    image, _ = interface.load_image(cases[1])
    reference, mask = make_2d_phantom((24, 28), seed=np.random.SeedSequence(6).spawn(3)[1], bits=16)
    np.testing.assert_array_equal(image, reference)
    np.testing.assert_array_equal(interface.load_segmentation(cases[1]), mask)


def test_missing_segmentation_and_errors(tmp_path):
    _case(tmp_path, "a", np.zeros((8, 8), np.uint8))
    (tmp_path / "b").mkdir()
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(tmp_path / "b" / "imaging.png")
    raw = (tmp_path / "b" / "imaging.png").read_bytes()
    (tmp_path / "b" / "imaging.png").write_bytes(raw[: len(raw) // 2])
    interface = Image_interface()
    interface.initialize(str(tmp_path))
    assert not interface.has_segmentation("a")
    with pytest.raises(MissingSegmentationError, match="'a'"):
        interface.load_segmentation("a")
    with pytest.raises(CorruptFileError, match="imaging.png"):
        interface.load_image("b")
    with pytest.raises(DataNotFoundError):
        interface.load_prediction("a", str(tmp_path))
    with pytest.raises(DataNotFoundError, match="missing"):
        Image_interface().initialize(str(tmp_path / "missing"))
    (tmp_path / "c").mkdir()
    with pytest.raises(DataNotFoundError, match="'c'"):
        Image_interface().initialize(str(tmp_path))


def test_multi_frame_file_rejected(tmp_path):
    (tmp_path / "stack").mkdir()
    frames = [Image.fromarray(np.full((6, 6), v, np.uint8)) for v in (1, 2)]
    frames[0].save(tmp_path / "stack" / "imaging.tif", save_all=True, append_images=frames[1:])
    interface = Image_interface(img_format="tif")
    interface.initialize(str(tmp_path))
    with pytest.raises(DataError, match="2 frames"):
        interface.load_image("stack")


def test_configuration_errors():
    with pytest.raises(ConfigurationError, match="img_type"):
        Image_interface(img_type="rgba")
    with pytest.raises(ConfigurationError, match="img_format"):
        Image_interface(img_format="webp")
    assert Image_interface(img_format=".PNG").img_format == "png"


def test_file_termination():
    for term in (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff"):
        assert Image_interface.check_file_termination(term)
    assert not Image_interface.check_file_termination(".nii.gz")
    assert get_data_interface_from_file_term(".png") is Image_interface
