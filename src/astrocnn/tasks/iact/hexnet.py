"""``hexnet``: a residual network that convolves a hexagonal camera natively.

It takes what the Cherenkov tasks feed every network, the camera in axial addressing (one grid
cell per pixel, ``mapping=axial``), and convolves it with hexagonal kernels
(:class:`astrocnn.layers.hexconv.HexConv2d`: a 3 x 3 kernel without the two corners that are not
neighbours on the hexagonal lattice), so that every weight means one of the lattice's
directions and none is spent across the sheared grid's false diagonal. The cells outside the
camera are set to zero after every layer, so each convolution equals the pixel-neighbour-table
convolution :class:`~astrocnn.layers.hexconv.NeighbourConv` of the camera (tested), at Conv2d's
speed. Residual blocks as in ResNet (two convolutions, batch norm, ReLU, an identity or strided
1x1 shortcut); each stage after the first halves the grid with stride 2, which keeps a
hexagonal lattice (the points (2q, 2r)). The head takes the mean and the maximum over the
camera's cells.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from astrocnn.errors import OptionError, ShapeError
from astrocnn.layers.hexconv import HexConv2d
from astrocnn.models.registry import register_model
from astrocnn.tasks.iact.camera import CAMERAS, get_camera


class _Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, radius: int, stride: int):
        super().__init__()
        self.conv1 = HexConv2d(c_in, c_out, radius, stride=stride, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = HexConv2d(c_out, c_out, radius, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = (
            nn.Identity()
            if c_in == c_out and stride == 1
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x))) * mask
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x)) * mask


class HexNet(nn.Module):
    def __init__(
        self,
        *,
        spatial_dims: int,
        in_channels: int,
        num_outputs: int,
        camera: str = "taiga",
        channels: Sequence[int] = (16, 32, 64, 128),
        blocks: int = 2,
        radius: int = 1,
    ):
        super().__init__()
        if spatial_dims != 2:
            raise OptionError(f"hexnet takes a camera's 2-D axial image, not {spatial_dims}-D data")
        if camera not in CAMERAS:
            raise OptionError(f"hexnet's camera must be one of {', '.join(CAMERAS)}, not {camera!r}")
        cam = get_camera(camera)
        if cam.pixel_shape != "hexagon":
            raise OptionError(f"hexnet needs a hexagonal camera; {camera} has square pixels")
        self.name, self.camera = "hexnet", camera
        self.spatial_dims, self.in_channels, self.num_outputs = 2, in_channels, num_outputs
        self.input_size = cam.axial_shape
        camera_cells = torch.from_numpy(cam.to_axial(np.ones(cam.n_pixels, np.float32)))[None, None]
        self.register_buffer("camera_cells", camera_cells, persistent=False)
        self.stem = HexConv2d(in_channels, channels[0], radius, bias=False)
        self.stem_bn = nn.BatchNorm2d(channels[0])
        self.blocks = nn.ModuleList()
        c = channels[0]
        for i, width in enumerate(channels):
            for j in range(blocks):
                self.blocks.append(_Block(c, width, radius, stride=2 if i > 0 and j == 0 else 1))
                c = width
        self.head = nn.Linear(2 * c, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, rows, columns) axial
        if x.ndim != 4 or tuple(x.shape[2:]) != self.input_size or x.shape[1] != self.in_channels:
            raise ShapeError(
                f"hexnet ({self.camera} camera) takes axial images (batch, {self.in_channels}, "
                f"{self.input_size[0]}, {self.input_size[1]}), got {tuple(x.shape)}; use "
                "--task-option mapping=axial with the same camera"
            )
        mask = self.camera_cells
        h = torch.relu(self.stem_bn(self.stem(x * mask))) * mask
        for block in self.blocks:
            if block.conv1.stride[0] == 2:
                mask = mask[:, :, ::2, ::2]
            h = block(h, mask)
        cells = mask.sum()
        mean = h.sum(dim=(2, 3)) / cells
        peak = h.masked_fill(mask == 0, float("-inf")).amax(dim=(2, 3))
        return self.head(torch.cat([mean, peak], dim=1))


register_model(
    "hexnet",
    HexNet,
    "residual network with hexagonal kernels on a hexagonal camera's axial image (iact tasks)",
    family="iact",
)
