"""Model_Group and CrossValidationGroup: ensembles, training, dump/load, fold members."""

import json
import os

os.environ.setdefault("MISEG_QUIET", "1")

import numpy as np
import pytest

from miseg.data_loading.data_io import Data_IO
from miseg.data_loading.interfaces import Dictionary_interface
from miseg.errors import ConfigurationError, DataNotFoundError
from miseg.multi_model import CrossValidationGroup, Model, Model_Group
from miseg.multi_model.model_group import mean_aggregation
from miseg.neural_network.architecture.unet.residual import Architecture as Residual
from miseg.neural_network.architecture.unet.standard import Architecture as Standard
from miseg.neural_network.model import Neural_Network
from miseg.processing.preprocessor import Preprocessor

CASES = ["g0", "g1", "g2", "g3"]


def make_preprocessor(output_path, classes=3):
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[:16, :16]
    cases = {}
    for index in CASES:
        cy, cx = rng.integers(5, 11, size=2)
        dist = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
        seg = (dist <= 4).astype(np.uint8)
        seg[dist <= 1.5] = classes - 1
        cases[index] = ((seg + 0.3 * rng.standard_normal((16, 16))).astype(np.float32), seg)
    interface = Dictionary_interface(cases, channels=1, classes=classes, three_dim=False)
    data_io = Data_IO(interface, "-", output_path=str(output_path), seed=4)
    return Preprocessor(data_io, batch_size=2, data_aug=None, analysis="fullimage")


def network(pp, architecture):
    return Neural_Network(pp, architecture=architecture, workers=0, use_multiprocessing=False)


@pytest.fixture
def group(tmp_path):
    pp = make_preprocessor(tmp_path / "predictions")
    members = [network(pp, Standard(n_filters=4, depth=1)), network(pp, Residual(n_filters=4, depth=1))]
    return Model_Group(members, pp)


