"""Run manifests: environment, git commit, input files, update semantics, and the manifests of
training, prediction, cross-validation and split validation runs."""

import datetime
import hashlib
import importlib.metadata
import json
import os
import subprocess

import keras
import numpy as np
import pytest

from miseg.classical import ClassicalModel
from miseg.data_loading.data_io import Data_IO
from miseg.data_loading.interfaces import Dictionary_interface
from miseg.data_loading.interfaces.nifti_io import NIFTI_interface
from miseg.datasets import write_kits_dataset
from miseg.evaluation import cross_validation, leave_one_out, split_validation
from miseg.neural_network.architecture.unet import UNet_standard
from miseg.neural_network.model import Neural_Network
from miseg.processing.preprocessor import Preprocessor
from miseg.utils.manifest import (
    RunManifest,
    case_files,
    check_model_data,
    git_commit,
    input_records,
    model_manifest_path,
    read_manifest,
    write_manifest,
)


def _git(*args, cwd):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout.strip()


def _mtime(path):
    return datetime.datetime.fromtimestamp(os.stat(path).st_mtime, datetime.timezone.utc).isoformat()


@pytest.fixture(scope="module")
def kits(tmp_path_factory):
    path = tmp_path_factory.mktemp("kits") / "data"
    write_kits_dataset(str(path), n_cases=3, shape=(16, 16, 16), seed=0)
    return str(path)


