"""Fully connected baselines: the network the lecture argues against, and the parameter count of
one as wide as a CNN's feature maps."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from itertools import pairwise

from torch import nn

from astrocnn.errors import OptionError
from astrocnn.layers.blocks import Activation
from astrocnn.models.base import Network


def mlp_parameter_count(widths: Sequence[int]) -> int:
    """Weights and biases of fully connected layers mapping ``widths[0]`` -> ... -> ``widths[-1]``."""
    return sum(a * b + b for a, b in pairwise(widths))


def check_input_size(input_size: Sequence[int], spatial_dims: int) -> tuple[int, ...]:
    size = tuple(input_size)
    if len(size) != spatial_dims or any(not isinstance(n, int) or n < 1 for n in size):
        raise OptionError(f"input_size must be {spatial_dims} positive integers, got {input_size!r}")
    return size


def dense_stack(widths: Sequence[int], *, act: Activation, dropout: float) -> OrderedDict[str, nn.Module]:
    """Linear layers ``widths[0] -> ... -> widths[-1]`` with activation (and dropout) between them."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    last = len(widths) - 1
    for i, (a, b) in enumerate(pairwise(widths), start=1):
        layers[f"fc{i}"] = nn.Linear(a, b)
        if i < last:
            layers[f"act{i}"] = act()
            if dropout > 0:
                layers[f"drop{i}"] = nn.Dropout(dropout)
    return layers


class MLP(Network):
    """Flatten the image and apply fully connected layers of widths ``hidden``."""

    def __init__(
        self,
        *,
        spatial_dims: int,
        in_channels: int,
        num_outputs: int,
        input_size: Sequence[int],
        hidden: Sequence[int] = (256, 128),
        act: Activation = nn.ReLU,
        dropout: float = 0.0,
    ):
        input_size = check_input_size(input_size, spatial_dims)
        super().__init__(
            "mlp",
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            num_outputs=num_outputs,
            input_size=input_size,
        )
        widths = [in_channels * math.prod(input_size), *hidden, num_outputs]
        self.features = nn.Sequential(OrderedDict(flatten=nn.Flatten()))
        self.head = nn.Sequential(dense_stack(widths, act=act, dropout=dropout))
