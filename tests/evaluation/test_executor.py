"""Fold-parallel cross-validation in worker processes (process pool and Dask)."""

import json
import multiprocessing
import os
import pickle
from concurrent.futures import ProcessPoolExecutor

os.environ.setdefault("MISEG_QUIET", "1")

import numpy as np
import pytest

from miseg.data_loading.data_io import Data_IO
from miseg.data_loading.interfaces import Dictionary_interface
from miseg.evaluation import _execution, cross_validation
from miseg.evaluation.cross_validation import run_fold, split_folds
from miseg.neural_network.architecture.unet.standard import Architecture
from miseg.neural_network.metrics import dice_soft, tversky_loss
from miseg.neural_network.model import Neural_Network
from miseg.processing.preprocessor import Preprocessor

CASES = ["p0", "p1", "p2", "p3"]


def make_network():
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[:16, :16]
    cases = {}
    for index in CASES:
        cy, cx = rng.integers(5, 11, size=2)
        seg = ((yy - cy) ** 2 + (xx - cx) ** 2 <= 9).astype(np.uint8)
        img = (seg + 0.3 * rng.standard_normal((16, 16))).astype(np.float32)
        cases[index] = (img, seg, None, {"spacing": (1.0, 1.0)})
    data_io = Data_IO(Dictionary_interface(cases, channels=1, classes=2, three_dim=False), "-", seed=11)
    pp = Preprocessor(data_io, batch_size=2, data_aug=None, analysis="fullimage")
    return Neural_Network(pp, architecture=Architecture(n_filters=4, depth=1), loss=tversky_loss,
                          metrics=[dice_soft], workers=0, use_multiprocessing=False)


def check_run(path, histories, model, weights_before):
    assert len(histories) == 2
    for fold in range(2):
        fdir = os.path.join(path, f"fold_{fold}")
        for name in ("sample_list.json", "history.tsv", "model.keras", "detailed_validation.tsv", ".complete"):
            assert os.path.isfile(os.path.join(fdir, name)), (fold, name)
        assert set(histories[fold]) >= {"loss", "val_loss"}
    assert os.path.isfile(os.path.join(path, "detailed_validation.tsv"))
    # The workers started from the caller's initial weights; the caller's model is untouched.
    initial = os.path.join(path, "initial_model.keras")
    shipped = make_network()
    shipped.model.load_weights(initial)
    for got, want in zip(shipped.model.get_weights(), model.initialization_weights):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(model.model.get_weights(), weights_before):
        np.testing.assert_array_equal(got, want)


def test_task_pieces_pickle():
    model = make_network()
    spec = _execution.NetworkSpec.from_network(model, "/tmp/none.keras")
    clone = pickle.loads(pickle.dumps(spec))
    assert clone.preprocessor.data_io.indices_list == CASES
    assert clone.architecture.n_filters == 4 and clone.loss is tversky_loss


@pytest.mark.slow  # spawns worker processes that each start TensorFlow (end to end, ~45 s)
def test_process_pool_matches_a_serial_fold(tmp_path):
    model = make_network()
    before = [w.copy() for w in model.model.get_weights()]
    path = str(tmp_path / "pool")
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context) as executor:
        histories = cross_validation(CASES, model, k_fold=2, epochs=1, iterations=1,
                                     evaluation_path=path, run_detailed_evaluation=True,
                                     return_output=True, seed=0, executor=executor)
    check_run(path, histories, model, before)
    # A serial run of the same fold from the same initial state gives the same history.
    serial = str(tmp_path / "serial")
    split_folds(CASES, k_fold=2, evaluation_path=serial, seed=0)
    assert json.load(open(os.path.join(serial, "fold_0", "sample_list.json"))) == \
        json.load(open(os.path.join(path, "fold_0", "sample_list.json")))
    history = run_fold(0, model, epochs=1, iterations=1, evaluation_path=serial, draw_figures=False)
    assert history["loss"] == pytest.approx(histories[0]["loss"], rel=1e-4)
    assert history["val_loss"] == pytest.approx(histories[0]["val_loss"], rel=1e-4)


@pytest.mark.slow  # starts a Dask LocalCluster whose workers each start TensorFlow (~45 s)
def test_dask_local_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    model = make_network()
    before = [w.copy() for w in model.model.get_weights()]
    path = str(tmp_path / "dask")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        executor = client.get_executor()
        histories = cross_validation(CASES, model, k_fold=2, epochs=1, iterations=1,
                                     evaluation_path=path, run_detailed_evaluation=True,
                                     return_output=True, seed=0, executor=executor)
        check_run(path, histories, model, before)
        # Resuming with everything complete submits nothing and reads the stored histories.
        os.remove(os.path.join(path, "initial_model.keras"))
        again = cross_validation(CASES, model, k_fold=2, epochs=1, iterations=1,
                                 evaluation_path=path, return_output=True, executor=executor)
        assert not os.path.exists(os.path.join(path, "initial_model.keras"))
        assert again[1]["val_loss"] == pytest.approx(histories[1]["val_loss"])


class FailFirstFold:
    """Callback factory whose fold-0 callback crashes when training starts."""

    def __call__(self, fold):
        import keras

        class Crash(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                raise RuntimeError("fold crashed")

        return [Crash()] if fold == 0 else []


def test_failed_fold_is_reported_and_others_are_kept(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    model = make_network()
    path = str(tmp_path / "threads")
    with ThreadPoolExecutor(1) as executor, pytest.raises(RuntimeError, match="fold crashed") as info:
        cross_validation(CASES, model, k_fold=2, epochs=1, iterations=1, evaluation_path=path,
                         callbacks=FailFirstFold(), seed=0, executor=executor)
    assert any("fold(s) [0] failed" in note for note in getattr(info.value, "__notes__", []))
    assert not os.path.exists(os.path.join(path, "fold_0", ".complete"))
    assert os.path.isfile(os.path.join(path, "fold_1", ".complete"))


class NoSubmitPool(ProcessPoolExecutor):
    """A process pool that fails the test instead of running a task (a fork pool would hang)."""

    def submit(self, *args, **kwargs):
        raise AssertionError("a task was submitted to a fork-based pool")


def test_fork_process_pool_is_refused_before_anything_runs(tmp_path):
    from miseg.errors import ConfigurationError
    from miseg.evaluation import leave_one_out

    fork = multiprocessing.get_context("fork")
    with NoSubmitPool(2, mp_context=fork) as executor:
        for driver in (cross_validation, leave_one_out):
            path = tmp_path / driver.__name__
            with pytest.raises(ConfigurationError, match=r"fork.*get_context\(\"spawn\"\)"):
                driver(CASES, None, epochs=1, evaluation_path=str(path), executor=executor)
            assert not path.exists()  # refused before the run folder was written
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as executor:
        _execution.check_executor(executor, "cross_validation")  # accepted, nothing started
