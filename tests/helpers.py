"""Small-model construction shared by the tests."""

import torch

from astrocnn.models import create_model, get_model_spec


def small_model_and_input(
    name: str, spatial_dims: int, *, in_channels: int = 2, num_outputs: int = 3, **options
):
    """A narrow version of model ``name`` and a batch of 2 inputs it accepts, a little above its
    smallest valid size."""
    spec = get_model_spec(name)
    if "small_input" in spec.options:
        options.setdefault("small_input", True)
    if "width" in spec.options:
        options.setdefault("width", 0.125)
    if spec.needs_input_size:
        options.setdefault("input_size", (12,) * spatial_dims)
    model = create_model(
        name, spatial_dims=spatial_dims, in_channels=in_channels, num_outputs=num_outputs, **options
    )
    size = (
        tuple(options["input_size"])
        if spec.needs_input_size
        else tuple(n + 1 for n in model.min_input_size())
    )
    if name == "unet":
        size = (9,) * spatial_dims  # odd on purpose: the U-Net pads and crops
    return model, torch.randn(2, in_channels, *size)