# ------------------------------------------------------------------------------ building blocks
def test_git_commit_of_a_repository_and_none_elsewhere(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    repo, plain = tmp_path / "repo", tmp_path / "plain"
    repo.mkdir(), plain.mkdir()
    _git("init", "-q", cwd=repo)
    (repo / "train.py").write_text("print('hi')\n")
    _git("add", "train.py", cwd=repo)
    _git("commit", "-q", "-m", "first", cwd=repo)
    head = _git("rev-parse", "HEAD", cwd=repo)
    assert len(head) == 40
    assert git_commit(repo) == head
    assert git_commit(plain) is None
    assert git_commit(tmp_path / "missing") is None  # never raises
    monkeypatch.chdir(repo)  # the user's working directory is what a run records
    record = RunManifest("training").record
    assert record["git_commit"] == head and record["working_directory"] == str(repo)
    monkeypatch.chdir(plain)
    assert RunManifest("training").record["git_commit"] is None


def test_environment_versions_and_stage_timer(monkeypatch):
    run = RunManifest("training", config={"training": {"seed": np.int64(4)}, "shape": (1, 2)})
    for name in ("tensorflow", "keras", "numpy", "nibabel", "pydicom"):
        assert run.record["versions"][name] == importlib.metadata.version(name)
    assert run.record["versions"]["miseg"]
    assert run.record["python"] and run.record["platform"]
    assert run.record["config"] == {"training": {"seed": 4}, "shape": [1, 2]}
    with pytest.raises(RuntimeError):
        with run.stage("training"):
            raise RuntimeError("boom")
    with run.stage("training"):
        pass
    run.add_stage("prediction", 2.5)
    record = run.finish()
    assert 0 <= record["stages"]["training"] < 1 and record["stages"]["prediction"] == 2.5
    assert record["wall_time"] >= 2.5 and record["finished"]
    json.dumps(record)  # JSON-ready


def test_input_files_of_nifti_cases(kits):
    interface = NIFTI_interface(classes=3)
    data_io = Data_IO(interface, kits)
    files = case_files(interface, "case_00001")
    assert sorted(os.path.basename(f) for f in files) == ["imaging.nii.gz", "segmentation.nii.gz"]
    inputs = input_records(data_io, ["case_00000", "case_00001"])
    assert inputs["hashed"] is False and sorted(inputs["files"]) == ["case_00000", "case_00001"]
    record = inputs["files"]["case_00001"][0]
    full = os.path.join(kits, record["path"])
    assert record["path"] == os.path.join("case_00001", "imaging.nii.gz")
    assert record["size"] == os.path.getsize(full) and record["mtime"] == _mtime(full)
    assert "sha256" not in record
    hashed = input_records(data_io, ["case_00001"], hash_inputs=True)["files"]["case_00001"][1]
    with open(os.path.join(kits, "case_00001", "segmentation.nii.gz"), "rb") as handle:
        assert hashed["sha256"] == hashlib.sha256(handle.read()).hexdigest()
    assert case_files(Dictionary_interface({"a": (np.zeros((4, 4)), None)}), "a") == []  # in memory


def test_write_manifest_updates_instead_of_clobbering(tmp_path):
    path = tmp_path / "manifest.json"
    first = RunManifest("prediction", config={"a": 1}).update(cases=["x"]).finish()
    write_manifest(path, first)
    second = RunManifest("prediction", config={"a": 1}).update(cases=["y"]).finish()
    write_manifest(path, second)
    stored = read_manifest(path)
    assert stored["cases"] == ["y"] and stored["created"] == first["created"]
    assert [run["cases"] for run in stored["previous_runs"]] == [["x"]]
    assert "config" not in stored["previous_runs"][0]  # the same config is not repeated
    write_manifest(path, RunManifest("prediction").update(cases=["z"]).finish())
    assert [run["cases"] for run in read_manifest(path)["previous_runs"]] == [["x"], ["y"]]
    write_manifest(path, RunManifest("model").finish(), update=False)
    assert "previous_runs" not in read_manifest(path)
    assert os.listdir(tmp_path) == ["manifest.json"]  # atomic: no temporary files left


def test_check_model_data_names_both_values():
    interface = NIFTI_interface(channels=1, classes=2)
    assert check_model_data({"data": {"classes": 3, "channels": 1}}, interface) == ["class count: model 3, data 2"]
    assert check_model_data({"data": {"classes": 2, "channels": 2}}, interface) == [
        "channel count: model 2, data 1"]
    assert check_model_data({"data": {"classes": 2, "channels": 1}}, interface) == []
    assert check_model_data({}, interface) == []
    assert model_manifest_path("run/model.keras") == os.path.join("run", "model.manifest.json")
    assert model_manifest_path("run/model") == os.path.join("run", "model.manifest.json")


# ------------------------------------------------------------------------------ network runs
@pytest.fixture(scope="module")
def trained(kits, tmp_path_factory):
    keras.utils.set_random_seed(0)
    data_io = Data_IO(NIFTI_interface(classes=3), kits, output_path=str(tmp_path_factory.mktemp("p") / "pred"),
                      seed=5)
    pp = Preprocessor(data_io, batch_size=1, data_aug=None, patch_shape=(16, 16, 16), patches_per_sample=1)
    network = Neural_Network(pp, architecture=UNet_standard(n_filters=2, depth=1), workers=0)
    network.hash_inputs = True
    repo = tmp_path_factory.mktemp("project")  # the user's working directory is a git repository
    _git("init", "-q", cwd=repo)
    (repo / "train.py").write_text("network.evaluate(...)\n")
    _git("add", "train.py", cwd=repo)
    _git("commit", "-q", "-m", "experiment", cwd=repo)
    previous = os.getcwd()
    os.chdir(repo)
    try:
        network.evaluate(["case_00000", "case_00001"], ["case_00002"], epochs=1, iterations=1)
    finally:
        os.chdir(previous)
    network.head = _git("rev-parse", "HEAD", cwd=repo)
    return network


def test_training_manifest_is_written_next_to_the_model(trained, kits, tmp_path):
    record = trained.training_manifest
    assert record["kind"] == "training" and record["git_commit"] == trained.head
    assert record["cases"] == {"training": ["case_00000", "case_00001"], "validation": ["case_00002"]}
    assert record["epochs"] == 1 and record["iterations"] == 1
    assert record["seeds"] == {"data_io": 5, "preprocessor": 5}
    assert record["data"]["classes"] == 3 and record["data"]["channels"] == 1
    assert record["plan"]["architecture"]["config"]["n_filters"] == 2
    assert record["stages"]["training"] > 0 and record["wall_time"] >= record["stages"]["training"]
    assert sorted(record["inputs"]["files"]) == ["case_00000", "case_00001", "case_00002"]
    image = os.path.join(kits, "case_00002", "imaging.nii.gz")
    with open(image, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    assert record["inputs"]["files"]["case_00002"][0] == {
        "path": os.path.join("case_00002", "imaging.nii.gz"), "size": os.path.getsize(image),
        "mtime": _mtime(image), "sha256": digest}
    path = trained.dump(str(tmp_path / "run" / "model.keras"))
    stored = read_manifest(tmp_path / "run" / "model.manifest.json")
    assert stored["cases"] == record["cases"] and stored["model_file"] == "model.keras"
    folder = trained.dump(str(tmp_path / "miscnn_model"))  # MIScnn's extension-less folder
    assert read_manifest(model_manifest_path(folder))["kind"] == "training"
    # A loaded model carries its manifest on; resetting the weights drops it.
    clone = Neural_Network(trained.preprocessor, architecture=UNet_standard(n_filters=2, depth=1), workers=0)
    clone.load(path)
    assert clone.training_manifest["created"] == record["created"]
    assert clone.training_manifest["model_file"] == os.path.abspath(path)
    clone.reset_weights()
    assert clone.training_manifest is None
    clone.dump(path)  # an untrained model replaces the manifest too: it never describes another model
    assert read_manifest(tmp_path / "run" / "model.manifest.json")["trained"] is False


def test_prediction_manifest_in_the_output_folder(trained, tmp_path):
    output = trained.preprocessor.data_io.output_path
    assert trained.predict(["case_00002"], return_output=True)  # nothing written, no manifest
    assert not os.path.exists(os.path.join(output, "manifest.json"))
    trained.predict(["case_00002"])
    first = read_manifest(os.path.join(output, "manifest.json"))
    assert first["kind"] == "prediction" and first["cases"] == {"prediction": ["case_00002"]}
    assert first["output_path"] == os.path.abspath(output)
    assert first["stages"]["prediction"] > 0 and "input_scan" in first["stages"]
    assert list(first["inputs"]["files"]) == ["case_00002"] and first["inputs"]["hashed"] is True
    assert first["model"]["kind"] == "training" and first["model"]["data"]["classes"] == 3
    trained.predict(["case_00000", "case_00001"])
    second = read_manifest(os.path.join(output, "manifest.json"))
    assert second["cases"] == {"prediction": ["case_00000", "case_00001"]}
    assert [run["cases"] for run in second["previous_runs"]] == [{"prediction": ["case_00002"]}]
    assert second["created"] == first["created"]


# ------------------------------------------------------------------------------ validations
def _discs(n):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:16, :16]
    cases = {}
    for k in range(n):
        seg = ((yy - rng.integers(5, 11)) ** 2 + (xx - rng.integers(5, 11)) ** 2 <= 9).astype(np.uint8)
        cases[f"case_{k}"] = ((seg + 0.3 * rng.standard_normal((16, 16))).astype(np.float32), seg, None, {})
    return cases


def test_cross_validation_and_split_manifests(tmp_path):
    # A classical model trains instantly; the drivers treat it like a network.
    interface = Dictionary_interface(_discs(4), channels=1, classes=2, three_dim=False)
    pp = Preprocessor(Data_IO(interface, "unused", seed=7), batch_size=1, data_aug=None, analysis="fullimage")
    model = ClassicalModel(pp, "otsu")
    model.run_config = {"training": {"seed": 11}}
    samples = [f"case_{k}" for k in range(4)]
    path = tmp_path / "cv"
    cross_validation(samples, model, k_fold=2, epochs=1, evaluation_path=str(path), save_models=False, seed=0)
    stored = read_manifest(path / "manifest.json")
    run = json.loads((path / "cross_validation.json").read_text())
    assert stored["kind"] == "cross_validation" and stored["status"] == "complete"
    assert stored["k_fold"] == 2 and stored["leave_one_out"] is False and stored["samples"] == samples
    assert stored["seeds"] == {"split": 0, "config": 11, "data_io": 7, "preprocessor": 7}
    assert stored["config"] == {"training": {"seed": 11}}
    assert [(f["training"], f["validation"]) for f in stored["folds"]] == [
        (f["training"], f["validation"]) for f in run["folds"]]
    assert all(f["complete"] and f["run_now"] and f["stages"]["training"] >= 0 for f in stored["folds"])
    assert stored["stages"]["folds"] >= sum(f["stages"]["training"] for f in stored["folds"])
    assert "summary" in stored["stages"] and stored["data"]["interface"] == "Dictionary_interface"
    # Resuming updates the manifest: the first call moves to previous_runs.
    os.remove(path / "fold_1" / ".complete")
    cross_validation(samples, model, k_fold=2, epochs=1, evaluation_path=str(path), save_models=False)
    resumed = read_manifest(path / "manifest.json")
    assert [f["run_now"] for f in resumed["folds"]] == [False, True]
    assert resumed["folds"][0]["stages"] == stored["folds"][0]["stages"]  # from fold_0's marker
    assert resumed["seeds"]["split"] == 0 and resumed["created"] == stored["created"]
    assert len(resumed["previous_runs"]) == 1
    assert resumed["previous_runs"][0]["folds"][1]["run_now"] is True
    # Leave-one-out is a cross-validation with one case per fold.
    leave_one_out(samples[:3], model, evaluation_path=str(tmp_path / "loo"), seed=1)
    loo = read_manifest(tmp_path / "loo" / "manifest.json")
    assert loo["leave_one_out"] is True and all(len(f["validation"]) == 1 for f in loo["folds"])
    assert sorted(s for f in loo["folds"] for s in f["validation"]) == samples[:3]

    split = tmp_path / "split"
    split_validation(samples, model, percentage=0.5, epochs=1, evaluation_path=str(split), save_models=False,
                     seed=2)
    record = read_manifest(split / "manifest.json")
    lists = json.loads((split / "sample_list.json").read_text())
    assert record["kind"] == "split_validation" and record["status"] == "complete"
    assert (record["folds"][0]["training"], record["folds"][0]["validation"]) == (
        lists["TRAINING"], lists["VALIDATION"])
    assert record["seeds"]["split"] == 2 and record["percentage"] == 0.5


def test_a_failed_validation_still_writes_its_manifest(tmp_path):
    interface = Dictionary_interface(_discs(3), channels=1, classes=2, three_dim=False)
    pp = Preprocessor(Data_IO(interface, "unused", seed=7), batch_size=1, data_aug=None, analysis="fullimage")
    model = ClassicalModel(pp, "otsu")

    def broken(*args, **kwargs):
        raise RuntimeError("simulated crash")

    model.evaluate = broken
    with pytest.raises(RuntimeError, match="simulated crash"):
        cross_validation(["case_0", "case_1", "case_2"], model, k_fold=3, evaluation_path=str(tmp_path), seed=0)
    stored = read_manifest(tmp_path / "manifest.json")
    assert stored["status"] == "failed" and not any(f["complete"] for f in stored["folds"])
