"""Compact U-Net: each block's output is concatenated with its input."""

from __future__ import annotations

import keras

from miseg.neural_network.architecture import blocks
from miseg.neural_network.architecture.blocks import UNetBase

__all__ = [
    "Architecture",
    "compact_block",
    "contracting_layer_2D",
    "contracting_layer_3D",
    "middle_layer_2D",
    "middle_layer_3D",
    "expanding_layer_2D",
    "expanding_layer_3D",
]


def compact_block(
    x: keras.KerasTensor, filters: int, *, ba_norm: bool = True, momentum: float = 0.99
) -> keras.KerasTensor:
    """The standard two-convolution block, concatenated with its input ``x``."""
    conv = blocks.conv_block(x, filters, ba_norm=ba_norm, momentum=momentum)
    return keras.layers.Concatenate(axis=-1)([x, conv])


class Architecture(UNetBase):
    """Compact U-Net: the standard U-Net with :func:`compact_block` at every level.

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

    model_name = "unet_compact"

    def block(self, x: keras.KerasTensor, filters: int) -> keras.KerasTensor:
        return compact_block(x, filters, ba_norm=self.ba_norm, momentum=self.ba_norm_momentum)


contracting_layer_2D, middle_layer_2D, expanding_layer_2D = blocks.level_helpers(compact_block)
contracting_layer_3D, middle_layer_3D, expanding_layer_3D = (
    contracting_layer_2D, middle_layer_2D, expanding_layer_2D
)
