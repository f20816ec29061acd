"""U-Net (Ronneberger et al. 2015): an encoder-decoder with skip connections, image in, image out.

The output has the input's spatial size. Inputs whose sizes are not multiples of 2^depth are
padded by edge replication before the encoder and cropped after the decoder, so any size works.
``residual=True`` adds the input's first ``num_outputs`` channels to the output, so the network
learns a correction to its input (residual learning of a denoiser: Zhang et al. 2017, DnCNN).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from astrocnn.errors import OptionError
from astrocnn.layers import dims
from astrocnn.layers.blocks import Activation, ConvNormAct, scaled
from astrocnn.layers.dims import Norm
from astrocnn.layers.shapes import Size
from astrocnn.models.base import Network, check_rank_and_channels


def double_conv(spatial_dims: int, c_in: int, c_out: int, norm: Norm, act: Activation) -> nn.Sequential:
    return nn.Sequential(
        ConvNormAct(spatial_dims, c_in, c_out, 3, padding=1, norm=norm, act=act),
        ConvNormAct(spatial_dims, c_out, c_out, 3, padding=1, norm=norm, act=act),
    )


class UpBlock(nn.Module):
    """2x up-convolution halving the channels, concatenation with the skip, two 3 x 3 convolutions."""

    def __init__(self, spatial_dims: int, c_in: int, c_skip: int, c_out: int, norm: Norm, act: Activation):
        super().__init__()
        self.up = dims.conv_transpose(spatial_dims)(c_in, c_out, 2, stride=2)
        self.conv = double_conv(spatial_dims, c_out + c_skip, c_out, norm, act)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class UNet(Network):
    """Widths ``64 * m * width`` for ``m`` in ``channel_mults`` (the paper: 64 ... 1024)."""

    def __init__(
        self,
        *,
        spatial_dims: int,
        in_channels: int,
        num_outputs: int,
        channel_mults: Sequence[int] = (1, 2, 4, 8, 16),
        norm: Norm = Norm.BATCH,
        act: Activation = nn.ReLU,
        width: float = 1.0,
        residual: bool = False,
    ):
        super().__init__("unet", spatial_dims=spatial_dims, in_channels=in_channels, num_outputs=num_outputs)
        if residual and in_channels < num_outputs:
            raise OptionError(
                f"residual unet adds its input to its output: {in_channels} input channel(s) cannot "
                f"cover {num_outputs} outputs"
            )
        self.residual = bool(residual)
        widths = [scaled(64 * m, width) for m in channel_mults]
        self.inc = double_conv(spatial_dims, in_channels, widths[0], norm, act)
        pool = dims.max_pool(spatial_dims)
        self.down = nn.ModuleList(
            nn.Sequential(pool(2), double_conv(spatial_dims, a, b, norm, act)) for a, b in pairwise(widths)
        )
        self.up = nn.ModuleList(
            UpBlock(spatial_dims, b, a, a, norm, act) for a, b in reversed(list(pairwise(widths)))
        )
        self.out = dims.conv(spatial_dims)(widths[0], num_outputs, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, *S) -> (B, num_outputs, *S)
        check_rank_and_channels(self, tuple(x.shape))
        size = x.shape[2:]
        factor = 2 ** len(self.down)
        pad = [(-n) % factor for n in size]
        if any(pad):
            # F.pad takes (last axis left, right, previous axis left, right, ...)
            x = F.pad(x, [p for n in reversed(pad) for p in (0, n)], mode="replicate")
        skips = []
        h = self.inc(x)
        for down in self.down:
            skips.append(h)
            h = down(h)
        for up, skip in zip(self.up, reversed(skips), strict=True):
            h = up(h, skip)
        out = self.out(h)[(..., *(slice(0, n) for n in size))]
        if self.residual:
            out = out + x[(slice(None), slice(0, self.num_outputs), *(slice(0, n) for n in size))]
        return out

    def stage_sizes(self, size: Size) -> list[tuple[str, Size]]:
        return [("out", size)]  # any size is padded to fit

    def check_input(self, shape) -> None:
        check_rank_and_channels(self, tuple(shape))
