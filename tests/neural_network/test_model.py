"""Neural_Network: the MIScnn flow on Keras 3, recompilation, reset, saving, errors."""

import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import MemoryIO, blob_cases

from miseg.data_loading.data_io import Data_IO
from miseg.errors import ConfigurationError, CorruptFileError, DataNotFoundError, ModelError
from miseg.neural_network.architecture.unet import UNet_standard
from miseg.neural_network.metrics import (
    combo_loss,
    dice_crossentropy,
    dice_soft,
    focal_tversky_loss,
    tversky_loss,
)
from miseg.neural_network.model import Neural_Network
from miseg.processing.data_augmentation import Data_Augmentation
from miseg.processing.postprocessing import keep_largest_component
from miseg.processing.preprocessor import Preprocessor


def _nn(three_dim=True, channels=1, analysis="patchwise-crop", **kwargs):
    keras.utils.set_random_seed(0)
    cases = blob_cases(3, shape=(16, 16, 16) if three_dim else (16, 16, 1))
    if not three_dim:
        cases = {k: (v[0][..., 0], v[1][..., 0]) for k, v in cases.items()}
    if channels == 2:
        cases = {k: (np.stack([v[0], v[0]], -1), v[1]) for k, v in cases.items()}
    io = MemoryIO(cases, channels=channels, three_dim=three_dim)
    dio = Data_IO(io, "unused", seed=3)
    patch = (8, 8, 8) if three_dim else (8, 8)
    pp = Preprocessor(dio, batch_size=2, data_aug=Data_Augmentation(seed=0), analysis=analysis,
                      patch_shape=None if analysis == "fullimage" else patch, patches_per_sample=2)
    kwargs.setdefault("workers", 0)
    return Neural_Network(pp, architecture=UNet_standard(n_filters=4, depth=2), **kwargs), io


def test_miscnn_flow_3d_patchwise():
    nn, io = _nn()
    history = nn.train(["case_0", "case_1"], epochs=2, iterations=2)
    assert len(history.history["loss"]) == 2 and "dice_soft" in history.history
    labels = nn.predict(["case_2"], return_output=True)
    assert labels[0].shape == (16, 16, 16) and labels[0].dtype.kind == "i"
    probs = nn.predict(["case_2"], return_output=True, activation_output=True)
    assert probs[0].shape == (16, 16, 16, 3)
    np.testing.assert_allclose(probs[0].sum(-1), 1, atol=1e-4)
    np.testing.assert_array_equal(labels[0], probs[0].argmax(-1))
    nn.predict(["case_2"])
    assert io.saved["case_2"].shape == (16, 16, 16, 1)
    maps = nn.predict_augmentated("case_2")
    assert len(maps) == 3 and maps[0].shape == (16, 16, 16, 3)
    tta = nn.predict(["case_2"], return_output=True, activation_output=True, tta=True)[0]
    np.testing.assert_allclose(tta, (probs[0] + sum(maps)) / 4, atol=1e-4)


def test_2d_fullimage_shapes_as_miscnn_documents():
    nn, _ = _nn(three_dim=False, analysis="fullimage")
    nn.train(["case_0"], epochs=1)
    assert nn.predict(["case_1"], return_output=True)[0].shape == (16, 16)
    assert nn.predict(["case_1"], return_output=True, activation_output=True)[0].shape == (16, 16, 3)
    assert len(nn.predict_augmentated("case_1")) == 2


def test_loss_metrics_and_learning_rate_changes_take_effect_on_next_train():
    nn, _ = _nn()
    nn.train(["case_0"], epochs=1, iterations=1)
    nn.loss = dice_crossentropy
    nn.metrics = [dice_soft, "accuracy"]
    nn.learning_rate = 0.01
    history = nn.train(["case_0"], epochs=1, iterations=1)
    assert nn.model.loss is dice_crossentropy
    assert "accuracy" in history.history
    assert np.isclose(float(keras.ops.convert_to_numpy(nn.model.optimizer.learning_rate)), 0.01)


