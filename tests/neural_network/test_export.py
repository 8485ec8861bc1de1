"""Export: ONNX (tf2onnx + onnxruntime), SavedModel, .keras, the preprocessing plan, bad input."""

import json
import os

import keras
import numpy as np
import pytest
from conftest import MemoryIO, blob_cases

import miseg.neural_network.architecture.unet as unet_pkg
from miseg.data_loading.data_io import Data_IO
from miseg.errors import ConfigurationError, ModelError
from miseg.neural_network.architecture import Abstract_Architecture
from miseg.neural_network.export import export_network, export_paths, is_untrained
from miseg.neural_network.model import Neural_Network
from miseg.processing.preprocessor import Preprocessor
from miseg.processing.subfunctions import Normalization

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")

# Tiny settings of every architecture: two downsamplings.
TINY = {
    "UNet_standard": {"n_filters": 2, "depth": 2},
    "UNet_plain": {"feature_maps": (2, 4)},
    "UNet_residual": {"n_filters": 2, "depth": 2},
    "UNet_dense": {"n_filters": 2, "depth": 2},
    "UNet_multiRes": {"n_filters": 2, "depth": 2},
    "UNet_compact": {"n_filters": 2, "depth": 2},
    "UNet_attention": {"n_filters": 2, "depth": 2},
    "UNet_attention_residual": {"n_filters": 2, "depth": 2},
}
# The default run converts a representative subset (residual blocks in 2D, compact blocks in
# 3D; the standard U-Net in 3D below); all 16 conversions run with -m slow.
FAST = {("UNet_residual", 2), ("UNet_compact", 3)}
ALL = [pytest.param(name, rank, marks=() if (name, rank) in FAST else pytest.mark.slow)
       for rank in (2, 3) for name in sorted(TINY)]


def _network(three_dim=True, architecture=None, size=16, seed=0):
    keras.utils.set_random_seed(seed)
    shape = (size,) * 3 if three_dim else (size, size, 1)
    cases = blob_cases(2, shape=shape)
    if not three_dim:
        cases = {k: (v[0][..., 0] * 50.0 + 100.0, v[1][..., 0]) for k, v in cases.items()}
    else:
        cases = {k: (v[0] * 50.0 + 100.0, v[1]) for k, v in cases.items()}  # not already normalised
    io = MemoryIO(cases, three_dim=three_dim)
    pp = Preprocessor(Data_IO(io, "unused", seed=1), batch_size=1, subfunctions=[Normalization()], data_aug=None,
                      analysis="patchwise-grid", patch_shape=shape[:3 if three_dim else 2])
    architecture = architecture or unet_pkg.UNet_standard(n_filters=2, depth=2)
    return Neural_Network(pp, architecture=architecture, workers=0), io


@pytest.fixture(scope="module")
def trained():
    """A 3D network on 16^3 blobs (z-score normalisation, one patch per case) with changed
    weights, as after training (a real ``train`` is exercised in test_model.py)."""
    network, io = _network()
    rng = np.random.default_rng(3)
    network.model.set_weights([w + 0.05 * rng.standard_normal(w.shape).astype(w.dtype)
                               for w in network.model.get_weights()])
    return network, io


def _files(folder):
    return sorted(os.listdir(folder))


