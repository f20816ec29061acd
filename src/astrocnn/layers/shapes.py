"""The lecture's shape arithmetic, and its use to check inputs before a network runs.

Output size of a convolution or pooling window along one axis (floor mode):

    out = floor((n + 2 p - d (k - 1) - 1) / s) + 1

so a 32-pixel axis and a 5-pixel kernel give 28, padding (k - 1) / 2 keeps the size, and a
stride s divides it by about s.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

Size = tuple[int, ...]


def conv_output_size(
    size: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    *,
    ceil_mode: bool = False,
) -> int:
    """Output length along one axis of a convolution or pooling window (PyTorch's convention).

    With ``ceil_mode`` the last window may hang over the edge, but it must start inside the
    input or the left padding (the rule PyTorch's pooling applies)."""
    if size < 0 or kernel_size < 1 or stride < 1 or padding < 0 or dilation < 1:
        raise ValueError(
            f"invalid window: size={size}, kernel_size={kernel_size}, stride={stride}, "
            f"padding={padding}, dilation={dilation}"
        )
    span = size + 2 * padding - dilation * (kernel_size - 1) - 1
    if not ceil_mode:
        return max(span // stride + 1, 0)
    out = (span + stride - 1) // stride + 1
    if out > 0 and (out - 1) * stride >= size + padding:
        out -= 1
    return max(out, 0)


def conv_transpose_output_size(
    size: int, kernel_size: int, stride: int = 1, padding: int = 0, output_padding: int = 0, dilation: int = 1
) -> int:
    """Output length along one axis of a transposed convolution."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1


class SpatialCollapse(Exception):
    """Raised inside the size walk when some layer's output has an axis shorter than 1 (or its
    input is one PyTorch cannot take)."""

    def __init__(self, size: Size, reason: str | None = None):
        super().__init__(size)
        self.size = size
        self.reason = reason

    def describe(self) -> str:
        return self.reason or f"would produce {format_size(self.size)}"


def _per_axis(value: int | Sequence[int], spatial_dims: int) -> Size:
    return tuple(value) if isinstance(value, Sequence) else (value,) * spatial_dims


def _window(module: nn.Module, size: Size) -> Size:
    dims = len(size)
    kernel = _per_axis(module.kernel_size, dims)
    stride = _per_axis(module.stride if module.stride is not None else module.kernel_size, dims)
    dilation = _per_axis(getattr(module, "dilation", 1), dims)
    ceil_mode = getattr(module, "ceil_mode", False)
    padding = module.padding
    if padding == "same":
        return size
    padding = _per_axis(0 if padding == "valid" else padding, dims)
    return tuple(
        conv_output_size(n, k, s, p, d, ceil_mode=ceil_mode)
        for n, k, s, p, d in zip(size, kernel, stride, padding, dilation, strict=True)
    )


def module_output_size(module: nn.Module, size: Size) -> Size:
    """Spatial size after ``module`` for an input of spatial size ``size``.

    Convolutions and pooling follow the formula; containers fold over their children; a block
    with parallel branches declares its own ``output_size(size)``. Layers that do not touch the
    spatial axes (activations, normalisation, dropout) keep the size. Raises
    :class:`SpatialCollapse` at the first layer whose output would have an empty axis."""
    if hasattr(module, "output_size") and callable(module.output_size):
        out = module.output_size(size)
    elif isinstance(module, nn.modules.conv._ConvTransposeNd):
        dims = len(size)
        out = tuple(
            conv_transpose_output_size(n, k, s, p, op, d)
            for n, k, s, p, op, d in zip(
                size,
                _per_axis(module.kernel_size, dims),
                _per_axis(module.stride, dims),
                _per_axis(module.padding, dims),
                _per_axis(module.output_padding, dims),
                _per_axis(module.dilation, dims),
                strict=True,
            )
        )
    elif isinstance(module, nn.AvgPool3d) and any(
        n < k for n, k in zip(size, _per_axis(module.kernel_size, 3), strict=True)
    ):
        # PyTorch's 3-D average pooling needs the unpadded input to cover the window
        raise SpatialCollapse(
            size,
            f"would get {format_size(size)}, smaller than its 3-D average-pooling window "
            f"{format_size(_per_axis(module.kernel_size, 3))} (a PyTorch limit)",
        )
    elif isinstance(
        module, nn.modules.conv._ConvNd | nn.modules.pooling._MaxPoolNd | nn.modules.pooling._AvgPoolNd
    ):
        out = _window(module, size)
    elif isinstance(module, nn.modules.pooling._AdaptiveAvgPoolNd | nn.modules.pooling._AdaptiveMaxPoolNd):
        target = _per_axis(module.output_size, len(size))
        out = tuple(n if t is None else t for n, t in zip(size, target, strict=True))
    elif isinstance(module, nn.Sequential | nn.ModuleList):
        out = size
        for child in module:
            out = module_output_size(child, out)
    elif next(module.children(), None) is None:
        out = size
    else:
        raise TypeError(f"{type(module).__name__} has sub-layers but no output_size(size) method")
    if min(out) < 1:
        raise SpatialCollapse(tuple(max(n, 0) for n in out))
    return out


def format_size(size: Sequence[int]) -> str:
    """``(1, 8, 8)`` -> ``"1x8x8"``, the notation of the lecture and the CLI."""
    return "x".join(str(n) for n in size)


def smallest_input(valid: callable, spatial_dims: int, *, limit: int = 1 << 16) -> Size | None:
    """Smallest size along each axis for which ``valid(size)`` holds, the other axes held large.

    Every layer's output length is non-decreasing in its input length, so validity is monotone
    and a binary search per axis finds the bound."""
    result = []
    for axis in range(spatial_dims):

        def ok(n: int, axis: int = axis) -> bool:
            return valid(tuple(n if i == axis else limit for i in range(spatial_dims)))

        if not ok(limit):
            return None
        lo, hi = 1, limit
        while lo < hi:
            mid = (lo + hi) // 2
            if ok(mid):
                hi = mid
            else:
                lo = mid + 1
        result.append(lo)
    return tuple(result)
