"""Prediction uncertainty: voxel maps, per-case scores, review flags, calibration, outputs."""

import json
import math
import os

os.environ.setdefault("MISEG_QUIET", "1")

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from miseg.data_loading.data_io import Data_IO
from miseg.data_loading.interfaces import Dictionary_interface, NIFTI_interface
from miseg.datasets import write_kits_dataset
from miseg.errors import ConfigurationError, CorruptFileError, DataNotFoundError
from miseg.evaluation.detailed_validation import detailed_validation
from miseg.evaluation.reports import read_table
from miseg.evaluation.uncertainty import (
    CALIBRATION_FILE,
    DEFAULT_REVIEW_RULE,
    ReviewRule,
    calibrate_from_tables,
    calibrate_review_threshold,
    case_uncertainty,
    load_review_rule,
    member_dice,
    voxel_uncertainty,
    write_calibration,
)
from miseg.multi_model import Model_Group
from miseg.neural_network.architecture.unet.standard import Architecture
from miseg.neural_network.model import Neural_Network
from miseg.processing.preprocessor import Preprocessor

KITS = ["case_00000", "case_00001"]


def one_hot(labels, classes=3, confidence=1.0):
    rest = (1.0 - confidence) / (classes - 1)
    out = np.full(labels.shape + (classes,), rest, dtype=np.float32)
    np.put_along_axis(out, labels[..., None], confidence, axis=-1)
    return out


# ------------------------------------------------------------------------------ measures
def test_voxel_entropy_and_variance_values():
    certain = np.array([[[1.0, 0.0], [0.5, 0.5]]], dtype=np.float32)  # (1, 2, classes=2)
    flipped = np.array([[[1.0, 0.0], [0.5, 0.5]]], dtype=np.float32)
    entropy, variance = voxel_uncertainty([certain, flipped])
    np.testing.assert_allclose(entropy, [[0.0, 1.0]], atol=1e-6)  # normalised by log(classes)
    np.testing.assert_allclose(variance, [[0.0, 0.0]], atol=1e-7)
    a = np.array([[[0.9, 0.1]]], dtype=np.float32)
    b = np.array([[[0.1, 0.9]]], dtype=np.float32)
    entropy, variance = voxel_uncertainty([a, b])
    np.testing.assert_allclose(variance, [[0.16]], atol=1e-6)  # foreground 0.1 and 0.9
    np.testing.assert_allclose(entropy, [[1.0]], atol=1e-6)  # mean (0.5, 0.5)
    assert entropy.dtype == variance.dtype == np.float32


def test_member_dice_and_case_scores():
    base = np.zeros((8, 8), dtype=np.int64)
    base[2:6, 2:6] = 1
    shifted = np.roll(base, 2, axis=1)
    assert member_dice([base, base], 3) == 1.0
    assert member_dice([base, shifted], 3) == pytest.approx(0.5)  # 8 of 16 voxels shared
    assert member_dice([np.zeros_like(base)] * 2, 3) == 1.0
    assert math.isnan(member_dice([base], 3))
    agree = case_uncertainty([one_hot(base, confidence=0.9)] * 3)
    disagree = case_uncertainty([one_hot(base, confidence=0.9)] * 2 + [one_hot(shifted, confidence=0.9)])
    assert agree.scores["member_dice"] == 1.0 and agree.scores["n_members"] == 3
    assert disagree.scores["member_dice"] == pytest.approx(2 / 3)  # pairs: 1, 0.5, 0.5
    assert disagree.scores["mean_entropy_foreground"] > agree.scores["mean_entropy_foreground"]
    assert agree.scores["uncertain_fraction"] == 0.0
    # the 16 voxels where the members disagree are uncertain, of 24 in the union of foregrounds
    assert disagree.scores["uncertain_fraction"] == pytest.approx(16 / 24)
    empty = case_uncertainty([one_hot(np.zeros_like(base))] * 2)
    assert math.isnan(empty.scores["mean_entropy_foreground"]) and empty.scores["uncertain_fraction"] == 0.0


def test_review_rules_and_their_sources(tmp_path):
    assert load_review_rule(None) == DEFAULT_REVIEW_RULE
    assert load_review_rule(0.8) == ReviewRule("member_dice", 0.8, "below")
    rule = load_review_rule({"score": "mean_entropy_foreground", "threshold": 0.3})
    assert rule.direction == "above"
    assert rule.flag({"mean_entropy_foreground": 0.4}) and not rule.flag({"mean_entropy_foreground": 0.2})
    assert not rule.flag({"mean_entropy_foreground": float("nan")})
    written = write_calibration({"score": "uncertain_fraction", "threshold": 0.25, "direction": "above"}, str(tmp_path))
    assert written == str(tmp_path / CALIBRATION_FILE)
    assert load_review_rule(str(tmp_path)) == ReviewRule("uncertain_fraction", 0.25, "above")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(CorruptFileError, match="bad.json"):
        load_review_rule(str(tmp_path / "bad.json"))
    with pytest.raises(DataNotFoundError):
        load_review_rule(str(tmp_path / "missing.json"))
    with pytest.raises(ConfigurationError, match="Unknown uncertainty score"):
        ReviewRule("volume", 1.0)