# ------------------------------------------------------------------------------ plan + ONNX
def test_onnx_and_plan_reproduce_a_prediction_outside_miseg(trained, tmp_path):
    network, io = trained
    weights = [w.copy() for w in network.model.get_weights()]
    result = network.export(str(tmp_path / "seg"), format="onnx")
    assert result.model_path == str(tmp_path / "seg.onnx")
    assert result.plan_path == str(tmp_path / "seg.preprocessing.json")
    assert _files(tmp_path) == ["seg.onnx", "seg.preprocessing.json"]  # no temporary leftovers
    for got, want in zip(network.model.get_weights(), weights):  # the network is untouched
        np.testing.assert_array_equal(got, want)

    with open(result.plan_path, encoding="utf-8") as handle:
        plan = json.load(handle)
    model, pre = plan["model"], plan["preprocessing"]
    assert model["file"] == "seg.onnx" and model["format"] == "onnx" and model["trained"] is True
    assert model["input_shape"] == [None, 16, 16, 16, 1] and model["output_shape"] == [None, 16, 16, 16, 3]
    assert model["activation"] == "softmax" and model["architecture"] == "UNet_standard"
    assert plan["data"] == {"three_dim": True, "channels": 1, "classes": 3, "interface": "MemoryIO",
                            "label_mapping": None}
    assert pre["patch_shape"] == [16, 16, 16] and pre["prediction_overlap"] == [8, 8, 8]
    assert [s["class_name"] for s in pre["subfunctions"]] == ["Normalization"]
    assert plan["postprocessing"]["flips"] == [[]] and plan["postprocessing"]["output"] == "argmax"

    # Reproduce miseg's prediction of a case from the raw image, the plan and onnxruntime only.
    image = io.cases["case_1"][0]
    config = pre["subfunctions"][0]["config"]
    assert config["mode"] == "z-score" and not config["per_channel"]
    x = (image - image.mean()) / (image.std() + config["smooth"])
    session = onnxruntime.InferenceSession(result.model_path, providers=["CPUExecutionProvider"])
    feed = {model["input_name"]: x[None, ..., None].astype(np.float32)}
    by_onnx = session.run([model["output_name"]], feed)[0][0]
    by_miseg = network.predict(["case_1"], return_output=True, activation_output=True)[0]
    assert np.max(np.abs(by_onnx - by_miseg)) < 1e-4
    assert np.array_equal(np.argmax(by_onnx, -1), network.predict(["case_1"], return_output=True)[0])
    raw = session.run(None, {model["input_name"]: image[None, ..., None].astype(np.float32)})[0][0]
    assert np.max(np.abs(raw - by_miseg)) > 1e-3  # the normalisation in the plan matters


@pytest.mark.parametrize("name, rank", ALL)
def test_onnx_parity_with_keras(name, rank, tmp_path):
    size = 16 if rank == 3 else 32
    architecture = getattr(unet_pkg, name)(**TINY[name])
    network, _ = _network(three_dim=rank == 3, architecture=architecture, size=size, seed=2)
    result = export_network(network, str(tmp_path / name), "onnx", allow_untrained=True, verify=False)
    x = np.random.default_rng(5).standard_normal((2,) + (size,) * rank + (1,)).astype(np.float32)
    by_keras = np.asarray(network.model.predict_on_batch(x))
    session = onnxruntime.InferenceSession(result.model_path, providers=["CPUExecutionProvider"])
    by_onnx = session.run(["probabilities"], {"image": x})[0]
    assert by_onnx.shape == (2,) + (size,) * rank + (3,)
    assert np.max(np.abs(by_onnx - by_keras)) < 1e-4


# ------------------------------------------------------------------------------ SavedModel, keras
@pytest.mark.slow  # writing and reloading a SavedModel takes ~4 s of CPU
def test_savedmodel_reloads_with_tensorflow_and_matches(trained, tmp_path):
    import tensorflow as tf

    network, _ = trained
    target = tmp_path / "serving"
    target.mkdir()  # an empty folder is accepted
    result = network.export(str(target), format="savedmodel")
    assert result.plan_path == str(target / "preprocessing.json")
    assert {"saved_model.pb", "variables", "preprocessing.json"} <= set(_files(target))
    with open(result.plan_path, encoding="utf-8") as handle:
        assert json.load(handle)["model"]["signature"] == "serving_default"
    loaded = tf.saved_model.load(str(target))
    x = np.random.default_rng(1).standard_normal((2, 16, 16, 16, 1)).astype(np.float32)
    out = loaded.signatures["serving_default"](image=tf.constant(x))["probabilities"].numpy()
    np.testing.assert_allclose(out, network.model.predict_on_batch(x), atol=1e-5)
    # An earlier export is replaced with overwrite (and only then).
    with pytest.raises(ConfigurationError, match="exists"):
        network.export(str(target), format="savedmodel")
    network.export(str(target), format="savedmodel", overwrite=True, verify=False)
    assert _files(tmp_path) == ["serving"] and "saved_model.pb" in _files(target)


