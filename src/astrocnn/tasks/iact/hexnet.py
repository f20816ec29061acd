"""``hexnet``: a residual network that convolves a hexagonal camera natively, pixel by pixel.

It takes what the Cherenkov tasks feed every network, the camera in axial addressing (one grid
cell per pixel, ``mapping=axial``), reads the camera's pixels back out of the grid by index, and
from then on works on the pixel vector (B, C, n_pixels) with
:class:`astrocnn.layers.hexconv.NeighbourConv` over the camera's neighbour table: a hexagonal
kernel of radius 1 is the pixel and its six neighbours, so no weight is spent on the empty cells
of the sheared grid, and every direction on the camera is one of the lattice's. Residual blocks
as in ResNet (two convolutions, batch norm, ReLU, an identity or 1x1 shortcut), no pooling
(pixels are few: 560 for TAIGA), then the mean and the maximum over the pixels into a linear
head.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from astrocnn.errors import OptionError, ShapeError
from astrocnn.layers.hexconv import NeighbourConv
from astrocnn.models.registry import register_model
from astrocnn.tasks.iact.camera import CAMERAS, get_camera


class _Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, table):
        super().__init__()
        self.conv1 = NeighbourConv(c_in, c_out, table, bias=False)
        self.bn1 = nn.BatchNorm1d(c_out)
        self.conv2 = NeighbourConv(c_out, c_out, table, bias=False)
        self.bn2 = nn.BatchNorm1d(c_out)
        self.shortcut = (
            nn.Identity()
            if c_in == c_out
            else nn.Sequential(nn.Conv1d(c_in, c_out, 1, bias=False), nn.BatchNorm1d(c_out))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class HexNet(nn.Module):
    def __init__(
        self,
        *,
        spatial_dims: int,
        in_channels: int,
        num_outputs: int,
        camera: str = "taiga",
        channels: Sequence[int] = (16, 32, 64),
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
        rows, cols = cam._axial_index()
        self.register_buffer("pixels", torch.as_tensor(rows * cam.axial_shape[1] + cols), persistent=False)
        table = cam.neighbour_table(radius)
        layers: list[nn.Module] = [
            NeighbourConv(in_channels, channels[0], table, bias=False),
            nn.BatchNorm1d(channels[0]),
            nn.ReLU(),
        ]
        c = channels[0]
        for width in channels:
            for _ in range(blocks):
                layers.append(_Block(c, width, table))
                c = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(2 * c, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, rows, columns) axial
        if x.ndim != 4 or tuple(x.shape[2:]) != self.input_size or x.shape[1] != self.in_channels:
            raise ShapeError(
                f"hexnet ({self.camera} camera) takes axial images (batch, {self.in_channels}, "
                f"{self.input_size[0]}, {self.input_size[1]}), got {tuple(x.shape)}; use "
                "--task-option mapping=axial with the same camera"
            )
        h = self.features(x.flatten(2)[:, :, self.pixels])  # (B, C, n_pixels)
        return self.head(torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1))


register_model("hexnet", HexNet, "residual network over a hexagonal camera's pixels (NeighbourConv)")