def test_uncalled_loss_factory_trains_recompiles_and_saves(tmp_path):
    # MIScnn scripts pass factories uncalled: Neural_Network(loss=focal_tversky_loss)
    nn, _ = _nn(three_dim=False, loss=focal_tversky_loss)
    assert nn.model.loss is focal_tversky_loss
    nn.loss = combo_loss  # recompiled on the next train
    history = nn.train(["case_0"], epochs=1, iterations=1).history
    assert nn.model.loss is combo_loss and np.isfinite(history["loss"][0])
    loaded = keras.models.load_model(nn.dump(str(tmp_path / "m")))
    assert loaded.loss is combo_loss


def test_reset_restores_weights_and_optimizer_state():
    nn, _ = _nn()
    initial = [w.copy() for w in nn.model.get_weights()]
    nn.train(["case_0"], epochs=1, iterations=2)
    assert int(nn.model.optimizer.iterations) == 2
    nn.reset()
    assert int(nn.model.optimizer.iterations) == 0
    for a, b in zip(initial, nn.model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("three_dim", [True, False])
def test_class_weight_works_for_segmentation_outputs(three_dim):
    nn, _ = _nn(three_dim=three_dim)
    history = nn.train(["case_0"], epochs=1, iterations=1, class_weight={0: 0.1, 1: 1.0, 2: 5.0})
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize("name", ["model.keras", "model.h5", "model.hdf5"])
def test_dump_and_load_round_trip(tmp_path, name):
    nn, _ = _nn()
    before = nn.predict(["case_2"], return_output=True, activation_output=True)[0]
    written = nn.dump(str(tmp_path / name))
    assert written.endswith((".keras", ".h5", ".hdf5"))
    other, _ = _nn()
    other.load(str(tmp_path / name))
    after = other.predict(["case_2"], return_output=True, activation_output=True)[0]
    np.testing.assert_allclose(before, after, atol=1e-5)


def test_extensionless_dump_is_a_folder_like_miscnns_savedmodel(tmp_path):
    nn, _ = _nn()
    expected = nn.model.get_weights()
    target = tmp_path / "model"
    written = nn.dump(str(target))  # every MIScnn example: model.dump("./model")
    assert target.is_dir() and written == str(target / "model.keras")
    (target / "notes.txt").write_text("mine")
    nn.dump(str(target))  # dumping again replaces the model, other files stay
    assert sorted(p.name for p in target.iterdir()) == ["model.keras", "model.manifest.json", "notes.txt"]
    # Earlier miseg versions wrote <path>.keras for an extension-less path: still read.
    nn.dump(str(tmp_path / "older.keras"))
    for path in (target, tmp_path / "older"):
        keras.utils.set_random_seed(1)
        other = Neural_Network(nn.preprocessor, architecture=UNet_standard(n_filters=4, depth=2), workers=0)
        assert not np.array_equal(other.model.get_weights()[0], expected[0])
        other.load(str(path))
        for got, want in zip(other.model.get_weights(), expected):
            np.testing.assert_array_equal(got, want)
    # A file at the extension-less path is user data: never replaced.
    taken = tmp_path / "taken"
    taken.write_text("user data")
    with pytest.raises(ConfigurationError, match="taken"):
        nn.dump(str(taken))
    assert taken.read_text() == "user data"
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="empty.*model.keras"):
        other.load(str(tmp_path / "empty"))


