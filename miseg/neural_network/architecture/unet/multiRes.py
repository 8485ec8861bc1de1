"""MultiResUNet (Ibtehaz & Rahman 2020): MultiRes blocks and residual skip paths."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import keras

from miseg.neural_network.architecture import blocks
from miseg.neural_network.architecture.abstract_architecture import Abstract_Architecture

__all__ = [
    "Architecture",
    "conv_bn",
    "conv2d_bn",
    "conv3d_bn",
    "trans_conv2d_bn",
    "trans_conv3d_bn",
    "multires_block",
    "MultiResBlock_2D",
    "MultiResBlock_3D",
    "res_path",
    "ResPath_2D",
    "ResPath_3D",
]


def conv_bn(
    x: keras.KerasTensor,
    filters: int,
    kernel_size: int | Sequence[int] = 3,
    *,
    strides: int | Sequence[int] = 1,
    padding: str = "same",
    activation: str | None = "relu",
    transpose: bool = False,
    name: str | None = None,
) -> keras.KerasTensor:
    """Bias-free (transposed) convolution, BN without scale, then the optional activation."""
    layers = blocks.rank_layers(blocks.spatial_rank(x))
    conv = layers.conv_transpose if transpose else layers.conv
    x = conv(filters, kernel_size, strides=strides, padding=padding, use_bias=False, name=name)(x)
    x = keras.layers.BatchNormalization(scale=False)(x)
    if activation is not None:
        x = keras.layers.Activation(activation)(x)
    return x


def conv2d_bn(x, filters, num_row, num_col, padding="same", strides=(1, 1), activation="relu",
              name=None):
    """MIScnn-compatible 2D :func:`conv_bn` with a ``(num_row, num_col)`` kernel."""
    return conv_bn(x, filters, (num_row, num_col), strides=strides, padding=padding,
                   activation=activation, name=name)


def conv3d_bn(x, filters, num_row, num_col, num_z, padding="same", strides=(1, 1, 1),
              activation="relu", name=None):
    """MIScnn-compatible 3D :func:`conv_bn` with a ``(num_row, num_col, num_z)`` kernel."""
    return conv_bn(x, filters, (num_row, num_col, num_z), strides=strides, padding=padding,
                   activation=activation, name=name)


def trans_conv2d_bn(x, filters, num_row, num_col, padding="same", strides=(2, 2), name=None):
    """MIScnn-compatible 2D transposed convolution + BN (no activation)."""
    return conv_bn(x, filters, (num_row, num_col), strides=strides, padding=padding,
                   activation=None, transpose=True, name=name)


def trans_conv3d_bn(x, filters, num_row, num_col, num_z, padding="same", strides=(2, 2, 2),
                    name=None):
    """MIScnn-compatible 3D transposed convolution + BN (no activation)."""
    return conv_bn(x, filters, (num_row, num_col, num_z), strides=strides, padding=padding,
                   activation=None, transpose=True, name=name)


def multires_block(x: keras.KerasTensor, U: int, alpha: float = 1.67) -> keras.KerasTensor:
    """MultiRes block: three chained 3x3(x3) convolutions (``W = alpha * U`` split as
    1/6, 1/3, 1/2), concatenated, plus a 1x1 shortcut; add, ReLU, BN."""
    width = alpha * U
    sizes = [max(1, int(width * share)) for share in (0.167, 0.333, 0.5)]
    shortcut = conv_bn(x, sum(sizes), 1, activation=None)
    branches = []
    out = x
    for size in sizes:
        out = conv_bn(out, size, 3)
        branches.append(out)
    out = keras.layers.BatchNormalization()(keras.layers.Concatenate(axis=-1)(branches))
    out = keras.layers.Activation("relu")(keras.layers.Add()([shortcut, out]))
    return keras.layers.BatchNormalization()(out)


def res_path(x: keras.KerasTensor, filters: int, length: int) -> keras.KerasTensor:
    """Residual path of ``length`` units: (3x3 conv-BN-ReLU + 1x1 conv-BN shortcut), add,
    ReLU, BN."""
    for _ in range(length):
        shortcut = conv_bn(x, filters, 1, activation=None)
        out = conv_bn(x, filters, 3)
        out = keras.layers.Activation("relu")(keras.layers.Add()([shortcut, out]))
        x = keras.layers.BatchNormalization()(out)
    return x


def MultiResBlock_2D(U: int, inp: keras.KerasTensor, alpha: float = 1.67) -> keras.KerasTensor:
    """MIScnn-compatible :func:`multires_block` (2D or 3D, read from the tensor)."""
    return multires_block(inp, U, alpha)


def ResPath_2D(filters: int, length: int, inp: keras.KerasTensor) -> keras.KerasTensor:
    """MIScnn-compatible :func:`res_path` (2D or 3D, read from the tensor)."""
    return res_path(inp, filters, length)


MultiResBlock_3D = MultiResBlock_2D
ResPath_3D = ResPath_2D


def _output_head(x: keras.KerasTensor, n_labels: int, activation: object) -> keras.KerasTensor:
    x = conv_bn(x, n_labels, 1, activation=None)
    return keras.layers.Activation(activation, dtype="float32", name="output_activation")(x)


class Architecture(Abstract_Architecture):
    """MultiResUNet: MultiRes blocks at every level and residual paths on the skips.

    Level ``i`` uses ``U = n_filters * 2**i`` and a residual path of ``depth - i`` units;
    the bottleneck uses ``n_filters * 2**depth``. The defaults reproduce MIScnn's fixed
    network (base 32, 4 poolings). The output is a bias-free 1x1 convolution, BN and the
    activation.

    Args:
        activation: Final activation. Softmax by default (MIScnn used sigmoid, which does
            not match the one-hot losses).
        n_filters: Base ``U`` of the first level.
        depth: Number of poolings; spatial sizes must be divisible by ``2**depth``.

    Example:
        >>> model = Architecture(n_filters=8, depth=2).create_model_2D((64, 64, 1), 2)
        >>> model.output.shape
        (None, 64, 64, 2)
    """

    def __init__(self, activation: str = "softmax", n_filters: int = 32, depth: int = 4) -> None:
        self.activation = blocks.check_activation("activation", activation)
        self.n_filters = blocks.check_positive_int("n_filters", n_filters)
        self.depth = blocks.check_positive_int("depth", depth)

    def __repr__(self) -> str:
        return (
            f"{type(self).__module__}.Architecture(activation={self.activation!r}, "
            f"n_filters={self.n_filters}, depth={self.depth})"
        )

    def create_model_2D(self, input_shape: Sequence[int | None], n_labels: int = 2) -> keras.Model:
        return self._create_model(input_shape, n_labels, rank=2)

    def create_model_3D(self, input_shape: Sequence[int | None], n_labels: int = 2) -> keras.Model:
        return self._create_model(input_shape, n_labels, rank=3)

    create_model_2D.__doc__ = Abstract_Architecture.create_model_2D.__doc__
    create_model_3D.__doc__ = Abstract_Architecture.create_model_3D.__doc__

    def _block(self, x: keras.KerasTensor, filters: int) -> keras.KerasTensor:
        return multires_block(x, filters)

    def _res_path(
        self, skip: keras.KerasTensor, lower: keras.KerasTensor, level: int
    ) -> keras.KerasTensor:
        return res_path(skip, self.n_filters * 2**level, self.depth - level)

    def _create_model(self, input_shape, n_labels: int, rank: int) -> keras.Model:
        body = partial(
            blocks.unet_graph,
            filters=[self.n_filters * 2**level for level in range(self.depth + 1)],
            encoder_block=self._block,
            middle_block=self._block,
            decoder_block=self._block,
            skip_transform=self._res_path,
        )
        return blocks.build_model(
            input_shape, n_labels, rank=rank, body=body, activation=self.activation,
            n_downsamplings=self.depth, head=_output_head, name=f"unet_multiRes_{rank}d",
        )
