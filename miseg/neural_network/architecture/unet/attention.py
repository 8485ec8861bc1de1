"""Attention U-Net (Oktay et al. 2018): skip connections pass through attention gates."""

from __future__ import annotations

import keras

from miseg.neural_network.architecture import blocks
from miseg.neural_network.architecture.blocks import UNetBase

__all__ = [
    "Architecture",
    "gating_signal2D",
    "gating_signal3D",
    "attention_block2D",
    "attention_block3D",
]


class Architecture(UNetBase):
    """Attention U-Net: the standard U-Net whose skips are weighted by attention gates.

    Before each decoder concatenation a gating signal (1x1 convolution, BN, ReLU) is computed
    from the coarser decoder tensor, and :func:`~miseg.neural_network.architecture.blocks.
    attention_gate` weights the skip with it. The gates use standard Keras layers only, so
    saved models load with ``keras.models.load_model`` in safe mode.

    Args:
        n_filters: Filters of the first level; level ``i`` has ``n_filters * 2**i``.
        depth: Number of poolings; spatial sizes must be divisible by ``2**depth``.
        activation: Final activation (softmax by default, as miseg's losses expect).
        batch_normalization: Whether to add batch normalization after convolutions and in
            the gates.

    Example:
        >>> model = Architecture(n_filters=8, depth=2).create_model_2D((64, 64, 1), 2)
        >>> model.output.shape
        (None, 64, 64, 2)
    """

    model_name = "unet_attention"

    def skip_transform(
        self, skip: keras.KerasTensor, lower: keras.KerasTensor, level: int
    ) -> keras.KerasTensor:
        return blocks.gated_skip(
            skip, lower, self.n_filters * 2**level,
            ba_norm=self.ba_norm, momentum=self.ba_norm_momentum,
        )


def gating_signal2D(
    input: keras.KerasTensor, out_size: int, batch_norm: bool = False
) -> keras.KerasTensor:
    """Gating signal: 1x1 convolution, optional BN, ReLU (2D or 3D, read from the tensor)."""
    return blocks.gating_signal(input, out_size, ba_norm=batch_norm)


def attention_block2D(
    x: keras.KerasTensor, gating: keras.KerasTensor, inter_shape: int
) -> keras.KerasTensor:
    """Attention gate on skip ``x`` with ``gating`` (half ``x``'s spatial size), with BN."""
    return blocks.attention_gate(x, gating, inter_shape, ba_norm=True)


gating_signal3D = gating_signal2D
attention_block3D = attention_block2D
