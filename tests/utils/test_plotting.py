"""Tests of miseg.utils.plotting and miseg.utils.visualizer (files written and readable)."""

from __future__ import annotations

import os
import subprocess
import sys

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from miseg.data_loading.sample import Sample
from miseg.errors import ConfigurationError, DataError, ShapeMismatchError
from miseg.utils.plotting import (
    plot_case_overlays,
    plot_fold_curves,
    plot_metric_boxplots,
    plot_overlays,
    plot_validation,
    visualize_frequencies_1D,
    visualize_pixel_dist,
)
from miseg.utils.visualizer import (
    normalize,
    overlay_segmentation_greyscale,
    visualize_prediction_overlap_3D,
    visualize_samples,
)

HISTORY = {
    "loss": [1.0, 0.6, 0.4],
    "val_loss": [1.1, 0.8, 0.7],
    "dice_soft": [0.2, 0.5, 0.7],
    "val_dice_soft": [0.1, 0.4, 0.6],
    "iou_metric": [0.1, 0.3, 0.5],
    "val_iou_metric": [0.1, 0.2, 0.4],
}


def assert_png(path) -> np.ndarray:
    assert os.path.isfile(path) and os.path.getsize(path) > 0
    pixels = mpimg.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 10 and pixels.shape[1] > 10
    return pixels


def dice_soft(y_true, y_pred):
    return 0.0


class NamedMetric:
    name = "iou_metric"


# ----------------------------------------------------------------------------- curves
def test_plot_validation_names_files_like_miscnn(tmp_path):
    paths = plot_validation(HISTORY, [dice_soft, NamedMetric()], tmp_path / "fold_0")
    names = [os.path.basename(p) for p in paths]
    assert names == ["validation.loss.png", "validation.dice_soft.png",
                     "validation.iou_metric.png"]
    for p in paths:
        assert_png(p)
    assert sorted(os.listdir(tmp_path / "fold_0")) == sorted(names)  # no temp files left


def test_plot_validation_skips_missing_metrics_with_warning(tmp_path):
    history = {"loss": [1.0, 0.5], "val_loss": [1.0, 0.9], "acc": [0.1, 0.2]}

    class KerasHistory:
        def __init__(self, h):
            self.history = h

    with pytest.warns(UserWarning) as record:
        paths = plot_validation(KerasHistory(history), ["absent", "acc"], tmp_path)
    messages = " ".join(str(w.message) for w in record)
    assert "absent" in messages and "val_acc" in messages
    assert [os.path.basename(p) for p in paths] == ["validation.loss.png", "validation.acc.png"]
    assert not (tmp_path / "validation.absent.png").exists()


def test_plot_fold_curves(tmp_path):
    histories = [HISTORY, {"loss": [0.9, 0.5], "val_loss": [1.0, 0.6]}]
    path = plot_fold_curves(histories, tmp_path / "folds.png", metrics=("loss", "dice_soft"))
    assert path == str(tmp_path / "folds.png")
    assert_png(path)
    with pytest.raises(ConfigurationError):
        plot_fold_curves([], tmp_path / "x.png")


