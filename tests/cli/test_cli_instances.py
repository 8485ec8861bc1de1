"""``miseg predict --instances``: semantic and instance outputs side by side."""

import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from miseg.cli.main import build_parser, main
from miseg.cli.predict import instance_segmenter
from miseg.datasets import write_nuclei_dataset

TINY_2D = ["--classes", "2", "--interface", "image", "--patch-shape", "32", "32", "--filters", "2",
           "--depth", "1", "--epochs", "1", "--iterations", "1", "--batch-size", "1", "--workers", "0",
           "--seed", "3"]


def test_instance_flags_build_the_segmenter():
    args = build_parser().parse_args(["predict", "data", "--instances", "--instance-split", "probability",
                                      "--seed-distance", "2.5", "--min-instance-volume", "7",
                                      "--connectivity", "6"])
    segmenter = instance_segmenter(args)
    assert (segmenter.split, segmenter.seed_distance, segmenter.min_volume, segmenter.connectivity) == \
        ("probability", 2.5, 7.0, 6)
    assert instance_segmenter(build_parser().parse_args(["predict", "data"])) is None
    assert instance_segmenter(build_parser().parse_args(["predict", "data", "--instances"])).split is None


@pytest.mark.slow
def test_predict_instances_writes_maps_and_tables(tmp_path, capsys):
    data = tmp_path / "nuclei"
    cases = write_nuclei_dataset(str(data), n_cases=2, shape=(32, 32), seed=2)
    model = tmp_path / "run" / "model.keras"
    assert main(["train", str(data), *TINY_2D, "-o", str(model)]) == 0, capsys.readouterr().err
    out = tmp_path / "pred"
    code = main(["predict", str(data), "-m", str(model), "-o", str(out), "--instances",
                 "--instance-split", "distance", "--seed-distance", "3", "--min-instance-volume", "2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "instance maps and tables" in captured.out
    expected = {f"{c}{suffix}" for c in cases for suffix in (".png", ".instances.png", ".instances.tsv")}
    expected.add("manifest.json")
    assert set(os.listdir(out)) == expected
    for case in cases:
        with Image.open(out / f"{case}.png") as img:
            semantic = np.asarray(img)
        with Image.open(out / f"{case}.instances.png") as img:
            ids = np.asarray(img).astype(np.int64)
        table = pd.read_csv(out / f"{case}.instances.tsv", sep="\t")
        assert ((ids > 0) <= (semantic > 0)).all()  # instances lie on the semantic foreground
        assert len(table) == ids.max() and (table["volume_mm3"] >= 2).all()
        assert "mean_probability" in table.columns and "mean_intensity" in table.columns

    code = main(["predict", str(data), "-m", str(model), "-o", str(tmp_path / "p2"), "--instances",
                 "--seed-distance", "0"])
    assert code == 2 and "--seed-distance" in capsys.readouterr().err
