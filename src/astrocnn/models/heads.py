"""Output heads shared by the classifiers."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from astrocnn.layers import dims
from astrocnn.layers.blocks import Activation
from astrocnn.models.mlp import dense_stack


class AvgLogPool(nn.Module):
    """Global average pooling, and beside it the logarithm of the same averages.

    A target that is the logarithm of an image-wide sum of positive quantities (a particle's
    energy from the total light of its image, over a range of several decades) is then linear in
    the head's input, where after average pooling alone the network has to build the logarithm of
    a sum from sums of local functions. The features pooled are nonnegative (after a ReLU)."""

    def __init__(self, eps: float = 1e-3):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.flatten(2).mean(dim=-1)
        return torch.cat([mean, torch.log(mean.clamp_min(0) + self.eps)], dim=1)


def dense_head(
    spatial_dims: int,
    channels: int,
    num_outputs: int,
    *,
    pool_size: int = 1,
    hidden: Sequence[int] = (),
    dropout: float = 0.0,
    act: Activation = nn.ReLU,
    log_pool: bool = False,
) -> nn.Sequential:
    """Adaptive average pooling to ``pool_size`` per axis, flatten, fully connected layers.

    ``pool_size=1`` with no hidden layer is the global-average-pooling head of ResNet and
    Inception; ``pool_size=7`` with two 4096-wide layers is VGG's (Simonyan and Zisserman 2014).
    ``log_pool`` (global pooling only): the averages and their logarithms (:class:`AvgLogPool`)."""
    if log_pool and pool_size != 1:
        raise ValueError("log_pool needs global pooling (pool_size=1)")
    if log_pool:
        layers = OrderedDict(pool=AvgLogPool())
        channels *= 2
    else:
        layers = OrderedDict(pool=dims.adaptive_avg_pool(spatial_dims)(pool_size), flatten=nn.Flatten())
    if not hidden and dropout > 0:
        layers["drop"] = nn.Dropout(dropout)
    layers.update(
        dense_stack([channels * pool_size**spatial_dims, *hidden, num_outputs], act=act, dropout=dropout)
    )
    return nn.Sequential(layers)
