"""k-fold cross-validation: folder layout, fresh state per fold, resume and refusal."""

import json
import os
import sys
import zipfile

os.environ.setdefault("MISEG_QUIET", "1")

import h5py
import keras
import numpy as np
import pandas as pd
import pytest

from miseg.data_loading.data_io import Data_IO
from miseg.data_loading.interfaces import Dictionary_interface
from miseg.errors import ConfigurationError, DataNotFoundError
from miseg.evaluation import _folds, cross_validation
from miseg.evaluation.cross_validation import (
    load_disk2fold,
    run_fold,
    split_folds,
    write_fold2disk,
)
from miseg.neural_network.architecture.unet.standard import Architecture
from miseg.neural_network.model import Neural_Network
from miseg.processing.preprocessor import Preprocessor

CASES = [f"case_{k}" for k in range(6)]


def make_cases(n, seed=0, size=16):
    """2D discs on noise: label 1 inside the disc."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    cases = {}
    for k in range(n):
        cy, cx, r = rng.integers(5, size - 5), rng.integers(5, size - 5), rng.integers(2, 5)
        seg = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).astype(np.uint8)
        img = (seg + 0.3 * rng.standard_normal((size, size))).astype(np.float32)
        cases[f"case_{k}"] = (img, seg, None, {"spacing": (1.0, 0.5)})
    return cases


def make_network(n_cases=6):
    interface = Dictionary_interface(make_cases(n_cases), channels=1, classes=2, three_dim=False)
    data_io = Data_IO(interface, "unused", seed=7)
    pp = Preprocessor(data_io, batch_size=2, data_aug=None, analysis="fullimage")
    return Neural_Network(pp, architecture=Architecture(n_filters=4, depth=1), workers=0,
                          use_multiprocessing=False)


class Probe(keras.callbacks.Callback):
    """Records, per run, the optimizer step count and the weights when training starts."""

    def __init__(self, fold, log):
        super().__init__()
        self.fold, self.log = fold, log

    def on_train_begin(self, logs=None):
        self.log.append((self.fold, int(self.model.optimizer.iterations.numpy()),
                         [w.copy() for w in self.model.get_weights()]))


class Boom(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        raise RuntimeError("simulated crash")


def probe_factory(log):
    return lambda fold: [Probe(fold, log)]


@pytest.fixture(scope="module")
def cv_run(tmp_path_factory):
    model = make_network()
    path = str(tmp_path_factory.mktemp("cv") / "evaluation")
    initial = [w.copy() for w in model.initialization_weights]
    log = []
    output = cross_validation(
        list(CASES), model, k_fold=3, epochs=1, iterations=1, evaluation_path=path,
        draw_figures=True, run_detailed_evaluation=True, callbacks=probe_factory(log),
        return_output=True, seed=0,
    )
    return {"model": model, "path": path, "output": output, "log": log, "initial": initial}


def read_tsv(path):
    return pd.read_csv(path, sep="\t", dtype={"sample_id": str})


def test_fold_layout_tables_and_figures(cv_run):
    path = cv_run["path"]
    meta = json.load(open(os.path.join(path, "cross_validation.json")))
    assert meta["k_fold"] == 3 and meta["seed"] == 0 and sorted(meta["samples"]) == CASES
    # The split is np.random.default_rng(seed).permutation cut by np.array_split.
    order = np.random.default_rng(0).permutation(len(CASES))
    expected = [sorted(CASES[i] for i in part) for part in np.array_split(order, 3)]
    seen = []
    for fold in range(3):
        fdir = os.path.join(path, f"fold_{fold}")
        training, validation = load_disk2fold(os.path.join(fdir, "sample_list.json"))
        assert sorted(validation) == expected[fold]
        assert not set(training) & set(validation)
        assert sorted(training + validation) == CASES
        seen += validation
        for name in ("history.tsv", "model.keras", "model.hdf5", "validation.loss.png",
                     "validation.dice_soft.png", "detailed_validation.tsv",
                     "detailed_validation.long.tsv", "detailed_validation.summary.tsv",
                     "detailed_validation.boxplots.png", ".complete"):
            assert os.path.isfile(os.path.join(fdir, name)), (fold, name)
        assert zipfile.is_zipfile(os.path.join(fdir, "model.keras"))
        history = read_tsv(os.path.join(fdir, "history.tsv"))
        assert {"epoch", "loss", "val_loss", "dice_soft", "val_dice_soft"} <= set(history.columns)
        assert history["loss"].tolist() == pytest.approx(cv_run["output"][fold]["loss"])
        wide = read_tsv(os.path.join(fdir, "detailed_validation.tsv"))
        assert wide.columns.tolist()[:3] == ["sample_id", "dice_class-0", "dice_class-1"]
        assert sorted(wide["sample_id"]) == sorted(validation)
        marker = json.load(open(os.path.join(fdir, ".complete")))
        assert marker["hash"] == _folds.fold_hash(training, validation)
        assert len([f for f in os.listdir(fdir) if f.startswith("overlay.")]) >= 1
    assert sorted(seen) == CASES
    pooled = read_tsv(os.path.join(path, "detailed_validation.tsv"))
    assert sorted(pooled["sample_id"]) == CASES
    summary = read_tsv(os.path.join(path, "detailed_validation.summary.tsv"))
    assert {"class", "metric", "mean", "std", "median", "ci_low", "ci_high"} <= set(summary.columns)
    dice1 = summary[(summary["class"] == 1) & (summary["metric"] == "dice")]["mean"].item()
    assert dice1 == pytest.approx(pooled["dice_class-1"].mean())
    assert os.path.isfile(os.path.join(path, "validation.folds.png"))


def test_every_fold_starts_fresh(cv_run):
    log = cv_run["log"]
    assert [fold for fold, _, _ in log] == [0, 1, 2]
    for _, iterations, weights in log:
        assert iterations == 0  # a fresh optimizer per fold (MIScnn kept Adam's state)
        for got, want in zip(weights, cv_run["initial"]):
            np.testing.assert_array_equal(got, want)


def test_detailed_values_match_the_final_model(cv_run):
    # After the loop the model holds the last fold's final weights, which scored fold_2.
    model, fdir = cv_run["model"], os.path.join(cv_run["path"], "fold_2")
    wide = read_tsv(os.path.join(fdir, "detailed_validation.tsv")).set_index("sample_id")
    for index in wide.index:
        pred = model.predict([index], return_output=True)[0]
        truth = model.preprocessor.data_io.sample_loader(index).seg_data[..., 0]
        for c in (0, 1):
            p, t = pred == c, truth == c
            denom = p.sum() + t.sum()
            dice = 1.0 if denom == 0 else 2 * (p & t).sum() / denom
            assert wide.loc[index, f"dice_class-{c}"] == pytest.approx(dice)


def test_resume_reruns_only_unfinished_folds(cv_run):
    path, model = cv_run["path"], cv_run["model"]
    mtimes = {f: os.path.getmtime(os.path.join(path, f"fold_{f}", "history.tsv")) for f in (0, 2)}
    os.remove(os.path.join(path, "fold_1", ".complete"))
    log = []
    output = cross_validation(list(reversed(CASES)), model, k_fold=3, epochs=1, iterations=1,
                              evaluation_path=path, run_detailed_evaluation=True,
                              callbacks=probe_factory(log), return_output=True)
    assert [fold for fold, _, _ in log] == [1]
    assert os.path.isfile(os.path.join(path, "fold_1", ".complete"))
    for fold, mtime in mtimes.items():
        assert os.path.getmtime(os.path.join(path, f"fold_{fold}", "history.tsv")) == mtime
    assert output[0]["loss"] == pytest.approx(cv_run["output"][0]["loss"])
    log.clear()
    cross_validation(CASES, model, k_fold=3, epochs=1, iterations=1, evaluation_path=path,
                     callbacks=probe_factory(log), seed=0)
    assert log == []


def test_refuses_folder_of_another_run(cv_run):
    path, model = cv_run["path"], cv_run["model"]
    before = os.path.getmtime(os.path.join(path, "cross_validation.json"))
    for kwargs in ({"sample_list": CASES[:5]}, {"k_fold": 2}, {"seed": 1}):
        args = {"sample_list": CASES, "k_fold": 3, "seed": 0, **kwargs}
        with pytest.raises(ConfigurationError, match="evaluation"):
            cross_validation(args["sample_list"], model, k_fold=args["k_fold"], epochs=1,
                             evaluation_path=path, seed=args["seed"])
    assert os.path.getmtime(os.path.join(path, "cross_validation.json")) == before


def test_refuses_or_adopts_fold_folders_without_run_file(tmp_path):
    foreign = tmp_path / "foreign"
    for fold in range(3):
        write_fold2disk(str(foreign / f"fold_{fold}" / "sample_list.json"), ["x"], [f"other_{fold}"])
    with pytest.raises(ConfigurationError, match="different sample list"):
        split_folds(CASES, k_fold=3, evaluation_path=str(foreign))
    # MIScnn-style fold folders of the same samples are adopted as they are.
    own = tmp_path / "own"
    parts = [CASES[0:2], CASES[2:4], CASES[4:6]]
    for fold, part in enumerate(parts):
        write_fold2disk(str(own / f"fold_{fold}" / "sample_list.json"),
                        [c for c in CASES if c not in part], part)
    (own / "fold_1" / "history.tsv").write_text("epoch\tloss\n1\t0.5\n")
    with pytest.raises(ConfigurationError, match="history.tsv"):  # foreign results stay untouched
        split_folds(CASES, k_fold=3, evaluation_path=str(own))
    assert (own / "fold_1" / "history.tsv").is_file()
    os.remove(own / "fold_1" / "history.tsv")
    splits = split_folds(CASES, k_fold=3, evaluation_path=str(own), seed=5)
    assert [sorted(v) for _, v in splits] == parts
    assert json.load(open(own / "cross_validation.json"))["adopted_existing_folds"] is True


def test_killed_fold_leaves_no_marker(tmp_path):
    model = make_network()
    path = str(tmp_path / "evaluation")
    with pytest.raises(RuntimeError, match="simulated crash"):
        cross_validation(CASES, model, k_fold=2, epochs=1, iterations=1, evaluation_path=path,
                         callbacks=lambda fold: [Boom()], seed=3)
    assert os.path.isfile(os.path.join(path, "cross_validation.json"))
    assert os.path.isfile(os.path.join(path, "fold_0", "sample_list.json"))
    assert not os.path.exists(os.path.join(path, "fold_0", ".complete"))
    assert not os.path.exists(os.path.join(path, "fold_0", "history.tsv"))
    assert _folds.read_marker(os.path.join(path, "fold_1")) is None


@pytest.mark.parametrize("k_fold", [1, 0, 7, "3", 2.0, True])
def test_invalid_k_fold(tmp_path, k_fold):
    with pytest.raises(ConfigurationError, match="k_fold"):
        cross_validation(CASES, None, k_fold=k_fold, evaluation_path=str(tmp_path / "e"))
    assert not (tmp_path / "e").exists()


def test_invalid_inputs_fail_before_any_work(tmp_path):
    target = str(tmp_path / "e")
    with pytest.raises(ConfigurationError, match="unknown metric"):
        cross_validation(CASES, None, evaluation_path=target, run_detailed_evaluation=True,
                         metrics=["dice", "not_a_metric"])
    with pytest.raises(ConfigurationError, match="duplicate"):
        cross_validation(CASES + CASES[:1], None, evaluation_path=target)
    with pytest.raises(ConfigurationError, match="epochs"):
        cross_validation(CASES, None, epochs=0, evaluation_path=target)
    assert not os.path.exists(target)


def test_split_folds_then_run_fold(tmp_path):
    path = str(tmp_path / "evaluation")
    splits = split_folds(CASES, k_fold=3, evaluation_path=path, seed=1)
    assert split_folds(np.array(CASES), k_fold=3, evaluation_path=path) == splits
    for fold, (training, validation) in enumerate(splits):
        assert load_disk2fold(os.path.join(path, f"fold_{fold}", "sample_list.json")) == (training, validation)
    model = make_network()
    log = []
    history = run_fold(0, model, epochs=1, iterations=1, evaluation_path=path,
                       callbacks=probe_factory(log))
    fdir = os.path.join(path, "fold_0")
    for name in ("history.tsv", "model.keras", "model.hdf5", "validation.loss.png", ".complete"):
        assert os.path.isfile(os.path.join(fdir, name)), name
    assert [f for f, _, _ in log] == [0]
    # MIScnn scripts load fold_<i>/model.hdf5: real HDF5 holding the same model as model.keras.
    assert h5py.is_hdf5(os.path.join(fdir, "model.hdf5"))
    from_hdf5, from_keras = make_network(), make_network()
    from_hdf5.load(os.path.join(fdir, "model.hdf5"))
    from_keras.load(os.path.join(fdir, "model.keras"))
    for got, want in zip(from_hdf5.model.get_weights(), from_keras.model.get_weights()):
        np.testing.assert_array_equal(got, want)
    assert "model.hdf5" in json.load(open(os.path.join(fdir, ".complete")))["files"]
    again = run_fold(0, model, epochs=1, iterations=1, evaluation_path=path, callbacks=probe_factory(log))
    assert len(log) == 1 and again["loss"] == pytest.approx(history["loss"])
    with pytest.raises(DataNotFoundError, match="split_folds"):
        run_fold(5, model, evaluation_path=path)


def test_best_checkpoint_writes_keras_and_miscnn_hdf5_files(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    checkpoint = _folds.checkpoint(str(tmp_path))
    checkpoint.set_model(model)
    checkpoint.on_train_begin()
    for epoch, val_loss in enumerate([0.5, 0.7, 0.3, 0.3, 0.4]):
        model.set_weights([np.full_like(w, epoch) for w in model.get_weights()])
        checkpoint.on_epoch_end(epoch, {"loss": 1.0, "val_loss": val_loss})
    assert zipfile.is_zipfile(tmp_path / "model.keras") and h5py.is_hdf5(tmp_path / "model.hdf5")
    for name in ("model.keras", "model.hdf5"):
        saved = keras.models.load_model(str(tmp_path / name), compile=False).get_weights()
        assert all(np.all(w == 2) for w in saved), name  # epoch 2: the first lowest val_loss
    # An unfinished fold's leftovers are cleared under both names; other files stay.
    (tmp_path / "notes.txt").write_text("mine")
    _folds.clear_results(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]


def test_an_unwritable_hdf5_copy_warns_and_keeps_the_keras_model(tmp_path, monkeypatch):
    from miseg.evaluation import _model_files

    real_save = _model_files.save_keras_model

    def keras_only(model, path):  # e.g. a custom layer that legacy HDF5 cannot store
        if path.endswith(".hdf5"):
            raise ValueError("layer not supported by HDF5")
        return real_save(model, path)

    monkeypatch.setattr(_model_files, "save_keras_model", keras_only)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.warns(UserWarning, match="model.hdf5.*not supported by HDF5"):
        written = _model_files.save_model_files(model, [str(tmp_path / n) for n in _folds.FOLD_MODEL_FILES])
    assert written == [str(tmp_path / "model.keras")]
    assert _folds.fold_model_files(str(tmp_path)) == ["model.keras"]
    with pytest.raises(ValueError, match="not supported"):  # the required file never fails quietly
        _model_files.save_model_files(model, [str(tmp_path / "first.hdf5"), str(tmp_path / "b.keras")])


def test_seed_is_validated_and_stored_plain(tmp_path):
    path = str(tmp_path / "e")
    first = split_folds(CASES, k_fold=2, evaluation_path=path, seed=np.int64(2))
    assert json.load(open(os.path.join(path, "cross_validation.json")))["seed"] == 2
    assert split_folds(CASES, k_fold=2, evaluation_path=path, seed=2) == first
    for bad in (-1, 1.5, "2"):
        with pytest.raises(ConfigurationError, match="seed"):
            split_folds(CASES, k_fold=2, evaluation_path=str(tmp_path / "other"), seed=bad)


def test_fold_file_helpers(tmp_path):
    path = str(tmp_path / "f" / "sample_list.json")
    write_fold2disk(path, ["a", "b"], ["c"])
    assert json.load(open(path)) == {"TRAINING": ["a", "b"], "VALIDATION": ["c"]}
    assert load_disk2fold(path) == (["a", "b"], ["c"])
    write_fold2disk(path, None, [np.str_("c"), np.int64(3)])
    assert load_disk2fold(path) == (None, ["c", 3])


def test_fresh_callbacks_are_independent_copies():
    original = keras.callbacks.EarlyStopping(patience=3)
    original.wait = 2
    first = _folds.fresh_callbacks([original], 0)[0]
    first.wait = 99
    assert first is not original and original.wait == 2
    assert _folds.fresh_callbacks(lambda run: [f"made-{run}"], 4) == ["made-4"]
    assert _folds.fresh_callbacks(None, 0) == []

    class Attached(keras.callbacks.Callback):
        pass

    attached = Attached()
    sentinel = object()
    attached._model = sentinel
    copied = _folds.fresh_callbacks([attached], 0)[0]
    assert copied._model is None and attached._model is sentinel

    class Uncopyable(keras.callbacks.Callback):
        def __deepcopy__(self, memo):
            raise TypeError("no copies")

    with pytest.raises(ConfigurationError, match="factory"):
        _folds.fresh_callbacks([Uncopyable()], 0)


def test_star_import_gives_functions():
    namespace = {}
    exec("from miseg.evaluation import *", namespace)
    for name in ("cross_validation", "split_validation", "leave_one_out", "detailed_validation"):
        assert callable(namespace[name]) and not isinstance(namespace[name], type(sys))
    assert namespace["cross_validation"] is cross_validation
