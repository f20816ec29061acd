"""Small building blocks shared by the architectures, all N-d through :mod:`astrocnn.layers.dims`."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
from torch import nn

from astrocnn.layers import dims
from astrocnn.layers.dims import Norm
from astrocnn.layers.shapes import Size, module_output_size

Activation = Callable[[], nn.Module]


def inplace_activation(act: Activation) -> nn.Module:
    """``act()``, computed in place where that is safe: a ReLU whose input is the fresh output of
    a convolution or a normalisation (neither needs its output for the backward pass, and ReLU's
    backward reads only its own result). Saves a tensor's worth of memory traffic per layer: with
    the in-place residual add, the default resnet18 ran inference 1.01 - 1.08x and training
    1.00 - 1.01x as fast as before on the CPU (docs/benchmarks.md, "peers"). Other activations are
    left as they are."""
    return nn.ReLU(inplace=True) if act is nn.ReLU else act()


class ConvNormAct(nn.Sequential):
    """Convolution, then normalisation (optional), then activation (optional).

    The convolution carries a bias only when no normalisation follows it (a bias before batch
    norm is cancelled by the mean subtraction), unless ``bias`` says otherwise."""

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int] = 3,
        *,
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
        norm: Norm = Norm.BATCH,
        act: Activation | None = nn.ReLU,
        norm_eps: float = 1e-5,
        bias: bool | None = None,
    ):
        norm_module = dims.norm_layer(norm, spatial_dims, out_channels, eps=norm_eps)
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            {
                "conv": dims.conv(spatial_dims)(
                    in_channels,
                    out_channels,
                    kernel_size,
                    stride=stride,
                    padding=padding,
                    bias=norm_module is None if bias is None else bias,
                )
            }
        )
        if norm_module is not None:
            layers["norm"] = norm_module
        if act is not None:
            layers["act"] = inplace_activation(act)
        super().__init__(layers)


class Concat(nn.Module):
    """Parallel branches on the same input, joined along the channel axis (an Inception block).

    All branches keep the same spatial size by construction, so the size walk follows the first."""

    def __init__(self, **branches: nn.Module):
        super().__init__()
        self.branches = nn.ModuleDict(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, *S) -> (B, sum C_i, *S')
        return torch.cat([branch(x) for branch in self.branches.values()], dim=1)

    def output_size(self, size: Size) -> Size:
        sizes = {module_output_size(branch, size) for branch in self.branches.values()}
        if len(sizes) != 1:
            raise RuntimeError(f"Inception branches disagree on the output size: {sorted(sizes)}")
        return sizes.pop()


def factorised_conv(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    *,
    mid_channels: int | None = None,
    first_axis_last: bool = True,
    **conv_options,
) -> nn.Sequential:
    """An n x n (x n) convolution factorised into one n-long convolution per axis.

    Szegedy et al. 2015 ("Rethinking the Inception architecture"): a 1 x n then an n x 1
    convolution see the same n x n window with 2n instead of n^2 weights per channel pair.
    ``first_axis_last`` starts with the last axis (torchvision's 1 x 7 then 7 x 1)."""
    axes = list(range(spatial_dims))
    if first_axis_last:
        axes.reverse()
    mid = out_channels if mid_channels is None else mid_channels
    layers = []
    for i, axis in enumerate(axes):
        layers.append(
            ConvNormAct(
                spatial_dims,
                in_channels if i == 0 else mid,
                out_channels if i == len(axes) - 1 else mid,
                dims.axis_tuple(kernel_size, axis, spatial_dims, fill=1),
                padding=dims.axis_tuple(kernel_size // 2, axis, spatial_dims, fill=0),
                **conv_options,
            )
        )
    return nn.Sequential(*layers)


def axis_split_conv(
    spatial_dims: int, in_channels: int, out_channels: int, kernel_size: int, **conv_options
) -> Concat:
    """Parallel n-long convolutions along each axis, concatenated (Inception v3's 1x3 | 3x1 split).

    Gives ``spatial_dims * out_channels`` channels."""
    return Concat(
        **{
            f"axis{axis}": ConvNormAct(
                spatial_dims,
                in_channels,
                out_channels,
                dims.axis_tuple(kernel_size, axis, spatial_dims, fill=1),
                padding=dims.axis_tuple(kernel_size // 2, axis, spatial_dims, fill=0),
                **conv_options,
            )
            for axis in reversed(range(spatial_dims))
        }
    )


def scaled(channels: int, width: float) -> int:
    """Channel count under a width multiplier; never below 1."""
    return max(1, round(channels * width))