def test_dumped_model_loads_in_fresh_process_without_custom_objects(tmp_path):
    nn, _ = _nn(loss=tversky_loss)
    path = nn.dump(str(tmp_path / "m"))
    code = (
        "import os; os.environ['TF_CPP_MIN_LOG_LEVEL']='3';"
        "import miseg, tensorflow, keras;"  # miseg registers its objects once keras is imported
        f"m = keras.models.load_model({path!r}); print(m.output_shape)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "(None, 8, 8, 8, 3)" in out.stdout


def test_load_errors(tmp_path):
    nn, _ = _nn()
    with pytest.raises(DataNotFoundError, match="missing"):
        nn.load(str(tmp_path / "missing.keras"))
    bad = tmp_path / "corrupt.keras"
    bad.write_bytes(b"this is not a keras file")
    with pytest.raises(CorruptFileError, match="corrupt.keras"):
        nn.load(str(bad))
    two, _ = _nn(channels=2)
    path = two.dump(str(tmp_path / "two"))
    with pytest.raises(ModelError, match="2 input channels"):
        nn.load(path)


def test_channel_mismatch_with_existing_model_is_reported():
    nn, _ = _nn()
    two, _ = _nn(channels=2)
    nn.preprocessor = two.preprocessor
    with pytest.raises(ModelError, match="expects 1 input channels"):
        nn.train(["case_0"], epochs=1)


def test_untrained_prediction_allowed_but_unknown_index_is_named():
    nn, _ = _nn()
    assert nn.predict(["case_0"], return_output=True)[0].shape == (16, 16, 16)
    with pytest.raises(DataNotFoundError, match="case_99"):
        nn.predict(["case_99"], return_output=True)


def test_no_shared_default_architecture_or_metrics():
    a, _ = _nn()
    dio = a.preprocessor.data_io
    pp = Preprocessor(dio, 1, data_aug=None, patch_shape=(16, 16, 16))
    n1 = Neural_Network(pp, architecture=None)
    n2 = Neural_Network(pp, architecture=None)
    assert n1.architecture is not n2.architecture
    assert n1.metrics is not n2.metrics


def test_mixed_precision_output_is_float32():
    nn, _ = _nn(mixed_precision=True)
    assert nn.model.output.dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"  # global policy restored


def test_strategy_argument_and_multiprocessing_workers():
    import tensorflow as tf

    nn, _ = _nn(strategy=tf.distribute.OneDeviceStrategy("/cpu:0"), workers=1, use_multiprocessing=True)
    history = nn.train(["case_0", "case_1"], epochs=2, iterations=2)
    assert len(history.history["loss"]) == 2


def test_keep_largest_component():
    labels = np.zeros((10, 10), np.int64)
    labels[0:2, 0:2] = 1
    labels[5:9, 5:9] = 1
    labels[0, 9] = 2
    out = keep_largest_component(labels, 3)
    assert out[0, 0] == 0 and out[6, 6] == 1 and out[0, 9] == 2
    nn, _ = _nn(keep_largest_component=True)
    pred = nn.predict(["case_0"], return_output=True)[0]
    for c in (1, 2):
        from scipy import ndimage

        assert ndimage.label(pred == c, structure=np.ones((3, 3, 3)))[1] <= 1


def test_copy_is_independent():
    nn, _ = _nn()
    clone = nn.copy()
    assert clone.model is not nn.model
    for a, b in zip(nn.model.get_weights(), clone.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    clone.train(["case_0"], epochs=1, iterations=1)
    assert any(not np.array_equal(a, b) for a, b in zip(nn.model.get_weights(), clone.model.get_weights()))


def test_fullimage_pads_any_image_size_to_the_network_and_crops_back(memory_io):
    keras.utils.set_random_seed(0)
    cases = {k: (v[0][:, :, 0], v[1][:, :, 0]) for k, v in blob_cases(2, shape=(13, 19, 1)).items()}
    dio = Data_IO(memory_io(cases, three_dim=False), "unused", seed=1)
    pp = Preprocessor(dio, batch_size=1, data_aug=None, analysis="fullimage")
    nn = Neural_Network(pp, architecture=UNet_standard(n_filters=4, depth=2), workers=0)
    from miseg.neural_network.model import downsampling_factors

    assert downsampling_factors(nn.model) == (4, 4)
    nn.train(["case_0"], epochs=1)
    assert nn.predict(["case_1"], return_output=True)[0].shape == (13, 19)
