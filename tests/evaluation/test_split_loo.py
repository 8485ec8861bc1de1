"""Split validation and leave-one-out: files, untouched caller lists, honoured options."""

import json
import os

os.environ.setdefault("MISEG_QUIET", "1")

import keras
import numpy as np
import pandas as pd
import pytest

from miseg.data_loading.data_io import Data_IO
from miseg.data_loading.interfaces import Dictionary_interface
from miseg.errors import ConfigurationError
from miseg.evaluation import cross_validation, leave_one_out, split_validation
from miseg.evaluation.cross_validation import split_folds
from miseg.neural_network.architecture.unet.standard import Architecture
from miseg.neural_network.model import Neural_Network
from miseg.processing.preprocessor import Preprocessor


def make_network(n_cases):
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:16, :16]
    cases = {}
    for k in range(n_cases):
        cy, cx = rng.integers(5, 11, size=2)
        seg = ((yy - cy) ** 2 + (xx - cx) ** 2 <= 9).astype(np.uint8)
        cases[f"s{k}"] = ((seg + 0.3 * rng.standard_normal((16, 16))).astype(np.float32), seg)
    data_io = Data_IO(Dictionary_interface(cases, channels=1, classes=2, three_dim=False), "-", seed=3)
    pp = Preprocessor(data_io, batch_size=2, data_aug=None, analysis="fullimage")
    return Neural_Network(pp, architecture=Architecture(n_filters=4, depth=1), workers=0,
                          use_multiprocessing=False)


def read_tsv(path):
    return pd.read_csv(path, sep="\t", dtype={"sample_id": str})


def test_split_validation_files_and_options(tmp_path):
    model = make_network(5)
    samples = [f"s{k}" for k in range(5)]
    caller = list(samples)
    path = str(tmp_path / "evaluation")
    csv_log = str(tmp_path / "log.csv")
    logger = keras.callbacks.CSVLogger(csv_log)
    history = split_validation(caller, model, percentage=0.4, epochs=1, iterations=1,
                               evaluation_path=path, draw_figures=True,
                               run_detailed_evaluation=True, callbacks=[logger],
                               return_output=True, seed=4)
    assert caller == samples  # MIScnn popped the validation cases from the caller's list
    split = json.load(open(os.path.join(path, "sample_list.json")))
    order = np.random.default_rng(4).permutation(5)
    assert sorted(split["VALIDATION"]) == sorted(samples[i] for i in order[:2])
    assert sorted(split["TRAINING"] + split["VALIDATION"]) == samples
    for name in ("history.tsv", "model.keras", "model.hdf5", "validation.loss.png", "validation.dice_soft.png",
                 "detailed_validation.tsv", "detailed_validation.summary.tsv", ".complete"):
        assert os.path.isfile(os.path.join(path, name)), name
    assert read_tsv(os.path.join(path, "history.tsv"))["val_loss"].tolist() == pytest.approx(history["val_loss"])
    assert sorted(read_tsv(os.path.join(path, "detailed_validation.tsv"))["sample_id"]) == sorted(split["VALIDATION"])
    # The callback was honoured through a copy: the log exists, the caller's object is unused.
    assert len(pd.read_csv(csv_log)) == 1
    assert logger.model is None


def test_split_validation_shares_a_cross_validation_folder(tmp_path):
    samples = [f"s{k}" for k in range(4)]
    path = tmp_path / "evaluation"
    splits = split_folds(samples, k_fold=2, evaluation_path=str(path), seed=0)
    # Run-level outputs of that cross-validation (figures and pooled tables).
    (path / "validation.folds.png").write_bytes(b"all folds")
    (path / "detailed_validation.tsv").write_text("sample_id\tdice_class-0\ns0\t1.0\n")
    before = {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}
    model = make_network(4)
    # A detailed evaluation would overwrite the pooled table: refused before any training.
    with pytest.raises(ConfigurationError, match="detailed_validation.tsv"):
        split_validation(samples, model, percentage=0.5, epochs=1, iterations=1,
                         evaluation_path=str(path), run_detailed_evaluation=True, seed=0)
    assert not (path / "sample_list.json").exists()
    # Otherwise both runs share the folder; the split's clean-up leaves the CV's files alone.
    (path / "history.tsv").write_text("epoch\tloss\n1\t9.0\n")  # an unfinished split's leftover
    split_validation(samples, model, percentage=0.5, epochs=1, iterations=1,
                     evaluation_path=str(path), draw_figures=True, save_models=False, seed=0)
    for file, content in before.items():
        assert file.read_bytes() == content, file
    for name in ("sample_list.json", "history.tsv", "validation.loss.png", ".complete"):
        assert (path / name).is_file(), name
    assert "9.0" not in (path / "history.tsv").read_text()
    assert split_folds(samples, k_fold=2, evaluation_path=str(path)) == splits  # CV still resumes


