"""Data_IO: validation, label mapping, safe names, backups, cleanup."""

import json
import os

import numpy as np
import pytest
from conftest import MemoryIO

from miseg.data_loading.data_io import Data_IO, backup_evaluation, backup_history, create_directories
from miseg.data_loading.sample import Sample
from miseg.errors import (
    ConfigurationError,
    DataError,
    LabelError,
    MissingSegmentationError,
    ShapeMismatchError,
    UnsafeIndexError,
)
from miseg.evaluation.metrics import case_metrics
from miseg.processing.preprocessor import Preprocessor


def _volume(seed=0, shape=(8, 8, 8)):
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape).astype(np.float32), rng.integers(0, 3, size=shape).astype(np.uint8)


def test_sample_loader_builds_channels_last_sample_with_geometry():
    img, seg = _volume()
    dio = Data_IO(MemoryIO({"a": (img, seg)}), "unused")
    sample = dio.sample_loader("a")
    assert sample.shape == (8, 8, 8, 1)
    assert sample.seg_data.shape == (8, 8, 8, 1)
    assert sample.spacing == (2.0, 1.0, 1.0)
    np.testing.assert_array_equal(sample.seg_data[..., 0], seg)


def test_seed_is_per_instance_and_settable():
    seeds = {Data_IO(MemoryIO({}), "x").seed for _ in range(5)}
    assert len(seeds) > 1
    assert Data_IO(MemoryIO({}), "x", seed=42).seed == 42


def test_prediction_only_case_is_valid_but_segmentation_request_names_case():
    img, _ = _volume()
    dio = Data_IO(MemoryIO({"nolabel": (img, None)}), "x")
    assert dio.sample_loader("nolabel", load_seg=False).seg_data is None
    with pytest.raises(MissingSegmentationError, match="nolabel"):
        dio.sample_loader("nolabel")
    assert not dio.has_segmentation("nolabel")


def test_out_of_range_labels_load_but_fail_where_classes_matter():
    img, seg = _volume()
    seg = seg.astype(np.int32)
    seg[0, 0, 0] = 7
    seg[1, 1, 1] = 300  # must not wrap around in a uint8 cast
    dio = Data_IO(MemoryIO({"c1": (img, seg)}), "x")
    sample = dio.sample_loader("c1")  # MIScnn loads such cases; so does miseg
    np.testing.assert_array_equal(sample.seg_data[..., 0], seg)
    pp = Preprocessor(dio, 1, data_aug=None, patch_shape=(4, 4, 4))
    with pytest.raises(LabelError, match=r"c1.*\[7, 300\].*classes=3"):
        pp.run(["c1"])  # one-hot encoding of a training batch
    with pytest.raises(LabelError, match=r"c1.*\[7, 300\].*classes=3"):
        pp.analysis_patchwise_grid(sample, training=True, data_aug=False)
    truth = sample.seg_data[..., 0]
    with pytest.raises(LabelError, match=r"c1.*\[7, 300\].*classes=3"):
        case_metrics(truth, np.zeros_like(truth), classes=3, metrics=["dice"], case="c1")
    assert len(case_metrics(truth, np.zeros_like(truth), classes=301, metrics=["dice"])) == 301


def test_label_mapping_remaps_masks():
    img, _ = _volume()
    seg = np.where(img > 0, 255, 0).astype(np.uint8)
    dio = Data_IO(MemoryIO({"m": (img, seg)}, classes=2), "x", label_mapping={0: 0, 255: 1})
    sample = dio.sample_loader("m")
    np.testing.assert_array_equal(sample.seg_data[..., 0], (img > 0).astype(np.uint8))
    bad = Data_IO(MemoryIO({"m": (img, seg)}, classes=2), "x", label_mapping={0: 0})
    with pytest.raises(LabelError, match="255"):
        bad.sample_loader("m")
    with pytest.raises(ConfigurationError, match="label_mapping"):
        Data_IO(MemoryIO({}, classes=2), "x", label_mapping={255: 5})


def test_non_integer_segmentation_rejected():
    img, seg = _volume()
    dio = Data_IO(MemoryIO({"f": (img, seg.astype(np.float32) + 0.5)}), "x")
    with pytest.raises(LabelError, match="not integer"):
        dio.sample_loader("f")


def test_nan_and_inf_in_image_rejected():
    img, seg = _volume()
    img = img.copy()
    img[1, 1, 1] = np.nan
    img[2, 2, 2] = np.inf
    dio = Data_IO(MemoryIO({"nan_case": (img, seg)}), "x")
    with pytest.raises(DataError, match=r"nan_case.*1 NaN and 1 Inf"):
        dio.sample_loader("nan_case")


def test_shape_mismatch_rejected():
    img, _ = _volume()
    dio = Data_IO(MemoryIO({"s": (img, np.zeros((8, 8, 7), np.uint8))}), "x")
    with pytest.raises(ShapeMismatchError, match=r"\(8, 8, 7\).*\(8, 8, 8\)"):
        dio.sample_loader("s")


