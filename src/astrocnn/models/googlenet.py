"""GoogLeNet, Inception v1 (Szegedy et al. 2014, "Going deeper with convolutions").

Each Inception block runs four branches in parallel on the same input and concatenates them:
1 x 1; 1 x 1 -> 3 x 3; 1 x 1 -> 5 x 5; 3 x 3 max pooling -> 1 x 1. The 1 x 1 "reductions" cut
the depth before the expensive kernels ("network in network"). Convolutions carry batch norm
(eps 1e-3) as in torchvision's reference implementation.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial

from torch import nn

from astrocnn.layers import dims
from astrocnn.layers.blocks import Activation, Concat, ConvNormAct, scaled
from astrocnn.layers.dims import Norm
from astrocnn.models.base import Network
from astrocnn.models.heads import dense_head

#: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj) per block: the paper's table 1.
INCEPTION_V1_BLOCKS: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
#: Max pooling before these blocks (kernel, stride), after the stem's own two.
_POOL_BEFORE = {"4a": (3, 2), "5a": (2, 2)}
#: Auxiliary classifiers sit on the outputs of these blocks.
_AUX_AFTER = ("4a", "4d")


def inception_block(
    spatial_dims: int, in_channels: int, widths: tuple[int, ...], *, large_kernel: int, conv
) -> Concat:
    c1, c3r, c3, c5r, c5, cp = widths
    return Concat(
        b1x1=conv(in_channels, c1, 1),
        b3x3=nn.Sequential(conv(in_channels, c3r, 1), conv(c3r, c3, 3, padding=1)),
        b5x5=nn.Sequential(conv(in_channels, c5r, 1), conv(c5r, c5, large_kernel, padding=large_kernel // 2)),
        pool=nn.Sequential(
            dims.max_pool(spatial_dims)(3, stride=1, padding=1, ceil_mode=True), conv(in_channels, cp, 1)
        ),
    )


def inception_out_channels(widths: tuple[int, ...]) -> int:
    c1, _, c3, _, c5, cp = widths
    return c1 + c3 + c5 + cp


class GoogLeNet(Network):
    """GoogLeNet. ``large_kernel`` is the paper's 5; torchvision's reference uses 3 there (a known
    slip kept for its weights), and with ``large_kernel=3`` the parameter count is torchvision's.
    ``aux_classifiers`` adds the two auxiliary heads, used by :meth:`forward_with_aux`."""

    def __init__(
        self,
        *,
        spatial_dims: int,
        in_channels: int,
        num_outputs: int,
        norm: Norm = Norm.BATCH,
        act: Activation = nn.ReLU,
        width: float = 1.0,
        small_input: bool = False,
        aux_classifiers: bool = False,
        large_kernel: int = 5,
        dropout: float = 0.4,
    ):
        super().__init__(
            "googlenet", spatial_dims=spatial_dims, in_channels=in_channels, num_outputs=num_outputs
        )
        conv = partial(ConvNormAct, spatial_dims, norm=norm, act=act, norm_eps=1e-3)
        pool = partial(dims.max_pool(spatial_dims), ceil_mode=True)
        c64, c192 = scaled(64, width), scaled(192, width)
        if small_input:
            stem = OrderedDict(
                conv1=conv(in_channels, c64, 3, padding=1),
                conv2=conv(c64, c64, 1),
                conv3=conv(c64, c192, 3, padding=1),
            )
        else:
            stem = OrderedDict(
                conv1=conv(in_channels, c64, 7, stride=2, padding=3),
                pool1=pool(3, 2),
                conv2=conv(c64, c64, 1),
                conv3=conv(c64, c192, 3, padding=1),
                pool2=pool(3, 2),
            )
        stages = OrderedDict(stem=nn.Sequential(stem))
        c_in = c192
        for name, widths in INCEPTION_V1_BLOCKS.items():
            widths = tuple(scaled(c, width) for c in widths)
            if name in _POOL_BEFORE:
                stages[f"pool{name[0]}"] = pool(*_POOL_BEFORE[name])
            stages[f"inception{name}"] = inception_block(
                spatial_dims, c_in, widths, large_kernel=large_kernel, conv=conv
            )
            c_in = inception_out_channels(widths)
            if aux_classifiers and name in _AUX_AFTER:
                self.aux_heads[f"inception{name}"] = self._aux_head(
                    spatial_dims, c_in, num_outputs, conv, width, act
                )
        self.features = nn.Sequential(stages)
        self.head = dense_head(spatial_dims, c_in, num_outputs, dropout=dropout)

    @staticmethod
    def _aux_head(spatial_dims, channels, num_outputs, conv, width, act) -> nn.Sequential:
        """Pooling to 4 per axis, a 1 x 1 convolution to 128, dense 1024, dropout 0.7 (paper, sec. 5)."""
        c128 = scaled(128, width)
        return nn.Sequential(
            OrderedDict(
                pool=dims.adaptive_avg_pool(spatial_dims)(4),
                conv=conv(channels, c128, 1),
                head=nn.Sequential(
                    nn.Flatten(),
                    nn.Linear(c128 * 4**spatial_dims, scaled(1024, width)),
                    act(),
                    nn.Dropout(0.7),
                    nn.Linear(scaled(1024, width), num_outputs),
                ),
            )
        )
