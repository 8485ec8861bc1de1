"""Building blocks shared by the U-Net variants, written once for 2D and 3D.

Block functions take a Keras tensor and read the spatial rank (2 or 3) from it, so the same
code builds both the 2D and the 3D networks. :func:`rank_layers` picks the layer classes.

The generic U-Net skeleton is :func:`unet_graph`: an encoder of ``block -> pool`` levels, a
bottleneck block, and a decoder of ``upsample -> concat(skip) -> block`` levels. Variants
differ only in the blocks they plug in (and an optional transform of the skip tensor, used
by the attention gates and MultiResUNet's residual paths). :class:`UNetBase` wraps the
skeleton in the ``Architecture(n_filters, depth, activation, batch_normalization)`` API.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import keras

from miseg.errors import ConfigurationError, ModelError
from miseg.neural_network.architecture.abstract_architecture import (
    Abstract_Architecture,
    check_input_shape,
)

__all__ = [
    "RankLayers",
    "rank_layers",
    "spatial_rank",
    "check_positive_int",
    "check_activation",
    "conv_bn",
    "conv_block",
    "contracting_layer",
    "expanding_layer",
    "level_helpers",
    "gating_signal",
    "attention_gate",
    "gated_skip",
    "unet_graph",
    "output_head",
    "build_model",
    "UNetBase",
]

Block = Callable[[keras.KerasTensor, int], keras.KerasTensor]
SkipTransform = Callable[[keras.KerasTensor, keras.KerasTensor, int], keras.KerasTensor]


@dataclass(frozen=True)
class RankLayers:
    """The Keras layer classes for one spatial rank."""

    rank: int
    conv: type[keras.layers.Layer]
    conv_transpose: type[keras.layers.Layer]
    max_pooling: type[keras.layers.Layer]
    up_sampling: type[keras.layers.Layer]


def rank_layers(rank: int) -> RankLayers:
    """Return the convolution, transposed convolution, pooling and upsampling classes.

    Args:
        rank: Spatial rank, 2 or 3.

    Example:
        >>> rank_layers(3).conv is keras.layers.Conv3D
        True
    """
    if rank == 2:
        return RankLayers(
            2, keras.layers.Conv2D, keras.layers.Conv2DTranspose,
            keras.layers.MaxPooling2D, keras.layers.UpSampling2D,
        )
    if rank == 3:
        return RankLayers(
            3, keras.layers.Conv3D, keras.layers.Conv3DTranspose,
            keras.layers.MaxPooling3D, keras.layers.UpSampling3D,
        )
    raise ModelError(f"only 2D and 3D networks are supported, got spatial rank {rank}")


def spatial_rank(x: keras.KerasTensor) -> int:
    """Spatial rank of a channels-last batch tensor ``(batch, *spatial, channels)``."""
    return len(x.shape) - 2


def check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    """Return ``value`` if it is an int ``>= minimum``; raise ConfigurationError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def check_activation(name: str, value: object) -> object:
    """Return ``value`` if Keras knows it as an activation; raise ConfigurationError otherwise."""
    try:
        keras.activations.get(value)
    except (ValueError, TypeError):
        raise ConfigurationError(
            f"{name}={value!r} is not a Keras activation (e.g. 'softmax', 'sigmoid', 'relu')"
        ) from None
    return value


def conv_bn(
    x: keras.KerasTensor,
    filters: int,
    kernel_size: int = 3,
    *,
    strides: int = 1,
    activation: str | None = "relu",
    ba_norm: bool = True,
    momentum: float = 0.99,
) -> keras.KerasTensor:
    """Convolution (``same`` padding, with activation), then batch normalization if enabled."""
    layers = rank_layers(spatial_rank(x))
    x = layers.conv(filters, kernel_size, strides=strides, padding="same", activation=activation)(x)
    if ba_norm:
        x = keras.layers.BatchNormalization(momentum=momentum)(x)
    return x


