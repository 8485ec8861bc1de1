"""Residual attention U-Net: attention-gated skips and residual encoder blocks."""

from __future__ import annotations

import keras

from miseg.neural_network.architecture import blocks
from miseg.neural_network.architecture.blocks import UNetBase
from miseg.neural_network.architecture.unet.attention import (
    attention_block2D,
    attention_block3D,
    gating_signal2D,
    gating_signal3D,
)

__all__ = [
    "Architecture",
    "residual_encoder_block",
    "gating_signal2D",
    "gating_signal3D",
    "attention_block2D",
    "attention_block3D",
]


def residual_encoder_block(
    x: keras.KerasTensor, filters: int, *, ba_norm: bool = True, momentum: float = 0.99
) -> keras.KerasTensor:
    """ResNet-style block: ``relu(conv_bn(conv_bn(x)) + bn(conv1x1(x)))``.

    The second convolution is linear so the ReLU acts on the sum. The shortcut is always
    taken from the block input (MIScnn took it from the second convolution in 3D).
    """
    conv = blocks.conv_bn(x, filters, ba_norm=ba_norm, momentum=momentum)
    conv = blocks.conv_bn(conv, filters, activation=None, ba_norm=ba_norm, momentum=momentum)
    shortcut = blocks.conv_bn(x, filters, 1, activation=None, ba_norm=ba_norm, momentum=momentum)
    return keras.layers.Activation("relu")(keras.layers.Add()([conv, shortcut]))


class Architecture(UNetBase):
    """Residual attention U-Net: :func:`residual_encoder_block` in the encoder, standard
    blocks in the bottleneck and decoder, attention-gated skips as in ``UNet_attention``.

    Args:
        n_filters: Filters of the first level; level ``i`` has ``n_filters * 2**i``.
        depth: Number of poolings; spatial sizes must be divisible by ``2**depth``.
        activation: Final activation (softmax by default, as miseg's losses expect).
        batch_normalization: Whether to add batch normalization after convolutions and in
            the gates.

    Example:
        >>> model = Architecture(n_filters=8, depth=2).create_model_3D((32, 32, 32, 1), 2)
        >>> model.output.shape
        (None, 32, 32, 32, 2)
    """

    model_name = "unet_attention_residual"

    def encoder_block(self, x: keras.KerasTensor, filters: int) -> keras.KerasTensor:
        return residual_encoder_block(
            x, filters, ba_norm=self.ba_norm, momentum=self.ba_norm_momentum
        )

    def skip_transform(
        self, skip: keras.KerasTensor, lower: keras.KerasTensor, level: int
    ) -> keras.KerasTensor:
        return blocks.gated_skip(
            skip, lower, self.n_filters * 2**level,
            ba_norm=self.ba_norm, momentum=self.ba_norm_momentum,
        )
