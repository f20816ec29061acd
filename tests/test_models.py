"""Every registered model in 1-, 2- and 3-D; the reference parameter counts; the registry."""

import pytest
import torch
from torch import nn

from astrocnn import ShapeError
from astrocnn.errors import OptionError, UnknownNameError
from astrocnn.layers.dims import Norm
from astrocnn.models import create_model, get_model_spec, list_models
from astrocnn.models.registry import register_model
from helpers import small_model_and_input

ALL = list_models()
CLASSIFIERS = [m for m in ALL if m != "unet"]


@pytest.mark.parametrize("spatial_dims", [1, 2, 3])
@pytest.mark.parametrize("name", ALL)
def test_forward_shape_and_backward(name, spatial_dims):
    model, x = small_model_and_input(name, spatial_dims)
    model.train()
    y = model(x)
    expected = (2, 3, *x.shape[2:]) if name == "unet" else (2, 3)
    assert y.shape == expected
    y.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"no gradient reached {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("spatial_dims", [1, 2, 3])
@pytest.mark.parametrize(("name", "n_aux"), [("googlenet", 2), ("inception_v3", 1)])
def test_auxiliary_classifiers(name, n_aux, spatial_dims):
    model, x = small_model_and_input(name, spatial_dims, aux_classifiers=True)
    main, aux = model.forward_with_aux(x)
    assert main.shape == (2, 3) and len(aux) == n_aux
    assert all(a.shape == (2, 3) for a in aux)
    (main.sum() + sum(a.sum() for a in aux)).backward()
    assert all(p.grad is not None for p in model.parameters())


# torchvision's published counts for the canonical networks (3 x 224 x 224, or 299 for
# Inception v3, 1000 classes). GoogLeNet: torchvision uses 3 x 3 where the paper has 5 x 5 and
# leaves out the auxiliary heads; Inception v3's count includes its auxiliary head.
REFERENCE_COUNTS = [
    ("alexnet", {}, 61_100_840),
    ("vgg11", {}, 132_863_336),
    ("vgg11_bn", {}, 132_868_840),
    ("vgg13", {}, 133_047_848),
    ("vgg13_bn", {}, 133_053_736),
    ("vgg16", {}, 138_357_544),
    ("vgg16_bn", {}, 138_365_992),
    ("vgg19", {}, 143_667_240),
    ("vgg19_bn", {}, 143_678_248),
    ("googlenet", {"large_kernel": 3}, 6_624_904),
    ("inception_v3", {"aux_classifiers": True}, 27_161_264),
    ("resnet18", {}, 11_689_512),
    ("resnet34", {}, 21_797_672),
    ("resnet50", {}, 25_557_032),
    ("resnet101", {}, 44_549_160),
    ("resnet152", {}, 60_192_808),
]


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("name", "options", "expected"), REFERENCE_COUNTS)
def test_reference_parameter_counts(name, options, expected):
    with torch.device("meta"):
        model = create_model(name, in_channels=3, num_outputs=1000, **options)
    assert count(model) == expected


def test_googlenet_paper_kernel_adds_exactly_the_5x5_weights():
    # the paper's 5 x 5 kernels add (25 - 9) * c_reduce * c_out weights per block (table 1)
    extra = sum(
        16 * c5r * c5
        for c5r, c5 in [
            (16, 32),
            (32, 96),
            (16, 48),
            (24, 64),
            (24, 64),
            (32, 64),
            (32, 128),
            (32, 128),
            (48, 128),
        ]
    )
    with torch.device("meta"):
        paper = create_model("googlenet", in_channels=3, num_outputs=1000)
    assert count(paper) == 6_624_904 + extra


def test_canonical_inputs_run_and_give_the_right_shape():
    with torch.device("meta"):
        for name, size in [("resnet50", 224), ("inception_v3", 299), ("vgg16", 224), ("googlenet", 224)]:
            model = create_model(name, in_channels=3, num_outputs=1000).eval()
            assert model(torch.zeros(1, 3, size, size)).shape == (1, 1000)


# ---- input checks ----------------------------------------------------------------------------


def test_too_small_input_names_model_stage_and_smallest_size():
    model = create_model("vgg16", in_channels=1, num_outputs=10)
    with pytest.raises(ShapeError) as info:
        model(torch.zeros(1, 1, 8, 8))
    assert str(info.value) == (
        "input 1x8x8 is too small for vgg16: block4 would produce 0x0; the smallest input is 32x32"
    )


