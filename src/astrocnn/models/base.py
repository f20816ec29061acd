"""The common frame of every classifier/regressor backbone: named stages, a head, input checks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from astrocnn.errors import ShapeError
from astrocnn.layers.dims import check_spatial_dims
from astrocnn.layers.shapes import Size, SpatialCollapse, format_size, module_output_size, smallest_input


class Network(nn.Module):
    """A network as ``features`` (an ``nn.Sequential`` of named stages) followed by ``head``.

    Subclasses build ``self.features`` and ``self.head`` and may hang auxiliary classifiers on a
    stage through ``self.aux_heads`` (stage name -> head). Before the first forward pass with a
    new input size, the stages are walked with the shape arithmetic so that an input too small
    for the network fails with a message naming the model, the collapsing stage and the
    smallest valid input, not a stack trace from inside torch.
    """

    features: nn.Sequential
    head: nn.Module

    def __init__(
        self,
        name: str,
        *,
        spatial_dims: int,
        in_channels: int,
        num_outputs: int,
        input_size: Sequence[int] | None = None,
    ):
        super().__init__()
        self.name = name
        self.spatial_dims = check_spatial_dims(spatial_dims)
        self.in_channels = in_channels
        self.num_outputs = num_outputs
        self.input_size: Size | None = None if input_size is None else tuple(input_size)
        self.aux_heads = nn.ModuleDict()

    PADDING_MODES = ("zeros", "circular", "reflect", "replicate")

    def set_padding_mode(self, mode: str) -> None:
        """How every padded convolution fills its border: "circular" for periodic data (lattice
        models with periodic boundaries), where zeros would make the border look different."""
        if mode not in self.PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {', '.join(self.PADDING_MODES)}, got {mode!r}")
        for m in self.modules():
            if isinstance(m, nn.modules.conv._ConvNd) and any(p > 0 for p in m.padding):
                m.padding_mode = mode  # torch pads by padding_mode at each forward pass

    # ---- forward -------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, *S) -> (B, num_outputs)
        self.check_input(x.shape)
        return self.head(self.features(x))

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Main output and the auxiliary classifiers' outputs (Szegedy et al. 2015), for training."""
        self.check_input(x.shape)
        aux = []
        for name, stage in self.features.named_children():
            x = stage(x)
            if name in self.aux_heads:
                aux.append(self.aux_heads[name](x))
        return self.head(x), aux

    # ---- shapes --------------------------------------------------------------------------------
    def stage_sizes(self, size: Size) -> list[tuple[str, Size]]:
        """Spatial size after each stage (and each auxiliary head) for an input of ``size``.

        Raises :class:`SpatialCollapse` (with ``.stage`` set) where a stage would produce an
        empty axis."""
        sizes = []
        for name, stage in self.features.named_children():
            size = _walk(name, stage, size)
            if name in self.aux_heads:
                _walk(f"the auxiliary classifier after {name}", self.aux_heads[name], size)
            sizes.append((name, size))
        return sizes

    def min_input_size(self) -> Size | None:
        """The smallest spatial input per axis the stages accept (``None`` if no size fits)."""
        if "_min_input_size" not in self.__dict__:

            def valid(size: Size) -> bool:
                try:
                    self.stage_sizes(size)
                except SpatialCollapse:
                    return False
                return True

            self.__dict__["_min_input_size"] = smallest_input(valid, self.spatial_dims)
        return self.__dict__["_min_input_size"]

    def check_input(self, shape: Sequence[int]) -> None:
        """Raise :class:`ShapeError` unless ``shape`` (B, C, *S) fits this network."""
        shape = tuple(shape)
        check_rank_and_channels(self, shape)
        _check_spatial(self, shape[2:])


_AXES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def check_rank_and_channels(model: nn.Module, shape: Size) -> None:
    expected = ["B", str(model.in_channels), *_AXES[model.spatial_dims]]
    if len(shape) != 2 + model.spatial_dims or shape[1] != model.in_channels:
        raise ShapeError(f"{model.name} expects input of shape ({', '.join(expected)}), got {tuple(shape)}")


def _walk(stage_name: str, module: nn.Module, size: Size) -> Size:
    try:
        return module_output_size(module, size)
    except SpatialCollapse as collapse:
        collapse.stage = stage_name
        raise


def _check_spatial(model: Network, size: Size) -> None:
    checked = model.__dict__.setdefault("_checked_sizes", set())
    if size in checked:
        return
    if model.input_size is not None and size != model.input_size:
        raise ShapeError(
            f"{model.name} was built for {format_size(model.input_size)} inputs, got {format_size(size)}"
        )
    try:
        model.stage_sizes(size)
    except SpatialCollapse as collapse:
        smallest = model.min_input_size()
        hint = f"the smallest input is {format_size(smallest)}" if smallest else "no input size fits"
        raise ShapeError(
            f"input {model.in_channels}x{format_size(size)} is too small for {model.name}: "
            f"{collapse.stage} {collapse.describe()}; {hint}"
        ) from None
    checked.add(size)
