"""N-d layers, the shape arithmetic, and the blocks the architectures share."""

from astrocnn.layers.dims import SPATIAL_DIMS, Norm
from astrocnn.layers.shapes import conv_output_size, conv_transpose_output_size, module_output_size

__all__ = ["SPATIAL_DIMS", "Norm", "conv_output_size", "conv_transpose_output_size", "module_output_size"]