def conv_block(
    x: keras.KerasTensor, filters: int, *, ba_norm: bool = True, momentum: float = 0.99
) -> keras.KerasTensor:
    """The standard U-Net block: two 3x3(x3) ReLU convolutions, each with optional BN."""
    x = conv_bn(x, filters, ba_norm=ba_norm, momentum=momentum)
    return conv_bn(x, filters, ba_norm=ba_norm, momentum=momentum)


def contracting_layer(
    x: keras.KerasTensor,
    filters: int,
    block: Block,
    pool_size: int | Sequence[int] = 2,
) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """One encoder level: ``skip = block(x, filters)``, then max-pooling.

    Returns:
        ``(pooled, skip)``.
    """
    skip = block(x, filters)
    pooled = rank_layers(spatial_rank(x)).max_pooling(pool_size)(skip)
    return pooled, skip


def expanding_layer(
    x: keras.KerasTensor,
    filters: int,
    skip: keras.KerasTensor,
    block: Block,
    up_size: int | Sequence[int] = 2,
) -> keras.KerasTensor:
    """One decoder level: transposed convolution (kernel = stride = ``up_size``), channel
    concatenation with ``skip``, then ``block``."""
    up = rank_layers(spatial_rank(x)).conv_transpose(
        filters, up_size, strides=up_size, padding="same"
    )(x)
    return block(keras.layers.Concatenate(axis=-1)([up, skip]), filters)


def level_helpers(block: Callable[..., keras.KerasTensor]) -> tuple[Callable, Callable, Callable]:
    """MIScnn's module-level helpers ``contracting_layer``, ``middle_layer`` and
    ``expanding_layer`` for a block function ``block(x, filters, *, ba_norm, momentum)``.

    The helpers work for 2D and 3D (the rank is read from the tensor), so a variant module
    binds them to both its ``*_2D`` and ``*_3D`` names.
    """

    def contracting(input, neurons, ba_norm=True, ba_norm_momentum=0.99):
        """Encoder level: block, then 2x max-pooling. Returns ``(pooled, skip)``."""
        return contracting_layer(
            input, neurons, partial(block, ba_norm=ba_norm, momentum=ba_norm_momentum)
        )

    def middle(input, neurons, ba_norm=True, ba_norm_momentum=0.99):
        """Bottleneck block."""
        return block(input, neurons, ba_norm=ba_norm, momentum=ba_norm_momentum)

    def expanding(input, neurons, concatenate_link, ba_norm=True, ba_norm_momentum=0.99):
        """Decoder level: 2x transposed convolution, concat ``concatenate_link``, block."""
        return expanding_layer(
            input, neurons, concatenate_link,
            partial(block, ba_norm=ba_norm, momentum=ba_norm_momentum),
        )

    return contracting, middle, expanding


def gating_signal(
    x: keras.KerasTensor, filters: int, *, ba_norm: bool = True, momentum: float = 0.99
) -> keras.KerasTensor:
    """Gating signal for an attention gate: 1x1 convolution, optional BN, ReLU."""
    x = rank_layers(spatial_rank(x)).conv(filters, 1, padding="same")(x)
    if ba_norm:
        x = keras.layers.BatchNormalization(momentum=momentum)(x)
    return keras.layers.Activation("relu")(x)


