"""Manifests of ``miseg predict``/``evaluate`` and the model/data mismatch refusal (``miseg train``'s
manifest is checked in test_cli.py's round trip)."""

import os

import pytest
import yaml

from miseg.cli.config import build_pipeline, load_config, model_config_path, save_config
from miseg.cli.main import main
from miseg.datasets import write_kits_dataset
from miseg.utils.manifest import model_manifest_path, read_manifest

TINY = ["--classes", "3", "--patch-shape", "16", "16", "16", "--filters", "2", "--depth", "1",
        "--epochs", "1", "--iterations", "1", "--batch-size", "1", "--workers", "0", "--seed", "3",
        "--no-augment"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A model saved the way ``miseg train`` saves it (config and manifest next to it), untrained."""
    root = tmp_path_factory.mktemp("manifest_cli")
    data = root / "data"
    write_kits_dataset(str(data), n_cases=3, shape=(16, 16, 16), seed=0, unlabeled=1)
    config_path = root / "run.yaml"
    assert main(["-q", "train", str(data), *TINY, "--dry-run", "--save-config", str(config_path)]) == 0
    pipeline = build_pipeline(load_config(config_path), training=False)
    pipeline.network.run_config = pipeline.config
    model = pipeline.network.dump(str(root / "run" / "model.keras"))
    save_config(pipeline.config, model_config_path(model))
    return {"data": str(data), "model": model, "manifest": read_manifest(model_manifest_path(model))}


def test_predict_writes_a_manifest_and_refuses_a_model_for_other_data(run, tmp_path, capsys):
    out = tmp_path / "pred"
    assert main(["-q", "predict", run["data"], "-m", run["model"], "-o", str(out), "--cases", "case_00002"]) == 0
    assert sorted(os.listdir(out)) == ["case_00002.nii.gz", "manifest.json"]
    manifest = read_manifest(out / "manifest.json")
    assert manifest["kind"] == "prediction" and manifest["cases"] == {"prediction": ["case_00002"]}
    assert manifest["config"]["data"]["classes"] == 3 and manifest["inputs"]["hashed"] is False
    assert manifest["model"]["file"]["path"] == run["model"]
    assert manifest["model"]["created"] == run["manifest"]["created"]
    assert run["manifest"]["kind"] == "model" and run["manifest"]["trained"] is False
    assert run["manifest"]["data"]["classes"] == 3 and run["manifest"]["config"]["training"]["seed"] == 3

    other = load_config(model_config_path(run["model"]))
    other["data"]["classes"] = 2
    config = tmp_path / "two_classes.yaml"
    config.write_text(yaml.safe_dump(other))
    capsys.readouterr()
    refused = tmp_path / "refused"
    code = main(["-q", "predict", run["data"], "-m", run["model"], "--config", str(config), "-o", str(refused)])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "class count: model 3, data 2" in err and "--ignore-manifest" in err and "model.manifest.json" in err
    assert not refused.exists()
    # Without a manifest the config saved next to the model decides.
    moved = tmp_path / "model.manifest.json"
    os.replace(model_manifest_path(run["model"]), moved)
    try:
        code = main(["-q", "predict", run["data"], "-m", run["model"], "--config", str(config), "-o", str(refused)])
        err = capsys.readouterr().err
        assert code == 1 and "class count: model 3, data 2" in err and "model.config.yaml" in err
    finally:
        os.replace(moved, model_manifest_path(run["model"]))
    code = main(["-q", "predict", run["data"], "-m", run["model"], "--config", str(config), "-o", str(refused),
                 "--cases", "case_00002", "--ignore-manifest"])
    err = capsys.readouterr().err
    assert code == 0 and "predicting anyway (--ignore-manifest)" in err
    assert sorted(os.listdir(refused)) == ["case_00002.nii.gz", "manifest.json"]


@pytest.mark.slow
def test_cross_validation_command_writes_the_manifest(run, tmp_path):
    out = tmp_path / "cv"
    assert main(["-q", "evaluate", run["data"], *TINY, "--k-fold", "2", "-o", str(out), "--no-figures",
                 "--no-detailed", "--hash-inputs"]) == 0
    manifest = read_manifest(out / "manifest.json")
    assert manifest["config"] == load_config(out / "run.config.yaml")
    assert manifest["inputs"]["hashed"] is True and manifest["seeds"]["split"] == 3
    assert sorted(s for fold in manifest["folds"] for s in fold["validation"]) == ["case_00000", "case_00001"]
