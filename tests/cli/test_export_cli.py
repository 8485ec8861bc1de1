"""``miseg export``: a trained run's model as ONNX with its plan, without the data; errors."""

import json
import os
import shutil

import keras
import numpy as np
import pytest

from miseg.cli.config import build_pipeline, default_config, model_config_path, save_config
from miseg.cli.main import main
from miseg.datasets import write_kits_dataset

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A model file with its run config, as 'miseg train' leaves them; the data is gone afterwards."""
    root = tmp_path_factory.mktemp("export_run")
    data = root / "data"
    write_kits_dataset(str(data), n_cases=1, shape=(16, 16, 16), seed=0)
    config = default_config()
    config["data"].update(path=str(data), interface="nifti", classes=3)
    config["preprocessing"].update(patch_shape=[16, 16, 16], subfunctions=[
        {"class_name": "Normalization", "config": {"mode": "minmax"}}])
    config["model"]["architecture"] = {"class_name": "UNet_standard", "config": {"n_filters": 2, "depth": 2}}
    config["training"]["seed"] = 1
    pipeline = build_pipeline(config, training=False)
    model = pipeline.network.model
    rng = np.random.default_rng(0)
    model.set_weights([w + 0.05 * rng.standard_normal(w.shape).astype(w.dtype) for w in model.get_weights()])
    path = str(root / "run" / "model.keras")
    pipeline.network.dump(path)
    save_config(pipeline.config, model_config_path(path))
    shutil.rmtree(data)  # export needs no data
    return path


def test_export_onnx_without_data(run, capsys):
    code = main(["export", run, "--format", "onnx"])
    out, err = capsys.readouterr()
    assert code == 0, err
    folder = os.path.dirname(run)
    onnx_path = os.path.join(folder, "model_export.onnx")
    assert onnx_path in out
    with open(os.path.join(folder, "model_export.preprocessing.json"), encoding="utf-8") as handle:
        plan = json.load(handle)
    assert plan["data"]["interface"] == "NIFTI_interface" and plan["data"]["classes"] == 3
    assert plan["preprocessing"]["subfunctions"][0]["config"]["mode"] == "minmax"
    assert plan["model"]["architecture"] == "UNet_standard" and plan["model"]["trained"] is True
    reference = keras.models.load_model(run, compile=False)
    x = np.random.default_rng(2).random((1, 16, 16, 16, 1), dtype=np.float32)
    session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    got = session.run(["probabilities"], {"image": x})[0]
    assert np.max(np.abs(got - np.asarray(reference.predict_on_batch(x)))) < 1e-4

    before = os.path.getmtime(onnx_path)
    code = main(["export", run, "--format", "onnx"])  # exists: refused, untouched
    _, err = capsys.readouterr()
    assert code == 2 and "exists" in err and "overwrite" in err
    assert os.path.getmtime(onnx_path) == before


def test_export_errors(run, tmp_path, capsys):
    code = main(["export", str(tmp_path / "missing.keras")])
    _, err = capsys.readouterr()
    assert code == 1 and "missing.keras" in err
    lonely = tmp_path / "lonely.keras"
    shutil.copy(run, lonely)  # no config beside it
    code = main(["export", str(lonely), "--format", "keras"])
    _, err = capsys.readouterr()
    assert code == 1 and "lonely.config.yaml" in err
    code = main(["export", run, "--format", "tflite"])
    _, err = capsys.readouterr()
    assert code == 2 and "invalid choice" in err
    assert sorted(os.listdir(tmp_path)) == ["lonely.keras"]