def test_calibration_separates_poor_cases():
    table = pd.DataFrame({
        "dice": [0.95, 0.93, 0.90, 0.60, 0.55, 0.40],
        "member_dice": [0.97, 0.95, 0.96, 0.80, 0.85, 0.70],
        "mean_entropy_foreground": [0.1, 0.5, 0.2, 0.3, 0.1, 0.4],  # uninformative
        "uncertain_fraction": [0.1, 0.2, 0.1, 0.2, 0.1, 0.2],
    })
    calibration = calibrate_review_threshold(table)
    assert calibration["score"] == "member_dice" and calibration["direction"] == "below"
    assert calibration["quality"] == pytest.approx(0.75)  # the median Dice
    assert 0.85 < calibration["threshold"] < 0.95 and calibration["youden_j"] == pytest.approx(1.0)
    rule = load_review_rule(calibration)
    flags = [rule.flag(row) for row in table.to_dict("records")]
    assert flags == [False, False, False, True, True, True]
    entropy_only = calibrate_review_threshold(table, score="mean_entropy_foreground")
    assert entropy_only["youden_j"] < 1.0
    with pytest.raises(ConfigurationError, match="at least"):
        calibrate_review_threshold(table, quality=0.1)


# ------------------------------------------------------------------------------ prediction
@pytest.fixture(scope="module")
def kits_network(tmp_path_factory):
    root = tmp_path_factory.mktemp("unc")
    write_kits_dataset(str(root / "data"), n_cases=2, shape=(16, 16, 16), seed=0)
    data_io = Data_IO(NIFTI_interface(classes=3), str(root / "data"), output_path=str(root / "pred"))
    pp = Preprocessor(data_io, batch_size=1, data_aug=None, analysis="fullimage", prepare_subfunctions=False)
    return Neural_Network(pp, architecture=Architecture(n_filters=2, depth=1), workers=0, use_multiprocessing=False)


def test_network_uncertainty_comes_from_the_mirrored_predictions(kits_network):
    nn = kits_network
    plain = nn.predict(KITS[:1], return_output=True, activation_output=True, tta=False)[0]
    mirrors = [plain] + nn.predict_augmentated(KITS[0])
    (labels, measured), = nn.predict(KITS[:1], return_output=True, uncertainty=True)
    entropy, variance = voxel_uncertainty(mirrors)
    np.testing.assert_allclose(measured.entropy, entropy, atol=1e-5)
    np.testing.assert_allclose(measured.variance, variance, atol=1e-6)
    assert measured.variance.max() > 0  # an untrained net is not mirror-symmetric
    assert measured.scores["n_members"] == 4
    assert measured.scores["member_dice"] == pytest.approx(member_dice([m.argmax(-1) for m in mirrors], 3))
    np.testing.assert_array_equal(labels, nn.predict(KITS[:1], return_output=True, tta=True)[0])


def test_network_writes_maps_and_table_beside_the_prediction(kits_network):
    nn = kits_network
    out = nn.preprocessor.data_io.output_path
    nn.predict(KITS[:1])
    written = os.listdir(out)
    assert "case_00000.nii.gz" in written  # nothing extra when not asked:
    assert not [name for name in written if "entropy" in name or "variance" in name or "uncertainty" in name]
    nn.predict(KITS, uncertainty=True, review_threshold=1.01)  # every case below -> review
    data = nn.preprocessor.data_io.input_path
    for case in KITS:
        source = nib.load(os.path.join(data, case, "imaging.nii.gz"))
        for kind in ("entropy", "variance"):
            image = nib.load(os.path.join(out, f"{case}.{kind}.nii.gz"))
            assert image.shape == source.shape and image.get_data_dtype() == np.float32
            np.testing.assert_allclose(image.affine, source.affine)
    table = read_table(os.path.join(out, "uncertainty.tsv"))
    assert table["case"].tolist() == KITS
    assert {"mean_entropy_foreground", "uncertain_fraction", "member_dice", "review"} <= set(table.columns)
    assert table["review"].astype(str).str.lower().tolist() == ["true", "true"]
    nn.predict(KITS[1:], uncertainty=True, review_threshold=0.0)  # a later run updates its row only
    table = pd.read_csv(os.path.join(out, "uncertainty.tsv"), sep="\t", dtype=str)
    assert dict(zip(table["case"], table["review"])) == {"case_00000": "true", "case_00001": "false"}


