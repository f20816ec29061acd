"""The lecture's shape arithmetic, checked against its numbers and against PyTorch itself."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from astrocnn.layers import dims
from astrocnn.layers.shapes import conv_output_size, conv_transpose_output_size, module_output_size


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_lecture_one_5x5x3_filter_on_32x32x3_gives_28x28x1():
    assert conv_output_size(32, 5) == 28
    conv = dims.conv(2)(3, 1, 5)
    assert conv.weight.shape == (1, 3, 5, 5)
    assert conv(torch.zeros(1, 3, 32, 32)).shape == (1, 1, 28, 28)


def test_lecture_six_filters_then_ten_5x5x6_filters():
    six = dims.conv(2)(3, 6, 5)
    ten = dims.conv(2)(6, 10, 5)
    x = six(torch.zeros(1, 3, 32, 32))
    assert x.shape == (1, 6, 28, 28)
    assert ten(x).shape == (1, 10, 24, 24)
    assert ten.weight.shape == (10, 6, 5, 5)  # each filter is 5 x 5 x 6
    assert n_params(six) == 6 * (5 * 5 * 3 + 1)


@pytest.mark.parametrize("spatial_dims", [1, 2, 3])
def test_lecture_max_pooling_example(spatial_dims):
    image = torch.tensor([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], dtype=torch.float32)
    expected = torch.tensor([[6, 8], [3, 4]], dtype=torch.float32)
    if spatial_dims == 2:
        out = dims.max_pool(2)(2)(image[None, None])[0, 0]
        assert torch.equal(out, expected)
    elif spatial_dims == 1:  # each row on its own: pairs (1,1)->1, (2,4)->4, ...
        out = dims.max_pool(1)(2)(image[:, None])[:, 0]
        assert torch.equal(out, torch.tensor([[1, 4], [6, 8], [3, 1], [2, 4]], dtype=torch.float32))
    else:  # the image as a depth-2 volume whose two slices are equal: same answer per slice
        volume = torch.stack([image, image])[None, None]
        out = dims.max_pool(3)(2)(volume)[0, 0, 0]
        assert torch.equal(out, expected)


def test_lecture_1x1_convolution_reduces_depth():
    conv = dims.conv(2)(64, 32, 1)
    assert conv(torch.zeros(1, 64, 56, 56)).shape == (1, 32, 56, 56)
    assert conv.weight.shape == (32, 64, 1, 1)  # each filter a 64-dimensional dot product
    # and it is exactly a dot product over channels at each pixel
    x = torch.randn(1, 64, 5, 5)
    by_hand = torch.einsum("oc,bchw->bohw", conv.weight[:, :, 0, 0], x) + conv.bias[None, :, None, None]
    torch.testing.assert_close(conv(x), by_hand, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel", [1, 3, 5, 7])
@pytest.mark.parametrize("spatial_dims", [1, 2, 3])
def test_padding_half_the_kernel_keeps_the_size(kernel, spatial_dims):
    assert conv_output_size(17, kernel, padding=kernel // 2) == 17
    conv = dims.conv(spatial_dims)(2, 2, kernel, padding=kernel // 2)
    assert conv(torch.zeros(1, 2, *(9,) * spatial_dims)).shape[2:] == (9,) * spatial_dims


def test_stride_shrinks_as_the_formula_says():
    # (32 - 5) / 1 + 1 = 28; (32 - 5) / 3 + 1 = 10 (floor); (7 + 2 - 3) / 2 + 1 = 4
    assert conv_output_size(32, 5, stride=1) == 28
    assert conv_output_size(32, 5, stride=3) == 10
    assert conv_output_size(7, 3, stride=2, padding=1) == 4
    assert dims.conv(2)(1, 1, 5, stride=3)(torch.zeros(1, 1, 32, 32)).shape[2:] == (10, 10)


@settings(max_examples=150, deadline=None)
@given(
    size=st.integers(1, 24),
    kernel=st.integers(1, 6),
    stride=st.integers(1, 4),
    padding=st.integers(0, 3),
    dilation=st.integers(1, 3),
)
def test_conv_output_size_agrees_with_torch(size, kernel, stride, padding, dilation):
    conv = torch.nn.Conv1d(1, 1, kernel, stride=stride, padding=padding, dilation=dilation)
    try:
        expected = conv(torch.zeros(1, 1, size)).shape[-1]
    except RuntimeError:  # torch refuses a kernel larger than the padded input
        expected = 0
    assert conv_output_size(size, kernel, stride, padding, dilation) == expected


@settings(max_examples=150, deadline=None)
@given(
    size=st.integers(1, 24),
    kernel=st.integers(1, 6),
    stride=st.integers(1, 4),
    padding=st.integers(0, 3),
    ceil_mode=st.booleans(),
)
def test_pool_output_size_agrees_with_torch_including_ceil_mode(size, kernel, stride, padding, ceil_mode):
    padding = min(padding, kernel // 2)  # torch's own limit on pooling padding
    pool = torch.nn.MaxPool1d(kernel, stride, padding, ceil_mode=ceil_mode)
    try:
        expected = pool(torch.zeros(1, 1, size)).shape[-1]
    except RuntimeError:
        expected = 0
    assert conv_output_size(size, kernel, stride, padding, ceil_mode=ceil_mode) == expected


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 12), kernel=st.integers(1, 4), stride=st.integers(1, 3), padding=st.integers(0, 1))
def test_transposed_conv_output_size_agrees_with_torch(size, kernel, stride, padding):
    conv = torch.nn.ConvTranspose1d(1, 1, kernel, stride=stride, padding=padding)
    try:
        expected = conv(torch.zeros(1, 1, size)).shape[-1]
    except RuntimeError:  # torch refuses an empty output
        expected = 0
    assert max(conv_transpose_output_size(size, kernel, stride, padding), 0) == expected


def test_module_output_size_walks_a_stack_per_axis():
    stack = torch.nn.Sequential(
        dims.conv(3)(1, 4, (1, 3, 5), padding=(0, 1, 0)),
        dims.max_pool(3)(2),
        dims.adaptive_avg_pool(3)((None, 3, 1)),
    )
    size = (9, 10, 11)
    assert module_output_size(stack, size) == tuple(stack(torch.zeros(1, 1, *size)).shape[2:])


def test_invalid_window_is_rejected():
    with pytest.raises(ValueError, match="invalid window"):
        conv_output_size(10, 0)
