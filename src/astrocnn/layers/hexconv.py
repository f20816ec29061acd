"""Convolution over a pixel-neighbour table: a hexagonal camera's native convolution (or any
other irregular lattice's), as a gather and a matrix product in plain PyTorch.

The table (n_pixels, k) lists, for every pixel, the pixels at the kernel's k offsets in the same
order for every pixel (``Camera.neighbour_table(radius)`` gives it), -1 where an offset falls
outside the camera (read as zero, like zero padding). A weight then means one direction, so the
layer is equivariant to the lattice's translations, as a square convolution is to shifts.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


class NeighbourConv(nn.Module):
    """(B, C_in, n_pixels) -> (B, C_out, n_pixels): out[:, o, p] = bias[o] +
    sum_{c, k} weight[o, c, k] * x[:, c, table[p, k]]."""

    def __init__(
        self, in_channels: int, out_channels: int, table: np.ndarray | torch.Tensor, *, bias: bool = True
    ):
        super().__init__()
        table = torch.as_tensor(np.asarray(table), dtype=torch.long)
        if table.ndim != 2 or table.shape[1] < 1:
            raise ValueError(f"the neighbour table must be (n_pixels, k), got {tuple(table.shape)}")
        if int(table.max()) >= table.shape[0] or int(table.min()) < -1:
            raise ValueError("neighbour indices must lie in -1 .. n_pixels - 1")
        n, k = table.shape
        # -1 (outside) points at an extra zero pixel appended to the input
        self.register_buffer(
            "table", torch.where(table < 0, torch.full_like(table, n), table), persistent=False
        )
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, k
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, k))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """As nn.Conv2d: Kaiming-uniform weights, a uniform bias over the fan-in."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_channels * self.kernel_size)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[1] != self.in_channels or x.shape[2] != self.table.shape[0]:
            raise ValueError(
                f"NeighbourConv expects (batch, {self.in_channels}, {self.table.shape[0]}), "
                f"got {tuple(x.shape)}"
            )
        padded = torch.cat([x, x.new_zeros(x.shape[0], x.shape[1], 1)], dim=2)
        patches = padded[:, :, self.table]  # (B, C_in, n_pixels, k)
        out = torch.einsum("bcpk,ock->bop", patches, self.weight)
        return out if self.bias is None else out + self.bias[None, :, None]

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, pixels={self.table.shape[0]}, "
            f"kernel={self.kernel_size}, bias={self.bias is not None}"
        )


def hexagonal_kernel_mask(radius: int = 1) -> torch.Tensor:
    """(2r + 1, 2r + 1) mask of a hexagonal kernel of ``radius`` on an axial grid (rows r,
    columns q): offsets (dq, dr) with max(|dq|, |dr|, |dq + dr|) <= radius, 1 + 3 r (r + 1) cells.
    For radius 1 it is a 3 x 3 kernel without the two corners at (dq, dr) = (1, 1) and (-1, -1)."""
    span = torch.arange(-radius, radius + 1)
    dr, dq = torch.meshgrid(span, span, indexing="ij")
    return ((dq.abs() <= radius) & (dr.abs() <= radius) & ((dq + dr).abs() <= radius)).float()


class HexConv2d(nn.Conv2d):
    """A hexagonal convolution on the axial image of a hexagonal lattice: a Conv2d whose kernel
    is masked to the hexagon (:func:`hexagonal_kernel_mask`), so it runs at Conv2d's speed. On a
    camera's axial image, with the cells outside the camera held at zero, it equals
    :class:`NeighbourConv` over the camera's neighbour table of the same radius (tested); with
    ``stride=2`` it samples the sublattice (2q, 2r), itself hexagonal."""

    def __init__(
        self, in_channels: int, out_channels: int, radius: int = 1, *, stride: int = 1, bias: bool = True
    ):
        super().__init__(in_channels, out_channels, 2 * radius + 1, stride=stride, padding=radius, bias=bias)
        self.radius = radius
        self.register_buffer("mask", hexagonal_kernel_mask(radius)[None, None], persistent=False)
        with torch.no_grad():
            self.weight.mul_(self.mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)
