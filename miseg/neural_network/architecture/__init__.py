"""Network architectures.

Importing this package registers miseg's custom Keras layers (see :mod:`.layers`), so saved
``.keras`` models load with ``keras.models.load_model(path)``. The U-Nets live in
:mod:`miseg.neural_network.architecture.unet`.
"""

from miseg.neural_network.architecture.abstract_architecture import (
    Abstract_Architecture,
    check_input_shape,
)
from miseg.neural_network.architecture.layers import InstanceNormalization

__all__ = ["Abstract_Architecture", "check_input_shape", "InstanceNormalization"]
