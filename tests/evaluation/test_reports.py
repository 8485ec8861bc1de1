"""Tests of miseg.evaluation.reports."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from miseg.errors import ConfigurationError, DataError
from miseg.evaluation.metrics import case_metrics
from miseg.evaluation.reports import (
    metrics_table,
    read_table,
    summary_table,
    wide_table,
    write_table,
)


@pytest.fixture()
def hand_table() -> pd.DataFrame:
    return metrics_table([
        {"sample_id": "a", "class": 0, "dice": 0.9, "hd95": 1.0},
        {"sample_id": "a", "class": 1, "dice": 0.5, "hd95": 4.0},
        {"sample_id": "b", "class": 0, "dice": 0.8, "hd95": 2.0},
        {"sample_id": "b", "class": 1, "dice": 0.7, "hd95": np.nan},
        {"sample_id": "c", "class": 0, "dice": 1.0, "hd95": 0.0},
        {"sample_id": "c", "class": 1, "dice": 0.0, "hd95": 9.0},
    ])


def test_metrics_table_columns_and_case_alias():
    df = metrics_table([{"dice": 0.5, "class": 1, "case": "x"},
                        {"class": 2, "dice": 0.25, "case": "x", "nsd": 1.0}])
    assert df.columns.tolist() == ["sample_id", "class", "dice", "nsd"]
    assert df["sample_id"].tolist() == ["x", "x"]
    assert np.isnan(df.loc[0, "nsd"])
    with pytest.raises(DataError, match="class"):
        metrics_table([{"dice": 1.0}])


def test_metrics_table_from_case_metrics():
    truth = np.array([[0, 1], [1, 1]])
    rows = case_metrics(truth, truth, 2, metrics=["dice", "hd"], case="c0")
    df = metrics_table(rows)
    assert df.columns.tolist() == ["sample_id", "class", "dice", "hd"]
    assert df["dice"].tolist() == [1.0, 1.0]


def test_summary_numbers_match_numpy(hand_table):
    s = summary_table(hand_table, n_bootstrap=200, seed=3)
    assert s.columns.tolist() == ["class", "metric", "count", "mean", "std", "median",
                                  "ci_low", "ci_high"]
    assert len(s) == 4  # 2 classes x 2 metrics
    row = s[(s["class"] == 1) & (s["metric"] == "dice")].iloc[0]
    values = np.array([0.5, 0.7, 0.0])
    assert row["count"] == 3
    assert row["mean"] == pytest.approx(values.mean())
    assert row["std"] == pytest.approx(values.std(ddof=1))
    assert row["median"] == pytest.approx(np.median(values))
    hd = s[(s["class"] == 1) & (s["metric"] == "hd95")].iloc[0]
    assert hd["count"] == 2  # NaN skipped
    assert hd["mean"] == pytest.approx(6.5)
    assert hd["median"] == pytest.approx(6.5)
    assert hd["std"] == pytest.approx(np.std([4.0, 9.0], ddof=1))


def test_bootstrap_ci_contains_mean_and_is_reproducible(hand_table):
    s1 = summary_table(hand_table, seed=7)
    s2 = summary_table(hand_table, seed=7)
    pd.testing.assert_frame_equal(s1, s2)
    rng = np.random.default_rng(1)
    larger = pd.DataFrame({"class": 1, "dice": rng.random(30)})
    assert not np.allclose(summary_table(larger, seed=7)["ci_low"],
                           summary_table(larger, seed=8)["ci_low"])
    assert (s1["ci_low"] <= s1["mean"]).all() and (s1["mean"] <= s1["ci_high"]).all()
    # Bounds are resampled means, so they stay inside the data range.
    dice1 = s1[(s1["class"] == 1) & (s1["metric"] == "dice")].iloc[0]
    assert 0.0 <= dice1["ci_low"] < dice1["ci_high"] <= 0.7


def test_bootstrap_ci_matches_normal_theory_for_large_sample():
    rng = np.random.default_rng(0)
    values = rng.normal(0.8, 0.1, size=400)
    df = pd.DataFrame({"sample_id": [str(i) for i in range(400)], "class": 1, "dice": values})
    s = summary_table(df, n_bootstrap=2000, seed=0).iloc[0]
    half = 1.96 * values.std(ddof=1) / np.sqrt(values.size)
    assert s["ci_low"] == pytest.approx(values.mean() - half, abs=0.2 * half)
    assert s["ci_high"] == pytest.approx(values.mean() + half, abs=0.2 * half)
    narrow = summary_table(df, confidence=0.5, n_bootstrap=2000, seed=0).iloc[0]
    assert narrow["ci_high"] - narrow["ci_low"] < s["ci_high"] - s["ci_low"]


def test_summary_edge_cases():
    df = pd.DataFrame({"class": [1, 2, 2], "dice": [0.4, np.nan, np.nan], "note": ["x", "y", "z"]})
    s = summary_table(df, n_bootstrap=50)
    assert s["metric"].tolist() == ["dice", "dice"]  # non-numeric column ignored
    one = s.iloc[0]
    assert (one["count"], one["mean"], one["ci_low"], one["ci_high"]) == (1, 0.4, 0.4, 0.4)
    assert np.isnan(one["std"])
    none = s.iloc[1]
    assert none["count"] == 0 and np.isnan(none["mean"]) and np.isnan(none["ci_low"])
    for bad in ({"confidence": 1.0}, {"confidence": 0}, {"n_bootstrap": 0},
                {"n_bootstrap": 2.5}, {"metrics": ["iou"]}):
        with pytest.raises(ConfigurationError):
            summary_table(df, **bad)


@pytest.mark.parametrize("name,sep", [("table.tsv", "\t"), ("table.csv", ",")])
def test_write_table_round_trip(tmp_path, hand_table, name, sep):
    hand_table = hand_table.assign(sample_id=["007", "007", "b", "b", "c", "c"])
    path = write_table(hand_table, tmp_path / "sub" / name)
    assert path == str(tmp_path / "sub" / name)
    with open(path, encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n")
    assert header == sep.join(["sample_id", "class", "dice", "hd95"])
    back = read_table(path)
    assert back["sample_id"].tolist() == ["007", "007", "b", "b", "c", "c"]
    np.testing.assert_allclose(back["dice"], hand_table["dice"])
    np.testing.assert_allclose(back["hd95"], hand_table["hd95"])  # NaN round-trips
    assert back["class"].tolist() == hand_table["class"].tolist()
    # Overwrite in place; no temporary files are left behind.
    write_table(hand_table.head(2), path)
    assert len(read_table(path)) == 2
    assert os.listdir(tmp_path / "sub") == [name]


def test_write_table_failure_leaves_no_partial_file(tmp_path):
    class Broken(pd.DataFrame):
        def to_csv(self, *args, **kwargs):
            raise RuntimeError("disk full")

    target = tmp_path / "out.tsv"
    write_table(pd.DataFrame({"a": [1]}), target)
    with pytest.raises(RuntimeError):
        write_table(Broken({"a": [2]}), target)
    assert os.listdir(tmp_path) == ["out.tsv"]
    assert read_table(target)["a"].tolist() == [1]


def test_wide_table_keeps_miscnn_dice_columns_first(hand_table):
    long = hand_table[["sample_id", "class", "hd95", "dice"]]
    wide = wide_table(long)
    assert wide.columns.tolist() == ["sample_id", "dice_class-0", "dice_class-1",
                                     "hd95_class-0", "hd95_class-1"]
    assert wide["sample_id"].tolist() == ["a", "b", "c"]
    assert wide["dice_class-1"].tolist() == [0.5, 0.7, 0.0]
    assert np.isnan(wide.loc[1, "hd95_class-1"])


def test_wide_table_missing_rows_and_errors():
    df = pd.DataFrame({"sample_id": ["x", "y", "y"], "class": [1, 1, 2], "dice": [0.1, 0.2, 0.3]})
    wide = wide_table(df)
    assert wide.columns.tolist() == ["sample_id", "dice_class-1", "dice_class-2"]
    assert np.isnan(wide.loc[0, "dice_class-2"])
    with pytest.raises(DataError, match="duplicate"):
        wide_table(pd.concat([df, df]))
    with pytest.raises(DataError, match="sample_id"):
        wide_table(df.drop(columns="sample_id"))
