"""AlexNet and VGG: plain stacks of convolutions and max pooling, then a large dense head.

VGG (Simonyan and Zisserman 2014) replaces large kernels with stacks of 3 x 3 convolutions; its
variants differ only in how many convolutions each of the five blocks holds, so they are a
table. AlexNet follows torchvision's single-GPU version (Krizhevsky 2014, "One weird trick").
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import nn

from astrocnn.layers import dims
from astrocnn.layers.blocks import Activation, ConvNormAct, scaled
from astrocnn.layers.dims import Norm
from astrocnn.models.base import Network
from astrocnn.models.heads import dense_head

#: Convolution widths of each block; every block ends with 2 x 2 max pooling.
VGG_CONFIGS: dict[str, tuple[tuple[int, ...], ...]] = {
    "vgg11": ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    "vgg13": ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
    "vgg16": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    "vgg19": ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4),
}


class VGG(Network):
    """VGG from a block table. ``small_input`` drops the last pooling and pools the head globally,
    so 16-pixel inputs fit; ``norm=Norm.BATCH`` gives the ``_bn`` variants."""

    def __init__(
        self,
        *,
        name: str,
        blocks: Sequence[Sequence[int]],
        spatial_dims: int,
        in_channels: int,
        num_outputs: int,
        norm: Norm = Norm.NONE,
        act: Activation = nn.ReLU,
        width: float = 1.0,
        small_input: bool = False,
        hidden: int = 4096,
        dropout: float = 0.5,
    ):
        super().__init__(name, spatial_dims=spatial_dims, in_channels=in_channels, num_outputs=num_outputs)
        stages = OrderedDict()
        c_in = in_channels
        for b, block in enumerate(blocks, start=1):
            layers = OrderedDict()
            for i, c in enumerate(block, start=1):
                c_out = scaled(c, width)
                # torchvision keeps the convolution bias even before batch norm; so do we, for
                # the reference parameter counts.
                layers[f"conv{i}"] = ConvNormAct(
                    spatial_dims, c_in, c_out, 3, padding=1, norm=norm, act=act, bias=True
                )
                c_in = c_out
            if not (small_input and b == len(blocks)):
                layers["pool"] = dims.max_pool(spatial_dims)(2)
            stages[f"block{b}"] = nn.Sequential(layers)
        self.features = nn.Sequential(stages)
        self.head = dense_head(
            spatial_dims,
            c_in,
            num_outputs,
            pool_size=1 if small_input else 7,
            hidden=(scaled(hidden, width),) * 2,
            dropout=dropout,
            act=act,
        )


class AlexNet(Network):
    """Five convolutions and three dense layers. ``small_input`` replaces the 11 x 11 stride-4
    stem with a 3 x 3 stride-1 one and pools the head globally."""

    def __init__(
        self,
        *,
        spatial_dims: int,
        in_channels: int,
        num_outputs: int,
        norm: Norm = Norm.NONE,
        act: Activation = nn.ReLU,
        width: float = 1.0,
        small_input: bool = False,
        hidden: int = 4096,
        dropout: float = 0.5,
    ):
        super().__init__(
            "alexnet", spatial_dims=spatial_dims, in_channels=in_channels, num_outputs=num_outputs
        )
        c1, c2, c3, c4, c5 = (scaled(c, width) for c in (64, 192, 384, 256, 256))
        pool = dims.max_pool(spatial_dims)

        def conv(c_in: int, c_out: int, k: int, **kw) -> ConvNormAct:
            return ConvNormAct(spatial_dims, c_in, c_out, k, norm=norm, act=act, bias=True, **kw)

        stem = (
            conv(in_channels, c1, 3, padding=1)
            if small_input
            else conv(in_channels, c1, 11, stride=4, padding=2)
        )
        self.features = nn.Sequential(
            OrderedDict(
                conv1=stem,
                pool1=pool(3, 2),
                conv2=conv(c1, c2, 5, padding=2),
                pool2=pool(3, 2),
                conv3=conv(c2, c3, 3, padding=1),
                conv4=conv(c3, c4, 3, padding=1),
                conv5=conv(c4, c5, 3, padding=1),
                pool5=pool(3, 2),
            )
        )
        self.head = dense_head(
            spatial_dims,
            c5,
            num_outputs,
            pool_size=1 if small_input else 6,
            hidden=(scaled(hidden, width),) * 2,
            dropout=dropout,
            act=act,
        )