def attention_gate(
    skip: keras.KerasTensor,
    gating: keras.KerasTensor,
    inter_filters: int,
    *,
    ba_norm: bool = True,
    momentum: float = 0.99,
) -> keras.KerasTensor:
    """Additive attention gate (Oktay et al. 2018) weighting ``skip`` by a coarser ``gating``.

    ``theta`` (stride-2 3x3 convolution of ``skip``) and ``phi`` (1x1 convolution of
    ``gating``, which has half the spatial size of ``skip``) are summed, passed through ReLU, a
    1-channel 1x1 convolution and a sigmoid. The map is upsampled by 2 and multiplied with
    ``skip`` (broadcast over channels), then projected by a 1x1 convolution with optional BN.
    Built from standard layers only, so saved models load in safe mode.
    """
    layers = rank_layers(spatial_rank(skip))
    theta = layers.conv(inter_filters, 3, strides=2, padding="same")(skip)
    phi = layers.conv(inter_filters, 1, padding="same")(gating)
    act = keras.layers.Activation("relu")(keras.layers.Add()([theta, phi]))
    psi = layers.conv(1, 1, padding="same", activation="sigmoid")(act)
    psi = layers.up_sampling(2)(psi)
    gated = keras.layers.Multiply()([skip, psi])
    out = layers.conv(skip.shape[-1], 1, padding="same")(gated)
    if ba_norm:
        out = keras.layers.BatchNormalization(momentum=momentum)(out)
    return out


def gated_skip(
    skip: keras.KerasTensor,
    lower: keras.KerasTensor,
    filters: int,
    *,
    ba_norm: bool = True,
    momentum: float = 0.99,
) -> keras.KerasTensor:
    """Attention U-Net skip: gate ``skip`` with a gating signal computed from ``lower``."""
    gating = gating_signal(lower, filters, ba_norm=ba_norm, momentum=momentum)
    return attention_gate(skip, gating, filters, ba_norm=ba_norm, momentum=momentum)


def unet_graph(
    inputs: keras.KerasTensor,
    filters: Sequence[int],
    *,
    encoder_block: Block,
    middle_block: Block,
    decoder_block: Block,
    pool_sizes: Sequence[int | Sequence[int]] | None = None,
    skip_transform: SkipTransform | None = None,
) -> keras.KerasTensor:
    """The U-Net skeleton.

    Args:
        inputs: The model input.
        filters: Filters per level; ``filters[:-1]`` for the encoder/decoder levels (top
            first) and ``filters[-1]`` for the bottleneck. Its length is the depth + 1.
        encoder_block, middle_block, decoder_block: ``block(x, filters) -> tensor``.
        pool_sizes: Pool size per level (default 2 on every axis); the matching decoder
            level upsamples by the same size.
        skip_transform: ``f(skip, lower, level) -> skip`` applied before each decoder
            concatenation; ``lower`` is the tensor coming up from the level below.

    Returns:
        The last decoder tensor (before the output head).
    """
    depth = len(filters) - 1
    if pool_sizes is None:
        pool_sizes = (2,) * depth
    x = inputs
    skips = []
    for level in range(depth):
        x, skip = contracting_layer(x, filters[level], encoder_block, pool_sizes[level])
        skips.append(skip)
    x = middle_block(x, filters[-1])
    for level in reversed(range(depth)):
        skip = skips[level]
        if skip_transform is not None:
            skip = skip_transform(skip, x, level)
        x = expanding_layer(x, filters[level], skip, decoder_block, pool_sizes[level])
    return x


def output_head(x: keras.KerasTensor, n_labels: int, activation: object) -> keras.KerasTensor:
    """1x1 convolution to ``n_labels`` channels and the final activation, kept in float32."""
    x = rank_layers(spatial_rank(x)).conv(n_labels, 1, padding="same")(x)
    return keras.layers.Activation(activation, dtype="float32", name="output_activation")(x)


