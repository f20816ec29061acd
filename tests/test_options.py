"""Every option reaches every layer it names: nothing is silently dropped."""

import pytest
import torch
from torch import nn

from astrocnn.layers.dims import Norm
from astrocnn.models import get_model_spec, list_models
from helpers import small_model_and_input

NORM_TYPES = {
    Norm.BATCH: nn.modules.batchnorm._BatchNorm,
    Norm.INSTANCE: nn.modules.instancenorm._InstanceNorm,
    Norm.GROUP: nn.GroupNorm,
}
ANY_NORM = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def models_with(option: str) -> list[str]:
    return [m for m in list_models() if option in get_model_spec(m).options]


def instances(model: nn.Module, kind) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, kind)]


def test_the_common_options_are_offered_where_they_make_sense():
    conv_nets = [m for m in list_models() if m not in ("mlp",)]
    assert set(models_with("norm")) == {m for m in conv_nets if not m.endswith("_bn")}  # _bn fixes it
    assert set(models_with("act")) == set(list_models())
    assert set(models_with("width")) == set(conv_nets)
    assert set(models_with("small_input")) == {m for m in conv_nets if m not in ("simple_cnn", "unet")}


@pytest.mark.parametrize("norm", [Norm.INSTANCE, Norm.GROUP])
@pytest.mark.parametrize("name", models_with("norm"))
def test_norm_choice_replaces_every_normalisation(name, norm):
    model, x = small_model_and_input(name, 2, norm=norm)
    norms = instances(model, ANY_NORM)
    assert norms and all(isinstance(m, NORM_TYPES[norm]) for m in norms)
    if norm is Norm.INSTANCE and not get_model_spec(name).needs_input_size:
        x = torch.randn(2, x.shape[1], 32, 32)  # instance statistics need more than one pixel per map
    assert torch.isfinite(model(x)).all()


@pytest.mark.parametrize("name", models_with("norm"))
def test_no_norm_means_none_anywhere_and_convolutions_carry_bias(name):
    model, x = small_model_and_input(name, 2, norm=Norm.NONE)
    assert not instances(model, ANY_NORM)
    model(x).sum().backward()
    # a block's convolution has a bias when nothing normalises its output
    convs = instances(model, nn.modules.conv._ConvNd)
    assert sum(c.bias is not None for c in convs) >= len(convs) // 2


def test_batch_norm_variants_normalise_every_convolution():
    for name in ["vgg11_bn", "resnet18", "googlenet", "inception_v3", "unet"]:
        model, _ = small_model_and_input(name, 2)
        n_conv = len(instances(model, nn.modules.conv._ConvNd))
        n_bn = len(instances(model, nn.modules.batchnorm._BatchNorm))
        # every convolution but the U-Net's up-sampling and output layers is followed by one
        assert n_bn >= n_conv - (2 * 4 + 1 if name == "unet" else 0), name


@pytest.mark.parametrize("name", models_with("act"))
def test_activation_choice_replaces_every_relu(name):
    model, x = small_model_and_input(name, 1, act=nn.GELU)
    assert not instances(model, nn.ReLU)
    assert instances(model, nn.GELU)
    model(x)


@pytest.mark.parametrize("name", models_with("width"))
def test_width_scales_the_channels(name):
    def widest(width: float) -> int:
        with torch.device("meta"):
            model, _ = small_model_and_input(name, 2, width=width)
        return max(c.out_channels for c in instances(model, nn.modules.conv._ConvNd))

    assert widest(0.5) * 2 == widest(1.0)


@pytest.mark.parametrize("spatial_dims", [1, 2, 3])
@pytest.mark.parametrize("name", list_models())
def test_every_layer_has_the_requested_dimensionality(name, spatial_dims):
    model, _ = small_model_and_input(name, spatial_dims)
    suffix = f"{spatial_dims}d"
    spatial = (
        nn.modules.conv._ConvNd,
        nn.modules.pooling._MaxPoolNd,
        nn.modules.pooling._AvgPoolNd,
        nn.modules.pooling._AdaptiveAvgPoolNd,
        nn.modules.batchnorm._BatchNorm,
    )
    layers = instances(model, spatial)
    wrong = [type(m).__name__ for m in layers if not type(m).__name__.lower().endswith(suffix)]
    assert not wrong


@pytest.mark.parametrize("name", [m for m in models_with("dropout")])
def test_dropout_reaches_the_head(name):
    model, _ = small_model_and_input(name, 2, dropout=0.37)
    assert any(m.p == 0.37 for m in instances(model, nn.Dropout))


@pytest.mark.parametrize("name", [m for m in list_models() if "resnet" in m])
def test_zero_init_residual_makes_every_block_start_as_its_shortcut(name):
    from astrocnn.models.resnet import ResidualBlock

    model, x = small_model_and_input(name, 2, zero_init_residual=True)
    seen = []
    for block in instances(model, ResidualBlock):
        block.register_forward_hook(lambda mod, args, out: seen.append((mod, args[0], out)))
    model.eval()
    with torch.no_grad():
        model(x)
        assert seen
        for block, inp, out in seen:
            h = inp if block.pre_act is None else block.pre_act(inp)
            skip = inp if block.shortcut is None else block.shortcut(h)
            expected = skip if block.post_act is None else block.post_act(skip)
            torch.testing.assert_close(out, expected)
