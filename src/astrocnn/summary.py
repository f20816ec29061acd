"""Layer-by-layer account of a network: output shapes and parameter counts, and the count of a
fully connected network as wide as its feature maps (the lecture's argument, in numbers)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from astrocnn.layers.blocks import ConvNormAct
from astrocnn.models.mlp import mlp_parameter_count

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


@dataclass(frozen=True)
class LayerRow:
    name: str
    kind: str
    output_shape: tuple[int, ...] | None  # (C, *S) without the batch axis; None if not run
    params: int


@dataclass(frozen=True)
class ModelSummary:
    model: str
    input_shape: tuple[int, ...]
    rows: list[LayerRow]
    total_params: int

    def mlp_equivalent_params(self) -> int:
        """Parameters of a fully connected network with one hidden layer per parametrised row,
        each as wide as that row's flattened output."""
        widths = [math.prod(self.input_shape)]
        widths += [math.prod(r.output_shape) for r in self.rows if r.params and r.output_shape is not None]
        return mlp_parameter_count(widths)


def _units(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    """Rows of the table: containers are opened, a block or a conv-norm-act unit is one row."""
    for name, child in module.named_children():
        path = f"{prefix}{name}"
        if isinstance(child, _CONTAINERS) and not isinstance(child, ConvNormAct):
            yield from _units(child, f"{path}.")
        else:
            yield path, child


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def summarize(model: nn.Module, input_shape: Sequence[int]) -> ModelSummary:
    """Run one (meta-device when possible) forward pass of a (1, *input_shape) zero tensor in
    eval mode and record every row's output shape."""
    input_shape = tuple(input_shape)
    units = [(name.removeprefix("features."), m) for name, m in _units(model)]
    shapes: dict[int, tuple[int, ...]] = {}
    hooks = [
        m.register_forward_hook(lambda mod, args, out: shapes.__setitem__(id(mod), tuple(out.shape[1:])))
        for _, m in units
    ]
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), device=device))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    rows = [LayerRow(name, type(m).__name__, shapes.get(id(m)), _count(m)) for name, m in units]
    return ModelSummary(getattr(model, "name", type(model).__name__), input_shape, rows, _count(model))