def test_savedmodel_never_replaces_user_folders_or_files(trained, tmp_path):
    network, _ = trained
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("user data")
    with pytest.raises(ConfigurationError, match="no part of a SavedModel export.*notes.txt"):
        network.export(str(other), format="savedmodel", overwrite=True)
    (tmp_path / "empty_dir_like").write_text("a file")
    with pytest.raises(ConfigurationError, match="empty_dir_like.*is a file"):
        network.export(str(tmp_path / "empty_dir_like"), format="savedmodel", overwrite=True)
    assert _files(tmp_path) == ["empty_dir_like", "mine"] and _files(other) == ["notes.txt"]
    assert (other / "notes.txt").read_text() == "user data"


def test_keras_export_existing_targets_and_overwrite(trained, tmp_path):
    network, _ = trained
    taken = tmp_path / "model.keras"
    taken.write_text("user data")
    with pytest.raises(ConfigurationError, match="model.keras.*exists.*overwrite"):
        network.export(str(tmp_path / "model"), format="keras")
    assert taken.read_text() == "user data" and _files(tmp_path) == ["model.keras"]
    result = network.export(str(tmp_path / "model"), format="keras", overwrite=True)
    reloaded = keras.models.load_model(result.model_path, compile=False)
    for got, want in zip(reloaded.get_weights(), network.model.get_weights()):
        np.testing.assert_array_equal(got, want)
    assert _files(tmp_path) == ["model.keras", "model.preprocessing.json"]
    with pytest.raises(ConfigurationError, match="unknown"):
        network.export(str(tmp_path / "x"), format="tflite")


def test_export_paths():
    assert export_paths("out/m.onnx", "onnx") == ("out/m.onnx", "out/m.preprocessing.json")
    assert export_paths("out/m", "keras") == ("out/m.keras", "out/m.preprocessing.json")
    assert export_paths("out/sm/", "savedmodel") == ("out/sm", os.path.join("out/sm", "preprocessing.json"))


# ------------------------------------------------------------------------------ bad input
def test_untrained_network_is_refused_and_nothing_is_written(trained, tmp_path):
    network, _ = _network(seed=4)
    assert is_untrained(network)
    target = tmp_path / "new" / "model"
    with pytest.raises(ModelError, match=r"never trained or loaded.*allow_untrained"):
        network.export(str(target), format="onnx")
    assert _files(tmp_path) == []  # not even the folder
    result = network.export(str(target), format="keras", allow_untrained=True)
    with open(result.plan_path, encoding="utf-8") as handle:
        assert json.load(handle)["model"]["trained"] is False
    # Loaded weights count as trained, also when they equal the loaded network's initial ones.
    fresh, _ = _network(seed=5)
    fresh.load(trained[0].dump(str(tmp_path / "trained.keras")))
    assert not is_untrained(fresh) and not is_untrained(trained[0])
    network.reset_weights()
    assert is_untrained(network)


class _Erfinv(keras.layers.Layer):
    """A layer using an op (Erfinv) that tf2onnx cannot convert."""

    def call(self, x):
        import tensorflow as tf

        return tf.math.erfinv(0.5 * tf.tanh(x))


class _OddArchitecture(Abstract_Architecture):
    def _build(self, input_shape, n_labels, conv):
        inputs = keras.Input(input_shape)
        x = conv(n_labels, 3, padding="same")(inputs)
        x = _Erfinv(name="odd_layer")(x)
        return keras.Model(inputs, keras.layers.Activation("softmax")(x))

    def create_model_2D(self, input_shape, n_labels=2):
        return self._build(input_shape, n_labels, keras.layers.Conv2D)

    def create_model_3D(self, input_shape, n_labels=2):
        return self._build(input_shape, n_labels, keras.layers.Conv3D)


def test_unconvertible_layer_is_named_and_nothing_is_written(tmp_path):
    network, _ = _network(three_dim=False, architecture=_OddArchitecture())
    weights = [w.copy() for w in network.model.get_weights()]
    with pytest.raises(ModelError, match=r"layer 'odd_layer' \(_Erfinv\) uses TensorFlow op\(s\) Erfinv"):
        network.export(str(tmp_path / "odd"), format="onnx", allow_untrained=True)
    assert _files(tmp_path) == []
    for got, want in zip(network.model.get_weights(), weights):
        np.testing.assert_array_equal(got, want)
    # The same network still exports where no conversion is needed.
    assert os.path.isfile(network.export(str(tmp_path / "odd"), format="keras", allow_untrained=True).model_path)