def test_group_uncertainty_uses_the_members(tmp_path):
    rng = np.random.default_rng(0)
    cases = {f"c{i}": (rng.standard_normal((16, 16)).astype(np.float32), None) for i in range(2)}
    interface = Dictionary_interface(cases, channels=1, classes=3, three_dim=False)
    pp = Preprocessor(Data_IO(interface, "-", output_path=str(tmp_path)), batch_size=1, data_aug=None,
                      analysis="fullimage")
    members = [Neural_Network(pp, architecture=Architecture(n_filters=2, depth=1), workers=0,
                              use_multiprocessing=False) for _ in range(3)]
    group = Model_Group(members, pp)
    (_, measured), _ = group.predict(["c0", "c1"], return_output=True, uncertainty=True)
    maps = [m.predict(["c0"], return_output=True, activation_output=True)[0] for m in members]
    assert measured.scores["n_members"] == 3
    assert measured.scores["member_dice"] == pytest.approx(member_dice([m.argmax(-1) for m in maps], 3))
    np.testing.assert_allclose(measured.entropy, voxel_uncertainty(maps)[0], atol=1e-6)
    group.predict(["c0"], uncertainty=True)
    np.testing.assert_allclose(interface.predictions["c0.entropy"], measured.entropy, atol=1e-6)
    assert read_table(str(tmp_path / "uncertainty.tsv"))["case"].tolist() == ["c0"]


def test_detailed_validation_tables_feed_the_calibration(kits_network, tmp_path):
    table = detailed_validation(KITS, kits_network, str(tmp_path), metrics=["dice"], uncertainty=True)
    per_case = read_table(str(tmp_path / "detailed_validation.uncertainty.tsv"))
    assert per_case["sample_id"].tolist() == KITS
    fg = table[table["class"] != 0].groupby("sample_id")["dice"].mean()
    np.testing.assert_allclose(per_case["dice"], fg.loc[KITS].to_numpy())
    wide = read_table(str(tmp_path / "detailed_validation.tsv"))
    assert wide.columns[:4].tolist() == ["sample_id", "dice_class-0", "dice_class-1", "dice_class-2"]
    assert {"member_dice", "mean_entropy_foreground", "uncertain_fraction", "review"} <= set(wide.columns)
    per_case["dice"] = [0.9, 0.5]  # make one case poor so a threshold exists
    per_case["member_dice"] = [0.95, 0.6]
    per_case.to_csv(tmp_path / "detailed_validation.uncertainty.tsv", sep="\t", index=False)
    calibration = calibrate_from_tables([str(tmp_path)])
    stored = json.loads((tmp_path / CALIBRATION_FILE).read_text())
    assert stored["threshold"] == calibration["threshold"] and 0.6 < stored["threshold"] < 0.95


# ------------------------------------------------------------------------------ cross-validation
def test_cross_validation_scores_folds_and_calibrates_on_them(tmp_path):
    from miseg.evaluation.cross_validation import cross_validation

    write_kits_dataset(str(tmp_path / "data"), n_cases=4, shape=(16, 16, 16), seed=1)
    data_io = Data_IO(NIFTI_interface(classes=3), str(tmp_path / "data"), output_path=str(tmp_path / "pred"))
    pp = Preprocessor(data_io, batch_size=1, data_aug=None, analysis="fullimage", prepare_subfunctions=False)
    nn = Neural_Network(pp, architecture=Architecture(n_filters=2, depth=1), workers=0, use_multiprocessing=False)
    ids = sorted(data_io.get_indiceslist())
    evaluation = tmp_path / "evaluation"
    cross_validation(ids, nn, k_fold=2, epochs=1, iterations=1, evaluation_path=str(evaluation),
                     run_detailed_evaluation=True, save_models=False, seed=0, metrics=["dice"], uncertainty=True)
    for fold in ("fold_0", "fold_1"):
        per_case = read_table(str(evaluation / fold / "detailed_validation.uncertainty.tsv"))
        assert len(per_case) == 2 and per_case["member_dice"].notna().all()
    stored = json.loads((evaluation / CALIBRATION_FILE).read_text())
    assert stored == calibrate_from_tables([str(evaluation / "fold_0"), str(evaluation / "fold_1")],
                                           output=str(tmp_path / "again.json"))
    assert load_review_rule(str(evaluation)) is not None


def test_cross_validation_checks_the_uncertainty_options_before_training(tmp_path):
    from miseg.evaluation.cross_validation import cross_validation

    with pytest.raises(ConfigurationError, match="run_detailed_evaluation"):
        cross_validation(["a", "b"], None, k_fold=2, evaluation_path=str(tmp_path / "e"), uncertainty=True)
    with pytest.raises(ConfigurationError, match="cannot be combined"):
        cross_validation(["a", "b"], None, k_fold=2, evaluation_path=str(tmp_path / "e"),
                         run_detailed_evaluation=True, uncertainty=True, instances=True)
    assert not (tmp_path / "e").exists()
