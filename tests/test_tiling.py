"""Sliding-window inference (engine/tiling.py): a pointwise function gives the same output tiled
as on the whole image, in 1-, 2- and 3-D, for odd sizes and for images smaller than the window;
a convolution's window-edge effects are blended away."""

from __future__ import annotations

import pytest
import torch

from astrocnn.engine.tiling import blending_weights, sliding_window
from astrocnn.errors import OptionError


def _pointwise(batch: torch.Tensor) -> torch.Tensor:
    """Two output channels from every pixel's channels alone (B, C, *S) -> (B, 2, *S)."""
    return torch.cat([2 * batch.sum(1, keepdim=True) + 1, batch[:, :1] ** 2], dim=1)


@pytest.mark.parametrize(
    "shape, window",
    [
        ((2, 37), 8),  # 1-D, two channels, a size no multiple of the stride
        ((1, 17, 23), (8, 8)),
        ((1, 5, 9, 11), 4),
        ((1, 5, 6), 16),  # smaller than the window on both axes: padded, cropped back
        ((1, 30, 7), (8, 12)),  # smaller on one axis only
    ],
)
def test_pointwise_function_tiled_equals_whole(shape, window):
    torch.manual_seed(0)
    image = torch.randn(shape)
    tiled = sliding_window(_pointwise, image, window, overlap=0.25, batch_size=3)
    assert tiled.shape == (2, *shape[1:])
    torch.testing.assert_close(tiled, _pointwise(image[None])[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("spatial_dims, shape, window", [(2, (1, 41, 37), 16), (3, (1, 19, 21, 17), 8)])
def test_convolution_shows_no_seam(spatial_dims, shape, window):
    """A 3x3(x3) convolution sees zero padding at every window edge; with half-window overlap the
    blended output agrees with the whole image's to < 1 % of its largest value, the image border
    included (a plain average of the windows is off by tens of per cent at the window edges)."""
    torch.manual_seed(1)
    conv = (torch.nn.Conv2d if spatial_dims == 2 else torch.nn.Conv3d)(1, 1, 3, padding=1)
    image = torch.randn(shape)
    with torch.no_grad():
        whole = conv(image[None])[0]
        error = (sliding_window(conv, image, window, overlap=0.5) - whole).abs().max() / whole.abs().max()
        averaged = _plain_average(conv, image, window)
    assert error < 0.01
    assert (averaged - whole).abs().max() / whole.abs().max() > 0.05  # the test can see a seam


def _plain_average(fn, image: torch.Tensor, window: int) -> torch.Tensor:
    from monai.inferers import sliding_window_inference

    return sliding_window_inference(image[None], (window,) * (image.ndim - 1), 4, fn, overlap=0.5)[0]


def test_weights_fall_at_inner_edges_and_stay_flat_on_the_border():
    w = blending_weights([slice(0, 16), slice(10, 26)], (40, 40)).double().numpy()
    assert w.shape == (16, 16)
    assert w[0, 7] == pytest.approx(w[7, 7], rel=1e-6)  # row 0 lies on the image's border
    assert w[7, 0] < 1e-3 * w[7, 7] and w[7, 15] < 1e-3 * w[7, 7]  # both column edges are inner


def test_bad_arguments_are_refused():
    image = torch.zeros(1, 8, 8)
    with pytest.raises(OptionError, match="axes"):
        sliding_window(_pointwise, image, (4, 4, 4))
    with pytest.raises(OptionError, match="overlap"):
        sliding_window(_pointwise, image, 4, overlap=1.0)
    with pytest.raises(OptionError, match="spatial axes"):
        sliding_window(_pointwise, torch.zeros(8), 4)
