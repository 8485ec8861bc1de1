"""Plain nnU-Net-like U-Net (Isensee & Maier-Hein 2019): conv, instance norm, leaky ReLU."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial

import keras

from miseg.errors import ConfigurationError
from miseg.neural_network.architecture import blocks
from miseg.neural_network.architecture.abstract_architecture import Abstract_Architecture
from miseg.neural_network.architecture.layers import InstanceNormalization

__all__ = ["Architecture", "conv_layer", "conv_layer_2D", "conv_layer_3D"]

_LRELU_SLOPE = 0.1


def _activation_layer(activation: str) -> keras.layers.Layer:
    """A fresh activation layer; ``'lrelu'`` is LeakyReLU with slope 0.1."""
    if activation == "lrelu":
        return keras.layers.LeakyReLU(negative_slope=_LRELU_SLOPE)
    return keras.layers.Activation(activation)


def conv_layer(
    input: keras.KerasTensor,
    neurons: int,
    activation: str = "lrelu",
    inst_norm: bool = True,
    inst_norm_params: Mapping | None = None,
    dropout: float = 0,
    strides: int | Sequence[int] = 1,
) -> keras.KerasTensor:
    """3x3(x3) convolution with bias, then optional dropout and instance norm, then activation.

    Works for 2D and 3D (the rank is read from the tensor).

    Args:
        input: Input tensor.
        neurons: Number of filters.
        activation: ``'lrelu'`` (LeakyReLU, slope 0.1) or any Keras activation name.
        inst_norm: Whether to apply :class:`InstanceNormalization`.
        inst_norm_params: Keyword arguments of :class:`InstanceNormalization`.
        dropout: Dropout rate; 0 disables dropout.
        strides: Convolution strides.
    """
    layers = blocks.rank_layers(blocks.spatial_rank(input))
    x = layers.conv(neurons, 3, strides=strides, padding="same")(input)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    if inst_norm:
        x = InstanceNormalization(**dict(inst_norm_params or {}))(x)
    return _activation_layer(activation)(x)


conv_layer_2D = conv_layer
conv_layer_3D = conv_layer


class Architecture(Abstract_Architecture):
    """Plain U-Net after nnU-Net: two conv-dropout-instance-norm-leaky-ReLU layers per level.

    The encoder has one level per entry of ``feature_maps``, each followed by max-pooling;
    the bottleneck uses ``feature_maps[-1]`` filters; the decoder mirrors the encoder with
    transposed convolutions (kernel = stride = the pool size of that level).

    Args:
        activation: Final activation (softmax by default, as miseg's losses expect).
        conv_layer_activation: ``'lrelu'`` (LeakyReLU, slope 0.1) or any Keras activation
            name, used after every convolution.
        instance_normalization: Whether to apply instance normalization.
        instance_normalization_params: Keyword arguments of :class:`InstanceNormalization`,
            merged over the default ``{"epsilon": 1e-5}``.
        dropout: Dropout rate after each convolution, in ``[0, 1)``.
        pooling: Pool size of the first level in 3D (e.g. ``(1, 2, 2)`` keeps the first,
            often thick-slice, axis). 2D uses it only when it has two entries, otherwise 2x2.
            All other levels pool by 2 on every axis.
        feature_maps: Filters per encoder level; its length is the number of poolings.

    Example:
        >>> arch = Architecture(feature_maps=(16, 32, 64))
        >>> arch.create_model_3D((16, 64, 64, 1), n_labels=3).output.shape
        (None, 16, 64, 64, 3)
    """

    def __init__(
        self,
        activation: str = "softmax",
        conv_layer_activation: str = "lrelu",
        instance_normalization: bool = True,
        instance_normalization_params: Mapping | None = None,
        dropout: float = 0,
        pooling: Sequence[int] = (1, 2, 2),
        feature_maps: Sequence[int] = (30, 60, 120, 240, 320),
    ) -> None:
        self.activation = blocks.check_activation("activation", activation)
        if conv_layer_activation != "lrelu":
            blocks.check_activation("conv_layer_activation", conv_layer_activation)
        self.conv_layer_activation = conv_layer_activation
        self.instance_normalization = bool(instance_normalization)
        params = {"epsilon": 1e-5, **dict(instance_normalization_params or {})}
        try:
            InstanceNormalization(**params)
        except (TypeError, ValueError) as err:
            raise ConfigurationError(
                f"instance_normalization_params={instance_normalization_params!r} is invalid: "
                f"{err}"
            ) from None
        self.instance_normalization_params = params
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not (
            0 <= dropout < 1
        ):
            raise ConfigurationError(f"dropout must be a number in [0, 1), got {dropout!r}")
        self.dropout = dropout
        pooling = tuple(pooling)
        if len(pooling) not in (2, 3):
            raise ConfigurationError(f"pooling must have 2 or 3 entries, got {pooling!r}")
        for size in pooling:
            blocks.check_positive_int("pooling", size)
        self.pooling = pooling
        feature_maps = tuple(feature_maps)
        if not feature_maps:
            raise ConfigurationError("feature_maps must not be empty")
        for filters in feature_maps:
            blocks.check_positive_int("feature_maps", filters)
        self.feature_maps = feature_maps

    def __repr__(self) -> str:
        return (
            f"{type(self).__module__}.Architecture(activation={self.activation!r}, "
            f"conv_layer_activation={self.conv_layer_activation!r}, "
            f"instance_normalization={self.instance_normalization}, "
            f"instance_normalization_params={self.instance_normalization_params!r}, "
            f"dropout={self.dropout}, pooling={self.pooling}, feature_maps={self.feature_maps})"
        )

    def create_model_2D(self, input_shape: Sequence[int | None], n_labels: int = 2) -> keras.Model:
        first_pool = self.pooling if len(self.pooling) == 2 else (2, 2)
        return self._create_model(input_shape, n_labels, rank=2, first_pool=first_pool)

    def create_model_3D(self, input_shape: Sequence[int | None], n_labels: int = 2) -> keras.Model:
        if len(self.pooling) != 3:
            raise ConfigurationError(
                f"pooling={self.pooling!r} has {len(self.pooling)} entries; "
                "create_model_3D needs 3"
            )
        return self._create_model(input_shape, n_labels, rank=3, first_pool=self.pooling)

    create_model_2D.__doc__ = Abstract_Architecture.create_model_2D.__doc__
    create_model_3D.__doc__ = Abstract_Architecture.create_model_3D.__doc__

    def _block(self, x: keras.KerasTensor, filters: int) -> keras.KerasTensor:
        for _ in range(2):
            x = conv_layer(
                x, filters, self.conv_layer_activation, self.instance_normalization,
                self.instance_normalization_params, self.dropout,
            )
        return x

    def _create_model(
        self, input_shape, n_labels: int, rank: int, first_pool: tuple[int, ...]
    ) -> keras.Model:
        n_pools = len(self.feature_maps)
        pool_sizes = [first_pool] + [(2,) * rank] * (n_pools - 1)
        factors = [first_pool[axis] * 2 ** (n_pools - 1) for axis in range(rank)]
        body = partial(
            blocks.unet_graph,
            filters=self.feature_maps + self.feature_maps[-1:],
            encoder_block=self._block,
            middle_block=self._block,
            decoder_block=self._block,
            pool_sizes=pool_sizes,
        )
        return blocks.build_model(
            input_shape, n_labels, rank=rank, body=body, activation=self.activation,
            n_downsamplings=n_pools, factors=factors, name=f"unet_plain_{rank}d",
        )
