"""Instance metrics against hand-computed cases, and their place in detailed_validation."""

import os

import numpy as np
import pandas as pd
import pytest

from miseg.data_loading.data_io import Data_IO
from miseg.data_loading.interfaces import Dictionary_interface
from miseg.errors import ConfigurationError
from miseg.evaluation import detailed_validation
from miseg.evaluation.instance_metrics import instance_metrics, match_instances
from miseg.evaluation.metrics import lesion_detection
from miseg.processing.instances import Instances, InstanceSegmenter


def inst(labels, classes=None):
    labels = np.asarray(labels, dtype=np.uint32)
    n = int(labels.max())
    return Instances(labels, np.ones(n) if classes is None else classes)


def row_of(truth, pred, **kwargs):
    rows = instance_metrics(truth, pred, classes=2, **kwargs)
    assert len(rows) == 1 and rows[0]["class"] == 1
    return rows[0]


def test_a_split_object():
    truth = np.zeros((6, 10), np.uint32)
    truth[1:5, 1:9] = 1                       # one 4x8 object (32 px)
    pred = np.zeros_like(truth)
    pred[1:5, 1:5], pred[1:5, 5:9] = 1, 2     # cut into two 4x4 halves: IoU 0.5 each
    r = row_of(inst(truth), inst(pred))
    assert (r["instance_tp"], r["instance_fp"], r["instance_fn"]) == (0, 2, 1)
    assert (r["n_split"], r["n_merged"]) == (1, 0)
    assert r["pq"] == 0.0 and r["rq"] == 0.0 and np.isnan(r["sq"]) and np.isnan(r["matched_dice"])
    lenient = row_of(inst(truth), inst(pred), iou_threshold=0.4)
    assert (lenient["instance_tp"], lenient["instance_fp"], lenient["instance_fn"]) == (1, 1, 0)
    assert lenient["sq"] == pytest.approx(0.5) and lenient["rq"] == pytest.approx(2 / 3)
    assert lenient["pq"] == pytest.approx(1 / 3)
    assert lenient["matched_dice"] == pytest.approx(2 * 16 / (32 + 16))
    assert lenient["n_split"] == 1  # independent of the threshold


def test_a_merged_object():
    truth = np.zeros((6, 10), np.uint32)
    truth[1:5, 1:5], truth[1:5, 5:9] = 1, 2    # two touching nuclei
    semantic_pred = (truth > 0).astype(np.uint8)  # one component covering both
    r = row_of(inst(truth), semantic_pred)
    assert (r["n_truth_instances"], r["n_pred_instances"]) == (2, 1)
    assert (r["instance_tp"], r["instance_fp"], r["instance_fn"]) == (0, 1, 2)
    assert (r["n_split"], r["n_merged"]) == (0, 1)
    assert r["instance_precision"] == 0.0 and r["instance_recall"] == 0.0 and r["pq"] == 0.0


def missed_case():
    truth = np.zeros((16, 16), np.uint8)
    truth[0:4, 0:4] = 1       # A, 16 px
    truth[10:13, 10:13] = 1   # B, 9 px
    truth[6:8, 14:16] = 1     # C, 4 px: missed
    pred = np.zeros_like(truth)
    pred[0:4, 0:5] = 1        # A' 20 px: IoU 16/20 = 0.8
    pred[10:13, 10:13] = 1    # B' exact: IoU 1
    pred[14:16, 0:2] = 1      # D: false positive
    return truth, pred


def test_a_missed_object_and_the_pq_value():
    truth, pred = missed_case()
    r = row_of(truth, pred)
    assert (r["instance_tp"], r["instance_fp"], r["instance_fn"]) == (2, 1, 1)
    assert r["sq"] == pytest.approx(0.9)               # (0.8 + 1) / 2
    assert r["rq"] == pytest.approx(2 / 3)              # 2 / (2 + 1/2 + 1/2)
    assert r["pq"] == pytest.approx(0.6)
    assert r["instance_f1"] == pytest.approx(r["rq"])
    assert r["instance_precision"] == pytest.approx(2 / 3) and r["instance_recall"] == pytest.approx(2 / 3)
    assert r["matched_dice"] == pytest.approx((2 * 16 / 36 + 1.0) / 2)
    assert (r["n_split"], r["n_merged"]) == (0, 0)
    greedy = lesion_detection(truth, pred, min_overlap=0.5)  # same TPs above IoU 0.5
    assert (greedy["tp"], greedy["fp"], greedy["fn"]) == (2, 1, 1)


