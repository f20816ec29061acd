"""astrocnn: convolutional networks for scientific images."""

from astrocnn.errors import AstroCNNError, ShapeError
from astrocnn.layers import Norm, conv_output_size
from astrocnn.models import create_model, list_models

__version__ = "0.1.0"
__all__ = ["AstroCNNError", "Norm", "ShapeError", "conv_output_size", "create_model", "list_models"]
