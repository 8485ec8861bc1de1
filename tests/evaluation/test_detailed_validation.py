"""Detailed validation: per-case/class tables for 2D and 3D, binary and multi-class."""

import os

os.environ.setdefault("MISEG_QUIET", "1")

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from miseg.data_loading.data_io import Data_IO
from miseg.data_loading.interfaces import Dictionary_interface
from miseg.errors import ConfigurationError, ShapeMismatchError
from miseg.evaluation import detailed_validation
from miseg.evaluation.detailed_validation import compute_dice


def make_data_io(three_dim, classes, n=4, seed=0, spacing=None):
    """Balls (3D) or discs (2D); with 3 classes an inner core is label 2."""
    rng = np.random.default_rng(seed)
    shape = (16, 16, 16) if three_dim else (16, 16)
    grid = np.indices(shape)
    cases = {}
    for k in range(n):
        centre = rng.integers(6, 10, size=len(shape))
        dist = np.sqrt(sum((g - c) ** 2 for g, c in zip(grid, centre)))
        seg = (dist <= rng.integers(3, 5)).astype(np.uint8)
        if classes == 3:
            seg[dist <= 1.5] = 2
        img = (seg + 0.2 * rng.standard_normal(shape)).astype(np.float32)
        details = {"spacing": spacing} if spacing is not None else None
        cases[f"c{k}"] = (img, seg, None, details)
    interface = Dictionary_interface(cases, channels=1, classes=classes, three_dim=three_dim)
    return Data_IO(interface, "-", seed=1)


class Preprocessor:
    def __init__(self, data_io):
        self.data_io = data_io


class StubModel:
    """Predicts the truth shifted by one voxel along axis 0 (case 'c0' is predicted exactly)."""

    def __init__(self, data_io, classes, break_shape=False):
        self.preprocessor = Preprocessor(data_io)
        self.classes = classes
        self.break_shape = break_shape
        self.calls = []

    def predict(self, samples, return_output=False, activation_output=False):
        assert return_output and not activation_output
        self.calls += list(samples)
        out = []
        for index in samples:
            truth = self.preprocessor.data_io.sample_loader(index).seg_data[..., 0]
            pred = truth if index == "c0" else np.roll(truth, 1, axis=0)
            out.append(pred[:-1] if self.break_shape else pred.astype(np.int64))
        return out


def expected(model, index, classes, spacing):
    truth = model.preprocessor.data_io.sample_loader(index).seg_data[..., 0]
    pred = model.predict([index], return_output=True)[0]
    dice, hd = [], []
    for c in range(classes):
        t, p = truth == c, pred == c
        denom = t.sum() + p.sum()
        dice.append(1.0 if denom == 0 else 2 * (t & p).sum() / denom)
        hd.append(_hausdorff(t, p, spacing))
    return dice, hd


def _hausdorff(t, p, spacing):
    """Independent Hausdorff distance between mask surfaces (max of directed maxima)."""
    if not t.any() and not p.any():
        return 0.0
    if not t.any() or not p.any():
        return float("nan")

    def surface(mask):
        return mask & ~ndimage.binary_erosion(mask, ndimage.generate_binary_structure(mask.ndim, 1),
                                              border_value=0)

    st, sp = surface(t), surface(p)
    d_to_p = ndimage.distance_transform_edt(~sp, sampling=spacing)[st]
    d_to_t = ndimage.distance_transform_edt(~st, sampling=spacing)[sp]
    return float(max(d_to_p.max(), d_to_t.max()))


def read_tsv(path):
    return pd.read_csv(path, sep="\t", dtype={"sample_id": str})


@pytest.mark.parametrize("three_dim,classes,spacing", [
    (False, 2, (1.0, 0.5)),
    (True, 3, (2.0, 1.0, 1.0)),
    (True, 2, None),
    (False, 3, None),
])
def test_tables_match_independent_metrics(tmp_path, three_dim, classes, spacing):
    data_io = make_data_io(three_dim, classes, spacing=spacing)
    model = StubModel(data_io, classes)
    cases = data_io.get_indiceslist()
    table = detailed_validation(cases, model, str(tmp_path), metrics=["dice", "hd"])
    wide = read_tsv(tmp_path / "detailed_validation.tsv").set_index("sample_id")
    dice_columns = [f"dice_class-{c}" for c in range(classes)]
    assert wide.columns.tolist() == dice_columns + [f"hd_class-{c}" for c in range(classes)]
    assert wide.index.tolist() == cases
    for index in cases:
        dice, hd = expected(model, index, classes, spacing or (1.0,) * (3 if three_dim else 2))
        assert wide.loc[index, dice_columns].tolist() == pytest.approx(dice)
        assert wide.loc[index, [f"hd_class-{c}" for c in range(classes)]].tolist() == pytest.approx(hd, nan_ok=True)
    assert wide.loc["c0", dice_columns].tolist() == [1.0] * classes
    long = read_tsv(tmp_path / "detailed_validation.long.tsv")
    assert len(long) == len(cases) * classes and long.columns.tolist() == ["sample_id", "class", "dice", "hd"]
    pd.testing.assert_frame_equal(long.reset_index(drop=True), table.reset_index(drop=True),
                                  check_dtype=False)
    summary = read_tsv(tmp_path / "detailed_validation.summary.tsv")
    for c in range(classes):
        row = summary[(summary["class"] == c) & (summary["metric"] == "dice")].iloc[0]
        values = wide[f"dice_class-{c}"].to_numpy()
        assert row["mean"] == pytest.approx(values.mean())
        assert row["median"] == pytest.approx(np.median(values))
        assert row["ci_low"] <= row["mean"] <= row["ci_high"]


