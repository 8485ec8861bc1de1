"""Custom Keras layers used by miseg's architectures.

Every layer here is registered under the ``miseg`` package name, so a saved ``.keras`` model
loads with plain ``keras.models.load_model(path)`` (default ``safe_mode``) in any process
that has imported :mod:`miseg.neural_network.architecture`.
"""

from __future__ import annotations

import keras

__all__ = ["InstanceNormalization"]


@keras.saving.register_keras_serializable(package="miseg")
class InstanceNormalization(keras.layers.GroupNormalization):
    """Instance normalization: per-sample, per-channel normalization over the spatial axes.

    A drop-in replacement for ``tensorflow_addons.layers.InstanceNormalization`` (same
    arguments and default ``epsilon``), built on ``keras.layers.GroupNormalization`` with one
    group per channel. Statistics are computed in float32 even under mixed precision.

    Args:
        axis: The channel axis.
        epsilon: Added to the variance for numerical stability.
        center: Whether to learn an offset ``beta``.
        scale: Whether to learn a scale ``gamma``.
        **kwargs: Further ``GroupNormalization`` arguments (initializers, regularizers,
            constraints) and base layer arguments (``name``, ``dtype``).

    Example:
        Normalize a ``(batch, x, y, channels)`` feature map per sample and channel::

            inputs = keras.Input((None, None, 16))
            outputs = InstanceNormalization(epsilon=1e-5)(inputs)
    """

    def __init__(
        self,
        axis: int = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(
            groups=-1, axis=axis, epsilon=epsilon, center=center, scale=scale, **kwargs
        )

    def get_config(self) -> dict:
        config = super().get_config()
        # The group count always equals the channel count; it is not a free parameter.
        del config["groups"]
        return config