def test_plotting_leaves_pyplot_untouched(tmp_path):
    code = (
        "import sys\n"
        "from miseg.utils.plotting import plot_validation\n"
        f"plot_validation({{'loss': [1, 0.5], 'val_loss': [1, 0.7]}}, [], {str(tmp_path)!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "validation.loss.png").is_file()


# --------------------------------------------------------------------------- box plots
def long_table():
    return pd.DataFrame({
        "sample_id": ["a", "a", "b", "b", "c", "c"],
        "class": [1, 2, 1, 2, 1, 2],
        "dice": [0.9, 0.4, 0.5, 0.6, 0.7, 0.1],
        "hd95": [1.0, 5.0, 9.0, np.nan, 2.0, 3.0],
    })


def test_plot_metric_boxplots(tmp_path):
    path = plot_metric_boxplots(long_table(), tmp_path / "box.png")
    assert_png(path)
    with pytest.warns(UserWarning, match="nsd"):
        plot_metric_boxplots(long_table(), tmp_path / "box2.png", metrics=("dice", "nsd"))
    with pytest.raises(ConfigurationError, match="nsd"):
        plot_metric_boxplots(long_table(), tmp_path / "box3.png", metrics=("nsd",))


# ---------------------------------------------------------------------------- overlays
def volume_case(shift: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    image = rng.random((16, 16, 8, 1))
    truth = np.zeros((16, 16, 8, 1), int)
    truth[4:10, 5:11, 3:6] = 1
    truth[11:14, 2:5, 5:7] = 2
    pred = np.roll(truth, shift, axis=0)
    return image, truth, pred


def test_plot_overlays_3d_and_2d(tmp_path):
    image, truth, pred = volume_case(1)
    p3 = plot_overlays(image, truth, pred, tmp_path / "ov3.png", title="case")
    assert_png(p3)
    p2 = plot_overlays(image[:, :, 4, 0], truth[:, :, 4, 0], None, tmp_path / "ov2.png")
    assert_png(p2)
    with pytest.raises(ConfigurationError, match="slice_index"):
        plot_overlays(image, truth, pred, tmp_path / "bad.png", slice_index=8)
    with pytest.raises(ShapeMismatchError):
        plot_overlays(image, truth, pred[:8], tmp_path / "bad.png")


def test_plot_overlays_default_slice_has_most_foreground(tmp_path):
    from miseg.utils import plotting

    truth = np.zeros((6, 6, 5), int)
    truth[1:3, 1:3, 1] = 1
    truth[0:5, 0:5, 3] = 1
    assert plotting._pick_slice(truth, None, 2) == 3
    assert plotting._pick_slice(np.zeros_like(truth), truth, 2) == 3
    assert plotting._pick_slice(np.zeros_like(truth), None, 2) == 2


def test_plot_case_overlays_best_median_worst(tmp_path):
    cases = {cid: volume_case(shift, seed) for seed, (cid, shift) in
             enumerate([("a", 0), ("b", 1), ("c", 3), ("d", 2)])}
    df = pd.DataFrame({
        "sample_id": ["a", "a", "b", "b", "c", "c", "d", "d", "e", "e"],
        "class": [0, 1] * 5,
        "dice": [0.0, 1.0, 0.0, 0.8, 0.0, 0.2, 0.0, 0.5, 0.0, 0.99],  # "e" has no images
        "hd95": [0.0, 0.0, 0.0, 1.0, 0.0, 3.0, 0.0, 2.0, 0.0, 0.0],
    })
    paths = plot_case_overlays(cases, df, tmp_path, metric="dice")
    assert {k: os.path.basename(v) for k, v in paths.items()} == {
        "best": "overlay.best.a.png", "median": "overlay.median.d.png",
        "worst": "overlay.worst.c.png"}
    for p in paths.values():
        assert_png(p)
    by_distance = plot_case_overlays(cases, df, tmp_path / "hd", metric="hd95")
    assert os.path.basename(by_distance["best"]) == "overlay.best.a.png"
    assert os.path.basename(by_distance["worst"]) == "overlay.worst.c.png"
    with pytest.raises(ConfigurationError, match="nsd"):
        plot_case_overlays(cases, df, tmp_path, metric="nsd")


# ----------------------------------------------------------------------- data exploration
def test_visualize_pixel_dist(tmp_path):
    rng = np.random.default_rng(0)
    images = {"x": rng.normal(500, 100, (8, 8, 8, 1)), "y": rng.normal(1200, 300, (8, 8, 8, 1))}
    seen = []

    def functor(index):
        seen.append(index)
        return Sample(index, images[index], 1, 2, three_dim=True)

    path = visualize_pixel_dist(["x", "y"], functor, name="hist", out_dir=tmp_path)
    assert path == str(tmp_path / "hist.png") and seen == ["x", "y"]
    assert_png(path)
    assert_png(visualize_pixel_dist(["x"], images.__getitem__, name="h2", cutoff=False,
                                    out_dir=tmp_path, min=0, max=600))
    with pytest.raises(ConfigurationError):
        visualize_pixel_dist(["x"], functor, min=5, max=5, out_dir=tmp_path)


def test_visualize_frequencies_1d(tmp_path):
    sample = Sample("case_1", np.sin(np.arange(32) / 2.0)[:, None, None] * np.ones((32, 4, 4)),
                    1, 2, extended={"spacing": (0.5, 1, 1)}, three_dim=True)
    path = visualize_frequencies_1D(sample, tmp_path)
    assert os.path.basename(path) == "frequencies.case_1.png"
    assert_png(path)


# --------------------------------------------------------------------------- visualizer
def test_normalize():
    np.testing.assert_allclose(normalize(np.array([[1.0, 3.0], [5.0, np.nan]])),
                               [[0.0, 0.5], [1.0, 0.0]])
    assert not normalize(np.full((3, 3), 7.0)).any()


def test_overlay_segmentation_greyscale_blends_exactly():
    from matplotlib import colormaps

    vol = np.array([[0.0, 1.0], [2.0, 4.0]])[..., None]
    seg = np.array([[0, 1], [2, 0]])
    out = overlay_segmentation_greyscale(vol, seg, cm="viridis", alpha=0.25)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    grey = vol[..., 0] / 4.0 * 255.0
    np.testing.assert_array_equal(out[0, 0], [0, 0, 0])
    np.testing.assert_array_equal(out[1, 1], [255, 255, 255])
    for (i, j), label in (((0, 1), 1), ((1, 0), 2)):
        colour = np.asarray(colormaps["viridis"](label / 3)[:3]) * 255
        expected = np.rint(0.75 * grey[i, j] + 0.25 * colour)
        np.testing.assert_array_equal(out[i, j], expected)
    with pytest.raises(ShapeMismatchError):
        overlay_segmentation_greyscale(vol, np.zeros((3, 2), int))
    with pytest.raises(ConfigurationError, match="alpha"):
        overlay_segmentation_greyscale(vol, seg, alpha=2)


def make_sample(index, three_dim=True, seg=True, pred=True):
    shape = (12, 10, 6) if three_dim else (12, 10)
    rng = np.random.default_rng(5)
    s = Sample(index, rng.random(shape), 1, 3, three_dim=three_dim)
    labels = np.zeros(shape, int)
    labels[2:6, 3:7] = 1
    labels[7:10, 1:4] = 2
    if seg:
        s.add_segmentation(labels)
    if pred:
        s.add_prediction(np.roll(labels, 1, axis=0))
    return s


def test_visualize_samples_gif_png_and_montage(tmp_path):
    paths = visualize_samples([make_sample("3"), make_sample("case_7", three_dim=False)],
                              out_dir=tmp_path, mask_seg=True, mask_pred=True)
    assert [os.path.basename(p) for p in paths] == ["visualization.case_00003.gif",
                                                    "visualization.case_case_7.png"]
    with Image.open(paths[0]) as gif:
        assert gif.format == "GIF" and gif.n_frames == 6
        width, height = gif.size
        assert width > 2 * 128 and height > 128  # two upscaled panels plus the header
    assert_png(paths[1])
    montage = visualize_samples([make_sample("3")], out_dir=tmp_path / "m", mask_pred=False,
                                mask_seg=True, fmt="png")
    assert os.path.basename(montage[0]) == "visualization.case_00003.png"
    assert_png(montage[0])


def test_visualize_samples_with_data_io_and_preprocessing(tmp_path):
    class FakeDataIO:
        def __init__(self):
            self.calls = []

        def sample_loader(self, index, load_seg=True, load_pred=False, backup=False):
            self.calls.append((index, load_seg, load_pred))
            return make_sample(index, three_dim=False, seg=load_seg, pred=load_pred)

    class Flip:
        def preprocessing(self, sample, training=True):
            sample.img_data = sample.img_data[::-1]
            if training:
                sample.seg_data = sample.seg_data[::-1]

    class FakePreprocessor:
        subfunctions = [Flip()]

    dio = FakeDataIO()
    paths = visualize_samples(["12"], out_dir=tmp_path, data_io=dio, mask_seg=True,
                              mask_pred=False)
    assert dio.calls == [("12", True, False)]
    assert_png(paths[0])
    with pytest.warns(UserWarning, match="preprocessing"):
        visualize_samples(["13"], out_dir=tmp_path, data_io=dio, mask_seg=True,
                          preprocessing=FakePreprocessor())
    assert (tmp_path / "visualization.case_00013.png").is_file()
    with pytest.raises(ConfigurationError, match="data_io"):
        visualize_samples(["12"], out_dir=tmp_path)
    with pytest.raises(DataError, match="segmentation"):
        visualize_samples([make_sample("1", seg=False)], out_dir=tmp_path, mask_seg=True)
    with pytest.raises(ConfigurationError, match="fmt"):
        visualize_samples([make_sample("1")], out_dir=tmp_path, fmt="mp4")


def test_visualize_prediction_overlap_colours(tmp_path):
    s = Sample("p1", np.full((8, 8), 3.0), 1, 2, three_dim=False)  # constant -> black
    truth = np.zeros((8, 8), int)
    truth[1:4, 1:4] = 1
    pred = np.zeros((8, 8), int)
    pred[2:5, 2:5] = 1
    s.add_segmentation(truth)
    s.add_prediction(pred)
    paths = visualize_prediction_overlap_3D(s, visualization_path=tmp_path, alpha=0.5)
    assert [os.path.basename(p) for p in paths] == ["visualization.p1.class_1.png"]
    with Image.open(paths[0]) as image:
        colours = {c for _, c in image.convert("RGB").getcolors(maxcolors=100000)}
    for colour in ((31, 113, 80), (153, 12, 12), (3, 92, 135)):
        assert tuple(int(round(0.5 * c)) for c in colour) in colours
    three_d = visualize_prediction_overlap_3D(make_sample("v3"), visualization_path=tmp_path)
    assert [os.path.basename(p) for p in three_d] == ["visualization.v3.class_1.gif",
                                                      "visualization.v3.class_2.gif"]
