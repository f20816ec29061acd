"""The lecture's claims about residual blocks and factorised convolutions, checked numerically."""

import pytest
import torch
from torch import nn

from astrocnn.layers.blocks import factorised_conv
from astrocnn.layers.dims import Norm
from astrocnn.models.resnet import ResidualBlock, residual_block


def block(
    spatial_dims: int, *, preact: bool, bottleneck: bool = False, norm: Norm = Norm.BATCH
) -> ResidualBlock:
    channels = 8 if bottleneck else 3
    width = 2 if bottleneck else 3
    b = residual_block(
        spatial_dims, channels, width, bottleneck=bottleneck, norm=norm, preact=preact
    ).double()
    b.eval()
    # non-trivial running statistics and affine parameters, so the test means something
    for m in b.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.2, 0.2)
    return b


@pytest.mark.parametrize("spatial_dims", [1, 2, 3])
@pytest.mark.parametrize("bottleneck", [False, True])
def test_zero_initialised_preactivation_block_is_the_identity(spatial_dims, bottleneck):
    b = block(spatial_dims, preact=True, bottleneck=bottleneck)
    b.zero_init_()
    x = torch.randn(2, b.pre_act[0].num_features, *(5,) * spatial_dims, dtype=torch.float64)
    assert torch.equal(b(x), x)


@pytest.mark.parametrize("norm", [Norm.BATCH, Norm.NONE])
def test_zero_initialised_postactivation_block_passes_its_input(norm):
    """y = ReLU(F(x) + x) with F = 0 is x itself for the non-negative x a ReLU network feeds it."""
    b = block(2, preact=False, norm=norm)
    x = torch.rand(2, 3, 6, 6, dtype=torch.float64)
    assert not torch.equal(b(x), x)
    b.zero_init_()
    assert torch.equal(b(x), x)


@pytest.mark.parametrize("spatial_dims", [1, 2, 3])
def test_gradient_through_a_residual_block_is_dF_dx_plus_identity(spatial_dims):
    """dy/dx = dF/dx + I (He et al. 2016): the Jacobian of the block minus that of its residual
    branch alone is exactly the identity."""
    b = block(spatial_dims, preact=True)
    x = torch.randn(1, 3, *(3,) * spatial_dims, dtype=torch.float64)
    j_block = torch.autograd.functional.jacobian(b, x).reshape(x.numel(), x.numel())
    j_branch = torch.autograd.functional.jacobian(lambda t: b.branch(b.pre_act(t)), x).reshape(
        x.numel(), x.numel()
    )
    torch.testing.assert_close(
        j_block - j_branch, torch.eye(x.numel(), dtype=torch.float64), rtol=0, atol=1e-12
    )
    # and the branch's own Jacobian is not trivial: the identity is added to something
    assert j_branch.abs().sum() > 1.0


def test_gradient_reaches_the_input_of_a_deep_stack_undamped():
    """Twenty zero-initialised residual blocks pass the gradient to their input unchanged."""
    torch.manual_seed(0)
    blocks = nn.Sequential(*[block(2, preact=True) for _ in range(20)])
    for b in blocks:
        b.zero_init_()
    x = torch.randn(1, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    blocks(x).sum().backward()
    torch.testing.assert_close(x.grad, torch.ones_like(x))


@pytest.mark.parametrize("n", [3, 5, 7])
@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_factorised_convolution_sees_an_n_by_n_window_with_fewer_weights(n, spatial_dims):
    c = 4
    fact = factorised_conv(spatial_dims, c, c, n, norm=Norm.NONE, act=None).double()
    full = nn.Conv2d(c, c, n) if spatial_dims == 2 else nn.Conv3d(c, c, n)
    weights = lambda m: sum(p.numel() for name, p in m.named_parameters() if "weight" in name)  # noqa: E731
    assert weights(fact) == spatial_dims * n * c * c < weights(full) == n**spatial_dims * c * c
    # receptive field: the input pixels on which one output pixel depends form an n^d cube
    for p in fact.parameters():
        nn.init.uniform_(p, 0.1, 1.0)  # positive weights: no accidental cancellation
    size = 2 * n + 1
    x = torch.randn(1, c, *(size,) * spatial_dims, dtype=torch.float64, requires_grad=True)
    out = fact(x)
    assert out.shape == x.shape  # the factors keep the size
    out[(0, 0, *(size // 2,) * spatial_dims)].backward()
    support = x.grad[0].abs().sum(0) > 0
    lo, hi = size // 2 - n // 2, size // 2 + n // 2 + 1
    expected = torch.zeros_like(support)
    expected[(slice(lo, hi),) * spatial_dims] = True
    assert torch.equal(support, expected)
