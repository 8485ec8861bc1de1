"""Tests of the U-Net architectures, their blocks, custom layers and the input-shape check."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

import miseg.neural_network.architecture.unet as unet_pkg
from miseg.errors import ConfigurationError, ModelError
from miseg.neural_network.architecture import (
    Abstract_Architecture,
    InstanceNormalization,
    check_input_shape,
)
from miseg.neural_network.architecture.unet import (
    attention,
    attention_residual,
    multiRes,
    plain,
    standard,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
N_LABELS = 3
SIZE = 16

# Tiny settings: 2 poolings everywhere (plain: (1,2,2) first pool in 3D, then 2).
TINY = {
    "UNet_standard": {"n_filters": 4, "depth": 2},
    "UNet_plain": {"feature_maps": (4, 8)},
    "UNet_residual": {"n_filters": 4, "depth": 2},
    "UNet_dense": {"n_filters": 4, "depth": 2},
    "UNet_multiRes": {"n_filters": 4, "depth": 2},
    "UNet_compact": {"n_filters": 4, "depth": 2},
    "UNet_attention": {"n_filters": 4, "depth": 2},
    "UNet_attention_residual": {"n_filters": 4, "depth": 2},
}


def _tiny_model(name: str, rank: int, channels: int) -> keras.Model:
    arch = getattr(unet_pkg, name)(**TINY[name])
    builder = arch.create_model_2D if rank == 2 else arch.create_model_3D
    return builder((SIZE,) * rank + (channels,), n_labels=N_LABELS)


def _batch(rank: int, channels: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2,) + (SIZE,) * rank + (channels,)).astype("float32")
    labels = rng.integers(0, N_LABELS, size=(2,) + (SIZE,) * rank)
    y = np.eye(N_LABELS, dtype="float32")[labels]
    return x, y


@pytest.mark.parametrize("rank", [2, 3])
@pytest.mark.parametrize("name", sorted(TINY))
def test_build_train_save_load(name, rank, tmp_path):
    keras.utils.set_random_seed(1)
    channels = 1 if rank == 2 else 2
    model = _tiny_model(name, rank, channels)
    x, y = _batch(rank, channels)

    assert model.input.shape == (None,) + (SIZE,) * rank + (channels,)
    assert model.output.shape == (None,) + (SIZE,) * rank + (N_LABELS,)
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)

    pred = keras.ops.convert_to_numpy(model(x, training=False))
    assert pred.shape == (2,) + (SIZE,) * rank + (N_LABELS,)
    assert pred.min() >= 0
    np.testing.assert_allclose(pred.sum(axis=-1), 1.0, atol=1e-5)

    # One eager train step (graph mode is covered by test_graph_mode_training).
    model.compile(optimizer="adam", loss="categorical_crossentropy", run_eagerly=True)
    before = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    assert any(not np.array_equal(b, a) for b, a in zip(before, after))

    path = tmp_path / f"{name}_{rank}d.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x, training=False)),
        keras.ops.convert_to_numpy(model(x, training=False)),
        atol=1e-6,
    )


@pytest.mark.parametrize(("name", "rank"), [("UNet_plain", 2), ("UNet_attention_residual", 3)])
def test_graph_mode_training(name, rank):
    keras.utils.set_random_seed(2)
    model = _tiny_model(name, rank, channels=1)
    x, y = _batch(rank, 1, seed=2)
    model.compile(optimizer="adam", loss="categorical_crossentropy", jit_compile=False)
    losses = [model.train_on_batch(x, y) for _ in range(2)]
    assert np.all(np.isfinite(losses))


def test_star_import_and_all_defaults_softmax():
    namespace: dict = {}
    exec("from miseg.neural_network.architecture.unet import *", namespace)
    names = {
        "UNet_standard", "UNet_plain", "UNet_residual", "UNet_dense", "UNet_multiRes",
        "UNet_compact", "UNet_attention", "UNet_attention_residual",
    }
    assert names <= set(namespace)
    for name in names:
        module = sys.modules[f"miseg.neural_network.architecture.unet.{name[5:]}"]
        assert namespace[name] is module.Architecture
        arch = namespace[name]()
        assert isinstance(arch, Abstract_Architecture)
        assert arch.activation == "softmax"


def test_standard_family_attributes_and_structure():
    arch = standard.Architecture(n_filters=4, depth=3, activation="sigmoid",
                                 batch_normalization=False)
    assert (arch.n_filters, arch.depth, arch.activation, arch.ba_norm) == (4, 3, "sigmoid", False)
    assert arch.ba_norm_momentum == 0.99
    model = arch.create_model_2D((None, None, 1), n_labels=2)
    pools = [l for l in model.layers if isinstance(l, keras.layers.MaxPooling2D)]
    ups = [l.filters for l in model.layers if isinstance(l, keras.layers.Conv2DTranspose)]
    assert len(pools) == 3
    assert ups == [16, 8, 4]
    assert not any(isinstance(l, keras.layers.BatchNormalization) for l in model.layers)
    assert model.layers[-1].get_config()["activation"] == "sigmoid"


def test_fully_convolutional_none_sizes():
    keras.utils.set_random_seed(3)
    model = attention.Architecture(n_filters=4, depth=2).create_model_2D((None, None, 1), 2)
    for shape in [(1, 16, 16, 1), (1, 32, 24, 1)]:
        out = model(np.zeros(shape, "float32"))
        assert tuple(out.shape) == shape[:-1] + (2,)


def test_plain_honours_feature_maps_pooling_and_activation():
    arch = plain.Architecture(conv_layer_activation="relu", feature_maps=(4, 8, 16),
                              pooling=(1, 2, 2))
    model = arch.create_model_3D((8, 16, 16, 1), n_labels=2)
    convs = [l.filters for l in model.layers
             if isinstance(l, keras.layers.Conv3D) and l.kernel_size == (3, 3, 3)]
    assert convs == [4, 4, 8, 8, 16, 16, 16, 16, 16, 16, 8, 8, 4, 4]
    pools = [l.pool_size for l in model.layers if isinstance(l, keras.layers.MaxPooling3D)]
    assert pools == [(1, 2, 2), (2, 2, 2), (2, 2, 2)]
    assert not any(isinstance(l, keras.layers.LeakyReLU) for l in model.layers)
    relus = [l for l in model.layers
             if isinstance(l, keras.layers.Activation) and l.get_config()["activation"] == "relu"]
    assert len(relus) == len(convs)
    norms = [l for l in model.layers if isinstance(l, InstanceNormalization)]
    assert len(norms) == len(convs) and all(n.epsilon == 1e-5 for n in norms)

    lrelu = plain.Architecture(feature_maps=(4, 8), dropout=0.1).create_model_2D((16, 16, 1))
    leaky = [l for l in lrelu.layers if isinstance(l, keras.layers.LeakyReLU)]
    # A fresh activation layer per convolution (MIScnn shared one instance).
    assert len(leaky) == 10 and len({id(l) for l in leaky}) == 10
    assert all(l.negative_slope == pytest.approx(0.1) for l in leaky)
    assert sum(isinstance(l, keras.layers.Dropout) for l in lrelu.layers) == 10


def test_multires_honours_n_filters_and_depth():
    model = multiRes.Architecture(n_filters=4, depth=3).create_model_2D((None, None, 1), 2)
    ups = [l.filters for l in model.layers if isinstance(l, keras.layers.Conv2DTranspose)]
    assert ups == [16, 8, 4]
    assert sum(isinstance(l, keras.layers.MaxPooling2D) for l in model.layers) == 3
    default = multiRes.Architecture().create_model_2D((None, None, 1), 2)
    ups = [l.filters for l in default.layers if isinstance(l, keras.layers.Conv2DTranspose)]
    assert ups == [256, 128, 64, 32]  # MIScnn's fixed network


def test_attention_residual_3d_shortcut_from_block_input():
    model = attention_residual.Architecture(n_filters=4, depth=2).create_model_3D(
        (16, 16, 16, 1), 2
    )
    shortcuts = [l for l in model.layers if isinstance(l, keras.layers.Conv3D)
                 and l.kernel_size == (1, 1, 1) and l.input is model.inputs[0]]
    assert len(shortcuts) == 1 and shortcuts[0].filters == 4


def test_module_level_helpers():
    inp = keras.Input((16, 16, 1))
    pooled, skip = standard.contracting_layer_2D(inp, 4, ba_norm=True)
    assert pooled.shape == (None, 8, 8, 4) and skip.shape == (None, 16, 16, 4)
    mid = standard.middle_layer_2D(pooled, 8)
    up = standard.expanding_layer_2D(mid, 4, skip)
    assert up.shape == (None, 16, 16, 4)

    inp3 = keras.Input((8, 8, 8, 2))
    gating = attention.gating_signal3D(keras.Input((4, 4, 4, 6)), 3, batch_norm=True)
    gated = attention.attention_block3D(inp3, gating, 3)
    assert gated.shape == (None, 8, 8, 8, 2)
    assert multiRes.conv3d_bn(inp3, 5, 3, 3, 3).shape == (None, 8, 8, 8, 5)
    assert multiRes.trans_conv2d_bn(inp, 3, 2, 2).shape == (None, 32, 32, 3)
    assert multiRes.ResPath_3D(6, 2, inp3).shape == (None, 8, 8, 8, 6)
    assert plain.conv_layer_2D(inp, 7, "lrelu", True, None, 0, strides=2).shape == (None, 8, 8, 7)


def test_bad_input_shape_messages():
    arch = standard.Architecture(depth=4)
    with pytest.raises(ModelError) as err:
        arch.create_model_2D((64, 60, 1))
    assert "axis 1 has size 60, which 4 poolings (factor 16) cannot halve evenly; " \
           "nearest valid sizes: 48 or 64" in str(err.value)
    with pytest.raises(ModelError, match="axis 0 has size 8.*nearest valid size: 16$"):
        arch.create_model_2D((8, 16, 1))
    with pytest.raises(ModelError, match=r"create_model_3D expects input_shape \(x, y, z, ch"):
        arch.create_model_3D((64, 64, 1))
    # The plain net's first 3D pool is (1, 2, 2): axis 0 needs a factor of 4, axes 1-2 of 8.
    arch = plain.Architecture(feature_maps=(4, 8, 16))
    arch.create_model_3D((4, 8, 8, 1))
    with pytest.raises(ModelError, match="axis 0 has size 6, .*factor 4.*sizes: 4 or 8"):
        arch.create_model_3D((6, 8, 8, 1))
    with pytest.raises(ModelError, match="axis 2 has size 12, .*factor 8.*sizes: 8 or 16"):
        arch.create_model_3D((4, 8, 12, 1))

    assert check_input_shape((None, 48, 1), 4) == (None, 48, 1)
    with pytest.raises(ModelError, match="channel"):
        check_input_shape((16, 16, None), 2)
    with pytest.raises(ModelError, match="2D or"):
        check_input_shape((16, 1), 2)


@pytest.mark.parametrize(
    ("factory", "param"),
    [
        (lambda: standard.Architecture(n_filters=0), "n_filters"),
        (lambda: attention.Architecture(depth=-1), "depth"),
        (lambda: standard.Architecture(activation="softmaxx"), "activation"),
        (lambda: multiRes.Architecture(n_filters=2.5), "n_filters"),
        (lambda: plain.Architecture(conv_layer_activation="prelu_x"), "conv_layer_activation"),
        (lambda: plain.Architecture(dropout=1.0), "dropout"),
        (lambda: plain.Architecture(pooling=(1, 2)).create_model_3D((8, 8, 8, 1)), "pooling"),
        (lambda: plain.Architecture(instance_normalization_params={"eps": 1}),
         "instance_normalization_params"),
        (lambda: plain.Architecture(feature_maps=()), "feature_maps"),
        (lambda: standard.Architecture().create_model_2D((16, 16, 1), n_labels=0), "n_labels"),
    ],
)
def test_invalid_parameters(factory, param):
    with pytest.raises(ConfigurationError, match=param):
        factory()


def test_instance_normalization_matches_numpy_and_round_trips():
    x = np.random.default_rng(4).normal(3.0, 2.0, (2, 5, 6, 3)).astype("float32")
    layer = InstanceNormalization(epsilon=1e-5)
    out = keras.ops.convert_to_numpy(layer(x))
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(var + 1e-5), atol=1e-5)
    config = layer.get_config()
    assert "groups" not in config
    clone = InstanceNormalization.from_config(config)
    assert clone.epsilon == 1e-5
    registered = keras.saving.get_registered_object("miseg>InstanceNormalization")
    assert registered is InstanceNormalization


def test_mixed_precision_output_is_float32():
    keras.utils.set_random_seed(5)
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        model = _tiny_model("UNet_attention", rank=2, channels=1)
        x, _ = _batch(2, 1)
        out = model(x, training=False)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    assert convs[0].compute_dtype == "float16"
    assert model.output.dtype == "float32"
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out).sum(-1), 1.0, atol=1e-3)


def test_load_in_fresh_process_needs_only_package_import(tmp_path):
    keras.utils.set_random_seed(6)
    x, _ = _batch(2, 1)
    expected = {}
    for name in ("UNet_attention", "UNet_plain"):
        model = _tiny_model(name, rank=2, channels=1)
        model.save(tmp_path / f"{name}.keras")
        expected[name] = keras.ops.convert_to_numpy(model(x, training=False))
    np.savez(tmp_path / "data.npz", x=x, **expected)

    script = textwrap.dedent(
        """
        import sys
        import keras
        import numpy as np

        folder = sys.argv[1]
        data = np.load(folder + "/data.npz")
        # Without miseg imported, the custom InstanceNormalization layer is unknown.
        try:
            keras.models.load_model(folder + "/UNet_plain.keras")
        except Exception:
            pass
        else:
            raise SystemExit("loaded without registration")
        import miseg.neural_network.architecture  # registers the layers
        for name in ("UNet_attention", "UNet_plain"):
            model = keras.models.load_model(folder + "/" + name + ".keras")
            pred = keras.ops.convert_to_numpy(model(data["x"], training=False))
            np.testing.assert_allclose(pred, data[name], atol=1e-6)
        print("LOADED_OK")
        """
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "LOADED_OK" in result.stdout


class _TinyFCN(Abstract_Architecture):
    def __init__(self, n_filters: int = 4) -> None:
        self.n_filters = n_filters

    def _build(self, input_shape, n_labels, conv):
        check_input_shape(input_shape, n_downsamplings=0)
        inputs = keras.Input(input_shape)
        x = conv(self.n_filters, 3, padding="same", activation="relu")(inputs)
        x = conv(n_labels, 1)(x)
        outputs = keras.layers.Activation("softmax", dtype="float32")(x)
        return keras.Model(inputs, outputs)

    def create_model_2D(self, input_shape, n_labels=2):
        return self._build(input_shape, n_labels, keras.layers.Conv2D)

    def create_model_3D(self, input_shape, n_labels=2):
        return self._build(input_shape, n_labels, keras.layers.Conv3D)


def test_custom_architecture_subclass():
    class Incomplete(Abstract_Architecture):
        def create_model_2D(self, input_shape, n_labels=2):
            return None

    with pytest.raises(TypeError):
        Incomplete()

    keras.utils.set_random_seed(7)
    arch = _TinyFCN()
    model = arch.create_model_3D((None, None, None, 2), n_labels=4)
    out = keras.ops.convert_to_numpy(model(np.ones((1, 5, 6, 7, 2), "float32")))
    assert out.shape == (1, 5, 6, 7, 4)
    np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-5)
    with pytest.raises(ModelError):
        arch.create_model_2D((16, 16, 0))