@pytest.mark.parametrize("small", [False, True])
@pytest.mark.parametrize("name", [m for m in CLASSIFIERS if not get_model_spec(m).needs_input_size])
def test_smallest_input_is_exactly_the_bound(name, small):
    options = {"small_input": True} if small else {}
    with torch.device("meta"):
        model = create_model(name, in_channels=1, num_outputs=2, **options).eval()
        smallest = model.min_input_size()
        assert model(torch.zeros(1, 1, *smallest)).shape == (1, 2)  # torch agrees it fits
        if smallest[0] > 1:
            with pytest.raises(ShapeError, match=f"too small for {name}"):
                model(torch.zeros(1, 1, smallest[0] - 1, smallest[1]))


@pytest.mark.parametrize("name", ["alexnet", "googlenet", "inception_v3", "resnet18", "preact_resnet50"])
def test_small_input_stem_keeps_the_resolution(name):
    big = create_model(name, in_channels=1, num_outputs=2)
    small = create_model(name, in_channels=1, num_outputs=2, small_input=True)
    first_stage = lambda model: model.stage_sizes((96, 96))[0][1]  # noqa: E731
    assert first_stage(small) == (96, 96)  # no stride-2 stem, no early pooling
    assert first_stage(big)[0] <= 48
    assert small.min_input_size()[0] <= min(16, big.min_input_size()[0])


def test_small_vgg_drops_the_last_pooling():
    big = create_model("vgg11", in_channels=1, num_outputs=2)
    small = create_model("vgg11", in_channels=1, num_outputs=2, small_input=True)
    assert big.min_input_size() == (32, 32) and small.min_input_size() == (16, 16)
    assert small.stage_sizes((64, 64))[-1][1] == (4, 4) and big.stage_sizes((64, 64))[-1][1] == (2, 2)


def test_wrong_rank_or_channels_is_a_clear_error():
    model = create_model("resnet18", spatial_dims=3, in_channels=1, num_outputs=2, small_input=True)
    with pytest.raises(ShapeError, match=r"resnet18 expects input of shape \(B, 1, D, H, W\)"):
        model(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ShapeError, match="expects input of shape"):
        model(torch.zeros(1, 2, 8, 8, 8))


def test_fixed_size_models_refuse_other_sizes():
    model = create_model("simple_cnn", in_channels=3, num_outputs=10, input_size=(32, 32))
    with pytest.raises(ShapeError, match="built for 32x32 inputs, got 28x28"):
        model(torch.zeros(1, 3, 28, 28))
    with pytest.raises(ShapeError, match="too small for simple_cnn: pool would produce 0x0"):
        create_model("simple_cnn", in_channels=3, num_outputs=10, input_size=(9, 9))


def test_simple_cnn_is_the_lectures_stack():
    model = create_model("simple_cnn", in_channels=3, num_outputs=10, input_size=(32, 32))
    assert [size for _, size in model.stage_sizes((32, 32))] == [(28, 28), (24, 24), (12, 12)]
    assert model.features.conv1.conv.out_channels == 6 and model.features.conv2.conv.out_channels == 10


# ---- the registry ----------------------------------------------------------------------------


def test_unknown_model_lists_the_valid_ones():
    with pytest.raises(UnknownNameError) as info:
        create_model("resnet19", in_channels=1, num_outputs=1)
    assert "unknown model 'resnet19'" in str(info.value)
    assert all(name in str(info.value) for name in ALL)


def test_duplicate_registration_is_an_error():
    with pytest.raises(ValueError, match="already registered"):
        register_model("resnet18", nn.Identity, "again")


def test_unknown_option_is_refused_not_dropped():
    with pytest.raises(OptionError, match=r"unet does not take option.*small_input"):
        create_model("unet", in_channels=1, num_outputs=1, small_input=True)
    with pytest.raises(OptionError, match=r"vgg16_bn does not take option.*norm"):
        create_model("vgg16_bn", in_channels=1, num_outputs=1, norm=Norm.NONE)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"spatial_dims": 4}, "spatial_dims must be 1, 2 or 3"),
        ({"in_channels": 0}, "in_channels must be a positive integer"),
        ({"num_outputs": -1}, "num_outputs must be a positive integer"),
        ({"width": 0}, "width must be positive"),
    ],
)
def test_bad_common_arguments(kwargs, message):
    arguments = {"in_channels": 1, "num_outputs": 2, **kwargs}
    with pytest.raises(OptionError, match=message):
        create_model("resnet18", **arguments)


def test_fully_connected_models_need_the_input_size():
    with pytest.raises(OptionError, match="mlp needs input_size"):
        create_model("mlp", in_channels=1, num_outputs=2)
    with pytest.raises(OptionError, match="input_size must be 2 positive integers"):
        create_model("mlp", in_channels=1, num_outputs=2, input_size=(4,))


def test_same_seed_same_weights():
    def weights():
        torch.manual_seed(123)
        return torch.cat(
            [p.flatten() for p in create_model("resnet18", in_channels=1, num_outputs=2).parameters()]
        )

    assert torch.equal(weights(), weights())