def test_cross_validation_refuses_to_overwrite_a_split_validations_tables(tmp_path):
    path = tmp_path / "evaluation"
    path.mkdir()
    (path / "detailed_validation.tsv").write_text("sample_id\tdice_class-0\ns0\t0.5\n")
    (path / ".complete").write_text(json.dumps(
        {"type": "split_validation", "files": ["history.tsv", "detailed_validation.tsv"]}))
    with pytest.raises(ConfigurationError, match="split validation.*detailed_validation.tsv"):
        cross_validation(["s0", "s1", "s2"], None, k_fold=3, evaluation_path=str(path),
                         run_detailed_evaluation=True)
    assert sorted(os.listdir(path)) == [".complete", "detailed_validation.tsv"]


@pytest.mark.parametrize("percentage", [0, 1, 1.5, -0.1, "0.2", 0.9])
def test_split_validation_rejects_bad_percentage(tmp_path, percentage):
    with pytest.raises(ConfigurationError, match="percentage"):
        split_validation(["a", "b", "c"], None, percentage=percentage, evaluation_path=str(tmp_path / "e"))
    assert not (tmp_path / "e").exists()


def test_split_validation_needs_two_samples(tmp_path):
    with pytest.raises(ConfigurationError, match="at least 2"):
        split_validation(["a"], None, evaluation_path=str(tmp_path / "e"))


def test_leave_one_out_validates_every_case_once(tmp_path):
    model = make_network(3)
    samples = ["s0", "s1", "s2"]
    caller = list(samples)
    path = str(tmp_path / "loo")
    histories = leave_one_out(caller, model, epochs=1, iterations=1, evaluation_path=path,
                              seed=0, return_output=True)
    assert caller == samples and len(histories) == 3
    held_out = []
    for fold in range(3):
        split = json.load(open(os.path.join(path, f"fold_{fold}", "sample_list.json")))
        assert len(split["VALIDATION"]) == 1 and len(split["TRAINING"]) == 2
        held_out += split["VALIDATION"]
        assert os.path.isfile(os.path.join(path, f"fold_{fold}", ".complete"))
        assert not os.path.exists(os.path.join(path, f"fold_{fold}", "model.keras"))
    assert sorted(held_out) == samples
    pooled = read_tsv(os.path.join(path, "detailed_validation.tsv"))
    assert sorted(pooled["sample_id"]) == samples
    assert pooled.columns.tolist()[:3] == ["sample_id", "dice_class-0", "dice_class-1"]


def test_leave_one_out_single_holdout(tmp_path):
    model = make_network(3)
    path = str(tmp_path / "single")
    leave_one_out(["s0", "s1", "s2"], model, epochs=1, iterations=1, evaluation_path=path,
                  seed=2, single_holdout=True)
    split = json.load(open(os.path.join(path, "sample_list.json")))
    assert len(split["VALIDATION"]) == 1 and len(split["TRAINING"]) == 2
    table = read_tsv(os.path.join(path, "detailed_validation.tsv"))
    assert table["sample_id"].tolist() == split["VALIDATION"]


def test_leave_one_out_rejects_one_sample(tmp_path):
    with pytest.raises(ConfigurationError, match="at least 2"):
        leave_one_out(["only"], None, evaluation_path=str(tmp_path / "e"))
