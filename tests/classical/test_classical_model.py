"""ClassicalModel in miseg's evaluation drivers and model groups, and the command line."""

import json
import os

import nibabel as nib
import numpy as np
import pytest

from miseg.classical import ClassicalModel, OtsuThreshold, WindowThreshold
from miseg.cli.main import main
from miseg.data_loading.data_io import Data_IO
from miseg.data_loading.interfaces import Dictionary_interface
from miseg.data_loading.interfaces.nifti_io import write_nifti
from miseg.errors import ConfigurationError, ModelError
from miseg.evaluation import cross_validation, split_validation
from miseg.multi_model import Model_Group
from miseg.processing.preprocessor import Preprocessor
from miseg.processing.subfunctions import Resampling

CASES = [f"case_{k}" for k in range(6)]


def disc_cases(seed=0, size=24):
    """2D discs (1 on 0, noise 0.25, spacing 1 x 0.5): label 1 inside."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    cases = {}
    for name in CASES:
        cy, cx, r = rng.integers(8, 16), rng.integers(8, 16), rng.integers(4, 7)
        seg = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).astype(np.uint8)
        cases[name] = ((seg + 0.25 * rng.standard_normal((size, size))).astype(np.float32), seg, None,
                       {"spacing": (1.0, 0.5)})
    return cases


def preprocessor(subfunctions=None):
    interface = Dictionary_interface(disc_cases(), channels=1, classes=2, three_dim=False)
    return Preprocessor(Data_IO(interface, "unused", seed=0), batch_size=1, data_aug=None,
                        analysis="fullimage", subfunctions=subfunctions)


@pytest.fixture(scope="module")
def cv_run(tmp_path_factory):
    model = ClassicalModel(preprocessor(), "region_growing", {"smoothing": 0.5})
    path = str(tmp_path_factory.mktemp("cv") / "evaluation")
    histories = cross_validation(CASES, model, k_fold=3, evaluation_path=path, run_detailed_evaluation=True,
                                 draw_figures=False, seed=0, return_output=True)
    return model, path, histories


def test_cross_validation_treats_a_classical_model_like_a_network(cv_run):
    model, path, histories = cv_run
    assert {"cross_validation.json", "detailed_validation.tsv", "detailed_validation.summary.tsv",
            "fold_0", "fold_1", "fold_2"} <= set(os.listdir(path))
    states = []
    for fold, history in enumerate(histories):
        fold_dir = os.path.join(path, f"fold_{fold}")
        assert {".complete", "history.tsv", "model.json", "sample_list.json",
                "detailed_validation.tsv"} <= set(os.listdir(fold_dir))
        assert history["val_dice"][0] > 0.85 and history["val_loss"][0] == pytest.approx(1 - history["val_dice"][0])
        stored = json.load(open(os.path.join(fold_dir, "model.json")))
        assert stored["method"] == "region_growing" and stored["config"]["smoothing"] == 0.5
        states.append(json.dumps(stored["state"], sort_keys=True))
        validation = json.load(open(os.path.join(fold_dir, "sample_list.json")))["VALIDATION"]
        reloaded = ClassicalModel(model.preprocessor, "otsu")
        reloaded.load(fold_dir)                                  # the fold's model predicts as the fold did
        assert reloaded.score(validation) == pytest.approx(history["val_dice"][0])
    assert len(set(states)) == 3                                 # each fold learned from its own cases
    import pandas as pd

    table = pd.read_csv(os.path.join(path, "detailed_validation.tsv"), sep="\t")
    assert len(table) == len(CASES) and table["dice_class-1"].mean() > 0.85


def test_split_validation_group_and_figures(tmp_path):
    pp = preprocessor()
    split_validation(CASES, ClassicalModel(pp, "otsu"), percentage=0.34, evaluation_path=str(tmp_path / "split"),
                     draw_figures=True, seed=1)
    files = set(os.listdir(tmp_path / "split"))
    assert {"model.json", "history.tsv", "validation.loss.png", "validation.dice.png"} <= files
    group = Model_Group([ClassicalModel(pp, "otsu"), ClassicalModel(pp, "graph_cut", {"lam": 1.0})], pp)
    group.train(CASES[:4], save_models=False)
    votes = group.predict(CASES[4:], return_output=True, activation_output=True)
    assert votes[0].shape == (24, 24, 2) and set(np.unique(votes[0])) <= {0.0, 0.5, 1.0}
    group.dump(str(tmp_path / "group"))
    fresh = Model_Group([ClassicalModel(pp, "otsu"), ClassicalModel(pp, "graph_cut")], pp)
    fresh.load(str(tmp_path / "group"))
    np.testing.assert_array_equal(fresh.predict(CASES[4:], return_output=True)[0],
                                  group.predict(CASES[4:], return_output=True)[0])


def test_predict_maps_back_through_the_subfunctions_and_writes_through_the_interface():
    pp = preprocessor([Resampling((1.0, 1.0))])                 # 24 x 24 at 1 x 0.5 mm -> 24 x 12
    model = ClassicalModel(pp, WindowThreshold(windows=(0.5, 2.0), smoothing=0.7))
    prediction = model.predict(["case_0"], return_output=True)[0]
    assert prediction.shape == (24, 24) and prediction.dtype == np.int64
    truth = disc_cases()["case_0"][1]
    assert (prediction == truth).mean() > 0.95
    model.predict(["case_1"])
    stored = pp.data_io.interface.predictions["case_1"]
    assert np.squeeze(stored).shape == (24, 24)
    with pytest.raises(ConfigurationError, match="map case indices"):
        model.predict(["case_0"], seeds=[(1, 1)])
    clone = model.copy()
    assert clone.method is not model.method and clone.method.get_config() == model.method.get_config()


def test_dump_load_checks_the_data(tmp_path):
    pp = preprocessor()
    model = ClassicalModel(pp, OtsuThreshold())
    model.train(CASES[:3])
    written = model.dump(str(tmp_path / "otsu.json"))
    assert written.endswith("otsu.json")
    loaded = ClassicalModel.from_file(written, pp)
    assert loaded.method.get_state() == model.method.get_state()
    model.reset()
    assert not model.method.fitted
    three = Preprocessor(Data_IO(Dictionary_interface(disc_cases(), classes=3, three_dim=False), "unused"),
                         batch_size=1, data_aug=None, analysis="fullimage")
    with pytest.raises(ModelError, match="classes=2"):
        ClassicalModel(three, "otsu").load(written)


# ------------------------------------------------------------------------------ command line
@pytest.fixture(scope="module")
def nifti_data(tmp_path_factory):
    """5 NIfTI cases (16^3, spacing 2 x 1 x 1) with a bright sphere at 300 on 100; the last unlabelled."""
    root = tmp_path_factory.mktemp("nifti") / "data"
    rng = np.random.default_rng(0)
    grids = np.meshgrid(*[np.arange(16)] * 3, indexing="ij")
    affine = np.diag([2.0, 1.0, 1.0, 1.0])
    for k in range(5):
        centre, radius = rng.uniform(6, 10, 3), rng.uniform(3, 5)
        seg = (sum((g - c) ** 2 for g, c in zip(grids, centre)) <= radius ** 2).astype(np.uint8)
        image = (100 + 200 * seg.astype(np.float32) + rng.normal(0, 30, seg.shape)).astype(np.float32)
        case = root / f"case_{k:05d}"
        os.makedirs(case)
        write_nifti(str(case / "imaging.nii.gz"), image, {"affine": affine})
        if k < 4:
            write_nifti(str(case / "segmentation.nii.gz"), seg, {"affine": affine})
    return str(root)


def _truth(data, case):
    return np.asarray(nib.load(os.path.join(data, case, "segmentation.nii.gz")).dataobj)


def test_segment_command_writes_predictions_like_predict(nifti_data, tmp_path, capsys):
    out = str(tmp_path / "window")
    assert main(["-q", "segment", nifti_data, "--method", "threshold", "--method-option", "windows=[200, 500]",
                 "-o", out]) == 0
    assert sorted(os.listdir(out)) == [f"case_{k:05d}.nii.gz" for k in range(5)] + ["manifest.json"]
    with open(os.path.join(out, "manifest.json"), encoding="utf-8") as handle:
        manifest = json.load(handle)
    assert manifest["kind"] == "prediction" and manifest["cases"]["prediction"] == [f"case_{k:05d}" for k in range(5)]
    assert manifest["plan"]["method"] == {"name": "threshold", "config": manifest["plan"]["method"]["config"]}
    assert manifest["plan"]["method"]["config"]["windows"] == {"1": [200.0, 500.0]}
    written = nib.load(os.path.join(out, "case_00000.nii.gz"))
    np.testing.assert_allclose(written.affine, np.diag([2.0, 1.0, 1.0, 1.0]))
    truth = _truth(nifti_data, "case_00000")
    assert (np.asarray(written.dataobj) == truth).mean() > 0.98
    fitted = str(tmp_path / "gc.json")
    assert main(["-q", "segment", nifti_data, "--method", "graph_cut", "--fit", "--save-model", fitted,
                 "-o", str(tmp_path / "gc")]) == 0
    assert main(["-q", "segment", nifti_data, "--model", fitted, "-o", str(tmp_path / "again")]) == 0
    for case in ("case_00001", "case_00004"):
        first = np.asarray(nib.load(str(tmp_path / "gc" / f"{case}.nii.gz")).dataobj)
        np.testing.assert_array_equal(first, np.asarray(nib.load(str(tmp_path / "again" / f"{case}.nii.gz")).dataobj))
    assert (first > 0).any()


def test_segment_seed_errors_exit_2_and_write_nothing(nifti_data, tmp_path, capsys):
    out = tmp_path / "seeded"
    for extra, message in (
        (["--seed-point", "8", "8"], "has 2 coordinates, but the 3D image"),
        (["--seed-point", "8", "8", "40"], "outside the image"),
        (["--method-option", "lower=200", "--method-option", "upper=500"], "one case"),
    ):
        capsys.readouterr()
        cases = ["--cases", "case_00004"] if "--seed-point" in extra else ["--seed-point", "8", "8", "8"]
        code = main(["-q", "segment", nifti_data, "--method", "region_growing", *cases, *extra, "-o", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
        assert not out.exists() or not os.listdir(out)
    mask = np.zeros((16, 16, 16), np.uint8)
    np.save(tmp_path / "empty.npy", mask)
    code = main(["-q", "segment", nifti_data, "--method", "graph_cut", "--cases", "case_00004",
                 "--seed-mask", str(tmp_path / "empty.npy"), "-o", str(out)])
    assert code == 2 and "mask is empty" in capsys.readouterr().err
    mask[8, 8, 8], mask[0] = 1, 2                              # 1: object, 2 (= classes): background
    np.save(tmp_path / "scribbles.npy", mask)
    assert main(["-q", "segment", nifti_data, "--method", "graph_cut", "--cases", "case_00004",
                 "--seed-mask", str(tmp_path / "scribbles.npy"), "-o", str(out)]) == 0
    assert sorted(os.listdir(out)) == ["case_00004.nii.gz", "manifest.json"]


def test_evaluate_method_cross_validates(nifti_data, tmp_path, capsys):
    out = str(tmp_path / "evaluation")
    code = main(["-q", "evaluate", nifti_data, "--method", "otsu", "--k-fold", "2", "--seed", "0",
                 "--no-figures", "-o", out])
    printed = capsys.readouterr().out
    assert code == 0 and "dice" in printed
    assert {"fold_0", "fold_1", "detailed_validation.tsv", "run.config.yaml"} <= set(os.listdir(out))
    assert json.load(open(os.path.join(out, "fold_1", "model.json")))["method"] == "otsu"
    assert main(["-q", "evaluate", nifti_data, "--method", "nope", "-o", out]) == 2


def test_evaluate_threshold_region_growing(nifti_data, tmp_path, capsys):
    out = str(tmp_path / "trg")
    code = main(["-q", "evaluate", nifti_data, "--method", "threshold_region_growing", "--method-option",
                 "fill_holes=true", "--k-fold", "2", "--seed", "0", "--no-figures", "-o", out])
    assert code == 0, capsys.readouterr().err
    stored = json.load(open(os.path.join(out, "fold_0", "model.json")))
    assert stored["method"] == "threshold_region_growing" and stored["config"]["fill_holes"] is True
    low, high = stored["state"]["windows"]["1"]                # in the preprocessed (z-scored) intensities
    assert 0 < low < high
    import pandas as pd

    table = pd.read_csv(os.path.join(out, "detailed_validation.tsv"), sep="\t")
    assert len(table) == 4 and table["dice_class-1"].mean() > 0.8
