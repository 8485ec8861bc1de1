"""The U-Net family. ``from miseg.neural_network.architecture.unet import *`` gives the
``UNet_*`` names; each is the ``Architecture`` class of the module of the same name."""

from miseg.neural_network.architecture.unet.attention import Architecture as UNet_attention
from miseg.neural_network.architecture.unet.attention_residual import (
    Architecture as UNet_attention_residual,
)
from miseg.neural_network.architecture.unet.compact import Architecture as UNet_compact
from miseg.neural_network.architecture.unet.dense import Architecture as UNet_dense
from miseg.neural_network.architecture.unet.multiRes import Architecture as UNet_multiRes
from miseg.neural_network.architecture.unet.plain import Architecture as UNet_plain
from miseg.neural_network.architecture.unet.residual import Architecture as UNet_residual
from miseg.neural_network.architecture.unet.standard import Architecture as UNet_standard

__all__ = [
    "UNet_standard",
    "UNet_plain",
    "UNet_residual",
    "UNet_dense",
    "UNet_multiRes",
    "UNet_compact",
    "UNet_attention",
    "UNet_attention_residual",
]