def test_absent_class_scores_one_not_nan(tmp_path):
    data_io = make_data_io(False, 3, n=2)
    # Remove label 2 from case c0 entirely: absent from truth and (exact) prediction.
    img, seg, _, _ = data_io.interface.dictionary["c0"]
    data_io.interface.dictionary["c0"] = (img, np.where(seg == 2, 1, seg).astype(np.uint8), None, None)
    detailed_validation(["c0"], StubModel(data_io, 3), str(tmp_path), metrics=["dice"])
    wide = read_tsv(tmp_path / "detailed_validation.tsv")
    assert wide.loc[0, "dice_class-2"] == 1.0
    assert compute_dice(np.array([0, 1]), np.array([0, 1]), 3) == [1.0, 1.0, 1.0]


def test_default_metrics_and_figures(tmp_path):
    data_io = make_data_io(True, 2, n=4, spacing=(1.0, 1.0, 2.0))
    detailed_validation(data_io.get_indiceslist(), StubModel(data_io, 2), str(tmp_path),
                        draw_figures=True)
    wide = read_tsv(tmp_path / "detailed_validation.tsv")
    for metric in ("dice", "iou", "precision", "recall", "hd95", "assd"):
        assert f"{metric}_class-1" in wide.columns
    assert os.path.isfile(tmp_path / "detailed_validation.boxplots.png")
    overlays = sorted(f.split(".")[1] for f in os.listdir(tmp_path) if f.startswith("overlay."))
    assert overlays == ["best", "median", "worst"]
    assert os.path.isfile(tmp_path / "overlay.best.c0.png")  # c0 is predicted exactly


def test_shape_mismatch_is_reported(tmp_path):
    data_io = make_data_io(False, 2, n=2)
    with pytest.raises(ShapeMismatchError, match="c0"):
        detailed_validation(["c0"], StubModel(data_io, 2, break_shape=True), str(tmp_path))


def test_unknown_metric_fails_before_predicting(tmp_path):
    data_io = make_data_io(False, 2, n=2)
    model = StubModel(data_io, 2)
    with pytest.raises(ConfigurationError, match="unknown metric"):
        detailed_validation(["c0"], model, str(tmp_path / "e"), metrics=["dice", "dcie"])
    assert model.calls == [] and not (tmp_path / "e").exists()


def test_with_a_real_3d_network(tmp_path):
    from miseg.neural_network.architecture.unet.standard import Architecture
    from miseg.neural_network.model import Neural_Network
    from miseg.processing.preprocessor import Preprocessor as RealPreprocessor

    data_io = make_data_io(True, 3, n=2, spacing=(1.0, 1.0, 1.5))
    pp = RealPreprocessor(data_io, batch_size=1, data_aug=None, analysis="patchwise-crop",
                          patch_shape=(8, 8, 8))
    model = Neural_Network(pp, architecture=Architecture(n_filters=2, depth=1), workers=0)
    table = detailed_validation(["c0", "c1"], model, str(tmp_path), metrics=["dice", "recall"])
    assert sorted(table["class"].unique()) == [0, 1, 2]
    for index in ("c0", "c1"):
        pred = model.predict([index], return_output=True)[0]
        truth = data_io.sample_loader(index).seg_data[..., 0]
        assert pred.shape == truth.shape
        row = table[(table["sample_id"] == index) & (table["class"] == 1)].iloc[0]
        t, p = truth == 1, pred == 1
        denom = t.sum() + p.sum()
        assert row["dice"] == pytest.approx(1.0 if denom == 0 else 2 * (t & p).sum() / denom)
        assert row["recall"] == pytest.approx((t & p).sum() / t.sum())
