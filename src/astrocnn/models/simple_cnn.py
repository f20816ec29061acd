"""The lecture's convolutional network: CONV-ReLU layers, max pooling, a fully connected head.

With the defaults and a 3 x 32 x 32 input it is the lecture's example exactly: six 5 x 5 x 3
filters give 28 x 28 x 6, ten 5 x 5 x 6 filters give 24 x 24 x 10, 2 x 2 max pooling 12 x 12 x 10.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

from torch import nn

from astrocnn.layers import dims
from astrocnn.layers.blocks import Activation, ConvNormAct, scaled
from astrocnn.layers.dims import Norm
from astrocnn.models.base import Network
from astrocnn.models.mlp import check_input_size, dense_stack


class SimpleCNN(Network):
    def __init__(
        self,
        *,
        spatial_dims: int,
        in_channels: int,
        num_outputs: int,
        input_size: Sequence[int],
        channels: Sequence[int] = (6, 10),
        kernel_size: int = 5,
        padding: int = 0,
        pool: int = 2,
        hidden: Sequence[int] = (64,),
        norm: Norm = Norm.NONE,
        act: Activation = nn.ReLU,
        width: float = 1.0,
        dropout: float = 0.0,
    ):
        input_size = check_input_size(input_size, spatial_dims)
        super().__init__(
            "simple_cnn",
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            num_outputs=num_outputs,
            input_size=input_size,
        )
        stages: OrderedDict[str, nn.Module] = OrderedDict()
        c_in = in_channels
        for i, c in enumerate(channels, start=1):
            c_out = scaled(c, width)
            stages[f"conv{i}"] = ConvNormAct(
                spatial_dims, c_in, c_out, kernel_size, padding=padding, norm=norm, act=act
            )
            c_in = c_out
        stages["pool"] = dims.max_pool(spatial_dims)(pool)
        self.features = nn.Sequential(stages)
        self.check_input((1, in_channels, *input_size))  # fails early, in the user's terms
        feature_size = self.stage_sizes(input_size)[-1][1]
        widths = [c_in * math.prod(feature_size), *(scaled(h, width) for h in hidden), num_outputs]
        self.head = nn.Sequential(
            OrderedDict(flatten=nn.Flatten(), **dense_stack(widths, act=act, dropout=dropout))
        )
