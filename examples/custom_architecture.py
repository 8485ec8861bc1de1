"""A custom network architecture: a small two-level U-Net with residual blocks, in 2D and 3D.

An architecture subclasses ``Abstract_Architecture`` and returns an **uncompiled** Keras
model from ``create_model_2D``/``create_model_3D``; ``Neural_Network`` compiles it with the
loss and metrics. Keep the final softmax in float32 so mixed precision works. Writing the
network once and choosing the layers by rank keeps 2D and 3D identical.

Run::

    python examples/custom_architecture.py            # full settings
    python examples/custom_architecture.py --tiny     # tiny data and network, seconds on a CPU
"""

import argparse
import os

import keras

from miseg import Data_Augmentation, Data_IO, Neural_Network, Preprocessor
from miseg.data_loading.interfaces import NIFTI_interface
from miseg.datasets import write_kits_dataset
from miseg.neural_network.architecture import Abstract_Architecture, check_input_shape
from miseg.neural_network.metrics import dice_crossentropy, dice_soft
from miseg.processing.subfunctions import Clipping, Normalization

_LAYERS = {
    2: (keras.layers.Conv2D, keras.layers.MaxPooling2D, keras.layers.Conv2DTranspose),
    3: (keras.layers.Conv3D, keras.layers.MaxPooling3D, keras.layers.Conv3DTranspose),
}


class ResidualUNet2Level(Abstract_Architecture):
    """Encoder level, bottleneck, decoder level; each a residual block of two convolutions.

    Args:
        n_filters: Filters of the first level (doubled in the bottleneck).
    """

    def __init__(self, n_filters=16):
        self.n_filters = n_filters

    def _block(self, x, filters, conv):
        shortcut = conv(filters, 1, padding="same")(x)
        y = conv(filters, 3, padding="same")(x)
        y = keras.layers.BatchNormalization()(y)
        y = keras.layers.Activation("relu")(y)
        y = conv(filters, 3, padding="same")(y)
        y = keras.layers.BatchNormalization()(y)
        return keras.layers.Activation("relu")(keras.layers.Add()([shortcut, y]))

    def _build(self, input_shape, n_labels, rank):
        check_input_shape(input_shape, n_downsamplings=1)  # clear error for odd patch sizes
        conv, pool, up = _LAYERS[rank]
        inputs = keras.Input(tuple(input_shape))
        skip = self._block(inputs, self.n_filters, conv)
        x = self._block(pool(2)(skip), 2 * self.n_filters, conv)
        x = up(self.n_filters, 2, strides=2, padding="same")(x)
        x = self._block(keras.layers.Concatenate()([skip, x]), self.n_filters, conv)
        x = conv(n_labels, 1)(x)
        outputs = keras.layers.Activation("softmax", dtype="float32")(x)
        return keras.Model(inputs, outputs, name=f"residual_unet2_{rank}d")

    def create_model_2D(self, input_shape, n_labels=2):
        return self._build(input_shape, n_labels, rank=2)

    def create_model_3D(self, input_shape, n_labels=2):
        return self._build(input_shape, n_labels, rank=3)


def main(argv=None):
    parser = argparse.ArgumentParser(description="a custom architecture for miseg")
    parser.add_argument("--tiny", action="store_true", help="tiny data, network and schedule (smoke test)")
    parser.add_argument("--workdir", default="custom_architecture_output", help="folder for data, model and outputs")
    args = parser.parse_args(argv)
    if args.tiny:
        n_cases, shape, patch, filters, epochs, iterations, workers = 3, (16, 32, 32), (16, 16, 16), 4, 1, 2, 0
    else:
        n_cases, shape, patch, filters, epochs, iterations, workers = 16, (64, 128, 128), (32, 64, 64), 24, 30, 100, 2

    data_path = os.path.join(args.workdir, "kits_phantom")
    write_kits_dataset(data_path, n_cases=n_cases, shape=shape, seed=3)
    data_io = Data_IO(NIFTI_interface(classes=3), data_path, batch_path=os.path.join(args.workdir, "batches"), seed=0)
    pp = Preprocessor(data_io, batch_size=2, subfunctions=[Clipping(min=-79, max=304), Normalization()],
                      data_aug=Data_Augmentation(seed=0), analysis="patchwise-crop", patch_shape=patch, seed=0)

    architecture = ResidualUNet2Level(n_filters=filters)
    model = Neural_Network(pp, architecture=architecture, loss=dice_crossentropy, metrics=[dice_soft],
                           workers=workers)
    print(f"{model.model.name}: {model.model.count_params()} parameters, input {model.model.input_shape}")
    cases = data_io.get_indiceslist()
    model.train(cases[:-1], epochs=epochs, iterations=iterations)
    path = model.dump(os.path.join(args.workdir, "model.keras"))

    # A saved custom model loads back with the class's layers (plain Keras layers here)
    restored = Neural_Network(pp, architecture=ResidualUNet2Level(n_filters=filters), workers=workers)
    restored.load(path)
    a = model.predict(cases[-1:], return_output=True)[0]
    b = restored.predict(cases[-1:], return_output=True)[0]
    assert (a == b).all(), "the reloaded model predicts the same labels"
    print(f"model written to {path} and reloaded; prediction {a.shape}")


if __name__ == "__main__":
    main()
