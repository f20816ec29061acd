"""Output heads shared by the classifiers."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import nn

from astrocnn.layers import dims
from astrocnn.layers.blocks import Activation
from astrocnn.models.mlp import dense_stack


def dense_head(
    spatial_dims: int,
    channels: int,
    num_outputs: int,
    *,
    pool_size: int = 1,
    hidden: Sequence[int] = (),
    dropout: float = 0.0,
    act: Activation = nn.ReLU,
) -> nn.Sequential:
    """Adaptive average pooling to ``pool_size`` per axis, flatten, fully connected layers.

    ``pool_size=1`` with no hidden layer is the global-average-pooling head of ResNet and
    Inception; ``pool_size=7`` with two 4096-wide layers is VGG's (Simonyan and Zisserman 2014)."""
    layers = OrderedDict(
        pool=dims.adaptive_avg_pool(spatial_dims)(pool_size),
        flatten=nn.Flatten(),
    )
    if not hidden and dropout > 0:
        layers["drop"] = nn.Dropout(dropout)
    layers.update(
        dense_stack([channels * pool_size**spatial_dims, *hidden, num_outputs], act=act, dropout=dropout)
    )
    return nn.Sequential(layers)
