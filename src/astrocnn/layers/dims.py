"""The one place that decides dimensionality.

Everything else in astrocnn takes ``spatial_dims`` (1, 2 or 3) and asks this module for its
convolution, pooling and normalisation layers; no other module names ``nn.Conv2d``.
"""

from __future__ import annotations

from enum import StrEnum

from torch import nn

from astrocnn.errors import OptionError

SPATIAL_DIMS = (1, 2, 3)

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_CONV_TRANSPOSE = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_MAX_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
_AVG_POOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}
_ADAPTIVE_AVG_POOL = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}
_BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_INSTANCE_NORM = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}


class Norm(StrEnum):
    """Normalisation after a convolution. ``NONE`` gives the plain networks (e.g. the lecture's
    ResNet variant (a)); convolutions then carry a bias."""

    BATCH = "batch"
    INSTANCE = "instance"
    GROUP = "group"
    NONE = "none"


def check_spatial_dims(spatial_dims: int) -> int:
    if spatial_dims not in SPATIAL_DIMS:
        raise OptionError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims!r}")
    return spatial_dims


def conv(spatial_dims: int) -> type[nn.Module]:
    return _CONV[check_spatial_dims(spatial_dims)]


def conv_transpose(spatial_dims: int) -> type[nn.Module]:
    return _CONV_TRANSPOSE[check_spatial_dims(spatial_dims)]


def max_pool(spatial_dims: int) -> type[nn.Module]:
    return _MAX_POOL[check_spatial_dims(spatial_dims)]


def avg_pool(spatial_dims: int) -> type[nn.Module]:
    return _AVG_POOL[check_spatial_dims(spatial_dims)]


def adaptive_avg_pool(spatial_dims: int) -> type[nn.Module]:
    return _ADAPTIVE_AVG_POOL[check_spatial_dims(spatial_dims)]


def norm_layer(norm: Norm | str, spatial_dims: int, channels: int, *, eps: float = 1e-5) -> nn.Module | None:
    """The normalisation layer for ``channels`` feature maps, or ``None`` for ``Norm.NONE``.

    Group norm uses 32 groups (Wu and He 2018) or fewer when the channels do not divide."""
    norm = Norm(norm)
    check_spatial_dims(spatial_dims)
    if norm is Norm.BATCH:
        return _BATCH_NORM[spatial_dims](channels, eps=eps)
    if norm is Norm.INSTANCE:
        return _INSTANCE_NORM[spatial_dims](channels, eps=eps, affine=True)
    if norm is Norm.GROUP:
        groups = next(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels, eps=eps)
    return None


def axis_tuple(value: int, axis: int, spatial_dims: int, *, fill: int) -> tuple[int, ...]:
    """``value`` along ``axis`` and ``fill`` along the others: the kernel of an n x 1 convolution."""
    return tuple(value if i == axis else fill for i in range(spatial_dims))
