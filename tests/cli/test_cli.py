"""The miseg command line: explore, config round trip, train -> predict -> evaluate, exit codes."""

import inspect
import json
import os
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

from miseg.cli.config import (
    ARCHITECTURE_FLAGS,
    build_pipeline,
    default_config,
    load_config,
    model_config_path,
)
from miseg.cli.main import main
from miseg.data_loading.interfaces.nifti_io import write_nifti
from miseg.datasets import write_image_dataset, write_kits_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = ["--classes", "3", "--patch-shape", "16", "16", "16", "--filters", "4", "--depth", "2",
        "--epochs", "1", "--iterations", "2", "--batch-size", "2", "--workers", "0", "--seed", "3"]


@pytest.fixture(scope="module")
def kits(tmp_path_factory):
    """4 KiTS-like cases (16x32x32), the last one without segmentation."""
    path = tmp_path_factory.mktemp("kits") / "data"
    write_kits_dataset(str(path), n_cases=4, shape=(16, 32, 32), seed=0, unlabeled=1)
    return str(path)


def _run(capsys, args):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def _subprocess(args, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


# ------------------------------------------------------------------------------ help
def test_help_documents_defaults_and_exit_codes(capsys):
    code, out, _ = _run(capsys, ["--help"])
    assert code == 0
    assert "exit codes:" in out and "usage error" in out
    for command in ("explore", "train", "predict", "evaluate", "verify", "cleanup", "data_exp"):
        code, out, _ = _run(capsys, [command, "--help"])
        assert code == 0, command
        assert "exit codes:" in out
    code, out, _ = _run(capsys, ["train", "--help"])
    out = " ".join(out.split())  # argparse wraps to the terminal width
    assert "--patch-shape N [N ...]" in out and "(default: auto)" in out
    assert "(default: tversky_loss)" in out and "(default: model.keras)" in out


def test_python_m_miseg_and_miseg_cli_help(tmp_path):
    for module in ("miseg", "miseg.cli"):
        result = _subprocess(["-m", module, "--help"], tmp_path)
        assert result.returncode == 0, result.stderr
        assert "usage: miseg" in result.stdout and "exit codes:" in result.stdout


# ------------------------------------------------------------------------------ explore
def test_explore_table_csv_and_plots(kits, tmp_path, capsys):
    csv_path, plots = tmp_path / "kits.csv", tmp_path / "plots"
    code, out, err = _run(capsys, ["explore", kits, "--classes", "3", "--csv", str(csv_path),
                                   "--plots", str(plots)])
    assert code == 0, err
    assert "NIFTI_interface" in out and "Problems: none found" in out
    assert "3 with a segmentation" in out and "1 without" in out
    for case in ("case_00000", "case_00001", "case_00002", "case_00003"):
        assert case in out
    assert "16x32x32" in out and "3x0.8x0.8" in out and "RAS (4)" in out

    table = pd.read_csv(csv_path)
    expected = ["case", "loaded", "has_segmentation", "shape", "channels", "spacing", "orientation", "dtype",
                "min", "max", "mean", "std", "labels", "frac_c0", "mean_c0", "std_c0", "frac_c1", "mean_c1",
                "std_c1", "frac_c2", "mean_c2", "std_c2", "problems"]
    assert list(table.columns) == expected
    assert table["has_segmentation"].tolist() == [True, True, True, False]
    # independent reference: nibabel + numpy on case_00001
    img = nib.load(os.path.join(kits, "case_00001", "imaging.nii.gz")).get_fdata()
    seg = np.asarray(nib.load(os.path.join(kits, "case_00001", "segmentation.nii.gz")).dataobj)
    row = table.set_index("case").loc["case_00001"]
    assert row["shape"] == "16x32x32" and row["orientation"] == "RAS"
    assert row["min"] == pytest.approx(img.min()) and row["max"] == pytest.approx(img.max())
    assert row["mean"] == pytest.approx(img.mean(), rel=1e-5)
    counts = np.bincount(seg.ravel(), minlength=3) / seg.size
    assert [row[f"frac_c{k}"] for k in range(3)] == pytest.approx(counts.tolist())
    assert row["mean_c1"] == pytest.approx(img[seg == 1].mean(), rel=1e-5)
    assert np.isnan(table.set_index("case").loc["case_00003", "frac_c0"])
    for name in ("intensity_histogram.png", "class_frequencies.png"):
        with open(plots / name, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def _broken_copy(kits, tmp_path):
    """Copy the data set and break four cases in four ways."""
    data = tmp_path / "broken"
    shutil.copytree(kits, data)
    img = nib.load(data / "case_00000" / "imaging.nii.gz")
    array = img.get_fdata().astype(np.float32)
    array[1, 2, 3] = np.nan
    write_nifti(str(data / "case_00000" / "imaging.nii.gz"), array, {"affine": img.affine})
    seg = nib.load(data / "case_00001" / "segmentation.nii.gz")
    labels = np.asarray(seg.dataobj).copy()
    labels[0, 0, 0] = 7
    write_nifti(str(data / "case_00001" / "segmentation.nii.gz"), labels, {"affine": seg.affine})
    small = np.zeros((16, 32, 30), np.uint8)
    write_nifti(str(data / "case_00002" / "segmentation.nii.gz"), small, {"affine": seg.affine})
    (data / "case_00004").mkdir()
    (data / "case_00004" / "imaging.nii.gz").write_bytes(b"not a nifti file")
    return str(data)


def test_explore_lists_broken_cases_instead_of_crashing(kits, tmp_path, capsys):
    data = _broken_copy(kits, tmp_path)
    csv_path = tmp_path / "broken.csv"
    code, out, err = _run(capsys, ["explore", data, "--classes", "3", "--csv", str(csv_path)])
    assert code == 0, err
    problems = out[out.index("Problems ("):]
    assert "case_00000: DataError" in problems and "NaN" in problems
    assert "case_00001: segmentation: LabelError" in problems and "[7]" in problems
    assert "case_00002: segmentation: ShapeMismatchError" in problems
    assert "case_00004: CorruptFileError" in problems
    assert "case_00003" not in problems  # the unlabelled case is fine
    table = pd.read_csv(csv_path).set_index("case")
    assert len(table) == 5
    assert table.loc["case_00004", "loaded"] == False  # noqa: E712 - numpy bool from CSV
    assert "CorruptFileError" in table.loc["case_00004", "problems"]
    assert table.loc["case_00003", "problems"] != table.loc["case_00003", "problems"]  # NaN: no problem
    code, _, _ = _run(capsys, ["explore", data, "--classes", "3", "--strict"])
    assert code == 1


def test_explore_infers_classes_and_flags_non_contiguous_labels(kits, tmp_path, capsys):
    data = tmp_path / "binary"
    shutil.copytree(kits, data)
    for case in ("case_00000", "case_00001", "case_00002"):
        seg = nib.load(data / case / "segmentation.nii.gz")
        labels = (np.asarray(seg.dataobj) > 0).astype(np.uint8) * 255
        write_nifti(str(data / case / "segmentation.nii.gz"), labels, {"affine": seg.affine})
    code, out, _ = _run(capsys, ["explore", str(data)])
    assert code == 0
    assert "inferred from the labels" in out
    assert "label values [0, 255] are not contiguous" in out
    code, out, _ = _run(capsys, ["explore", str(data), "--classes", "2", "--label-map", "0=0", "--label-map", "255=1"])
    assert code == 0 and "Problems: none found" in out


def test_explore_detects_the_image_interface(tmp_path, capsys):
    data = tmp_path / "cells"
    write_image_dataset(str(data), n_cases=2, shape=(32, 32), seed=1)
    code, out, _ = _run(capsys, ["explore", str(data)])
    assert code == 0
    assert "Image_interface, 2D" in out and "32x32" in out


def test_verify_and_data_exp_alias(kits, tmp_path, capsys):
    code, out, _ = _run(capsys, ["verify", kits, "--classes", "3"])
    assert code == 0 and "4 of 4 case(s) loaded without problems" in out
    broken = _broken_copy(kits, tmp_path)
    code, out, _ = _run(capsys, ["--data_dir", broken, "verify", "-t", "NIFTI", "--classes", "3"])
    assert code == 1 and "[ERROR] case_00004: CorruptFileError" in out
    csv_path = tmp_path / "exp.csv"
    result = _subprocess(["-m", "miseg.cli", "--data_dir", kits, "data_exp", "-t", "NIFTI", "-cn", "-cl", "-m",
                          "-e", str(csv_path)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "case_00002" in result.stdout
    assert len(pd.read_csv(csv_path)) == 4


# ------------------------------------------------------------------------------ exit codes
def test_errors_are_one_line_without_traceback(tmp_path, capsys):
    code, out, err = _run(capsys, ["explore", str(tmp_path / "missing")])
    assert code == 1
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert err.startswith("miseg explore: error:") and "missing" in err
    code, _, err = _run(capsys, ["train", str(tmp_path / "missing"), "--classes", "3"])
    assert code == 1 and err.strip().count("\n") == 0
    code, _, err = _run(capsys, ["predict", str(tmp_path), "-m", str(tmp_path / "none.keras")])
    assert code == 1 and "No model file" in err and "Traceback" not in err
    code, _, err = _run(capsys, ["--debug", "explore", str(tmp_path / "missing")])
    assert code == 1 and "Traceback" in err


def test_usage_errors_exit_2(kits, tmp_path, capsys):
    code, _, err = _run(capsys, ["explore", kits, "--no-such-flag"])
    assert code == 2 and "unrecognized arguments" in err
    code, _, err = _run(capsys, ["train", kits, "--classes", "0"])
    assert code == 2 and "must be >= 1" in err
    code, _, _ = _run(capsys, ["frobnicate"])
    assert code == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  pth: x\n")
    code, _, err = _run(capsys, ["train", "--config", str(bad)])
    assert code == 2 and "unknown key(s) ['pth']" in err and err.strip().count("\n") == 0
    code, _, err = _run(capsys, ["train", kits, "--classes", "3", "--patch-shape", "16", "16", "10",
                                 "--depth", "2", "--dry-run"])
    assert code == 2 and "not divisible by 2**depth = 4" in err
    code, _, err = _run(capsys, ["train", kits, "--architecture", "plain", "--filters", "8", "--dry-run"])
    assert code == 2 and "--filters" in err


def test_unexpected_errors_and_interrupts_are_one_line(kits, capsys, monkeypatch):
    import miseg.cli.explore as explore_module

    def boom(*args, **kwargs):
        raise RuntimeError("something broke\nsecond line")

    monkeypatch.setattr(explore_module, "explore_dataset", boom)
    code, _, err = _run(capsys, ["explore", kits])
    assert code == 1 and err == "miseg explore: error: unexpected RuntimeError: something broke " \
                                "(rerun with --debug for the traceback)\n"

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(explore_module, "explore_dataset", interrupt)
    code, _, err = _run(capsys, ["explore", kits])
    assert code == 130 and err == "miseg explore: interrupted\n"


def test_result_subprocess_exit_codes(tmp_path):
    result = _subprocess(["-m", "miseg", "explore", str(tmp_path / "missing")], tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("miseg explore: error:")
    result = _subprocess(["-m", "miseg", "explore", "--bad-flag", "x"], tmp_path)
    assert result.returncode == 2


# ------------------------------------------------------------------------------ config
def test_config_round_trip_reproduces_the_settings(kits, tmp_path, capsys):
    saved = tmp_path / "run.yaml"
    args = ["train", kits, *TINY, "--resample", "3", "1", "1", "--clip", "-100", "300", "--aug-mirror",
            "--loss", "dice_crossentropy", "--save-config", str(saved), "--dry-run"]
    code, out, err = _run(capsys, args)
    assert code == 0, err
    config = load_config(saved)
    assert config["data"]["interface"] == "nifti" and config["data"]["classes"] == 3
    assert config["preprocessing"]["patch_shape"] == [16, 16, 16]
    assert config["preprocessing"]["subfunctions"] == [
        {"class_name": "Resampling", "config": {"new_spacing": [3.0, 1.0, 1.0]}},
        {"class_name": "Clipping", "config": {"min": -100.0, "max": 300.0}},
        {"class_name": "Normalization", "config": {"mode": "z-score"}},
    ]
    assert config["augmentation"]["mirror"] is True
    assert config["model"]["architecture"] == {"class_name": "UNet_standard", "config": {"n_filters": 4, "depth": 2}}
    assert config["model"]["loss"] == "dice_crossentropy"
    assert config["training"]["seed"] == 3 and config["training"]["epochs"] == 1
    assert "patch_shape: [16, 16, 16]" in out  # the dry run prints the effective YAML

    # the saved file alone reproduces the same effective config
    again = tmp_path / "again.json"
    code, _, err = _run(capsys, ["train", "--config", str(saved), "--save-config", str(again), "--dry-run"])
    assert code == 0, err
    assert json.loads(again.read_text()) == yaml.safe_load(saved.read_text())

    # flags typed on the command line override the file, the rest is kept
    over = tmp_path / "over.yaml"
    code, _, _ = _run(capsys, ["train", "--config", str(saved), "--epochs", "7", "--normalization", "none",
                               "--filters", "8", "--save-config", str(over), "--dry-run"])
    changed = load_config(over)
    assert changed["training"]["epochs"] == 7
    assert [s["class_name"] for s in changed["preprocessing"]["subfunctions"]] == ["Resampling", "Clipping"]
    assert changed["model"]["architecture"]["config"] == {"n_filters": 8, "depth": 2}
    assert changed["model"]["loss"] == "dice_crossentropy" and changed["augmentation"]["mirror"] is True

    # the objects built from the file carry the recorded settings
    pipeline = build_pipeline(load_config(saved), with_network=False)
    pp = pipeline.preprocessor
    assert pp.patch_shape == (16, 16, 16) and pp.batch_size == 2 and pp.seed == 3
    assert [type(s).__name__ for s in pp.subfunctions] == ["Resampling", "Clipping", "Normalization"]
    assert pp.subfunctions[1].get_config() == {"min": -100.0, "max": 300.0}
    assert pp.data_augmentation is not None and pp.data_augmentation.mirror is True
    assert pipeline.data_io.interface.classes == 3 and pipeline.data_io.seed == 3


def test_config_file_short_forms_import_paths_and_flag_edits(kits, tmp_path, capsys):
    config = tmp_path / "short.yaml"
    config.write_text(
        f"data: {{path: {kits}, classes: 3}}\n"
        "preprocessing:\n"
        "  patch_shape: [16, 16, 16]\n"
        "  subfunctions:\n"
        "    - miseg.processing.subfunctions.clipping.Clipping: {min: -50, max: 250}\n"
        "    - Normalization: {mode: z-score, foreground_only: true}\n"
        "model:\n"
        "  architecture: {class_name: UNet_standard, config: {n_filters: 4, depth: 2}}\n"
        "  loss: {class_name: TverskyLoss, config: {alpha: 0.3, beta: 0.7}}\n"
        "training: {seed: 1}\n"
    )
    saved = tmp_path / "effective.yaml"
    code, _, err = _run(capsys, ["train", "--config", str(config), "--normalization", "minmax",
                                 "--save-config", str(saved), "--dry-run"])
    assert code == 0, err
    effective = load_config(saved)
    assert effective["preprocessing"]["subfunctions"][1] == {
        "class_name": "Normalization", "config": {"mode": "minmax", "foreground_only": True}}
    pipeline = build_pipeline(effective, with_network=False)
    clip, norm = pipeline.preprocessor.subfunctions
    assert type(clip).__name__ == "Clipping" and clip.get_config() == {"min": -50, "max": 250}
    assert norm.get_config()["foreground_only"] is True and norm.get_config()["mode"] == "minmax"
    from miseg.cli.config import build_loss

    loss = build_loss(effective["model"]["loss"])
    assert type(loss).__name__ == "TverskyLoss" and loss.alpha == pytest.approx(0.3)


def test_architecture_flag_table_matches_the_classes():
    from miseg.neural_network.architecture import unet

    for name, flags in ARCHITECTURE_FLAGS.items():
        params = inspect.signature(getattr(unet, name).__init__).parameters
        assert all(f in params for f in flags), name
        if not flags:
            assert "n_filters" not in params and "depth" not in params


def test_auto_patch_shape_follows_the_first_case(kits):
    config = default_config()
    config["data"].update(path=kits, classes=3)
    config["model"]["architecture"]["config"]["depth"] = 3
    config["training"]["seed"] = 0
    resolved = build_pipeline(config, with_network=False).config
    assert resolved["preprocessing"]["patch_shape"] == [16, 32, 32]
    config["preprocessing"]["subfunctions"] = [{"class_name": "Resampling", "config": {"new_spacing": [3, 1.6, 1.6]}}]
    resolved = build_pipeline(config, with_network=False).config
    assert resolved["preprocessing"]["patch_shape"] == [16, 16, 16]


# ------------------------------------------------------------------------------ round trip
def test_train_predict_evaluate_round_trip(kits, tmp_path, capsys):
    model = tmp_path / "run" / "model.keras"
    code, out, err = _run(capsys, ["train", kits, *TINY, "-o", str(model)])
    assert code == 0, err
    assert model.is_file() and os.path.isfile(model_config_path(str(model)))
    history = pd.read_csv(tmp_path / "run" / "model.history.csv")
    assert list(history["epoch"]) == [1] and "loss" in history.columns
    recorded = load_config(model_config_path(str(model)))
    assert recorded["preprocessing"]["patch_shape"] == [16, 16, 16] and recorded["training"]["seed"] == 3
    with open(tmp_path / "run" / "model.manifest.json") as handle:  # provenance next to the model
        manifest = json.load(handle)
    assert manifest["kind"] == "training" and manifest["config"]["training"] == recorded["training"]
    assert manifest["cases"]["training"] == ["case_00000", "case_00001", "case_00002"]
    assert manifest["stages"]["training"] > 0 and manifest["model_file"] == "model.keras"

    predictions = tmp_path / "predictions"
    code, out, err = _run(capsys, ["predict", kits, "-m", str(model), "-o", str(predictions)])
    assert code == 0, err
    files = sorted(os.listdir(predictions))
    assert files == [f"case_0000{i}.nii.gz" for i in range(4)] + ["manifest.json"]  # the unlabelled case too
    source = nib.load(os.path.join(kits, "case_00003", "imaging.nii.gz"))
    pred = nib.load(predictions / "case_00003.nii.gz")
    assert pred.shape == source.shape and np.allclose(pred.affine, source.affine)
    assert set(np.unique(np.asarray(pred.dataobj))) <= {0, 1, 2}

    code, out, err = _run(capsys, ["evaluate", kits, "--model", str(model), "-o", str(tmp_path / "ev"),
                                   "--no-figures"])
    assert code == 0, err
    by_model = pd.read_csv(tmp_path / "ev" / "detailed_validation.long.tsv", sep="\t")
    assert sorted(by_model["sample_id"].unique()) == ["case_00000", "case_00001", "case_00002"]
    assert "dice" in out and "hd95" in out
    code, out, err = _run(capsys, ["evaluate", kits, "--predictions", str(predictions), "--classes", "3",
                                   "-o", str(tmp_path / "ev2"), "--no-figures"])
    assert code == 0, err
    by_files = pd.read_csv(tmp_path / "ev2" / "detailed_validation.long.tsv", sep="\t")
    merged = by_model.merge(by_files, on=["sample_id", "class"], suffixes=("_model", "_files"))
    assert len(merged) == 9
    np.testing.assert_allclose(merged["dice_model"], merged["dice_files"], atol=1e-9)
    # an independent Dice of one case from the written file
    truth = np.asarray(nib.load(os.path.join(kits, "case_00000", "segmentation.nii.gz")).dataobj)
    guess = np.asarray(nib.load(predictions / "case_00000.nii.gz").dataobj)
    t, p = truth == 1, guess == 1
    dice = 2 * (t & p).sum() / (t.sum() + p.sum()) if t.sum() + p.sum() else 1.0
    row = by_files[(by_files["sample_id"] == "case_00000") & (by_files["class"] == 1)]
    assert float(row["dice"].iloc[0]) == pytest.approx(dice)

    unlabelled = tmp_path / "new_patients"
    write_kits_dataset(str(unlabelled), n_cases=1, shape=(16, 32, 32), seed=9, with_segmentation=False)
    code, out, err = _run(capsys, ["predict", str(unlabelled), "-m", str(model), "-o", str(tmp_path / "p_new"),
                                   "--tta"])
    assert code == 0, err
    assert sorted(os.listdir(tmp_path / "p_new")) == ["case_00000.nii.gz", "manifest.json"]

    code, _, err = _run(capsys, ["predict", kits, "-m", str(model), "-o", str(tmp_path / "p2"), "--format", "seg"])
    assert code == 2 and "needs DICOM data" in err


def test_cross_validation_command(kits, tmp_path, capsys):
    out_dir = tmp_path / "cv"
    code, out, err = _run(capsys, ["evaluate", kits, *TINY, "--k-fold", "2", "--iterations", "1", "-o", str(out_dir),
                                   "--no-figures", "--score-metrics", "dice"])
    assert code == 0, err
    assert (out_dir / "fold_0" / "history.tsv").is_file() and (out_dir / "fold_1" / "history.tsv").is_file()
    assert load_config(out_dir / "run.config.yaml")["evaluation"]["k_fold"] == 2
    pooled = pd.read_csv(out_dir / "detailed_validation.long.tsv", sep="\t")
    assert sorted(pooled["sample_id"].unique()) == ["case_00000", "case_00001", "case_00002"]
    assert "2-fold cross-validation on 3 case(s)" in out


def test_predict_needs_the_config_next_to_the_model(kits, tmp_path, capsys):
    fake = tmp_path / "model.keras"
    fake.write_bytes(b"x")
    code, _, err = _run(capsys, ["predict", kits, "-m", str(fake)])
    assert code == 1 and "No run config" in err


# ------------------------------------------------------------------------------ cleanup
def test_cleanup_deletes_only_miseg_files(tmp_path, capsys, monkeypatch):
    from conftest import MemoryIO, blob_cases

    from miseg.data_loading.data_io import Data_IO
    from miseg.data_loading.sample import Sample

    batches = tmp_path / "batches"
    dio = Data_IO(MemoryIO(blob_cases(1)), "x", batch_path=str(batches), seed=42)
    dio.backup_batches(np.zeros((1, 4, 4, 4, 1)), np.zeros((1, 4, 4, 4, 3)), 0)
    dio.backup_sample(Sample("case_0", np.zeros((4, 4, 4)), 1, 3, three_dim=True))
    cache = batches / "preprocessed" / "0123456789abcdef"
    cache.mkdir(parents=True)
    (cache / "train.case_0.npz").write_bytes(b"x")
    (cache / "train.case_0.json").write_text("{}")
    keep = [batches / "notes.txt", batches / "7.lonely.npz", batches / "preprocessed" / "mine.npz"]
    for path in keep:
        path.write_text("user data")
    written = sorted(p.name for p in batches.iterdir())

    monkeypatch.setattr("sys.stdin", open(os.devnull))  # not interactive
    code, _, err = _run(capsys, ["cleanup", str(batches)])
    assert code == 2 and "--yes" in err
    assert sorted(p.name for p in batches.iterdir()) == written
    code, out, _ = _run(capsys, ["cleanup", str(batches), "--dry-run"])
    assert code == 0 and "6 file(s)" in out
    code, _, err = _run(capsys, ["cleanup", str(batches), "-e", "--yes"])
    assert code == 2 and "never deletes" in err
    code, out, _ = _run(capsys, ["cleanup", str(batches), "--yes"])
    assert code == 0 and "Deleted 6 file(s)" in out
    assert all(path.read_text() == "user data" for path in keep)
    assert sorted(p.name for p in batches.iterdir()) == ["7.lonely.npz", "notes.txt", "preprocessed"]
    assert not cache.exists()


# ------------------------------------------------------------------------------ DICOM
def _dicom_cases(path, n=2):
    from miseg.datasets import make_kits_phantom
    from miseg.datasets.dicom import write_dicom_study

    for i in range(n):
        image, labels, _ = make_kits_phantom((16, 32, 32), (3.0, 0.8, 0.8), seed=i)
        write_dicom_study(str(path / f"patient_{i}"), image.transpose(2, 1, 0), labels.transpose(2, 1, 0),
                          (0.8, 0.8, 3.0), label_names={1: "Kidney", 2: "Tumor"}, seed=i)


def test_dicom_without_file_endings_is_detected(tmp_path, capsys):
    from miseg.cli.config import detect_interface

    data = tmp_path / "pacs"
    _dicom_cases(data, n=1)
    for root, _, files in os.walk(data):
        for name in files:
            os.rename(os.path.join(root, name), os.path.join(root, name[: -len(".dcm")]))
    assert detect_interface(str(data)) == ("dicom", {})
    code, out, err = _run(capsys, ["explore", str(data), "--structure", "Kidney=1", "--structure", "Tumor=2"])
    assert code == 0, err
    assert "DICOM_interface, 3D" in out and "32x32x16" in out and "LPS (1)" in out and "0 1 2" in out


def test_dicom_train_and_predict_rtstruct(tmp_path, capsys):
    data = tmp_path / "dicom"
    _dicom_cases(data, n=2)
    model = tmp_path / "dicom_model.keras"
    code, _, err = _run(capsys, ["train", str(data), *TINY, "--iterations", "1", "--structure", "Kidney=1",
                                 "--structure", "Tumor=2", "-o", str(model)])
    assert code == 0, err
    recorded = load_config(model_config_path(str(model)))
    assert recorded["data"]["interface"] == "dicom"
    assert recorded["data"]["options"]["structure_dict"] == {"Kidney": 1, "Tumor": 2}
    out_dir = tmp_path / "rt"
    code, _, err = _run(capsys, ["predict", str(data), "-m", str(model), "-o", str(out_dir), "--format", "rtstruct",
                                 "--cases", "patient_1"])
    assert code == 0, err
    assert sorted(os.listdir(out_dir)) == ["manifest.json", "patient_1.rtstruct.dcm"]
    import pydicom

    ds = pydicom.dcmread(out_dir / "patient_1.rtstruct.dcm")
    assert ds.Modality == "RTSTRUCT"
    assert [roi.ROIName for roi in ds.StructureSetROISequence] == ["Kidney", "Tumor"]