def test_hungarian_matching_beats_greedy_at_a_low_threshold():
    truth = np.zeros((1, 20), np.uint32)
    truth[0, 0:10], truth[0, 10:20] = 1, 2
    pred = np.zeros_like(truth)
    pred[0, 4:15] = 1   # X: IoU 0.4 with truth 1, 0.3125 with truth 2
    pred[0, 0:3] = 2    # Y: IoU 0.3 with truth 1 only
    m = match_instances(truth, pred, iou_threshold=0.25)
    # greedy would take X-1 (0.4) and leave both others unmatched; the optimum pairs X-2 and Y-1
    assert sorted(zip(m.truth_ids.tolist(), m.pred_ids.tolist())) == [(1, 2), (2, 1)]
    np.testing.assert_allclose(sorted(m.iou), [0.3, 0.3125])
    assert m.unmatched_truth.size == 0 and m.unmatched_pred.size == 0


def test_rows_per_class_empty_conventions_and_errors():
    truth = np.zeros((8, 8), np.uint8)
    truth[0:2, 0:2] = 1
    pred = truth.copy()
    rows = instance_metrics(truth, pred, classes=3, case="c9")
    assert [r["class"] for r in rows] == [1, 2] and rows[0]["sample_id"] == "c9"
    assert rows[0]["pq"] == 1.0 and rows[0]["instance_tp"] == 1
    assert rows[1]["pq"] == 1.0 and rows[1]["n_truth_instances"] == 0  # class absent from both
    assert [r["class"] for r in instance_metrics(truth, pred)] == [1]
    with pytest.raises(ConfigurationError, match="iou_threshold"):
        match_instances(truth, pred, iou_threshold=1.0)


# ------------------------------------------------------------------- detailed validation
class _Preprocessor:
    def __init__(self, data_io):
        self.data_io = data_io


class TruthModel:
    """Predicts the semantic truth: touching nuclei come out as one component."""

    classes = 2

    def __init__(self, data_io):
        self.preprocessor = _Preprocessor(data_io)

    def predict(self, samples, return_output=False, activation_output=False):
        assert return_output and not activation_output
        return [self.preprocessor.data_io.sample_loader(i).seg_data[..., 0].astype(np.int64) for i in samples]


def touching_cases(n=3):
    rows, cols = np.indices((24, 36))
    cases, truth_instances = {}, {}
    for k in range(n):
        centres = [(12, 10 + k), (12, 22 + k)]
        dist = np.stack([np.hypot(rows - r, cols - c) for r, c in centres])
        ids = np.where(dist.min(axis=0) <= 6.5, dist.argmin(axis=0) + 1, 0)
        seg = (ids > 0).astype(np.uint8)
        cases[f"c{k}"] = (seg.astype(np.float32), seg)
        truth_instances[f"c{k}"] = ids
    return Data_IO(Dictionary_interface(cases, classes=2, three_dim=False), "-"), truth_instances


def test_detailed_validation_tables_summaries_and_figure_get_instance_metrics(tmp_path):
    data_io, truth_instances = touching_cases()
    model = TruthModel(data_io)
    ids = ["c0", "c1", "c2"]
    merged = detailed_validation(ids, model, str(tmp_path / "plain"), metrics=["dice"],
                                 instances=True, truth_instances=truth_instances)
    fg = merged[merged["class"] == 1]
    assert (fg["n_merged"] == 1).all() and (fg["dice"] == 1).all()
    assert (fg["instance_fn"] >= 1).all() and (fg["pq"] < 0.5).all()  # one blob for two nuclei
    assert merged.loc[merged["class"] == 0, "pq"].isna().all()

    split = InstanceSegmenter(split="distance", seed_distance=4.0)
    out = tmp_path / "split"
    table = detailed_validation(ids, model, str(out), metrics=["dice"], instances=split,
                                truth_instances=truth_instances.__getitem__, draw_figures=True,
                                n_bootstrap=50)
    fg = table[table["class"] == 1]
    assert (fg["instance_tp"] == 2).all() and (fg["n_merged"] == 0).all() and (fg["pq"] > 0.9).all()
    wide = pd.read_csv(out / "detailed_validation.tsv", sep="\t")
    assert "pq_class-1" in wide.columns and "n_split_class-1" in wide.columns
    summary = pd.read_csv(out / "detailed_validation.summary.tsv", sep="\t")
    pq = summary[(summary["class"] == 1) & (summary["metric"] == "pq")].iloc[0]
    assert pq["count"] == 3 and pq["ci_low"] <= pq["mean"] <= pq["ci_high"]
    assert pq["mean"] == pytest.approx(fg["pq"].mean())
    assert os.path.isfile(out / "detailed_validation.instances.png")
