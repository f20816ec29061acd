"""The helpers of benchmarks/bench_peers.py: MONAI's ResNet and the plain ResNet-18 configured as
astrocnn's resnet18 are the same network (parameters, and with the same weights the same output);
the out-of-place and batch-norm-folded copies compute what the original does; the FLOP counter
wrapper counts forward and backward. No timing is asserted."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from astrocnn import create_model

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    pytest.importorskip("monai")
    sys.path.insert(0, str(BENCHMARKS))  # bench_peers imports its neighbour report.py
    try:
        spec = importlib.util.spec_from_file_location("bench_peers", BENCHMARKS / "bench_peers.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


OPTIONS = [
    (2, {"small_input": True, "width": 0.25}),
    (2, {"small_input": False, "width": 0.5}),
    (3, {"small_input": True, "width": 0.125}),
]


def _astrocnn(spatial_dims, options):
    torch.manual_seed(0)
    return create_model("resnet18", spatial_dims=spatial_dims, in_channels=1, num_outputs=3, **options)


def _copy_weights(source: nn.Module, target: nn.Module) -> None:
    """Parameters and buffers in registration order (both build stem, blocks, shortcut, head)."""
    src, dst = list(source.state_dict().values()), target.state_dict()
    assert [tuple(v.shape) for v in src] == [tuple(v.shape) for v in dst.values()]
    target.load_state_dict(dict(zip(dst, src, strict=True)))


@pytest.mark.parametrize(("spatial_dims", "options"), OPTIONS)
def test_peers_are_the_same_network(bench, spatial_dims, options):
    ours = _astrocnn(spatial_dims, options).eval()
    size = (20,) * spatial_dims if options["small_input"] else (40,) * spatial_dims
    x = torch.randn(2, 1, *size)
    for peer in (
        bench.monai_resnet18(spatial_dims, 1, 3, **options),
        bench.PlainResNet18(spatial_dims, 1, 3, **options),
    ):
        assert bench.params(peer) == bench.params(ours)
        _copy_weights(ours, peer)
        with torch.no_grad():
            torch.testing.assert_close(peer.eval()(x), ours(x), rtol=1e-4, atol=1e-5)


def test_out_of_place_variant_and_folded_copy_compute_the_same(bench):
    ours = _astrocnn(2, {"small_input": True, "width": 0.25})
    x = torch.randn(4, 1, 16, 16)
    ours.train()
    ours(x)  # running statistics other than the initial ones, for the folding
    ours.eval()
    before = bench.out_of_place_variant(ours).eval()
    assert not any(getattr(m, "inplace", False) for m in before.modules())
    folded = bench.fold_batch_norm(ours)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    with torch.no_grad():
        expected = ours(x)
        torch.testing.assert_close(before(x), expected)
        torch.testing.assert_close(folded(x), expected, rtol=1e-4, atol=1e-5)
    # training: astrocnn's in-place network gives the gradients of the out-of-place copy
    ours.train()
    before.train()
    ours(x).square().sum().backward()
    before(x).square().sum().backward()
    for a, b in zip(ours.parameters(), before.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-5)


def test_step_flops_counts_forward_and_backward(bench):
    layer = nn.Linear(4, 3)
    x = torch.randn(2, 4)
    forward = 2 * 2 * 4 * 3
    assert bench.step_flops(layer, x, backward=False) == forward
    # backward: the gradient of the weight, and of the input only where it needs one
    assert bench.step_flops(layer, x) == 2 * forward
    assert bench.step_flops(layer, x.requires_grad_()) == 3 * forward
    assert layer.weight.grad is None


def test_op_groups(bench):
    assert bench.op_group("aten::convolution_backward") == "convolution"
    assert bench.op_group("aten::native_batch_norm_backward") == "batch norm"
    assert bench.op_group("aten::clamp_min_") == "ReLU"
    assert bench.op_group("aten::add_") == "add (shortcut, SGD)"
    assert bench.op_group("aten::empty") == "other"
