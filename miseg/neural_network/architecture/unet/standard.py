"""The standard U-Net (Ronneberger et al. 2015) with optional batch normalization."""

from __future__ import annotations

from miseg.neural_network.architecture import blocks
from miseg.neural_network.architecture.blocks import UNetBase

__all__ = [
    "Architecture",
    "contracting_layer_2D",
    "contracting_layer_3D",
    "middle_layer_2D",
    "middle_layer_3D",
    "expanding_layer_2D",
    "expanding_layer_3D",
]


class Architecture(UNetBase):
    """Standard U-Net: two 3x3(x3) ReLU convolutions (+ BN) per level, max-pooling, transposed
    convolutions and skip concatenations.

    Args:
        n_filters: Filters of the first level; level ``i`` has ``n_filters * 2**i``.
        depth: Number of poolings; spatial sizes must be divisible by ``2**depth``.
        activation: Final activation (softmax by default, as miseg's losses expect).
        batch_normalization: Whether to add batch normalization after each convolution.

    Example:
        >>> model = Architecture(n_filters=8, depth=3).create_model_3D((32, 32, 32, 1), 3)
        >>> model.output.shape
        (None, 32, 32, 32, 3)
    """

    model_name = "unet_standard"


contracting_layer_2D, middle_layer_2D, expanding_layer_2D = blocks.level_helpers(blocks.conv_block)
contracting_layer_3D, middle_layer_3D, expanding_layer_3D = (
    contracting_layer_2D, middle_layer_2D, expanding_layer_2D
)
