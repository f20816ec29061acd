"""ResNet (He et al. 2015) and its pre-activation variant (He et al. 2016, "Identity mappings").

A residual block learns the difference to its input: y = F(x) + x, so dy/dx = dF/dx + I and the
gradient reaches early layers undamped. With ``norm=Norm.NONE`` the blocks are the lecture's
variant (a), conv-ReLU-conv plus the shortcut; with batch norm they are variant (b).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from astrocnn.layers import dims
from astrocnn.layers.blocks import Activation, ConvNormAct, inplace_activation, scaled
from astrocnn.layers.dims import Norm
from astrocnn.layers.shapes import Size, module_output_size
from astrocnn.models.base import Network
from astrocnn.models.heads import dense_head


class ResidualBlock(nn.Module):
    """y = F(h) + shortcut, with h = x (post-activation) or h = act(norm(x)) (pre-activation).

    In the pre-activation form the projection shortcut, where there is one, also reads h; the
    identity shortcut always carries x itself. ``inplace_add`` adds the shortcut into the
    branch's output in place, which is safe when the branch ends in a convolution or a
    normalisation (their backward passes do not read their outputs), as :func:`residual_block`'s
    do; autograd refuses it otherwise rather than computing wrong gradients."""

    def __init__(
        self,
        branch: nn.Sequential,
        shortcut: nn.Module | None = None,
        *,
        pre_act: nn.Module | None = None,
        post_act: nn.Module | None = None,
        inplace_add: bool = False,
    ):
        super().__init__()
        self.pre_act = pre_act
        self.branch = branch
        self.shortcut = shortcut
        self.post_act = post_act
        self.inplace_add = inplace_add

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, *S) -> (B, C', *S')
        h = x if self.pre_act is None else self.pre_act(x)
        skip = x if self.shortcut is None else self.shortcut(h)
        y = self.branch(h)
        y = y.add_(skip) if self.inplace_add else y + skip
        return y if self.post_act is None else self.post_act(y)

    def output_size(self, size: Size) -> Size:
        return module_output_size(self.branch, size)

    @torch.no_grad()
    def zero_init_(self) -> None:
        """Zero the branch's last scale (its last norm, or its last convolution where no norm
        follows), so the block starts as the identity (Goyal et al. 2017)."""
        weighted = (nn.modules.conv._ConvNd, nn.modules.batchnorm._NormBase, nn.GroupNorm)
        last = next(m for m in reversed(list(self.branch.modules())) if isinstance(m, weighted))
        last.weight.zero_()
        if last.bias is not None:
            last.bias.zero_()


def _norm_act(spatial_dims: int, channels: int, norm: Norm, act: type[nn.Module]) -> nn.Sequential:
    norm_module = dims.norm_layer(norm, spatial_dims, channels)
    return nn.Sequential(*([norm_module] if norm_module is not None else []), act())


def residual_block(
    spatial_dims: int,
    in_channels: int,
    width: int,
    *,
    bottleneck: bool,
    stride: int = 1,
    norm: Norm = Norm.BATCH,
    act: Activation = nn.ReLU,
    preact: bool = False,
) -> ResidualBlock:
    """A basic block (two 3 x 3 convolutions, ``width`` channels out) or a bottleneck block
    (1 x 1 -> 3 x 3 -> 1 x 1, ``4 * width`` channels out, the stride on the 3 x 3 as in
    torchvision's "ResNet v1.5")."""
    out_channels = width * (4 if bottleneck else 1)
    kernels = (1, 3, 1) if bottleneck else (3, 3)
    widths = (width, width, out_channels) if bottleneck else (width, out_channels)
    strides = (1, stride, 1) if bottleneck else (stride, 1)
    layers: list[nn.Module] = []
    c_in = in_channels
    for i, (k, c, s) in enumerate(zip(kernels, widths, strides, strict=True)):
        last = i == len(kernels) - 1
        if preact:
            if i > 0:
                layers.extend(_norm_act(spatial_dims, c_in, norm, act))
            layers.append(
                dims.conv(spatial_dims)(c_in, c, k, stride=s, padding=k // 2, bias=norm is Norm.NONE)
            )
        else:
            layers.append(
                ConvNormAct(
                    spatial_dims, c_in, c, k, stride=s, padding=k // 2, norm=norm, act=None if last else act
                )
            )
        c_in = c
    shortcut = None
    if stride != 1 or in_channels != out_channels:
        shortcut = ConvNormAct(
            spatial_dims,
            in_channels,
            out_channels,
            1,
            stride=stride,
            norm=Norm.NONE if preact else norm,
            act=None,
            bias=False if preact else None,
        )
    return ResidualBlock(
        nn.Sequential(*layers),
        shortcut,
        pre_act=_norm_act(spatial_dims, in_channels, norm, act) if preact else None,
        # not pre_act: without a norm its activation would act on x, which the shortcut carries
        post_act=None if preact else inplace_activation(act),
        inplace_add=True,
    )


class ResNet(Network):
    """ResNet from a (block kind, blocks per stage) pair.

    ``padding_mode="circular"`` pads periodically (lattices with periodic boundaries).
    ``head_hidden`` inserts fully connected layers of those widths between the global pooling and
    the output layer; ``log_pool`` gives the head the logarithms of the pooled averages beside them
    (:class:`~astrocnn.models.heads.AvgLogPool`: targets that are the log of an image-wide sum,
    such as an energy from the total light). ``small_input`` replaces the 7 x 7 stride-2 stem and
    its max pooling with one 3 x 3 stride-1 convolution (as for CIFAR), so 1 x 32 x 32 lattices keep
    their resolution."""

    def __init__(
        self,
        *,
        name: str,
        bottleneck: bool,
        layers: Sequence[int],
        spatial_dims: int,
        in_channels: int,
        num_outputs: int,
        preact: bool = False,
        norm: Norm = Norm.BATCH,
        act: Activation = nn.ReLU,
        width: float = 1.0,
        small_input: bool = False,
        zero_init_residual: bool = False,
        dropout: float = 0.0,
        head_hidden: Sequence[int] = (),
        log_pool: bool = False,
        padding_mode: str = "zeros",
    ):
        super().__init__(name, spatial_dims=spatial_dims, in_channels=in_channels, num_outputs=num_outputs)
        stem_width = scaled(64, width)
        stem_act = None if preact else act  # pre-activation blocks normalise their own input
        stem_norm = Norm.NONE if preact else norm
        if small_input:
            stem = OrderedDict(
                conv=ConvNormAct(
                    spatial_dims, in_channels, stem_width, 3, padding=1, norm=stem_norm, act=stem_act
                )
            )
        else:
            stem = OrderedDict(
                conv=ConvNormAct(
                    spatial_dims,
                    in_channels,
                    stem_width,
                    7,
                    stride=2,
                    padding=3,
                    norm=stem_norm,
                    act=stem_act,
                ),
                pool=dims.max_pool(spatial_dims)(3, stride=2, padding=1),
            )
        stages = OrderedDict(stem=nn.Sequential(stem))
        c_in = stem_width
        for i, n_blocks in enumerate(layers):
            blocks = []
            for j in range(n_blocks):
                block = residual_block(
                    spatial_dims,
                    c_in,
                    scaled(64 * 2**i, width),
                    bottleneck=bottleneck,
                    stride=2 if (i > 0 and j == 0) else 1,
                    norm=norm,
                    act=act,
                    preact=preact,
                )
                c_in = scaled(64 * 2**i, width) * (4 if bottleneck else 1)
                blocks.append(block)
            stages[f"layer{i + 1}"] = nn.Sequential(*blocks)
        if preact:
            stages["final"] = _norm_act(spatial_dims, c_in, norm, act)
        self.features = nn.Sequential(stages)
        # ``head_hidden``: fully connected layers after the global pooling, for targets that are a
        # nonlinear function of image-wide averages (the Ising temperature of the mean energy)
        self.head = dense_head(
            spatial_dims,
            c_in,
            num_outputs,
            hidden=(head_hidden,) if isinstance(head_hidden, int) else tuple(head_hidden),
            dropout=dropout,
            act=act,
            log_pool=log_pool,
        )
        self._init_weights(zero_init_residual)
        self.set_padding_mode(padding_mode)

    def _init_weights(self, zero_init_residual: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.modules.conv._ConvNd):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, ResidualBlock):
                    m.zero_init_()


#: Blocks per stage (He et al. 2015, table 1).
RESNET_CONFIGS: dict[str, tuple[bool, tuple[int, ...]]] = {
    "resnet18": (False, (2, 2, 2, 2)),
    "resnet34": (False, (3, 4, 6, 3)),
    "resnet50": (True, (3, 4, 6, 3)),
    "resnet101": (True, (3, 4, 23, 3)),
    "resnet152": (True, (3, 8, 36, 3)),
}
