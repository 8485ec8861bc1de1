"""Residual U-Net: every block adds a 1x1-convolution shortcut of its input."""

from __future__ import annotations

import keras

from miseg.neural_network.architecture import blocks
from miseg.neural_network.architecture.blocks import UNetBase

__all__ = [
    "Architecture",
    "residual_block",
    "contracting_layer_2D",
    "contracting_layer_3D",
    "middle_layer_2D",
    "middle_layer_3D",
    "expanding_layer_2D",
    "expanding_layer_3D",
]


def residual_block(
    x: keras.KerasTensor, filters: int, *, ba_norm: bool = True, momentum: float = 0.99
) -> keras.KerasTensor:
    """Two 3x3(x3) ReLU convolutions (+ BN) plus a 1x1 ReLU-convolution shortcut of ``x``."""
    conv = blocks.conv_block(x, filters, ba_norm=ba_norm, momentum=momentum)
    shortcut = blocks.rank_layers(blocks.spatial_rank(x)).conv(
        filters, 1, padding="same", activation="relu"
    )(x)
    return keras.layers.Add()([shortcut, conv])


class Architecture(UNetBase):
    """Residual U-Net: the standard U-Net with :func:`residual_block` at every level (in the
    decoder the shortcut is taken from the upsampled-and-concatenated tensor).

    Args:
        n_filters: Filters of the first level; level ``i`` has ``n_filters * 2**i``.
        depth: Number of poolings; spatial sizes must be divisible by ``2**depth``.
        activation: Final activation. Softmax by default (MIScnn used sigmoid, which does
            not match the one-hot losses).
        batch_normalization: Whether to add batch normalization after each convolution.

    Example:
        >>> model = Architecture(n_filters=8, depth=2).create_model_2D((64, 64, 1), 2)
        >>> model.output.shape
        (None, 64, 64, 2)
    """

    model_name = "unet_residual"

    def block(self, x: keras.KerasTensor, filters: int) -> keras.KerasTensor:
        return residual_block(x, filters, ba_norm=self.ba_norm, momentum=self.ba_norm_momentum)


contracting_layer_2D, middle_layer_2D, expanding_layer_2D = blocks.level_helpers(residual_block)
contracting_layer_3D, middle_layer_3D, expanding_layer_3D = (
    contracting_layer_2D, middle_layer_2D, expanding_layer_2D
)