def test_channel_count_and_dimensionality_errors():
    img, seg = _volume()
    two_channel = np.stack([img, img], axis=-1)
    with pytest.raises(DataError, match="channels=1"):
        Data_IO(MemoryIO({"c": (two_channel, seg)}), "x").sample_loader("c")
    with pytest.raises(DataError, match="3 channels"):
        Data_IO(MemoryIO({"c": (np.stack([img] * 3, -1), seg)}, channels=2), "x").sample_loader("c")
    with pytest.raises(DataError, match="not a 3D image"):
        Data_IO(MemoryIO({"c": (img[0], seg[0])}), "x").sample_loader("c")
    with pytest.raises(DataError, match="not a 2D image"):
        Data_IO(MemoryIO({"c": (img, seg)}, three_dim=False), "x").sample_loader("c")


def test_unsafe_indices_rejected(tmp_path):
    img, seg = _volume()
    dio = Data_IO(MemoryIO({"../x": (img, seg)}), "x", output_path=str(tmp_path / "out"),
                  batch_path=str(tmp_path / "b"))
    sample = dio.sample_loader("../x")
    sample.add_prediction(seg)
    with pytest.raises(UnsafeIndexError, match=r"\.\./x"):
        dio.save_prediction(sample)
    with pytest.raises(UnsafeIndexError):
        dio.backup_sample(sample)
    assert not (tmp_path / "x").exists()


def test_sample_backup_round_trip_without_pickle(tmp_path):
    img, seg = _volume()
    dio = Data_IO(MemoryIO({"case_1": (img, seg)}), "x", batch_path=str(tmp_path / "b"), seed=7)
    sample = dio.sample_loader("case_1")
    sample.extended["orig_crop_coords"] = [[0, 8], [1, 7], [0, 8]]
    sample.extended["affine"] = np.eye(4)
    sample.add_details({"slope": 1.0})
    dio.backup_sample(sample)
    names = sorted(os.listdir(tmp_path / "b"))
    assert names == ["7.case_1.json", "7.case_1.npz"]
    json.loads((tmp_path / "b" / "7.case_1.json").read_text())  # plain JSON
    with np.load(tmp_path / "b" / "7.case_1.npz", allow_pickle=False) as data:
        assert set(data.files) == {"img_data", "seg_data"}
    back = dio.sample_loader("case_1", backup=True)
    np.testing.assert_array_equal(back.img_data, sample.img_data)
    np.testing.assert_array_equal(back.seg_data, sample.seg_data)
    np.testing.assert_array_equal(back.affine, np.eye(4))
    assert back.extended["orig_crop_coords"] == [[0, 8], [1, 7], [0, 8]]
    assert back.details == {"slope": 1.0}
    assert back.spacing == (2.0, 1.0, 1.0)


def test_batches_and_cleanup_touch_only_own_files(tmp_path):
    batch_dir = tmp_path / "b"
    batch_dir.mkdir()
    (batch_dir / "user_notes.txt").write_text("keep me")
    (batch_dir / "12.batch_img.training.0.npz").write_bytes(b"other seed 12")
    dio = Data_IO(MemoryIO({}), "x", batch_path=str(batch_dir), seed=1)
    img = np.ones((2, 4, 4, 4, 1), np.float32)
    dio.backup_batches(img, img.astype(np.uint8), "training.0")
    dio.backup_batches(img, None, "prediction.0")
    np.testing.assert_array_equal(dio.batch_load("training.0"), img)
    np.testing.assert_array_equal(dio.batch_load("training.0", img=False), img)
    dio.batch_cleanup("training.0")
    assert not (batch_dir / "1.batch_img.training.0.npz").exists()
    dio.batch_cleanup()
    assert sorted(os.listdir(batch_dir)) == ["12.batch_img.training.0.npz", "user_notes.txt"]


def test_batch_dir_removed_only_when_empty(tmp_path):
    dio = Data_IO(MemoryIO({}), "x", batch_path=str(tmp_path / "b"), seed=3)
    dio.backup_batches(np.zeros((1, 2, 2, 1)), None, 0)
    dio.batch_cleanup()
    assert not (tmp_path / "b").exists()


def test_history_and_evaluation_writers(tmp_path):
    path = backup_history({"loss": [1.0, 0.5], "dice_soft": [0.1, 0.2]}, str(tmp_path / "ev"))
    lines = open(path).read().splitlines()
    assert lines == ["epoch\tloss\tdice_soft", "1\t1.0\t0.1", "2\t0.5\t0.2"]
    backup_evaluation(["sample_id", "dice_class-0"], str(tmp_path / "ev2"), start=True)
    backup_evaluation(["a", 0.5], str(tmp_path / "ev2"))
    assert open(tmp_path / "ev2" / "detailed_validation.tsv").read() == "sample_id\tdice_class-0\na\t0.5\n"
    deep = create_directories(str(tmp_path / "e"), "fold_0")
    assert os.path.isdir(deep) and deep.endswith("fold_0")


def test_sample_extended_is_never_shared():
    a = Sample("a", np.zeros((4, 4)), 1, 2)
    b = Sample("b", np.zeros((4, 4)), 1, 2)
    a.extended["original_shape"] = (4, 4)
    assert "original_shape" not in b.extended
    shared = {"spacing": (1.0, 1.0)}
    c = Sample("c", np.zeros((4, 4)), 1, 2, extended=shared)
    c.extended["x"] = 1
    assert shared == {"spacing": (1.0, 1.0)}


def test_atomic_writes_get_normal_permissions(tmp_path):
    path = backup_history({"loss": [1.0]}, str(tmp_path))
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["history.tsv"]  # no temporary files left
