"""The contract every network architecture fulfils, and the input-shape check they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import keras

from miseg.errors import ModelError

__all__ = ["Abstract_Architecture", "check_input_shape"]


class Abstract_Architecture(ABC):
    """Base class of segmentation architectures: builds the Keras model for 2D or 3D data.

    ``Neural_Network`` calls :meth:`create_model_2D` or :meth:`create_model_3D` with the
    input shape (no batch axis, channels last; spatial sizes may be ``None`` for fully
    convolutional use) and the number of classes, then compiles the returned model itself.

    Builders return an **uncompiled** functional ``keras.Model`` whose output has shape
    ``(batch, ..., n_labels)`` and is already activated (softmax for the built-in U-Nets,
    which is what miseg's losses expect). Keep the final activation in ``float32``
    (``dtype="float32"``) so the output stays float32 under a ``mixed_float16`` policy.

    Example:
        A minimal fully convolutional network::

            import keras
            from miseg.neural_network.architecture import (
                Abstract_Architecture, check_input_shape)

            class TinyFCN(Abstract_Architecture):
                def __init__(self, n_filters=16):
                    self.n_filters = n_filters

                def _build(self, input_shape, n_labels, conv):
                    check_input_shape(input_shape, n_downsamplings=0)
                    inputs = keras.Input(input_shape)
                    x = conv(self.n_filters, 3, padding="same", activation="relu")(inputs)
                    x = conv(n_labels, 1)(x)
                    outputs = keras.layers.Activation("softmax", dtype="float32")(x)
                    return keras.Model(inputs, outputs)

                def create_model_2D(self, input_shape, n_labels=2):
                    return self._build(input_shape, n_labels, keras.layers.Conv2D)

                def create_model_3D(self, input_shape, n_labels=2):
                    return self._build(input_shape, n_labels, keras.layers.Conv3D)

            model = TinyFCN().create_model_2D((None, None, 1), n_labels=3)
    """

    @abstractmethod
    def create_model_2D(self, input_shape: Sequence[int | None], n_labels: int = 2) -> keras.Model:
        """Build the 2D model.

        Args:
            input_shape: ``(x, y, channels)``; ``x``/``y`` may be ``None``.
            n_labels: Number of output classes (background included).

        Returns:
            An uncompiled functional model with output ``(batch, x, y, n_labels)``.
        """

    @abstractmethod
    def create_model_3D(self, input_shape: Sequence[int | None], n_labels: int = 2) -> keras.Model:
        """Build the 3D model.

        Args:
            input_shape: ``(x, y, z, channels)``; spatial sizes may be ``None``.
            n_labels: Number of output classes (background included).

        Returns:
            An uncompiled functional model with output ``(batch, x, y, z, n_labels)``.
        """


def check_input_shape(
    input_shape: Sequence[int | None],
    n_downsamplings: int,
    factors: Sequence[int] | None = None,
) -> tuple[int | None, ...]:
    """Check that a network with ``n_downsamplings`` poolings can process ``input_shape``.

    Every known spatial size must be divisible by the total downsampling factor of its axis,
    otherwise the decoder cannot restore the size and the skip concatenations fail deep
    inside Keras. ``None`` spatial sizes (fully convolutional use) are not checked.

    Args:
        input_shape: Shape without batch axis, channels last: ``(x, y[, z], channels)``.
        n_downsamplings: Number of pooling steps.
        factors: Total downsampling factor per spatial axis, for networks whose poolings
            differ per axis. Defaults to ``2 ** n_downsamplings`` on every axis.

    Returns:
        ``input_shape`` as a tuple.

    Raises:
        ModelError: when the shape is malformed (not 2D/3D, unknown or non-positive channel
            count, non-positive size) or a size is not divisible; the message names the axis,
            the size and the nearest valid sizes.

    Example:
        >>> check_input_shape((64, 64, 1), n_downsamplings=4)
        (64, 64, 1)
        >>> check_input_shape((64, 60, 1), n_downsamplings=4)
        Traceback (most recent call last):
        ...
        miseg.errors.ModelError: input_shape (64, 60, 1): axis 1 has size 60, which 4 poolings \
(factor 16) cannot halve evenly; nearest valid sizes: 48 or 64
    """
    try:
        shape = tuple(None if s is None else int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise ModelError(
            f"input_shape {input_shape!r} must be a sequence of ints or None"
        ) from None
    if len(shape) not in (3, 4):
        raise ModelError(
            f"input_shape {shape} must be (x, y, channels) for 2D or (x, y, z, channels) "
            "for 3D, without the batch axis"
        )
    if shape[-1] is None or shape[-1] < 1:
        raise ModelError(
            f"input_shape {shape}: the channel count (last axis) must be a positive int, "
            f"got {shape[-1]}"
        )
    spatial = shape[:-1]
    if factors is None:
        factors = (2**n_downsamplings,) * len(spatial)
    elif len(factors) != len(spatial):
        raise ModelError(
            f"input_shape {shape} has {len(spatial)} spatial axes but {len(factors)} "
            "downsampling factors were given"
        )
    for axis, (size, factor) in enumerate(zip(spatial, factors)):
        if size is None:
            continue
        if size < 1:
            raise ModelError(f"input_shape {shape}: axis {axis} has non-positive size {size}")
        if size % factor:
            below = size // factor * factor
            above = below + factor
            nearest = f"sizes: {below} or {above}" if below else f"size: {above}"
            raise ModelError(
                f"input_shape {shape}: axis {axis} has size {size}, which "
                f"{n_downsamplings} poolings (factor {factor}) cannot halve evenly; "
                f"nearest valid {nearest}"
            )
    return shape