def test_ensemble_is_the_mean_of_member_probabilities(group):
    members = [m.predict(CASES[:2], activation_output=True, return_output=True) for m in group.models]
    probabilities = group.predict(CASES[:2], activation_output=True, return_output=True)
    labels = group.predict(CASES[:2], return_output=True)
    for case in range(2):
        mean = (members[0][case] + members[1][case]) / 2
        assert probabilities[case].shape == (16, 16, 3)
        np.testing.assert_allclose(probabilities[case], mean, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(labels[case], np.argmax(mean, axis=-1))
    assert not np.allclose(members[0][0], members[1][0])  # a real average of distinct members


def test_custom_aggregation_and_saving(group):
    seen = []

    def first_member(sample, predictions):
        seen.append((sample.index, len(predictions), sample.seg_data))
        return predictions[0]

    out = group.predict(["g1"], aggregation_func=first_member, return_output=True)
    assert seen == [("g1", 2, None)]
    expected = group.models[0].predict(["g1"], return_output=True)[0]
    np.testing.assert_array_equal(out[0], expected)
    with pytest.raises(ConfigurationError, match="label map"):
        group.predict(["g1"], aggregation_func=lambda s, p: np.argmax(p[0], -1), activation_output=True,
                      return_output=True)
    with pytest.raises(ConfigurationError, match="not callable"):
        group.predict(["g1"], True)
    assert group.predict(["g2"]) is None
    saved = group.preprocessor.data_io.interface.predictions["g2"]
    np.testing.assert_array_equal(saved, group.predict(["g2"], return_output=True)[0])
    assert mean_aggregation(None, [np.zeros((2, 2)), np.ones((2, 2))]).tolist() == [[0.5, 0.5], [0.5, 0.5]]


def test_dump_load_round_trip(group, tmp_path):
    expected = group.predict(CASES, activation_output=True, return_output=True)
    folder = tmp_path / "ensemble"
    assert group.dump(str(folder)) == str(folder)
    meta = json.load(open(folder / "metadata.json"))
    assert [m["path"] for m in meta["members"]] == ["group_0/model.keras", "group_1/model.keras"]
    assert meta["type"] == "Model_Group" and meta["classes"] == 3
    pp = group.preprocessor
    fresh = Model_Group([network(pp, Standard(n_filters=4, depth=1)),
                         network(pp, Residual(n_filters=4, depth=1))], pp)
    before = fresh.predict(CASES[:1], activation_output=True, return_output=True)
    assert not np.allclose(before[0], expected[0])
    fresh.load(str(folder))
    loaded = fresh.predict(CASES, activation_output=True, return_output=True)
    for got, want in zip(loaded, expected):
        np.testing.assert_array_equal(got, want)
    copy = fresh.copy()
    assert copy.models[0] is not fresh.models[0]
    np.testing.assert_array_equal(copy.predict(["g0"], return_output=True, activation_output=True)[0],
                                  expected[0])
    with pytest.raises(DataNotFoundError):
        fresh.load(str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match="members"):
        Model_Group(fresh.models[:1], pp).load(str(folder))


def test_constructor_checks(tmp_path):
    pp = make_preprocessor(tmp_path)
    other = make_preprocessor(tmp_path)
    member = network(pp, Standard(n_filters=2, depth=1))
    assert isinstance(member, Model)
    with pytest.raises(ConfigurationError, match="not a miseg Model"):
        Model_Group([member, "not a model"], pp)
    with pytest.raises(ConfigurationError, match="another Preprocessor"):
        Model_Group([member], other)
    assert len(Model_Group([member], other, verify_preprocessor=False)) == 1
    with pytest.raises(ConfigurationError, match="empty"):
        Model_Group([], pp)
    two_class = make_preprocessor(tmp_path, classes=2)
    with pytest.raises(ConfigurationError, match="classes"):
        Model_Group([network(two_class, Standard(n_filters=2, depth=1))], pp, verify_preprocessor=False)


def test_train_stores_members_and_restores_output_path(group, tmp_path):
    data_io = group.preprocessor.data_io
    base = data_io.output_path
    histories = group.train(CASES, epochs=1, iterations=1)
    assert len(histories) == 2 and all("loss" in h.history for h in histories)
    assert data_io.output_path == base
    for position in range(2):
        assert os.path.isfile(os.path.join(base, f"group_{position}", "model.keras"))


def test_cross_validation_group(tmp_path):
    pp = make_preprocessor(tmp_path / "predictions")
    model = network(pp, Standard(n_filters=4, depth=1))
    group = CrossValidationGroup(model, pp, folds=2)
    assert len(group) == 2 and group.models[0] is model  # MIScnn built folds + 1 models
    for member in group.models[1:]:
        for got, want in zip(member.initialization_weights, model.initialization_weights):
            np.testing.assert_array_equal(got, want)
    path = tmp_path / "evaluation"
    histories = group.evaluate(CASES, evaluation_path=str(path), epochs=1, iterations=1, seed=0)
    assert len(histories) == 2 and all("val_loss" in h for h in histories)
    validation = []
    for position in range(2):
        member_dir = path / f"group_{position}"
        split = json.load(open(member_dir / "sample_list.json"))
        validation += split["VALIDATION"]
        assert not set(split["TRAINING"]) & set(split["VALIDATION"])
        for name in ("history.tsv", "model.keras", "model.hdf5", ".complete"):
            assert (member_dir / name).is_file(), name
    assert sorted(validation) == CASES
    stored = [json.load(open(path / f"group_{i}" / "sample_list.json"))["VALIDATION"] for i in range(2)]
    assert [sorted(v) for _, v in group.fold_splits] == [sorted(v) for v in stored]
    labels = group.predict(["g0"], return_output=True)[0]
    assert labels.shape == (16, 16) and labels.max() < 3
    with pytest.raises(ConfigurationError, match="folds"):
        CrossValidationGroup(model, pp, folds=1)
    with pytest.raises(ConfigurationError, match="folds=5 is larger"):
        CrossValidationGroup(model, pp, folds=5).evaluate(CASES, evaluation_path=str(tmp_path / "x"))


def test_evaluate_writes_member_folders(group, tmp_path):
    path = tmp_path / "evaluation"
    histories = group.evaluate(CASES[:3], CASES[3:], epochs=1, iterations=1, evaluation_path=str(path))
    assert len(histories) == 2
    for position, history in enumerate(histories):
        assert set(history) >= {"loss", "val_loss"}
        assert (path / f"group_{position}" / "history.tsv").is_file()
        assert (path / f"group_{position}" / "model.keras").is_file()
        assert (path / f"group_{position}" / "model.hdf5").is_file()  # MIScnn's checkpoint name


def test_nested_group_dump_load(tmp_path):
    pp = make_preprocessor(tmp_path / "predictions")
    inner = Model_Group([network(pp, Standard(n_filters=2, depth=1)), network(pp, Standard(n_filters=3, depth=1))], pp)
    outer = Model_Group([network(pp, Residual(n_filters=2, depth=1)), inner], pp)
    members = [outer.models[0].predict(["g0"], activation_output=True, return_output=True)[0],
               inner.predict(["g0"], activation_output=True, return_output=True)[0]]
    expected = outer.predict(["g0"], activation_output=True, return_output=True)[0]
    np.testing.assert_allclose(expected, (members[0] + members[1]) / 2, rtol=1e-6, atol=1e-7)
    outer.dump(str(tmp_path / "nested"))
    meta = json.load(open(tmp_path / "nested" / "metadata.json"))
    assert [m["type"] for m in meta["members"]] == ["Neural_Network", "Model_Group"]
    assert meta["members"][1]["path"] == "group_1"
    assert (tmp_path / "nested" / "group_1" / "metadata.json").is_file()
    assert (tmp_path / "nested" / "group_1" / "group_1" / "model.keras").is_file()
    fresh = Model_Group([network(pp, Residual(n_filters=2, depth=1)),
                         Model_Group([network(pp, Standard(n_filters=2, depth=1)),
                                      network(pp, Standard(n_filters=3, depth=1))], pp)], pp)
    fresh.load(str(tmp_path / "nested"))
    np.testing.assert_array_equal(fresh.predict(["g0"], activation_output=True, return_output=True)[0], expected)


class IntensityModel(Model):
    """A user model written against MIScnn's abstract Model only (its signatures, no miseg
    extras): class probabilities from the image intensity, ``cut`` being its one parameter.
    Like MIScnn's networks it writes predictions through the Data_IO and returns nothing."""

    def __init__(self, preprocessor, cut=0.5):
        super().__init__(preprocessor)
        self.cut, self.initial_cut, self.log = cut, cut, []

    def probabilities(self, image):
        fg = 1.0 / (1.0 + np.exp(-4.0 * (image[..., 0] - self.cut)))
        return np.stack([1 - fg, 0.7 * fg, 0.3 * fg], axis=-1).astype(np.float32)

    def train(self, sample_list, epochs=20, iterations=None, callbacks=None, class_weight=None):
        self.cut += 0.1 * epochs
        self.log.append(("train", len(sample_list)))

    def predict(self, sample_list, activation_output=False):
        data_io = self.preprocessor.data_io
        for index in sample_list:
            sample = data_io.sample_loader(index, load_seg=False)
            probabilities = self.probabilities(sample.img_data)
            output = probabilities if activation_output else np.argmax(probabilities, axis=-1)
            sample.add_prediction(output, activation_output)
            data_io.save_prediction(sample)

    def evaluate(self, training_samples, validation_samples, evaluation_path="evaluation", epochs=20,
                 iterations=None, callbacks=None):
        self.cut += 0.1 * epochs
        self.log.append(("evaluate", evaluation_path))
        return {"loss": [1.0 / epochs] * epochs, "val_loss": [2.0 / epochs] * epochs}

    def reset(self):
        self.cut = self.initial_cut

    def copy(self):
        return IntensityModel(self.preprocessor, self.cut)

    def dump(self, file_path):
        with open(os.path.join(file_path, "cut.json"), "w") as handle:
            json.dump({"cut": self.cut}, handle)

    def load(self, file_path, custom_objects=None):
        self.log.append(("load", type(custom_objects).__name__))
        with open(os.path.join(file_path, "cut.json")) as handle:
            self.cut = json.load(handle)["cut"]


def test_miscnn_style_user_model_as_a_group_member(tmp_path):
    pp = make_preprocessor(tmp_path / "predictions")
    net = network(pp, Standard(n_filters=2, depth=1))
    user = IntensityModel(pp, cut=0.4)
    group = Model_Group([net, user], pp)
    # predict: the member without return_output predicts through the Data_IO, is read back.
    expected = (net.predict(["g0"], activation_output=True, return_output=True)[0]
                + user.probabilities(pp.data_io.sample_loader("g0").img_data)) / 2
    ensemble = group.predict(["g0"], activation_output=True, return_output=True)[0]
    np.testing.assert_allclose(ensemble, expected, rtol=1e-5, atol=1e-6)
    assert pp.data_io.output_path == str(tmp_path / "predictions")
    # evaluate: MIScnn's signature gets its folder and no class_weight (the network member's
    # checkpoints are covered by test_evaluate_writes_member_folders).
    users = Model_Group([user, IntensityModel(pp, cut=0.6)], pp)
    histories = users.evaluate(CASES[:3], CASES[3:], epochs=2, evaluation_path=str(tmp_path / "evaluation"))
    assert user.log[-1] == ("evaluate", str(tmp_path / "evaluation" / "group_0"))
    assert histories[0] == {"loss": [0.5, 0.5], "val_loss": [1.0, 1.0]}
    assert json.load(open(tmp_path / "evaluation" / "group_1" / "cut.json")) == {"cut": pytest.approx(0.8)}
    assert (tmp_path / "evaluation" / "group_1" / "history.tsv").is_file()
    users.train(CASES, epochs=1)  # each member reset, trained and dumped into its group_<i>
    assert json.load(open(tmp_path / "predictions" / "group_0" / "cut.json")) == {"cut": pytest.approx(0.5)}
    with pytest.raises(ConfigurationError, match="IntensityModel.evaluate has no class_weight"):
        group.evaluate(CASES[:3], CASES[3:], epochs=1, class_weight={0: 1.0, 1: 2.0, 2: 2.0},
                       evaluation_path=str(tmp_path / "weighted"))
    assert not (tmp_path / "weighted").exists()  # refused before the network member trained
    # dump: a member whose dump returns None is stored in (and loaded from) its own folder.
    user.cut = 0.9
    folder = tmp_path / "ensemble"
    group.dump(str(folder))
    meta = json.load(open(folder / "metadata.json"))
    assert [m["path"] for m in meta["members"]] == ["group_0/model.keras", "group_1"]
    fresh_user = IntensityModel(pp, cut=0.1)
    fresh = Model_Group([network(pp, Standard(n_filters=2, depth=1)), fresh_user], pp)
    fresh.load(str(folder))
    assert fresh_user.cut == 0.9 and fresh_user.log == [("load", "dict")]
    for got, want in zip(fresh.models[0].model.get_weights(), net.model.get_weights()):
        np.testing.assert_array_equal(got, want)
    # MIScnn's layout (member folders only, no metadata.json) loads too.
    os.remove(folder / "metadata.json")
    fresh_user.cut = 0.1
    fresh.load(str(folder))
    assert fresh_user.cut == 0.9


def test_cross_validation_of_a_miscnn_style_user_model(tmp_path):
    from miseg.evaluation import cross_validation

    pp = make_preprocessor(tmp_path / "predictions")
    user = IntensityModel(pp, cut=0.5)
    cross_validation(CASES, user, k_fold=2, epochs=2, evaluation_path=str(tmp_path / "cv"),
                     run_detailed_evaluation=True, seed=0)
    assert [entry for entry in user.log if entry[0] == "evaluate"] == [
        ("evaluate", str(tmp_path / "cv" / f"fold_{fold}")) for fold in range(2)]
    for fold in range(2):
        fdir = tmp_path / "cv" / f"fold_{fold}"
        for name in ("history.tsv", "cut.json", "detailed_validation.tsv", ".complete"):
            assert (fdir / name).is_file(), (fold, name)
        assert json.load(open(fdir / "cut.json")) == {"cut": pytest.approx(0.7)}
