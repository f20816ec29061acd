"""Inception v3 (Szegedy et al. 2015, "Rethinking the Inception architecture").

The v1 block's large kernels are factorised: a 5 x 5 becomes two 3 x 3, a 7 x 7 becomes 1 x 7
then 7 x 1, and the last blocks split a 3 x 3 into parallel 1 x 3 and 3 x 1. In N-d the
factorisation runs one n-long convolution per axis (see :func:`factorised_conv`). Block layout
and widths follow torchvision's reference implementation, which pins the parameter count.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial

from torch import nn

from astrocnn.layers import dims
from astrocnn.layers.blocks import Activation, Concat, ConvNormAct, axis_split_conv, factorised_conv, scaled
from astrocnn.layers.dims import Norm
from astrocnn.models.base import Network
from astrocnn.models.heads import dense_head


class _Builder:
    """Blocks A-E for one spatial_dims, norm, activation and width."""

    def __init__(self, spatial_dims: int, norm: Norm, act: Activation, width: float):
        self.d = spatial_dims
        self.w = partial(scaled, width=width)
        self.conv = partial(ConvNormAct, spatial_dims, norm=norm, act=act, norm_eps=1e-3)
        self.options = dict(norm=norm, act=act, norm_eps=1e-3)

    def avg_pool_proj(self, c_in: int, c_out: int) -> nn.Sequential:
        return nn.Sequential(dims.avg_pool(self.d)(3, stride=1, padding=1), self.conv(c_in, c_out, 1))

    def block_a(self, c_in: int, pool_features: int) -> tuple[Concat, int]:
        w, conv = self.w, self.conv
        block = Concat(
            b1x1=conv(c_in, w(64), 1),
            b5x5=nn.Sequential(conv(c_in, w(48), 1), conv(w(48), w(64), 5, padding=2)),
            b3x3dbl=nn.Sequential(
                conv(c_in, w(64), 1), conv(w(64), w(96), 3, padding=1), conv(w(96), w(96), 3, padding=1)
            ),
            pool=self.avg_pool_proj(c_in, w(pool_features)),
        )
        return block, w(64) + w(64) + w(96) + w(pool_features)

    def block_b(self, c_in: int) -> tuple[Concat, int]:
        """Grid reduction 35 -> 17."""
        w, conv = self.w, self.conv
        block = Concat(
            b3x3=conv(c_in, w(384), 3, stride=2),
            b3x3dbl=nn.Sequential(
                conv(c_in, w(64), 1), conv(w(64), w(96), 3, padding=1), conv(w(96), w(96), 3, stride=2)
            ),
            pool=dims.max_pool(self.d)(3, stride=2),
        )
        return block, w(384) + w(96) + c_in

    def block_c(self, c_in: int, c7: int) -> tuple[Concat, int]:
        """7 x 7 convolutions factorised into 1 x 7 and 7 x 1."""
        w, conv, d, opts = self.w, self.conv, self.d, self.options
        c7 = w(c7)
        block = Concat(
            b1x1=conv(c_in, w(192), 1),
            b7x7=nn.Sequential(conv(c_in, c7, 1), factorised_conv(d, c7, w(192), 7, mid_channels=c7, **opts)),
            b7x7dbl=nn.Sequential(
                conv(c_in, c7, 1),
                factorised_conv(d, c7, c7, 7, first_axis_last=False, **opts),
                factorised_conv(d, c7, w(192), 7, mid_channels=c7, first_axis_last=False, **opts),
            ),
            pool=self.avg_pool_proj(c_in, w(192)),
        )
        return block, 4 * w(192)

    def block_d(self, c_in: int) -> tuple[Concat, int]:
        """Grid reduction 17 -> 8."""
        w, conv, d, opts = self.w, self.conv, self.d, self.options
        block = Concat(
            b3x3=nn.Sequential(conv(c_in, w(192), 1), conv(w(192), w(320), 3, stride=2)),
            b7x7x3=nn.Sequential(
                conv(c_in, w(192), 1),
                factorised_conv(d, w(192), w(192), 7, **opts),
                conv(w(192), w(192), 3, stride=2),
            ),
            pool=dims.max_pool(d)(3, stride=2),
        )
        return block, w(320) + w(192) + c_in

    def block_e(self, c_in: int) -> tuple[Concat, int]:
        """3 x 3 convolutions split into parallel 1 x 3 and 3 x 1 (expanded filter banks)."""
        w, conv, d, opts = self.w, self.conv, self.d, self.options
        block = Concat(
            b1x1=conv(c_in, w(320), 1),
            b3x3=nn.Sequential(conv(c_in, w(384), 1), axis_split_conv(d, w(384), w(384), 3, **opts)),
            b3x3dbl=nn.Sequential(
                conv(c_in, w(448), 1),
                conv(w(448), w(384), 3, padding=1),
                axis_split_conv(d, w(384), w(384), 3, **opts),
            ),
            pool=self.avg_pool_proj(c_in, w(192)),
        )
        return block, w(320) + 2 * d * w(384) + w(192)


class InceptionV3(Network):
    """Inception v3. The canonical input is 3 x 299 x 299; ``small_input`` keeps the stem at
    stride 1 without pooling, so inputs from 7 pixels fit. ``aux_classifiers`` adds the
    auxiliary head on mixed6e (included in torchvision's reference parameter count)."""

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
        dropout: float = 0.5,
    ):
        super().__init__(
            "inception_v3", spatial_dims=spatial_dims, in_channels=in_channels, num_outputs=num_outputs
        )
        b = _Builder(spatial_dims, norm, act, width)
        w, conv = b.w, b.conv
        pool = dims.max_pool(spatial_dims)
        if small_input:
            stem = OrderedDict(
                conv1a=conv(in_channels, w(32), 3, padding=1),
                conv2a=conv(w(32), w(32), 3, padding=1),
                conv2b=conv(w(32), w(64), 3, padding=1),
                conv3b=conv(w(64), w(80), 1),
                conv4a=conv(w(80), w(192), 3, padding=1),
            )
        else:
            stem = OrderedDict(
                conv1a=conv(in_channels, w(32), 3, stride=2),
                conv2a=conv(w(32), w(32), 3),
                conv2b=conv(w(32), w(64), 3, padding=1),
                pool1=pool(3, stride=2),
                conv3b=conv(w(64), w(80), 1),
                conv4a=conv(w(80), w(192), 3),
                pool2=pool(3, stride=2),
            )
        stages = OrderedDict(stem=nn.Sequential(stem))
        c = w(192)
        plan = [
            ("mixed5b", b.block_a, (32,)), ("mixed5c", b.block_a, (64,)), ("mixed5d", b.block_a, (64,)),
            ("mixed6a", b.block_b, ()),
            ("mixed6b", b.block_c, (128,)), ("mixed6c", b.block_c, (160,)), ("mixed6d", b.block_c, (160,)),
            ("mixed6e", b.block_c, (192,)),
            ("mixed7a", b.block_d, ()), ("mixed7b", b.block_e, ()), ("mixed7c", b.block_e, ()),
        ]  # fmt: skip
        for name, make, args in plan:
            stages[name], c_out = make(c, *args)
            if aux_classifiers and name == "mixed6e":
                self.aux_heads[name] = self._aux_head(b, c_out, num_outputs, small_input)
            c = c_out
        self.features = nn.Sequential(stages)
        self.head = dense_head(spatial_dims, c, num_outputs, dropout=dropout)

    @staticmethod
    def _aux_head(b: _Builder, channels: int, num_outputs: int, small_input: bool) -> nn.Sequential:
        pool = dims.adaptive_avg_pool(b.d)(5) if small_input else dims.avg_pool(b.d)(5, stride=3)
        return nn.Sequential(
            OrderedDict(
                pool=pool,
                conv0=b.conv(channels, b.w(128), 1),
                conv1=b.conv(b.w(128), b.w(768), 5),
                head=dense_head(b.d, b.w(768), num_outputs),
            )
        )