def build_model(
    input_shape: Sequence[int | None],
    n_labels: int,
    *,
    rank: int,
    body: Callable[[keras.KerasTensor], keras.KerasTensor],
    activation: object,
    n_downsamplings: int,
    factors: Sequence[int] | None = None,
    head: Callable[[keras.KerasTensor, int, object], keras.KerasTensor] = output_head,
    name: str | None = None,
) -> keras.Model:
    """Check the input shape, build ``head(body(inputs))`` and wrap it in a functional model.

    Raises:
        ModelError: when ``input_shape`` does not have ``rank`` spatial axes or is not
            divisible by the downsampling factors (see :func:`check_input_shape`).
        ConfigurationError: when ``n_labels`` is not a positive int.
    """
    check_positive_int("n_labels", n_labels)
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = None
    if shape is None or len(shape) != rank + 1:
        expected = "(x, y, channels)" if rank == 2 else "(x, y, z, channels)"
        raise ModelError(
            f"create_model_{rank}D expects input_shape {expected} without the batch axis, "
            f"got {input_shape!r}"
        )
    shape = check_input_shape(shape, n_downsamplings, factors)
    inputs = keras.Input(shape)
    outputs = head(body(inputs), n_labels, activation)
    return keras.Model(inputs, outputs, name=name)


class UNetBase(Abstract_Architecture):
    """Common implementation of the ``(n_filters, depth, activation, batch_normalization)``
    U-Nets (standard, residual, dense, compact, attention, attention_residual).

    Level ``i`` (``0 .. depth-1``) has ``n_filters * 2**i`` filters and the bottleneck
    ``n_filters * 2**depth``; spatial sizes must be divisible by ``2**depth``. Subclasses
    override :meth:`block` (all levels), :meth:`encoder_block` or :meth:`skip_transform`.

    Args:
        n_filters: Filters of the first level.
        depth: Number of poolings.
        activation: Final activation. The default ``'softmax'`` matches miseg's losses.
        batch_normalization: Whether to add batch normalization after convolutions.
    """

    model_name = "unet"

    def __init__(
        self,
        n_filters: int = 32,
        depth: int = 4,
        activation: str = "softmax",
        batch_normalization: bool = True,
    ) -> None:
        self.n_filters = check_positive_int("n_filters", n_filters)
        self.depth = check_positive_int("depth", depth)
        self.activation = check_activation("activation", activation)
        self.ba_norm = bool(batch_normalization)
        self.ba_norm_momentum = 0.99

    def __repr__(self) -> str:
        return (
            f"{type(self).__module__}.{type(self).__name__}(n_filters={self.n_filters}, "
            f"depth={self.depth}, activation={self.activation!r}, "
            f"batch_normalization={self.ba_norm})"
        )

    def block(self, x: keras.KerasTensor, filters: int) -> keras.KerasTensor:
        """The convolution block used at every level (default: :func:`conv_block`)."""
        return conv_block(x, filters, ba_norm=self.ba_norm, momentum=self.ba_norm_momentum)

    def encoder_block(self, x: keras.KerasTensor, filters: int) -> keras.KerasTensor:
        """The encoder block; defaults to :meth:`block`."""
        return self.block(x, filters)

    def skip_transform(
        self, skip: keras.KerasTensor, lower: keras.KerasTensor, level: int
    ) -> keras.KerasTensor:
        """Transform a skip tensor before its decoder concatenation; identity by default."""
        return skip

    def create_model_2D(self, input_shape: Sequence[int | None], n_labels: int = 2) -> keras.Model:
        return self._create_model(input_shape, n_labels, rank=2)

    def create_model_3D(self, input_shape: Sequence[int | None], n_labels: int = 2) -> keras.Model:
        return self._create_model(input_shape, n_labels, rank=3)

    create_model_2D.__doc__ = Abstract_Architecture.create_model_2D.__doc__
    create_model_3D.__doc__ = Abstract_Architecture.create_model_3D.__doc__

    def _create_model(self, input_shape, n_labels: int, rank: int) -> keras.Model:
        filters = [self.n_filters * 2**level for level in range(self.depth + 1)]
        body = partial(
            unet_graph,
            filters=filters,
            encoder_block=self.encoder_block,
            middle_block=self.block,
            decoder_block=self.block,
            skip_transform=self.skip_transform,
        )
        return build_model(
            input_shape, n_labels, rank=rank, body=body, activation=self.activation,
            n_downsamplings=self.depth, name=f"{self.model_name}_{rank}d",
        )
