"""Sliding-window inference: a network trained on small windows applied to a frame of any size.

Any image-to-image task (a sky frame larger than the training cutouts, a 3-D detector volume) runs
its network over overlapping windows and blends them with weights that fall off towards a window's
edge, where a convolution sees zero padding, so that no seam shows (MONAI's
``sliding_window_inference``; the Gaussian blending of nnU-Net, Isensee et al. 2021).

The weights are a product of one Gaussian profile per axis (sigma an eighth of the window) that
stays flat on the side of a window lying on the image's own border: there the whole-image network
sees the same zero padding, so that edge is no artefact and must not defer to a neighbouring
window's true artefact one pixel further in (MONAI's own map, clamped to 1e-3 of its peak, leaves a
seam of a few per cent there). An image smaller than the window on some axis is padded by
repeating its edge pixels and the output cropped back, so a window size is never an error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from monai.inferers import sliding_window_inference

from astrocnn.errors import OptionError

#: Gaussian sigma of the blending weights as a fraction of the window (MONAI's and nnU-Net's).
SIGMA_SCALE = 0.125


def window_shape(window: int | Sequence[int], spatial_dims: int) -> tuple[int, ...]:
    """``window`` as one size per spatial axis (an int repeats)."""
    sizes = (int(window),) * spatial_dims if isinstance(window, int) else tuple(int(w) for w in window)
    if len(sizes) != spatial_dims:
        raise OptionError(f"window {sizes} has {len(sizes)} axes, the image {spatial_dims}")
    if min(sizes) < 1:
        raise OptionError(f"window sizes must be positive, got {sizes}")
    return sizes


def _profile(n: int, flat_low: bool, flat_high: bool) -> torch.Tensor:
    """One axis's weights over a window of ``n`` pixels: a Gaussian about the centre, held at its
    peak on a side that lies on the image's border."""
    position = torch.arange(n, dtype=torch.float64)
    centre, sigma = (n - 1) / 2, max(SIGMA_SCALE * n, 1e-3)
    distance = position - centre
    if flat_low:
        distance = distance.clamp(min=0)
    if flat_high:
        distance = distance.clamp(max=0)
    return torch.exp(-0.5 * (distance / sigma) ** 2)


def blending_weights(location: Sequence[slice], image_size: Sequence[int]) -> torch.Tensor:
    """Weights (*window) of the window at ``location`` (one slice per spatial axis) of an image
    of ``image_size``."""
    weights = torch.ones((), dtype=torch.float64)
    for where, size in zip(location, image_size, strict=True):
        profile = _profile(where.stop - where.start, where.start == 0, where.stop == size)
        weights = weights[..., None] * profile
    return weights.float()


@torch.no_grad()
def sliding_window(
    fn: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    window: int | Sequence[int],
    overlap: float = 0.25,
    batch_size: int = 8,
) -> torch.Tensor:
    """``fn`` applied to overlapping ``window``-sized tiles of ``image`` (C, *S) and blended.

    ``fn`` maps a batch (B, C, *window) to (B, C_out, *window); the result is (C_out, *S), on
    ``image``'s device. ``overlap`` is the fraction of a window shared with its neighbour along
    each axis (0 <= overlap < 1); ``batch_size`` windows go through ``fn`` at once."""
    spatial_dims = image.ndim - 1
    if spatial_dims not in (1, 2, 3):
        raise OptionError(
            f"sliding_window takes an image (C, *S) with 1 to 3 spatial axes, got {tuple(image.shape)}"
        )
    if not 0 <= overlap < 1:
        raise OptionError(f"overlap must be in [0, 1), got {overlap}")
    if batch_size < 1:
        raise OptionError(f"batch_size must be positive, got {batch_size}")
    sizes = window_shape(window, spatial_dims)
    # the size MONAI scans after padding an image smaller than the window
    scanned = [max(s, w) for s, w in zip(image.shape[1:], sizes, strict=True)]

    def weighted(batch: torch.Tensor, locations: list[list[slice]]) -> torch.Tensor:
        # each window's output times its weights, the weights as a last channel: MONAI's plain
        # average of these (mode "constant") then gives sum(w y) / sum(w) as one ratio
        out = fn(batch)  # (B, C_out, *window)
        w = torch.stack([blending_weights(loc[2:], scanned) for loc in locations]).to(out)
        w = w[:, None]  # (B, 1, *window)
        return torch.cat([out * w, w], dim=1)

    blended = sliding_window_inference(
        image[None],  # (1, C, *S)
        roi_size=sizes,
        sw_batch_size=batch_size,
        predictor=weighted,
        overlap=overlap,
        mode="constant",
        padding_mode="replicate",
        with_coord=True,
    )
    blended = torch.as_tensor(blended)[0]  # a plain tensor, not MONAI's MetaTensor
    return blended[:-1] / blended[-1:]  # (C_out, *S)
