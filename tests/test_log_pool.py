"""The average-and-log pooling head (``log_pool``): exact values, shapes, parameter counts."""

from __future__ import annotations

import pytest
import torch

from astrocnn.models import create_model
from astrocnn.models.heads import AvgLogPool, dense_head


def test_avg_log_pool_values():
    x = torch.rand(2, 3, 4, 5) * 10
    out = AvgLogPool(eps=1e-3)(x)
    mean = x.mean(dim=(2, 3))
    assert torch.allclose(out, torch.cat([mean, torch.log(mean + 1e-3)], dim=1))
    assert torch.isfinite(AvgLogPool()(torch.zeros(1, 2, 3, 3))).all()  # an empty feature map


def test_the_log_of_a_sum_is_linear_in_the_pooled_features():
    """With log_pool, log(total) of a positive map is exactly a linear function of the head's input."""
    x = torch.rand(5, 1, 6, 6) * torch.logspace(0, 4, 5)[:, None, None, None]
    pooled = AvgLogPool(eps=0.0)(x)
    assert torch.allclose(pooled[:, 1] + torch.log(torch.tensor(36.0)), torch.log(x.sum(dim=(1, 2, 3))))


def test_resnet_with_log_pool():
    kwargs = {"spatial_dims": 2, "in_channels": 5, "num_outputs": 2, "small_input": True, "width": 0.25}
    plain = create_model("resnet18", **kwargs)
    logged = create_model("resnet18", **kwargs, log_pool=True)
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(logged) - n(plain) == 128 * 2  # the output layer sees 2 x 128 features
    assert logged(torch.randn(3, 5, 29, 29)).shape == (3, 2)
    with pytest.raises(ValueError, match="global pooling"):
        dense_head(2, 8, 2, pool_size=2, log_pool=True)
