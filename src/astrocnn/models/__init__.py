"""The model zoo: every architecture for 1-, 2- and 3-D inputs, looked up by name."""

from functools import partial

from astrocnn.layers.dims import Norm
from astrocnn.models.base import Network
from astrocnn.models.googlenet import GoogLeNet
from astrocnn.models.inception_v3 import InceptionV3
from astrocnn.models.mlp import MLP, mlp_parameter_count
from astrocnn.models.registry import ModelSpec, create_model, get_model_spec, list_models, register_model
from astrocnn.models.resnet import RESNET_CONFIGS, ResNet
from astrocnn.models.simple_cnn import SimpleCNN
from astrocnn.models.unet import UNet
from astrocnn.models.vgg import VGG, VGG_CONFIGS, AlexNet

register_model("mlp", MLP, "fully connected baseline: flatten, dense layers", needs_input_size=True)
register_model(
    "simple_cnn", SimpleCNN, "the lecture's CONV-ReLU stack, max pooling, dense head", needs_input_size=True
)
register_model("alexnet", AlexNet, "AlexNet (Krizhevsky et al. 2012), 8 layers")
for _name, _blocks in VGG_CONFIGS.items():
    register_model(
        _name, partial(VGG, name=_name, blocks=_blocks), f"{_name.upper()} (Simonyan and Zisserman 2014)"
    )
    register_model(
        f"{_name}_bn",
        partial(VGG, name=f"{_name}_bn", blocks=_blocks, norm=Norm.BATCH),
        f"{_name.upper()} with batch normalisation",
    )
register_model("googlenet", GoogLeNet, "Inception v1 (Szegedy et al. 2014), 1x1 reductions, auxiliary heads")
register_model("inception_v3", InceptionV3, "Inception v3 (Szegedy et al. 2015), factorised n x 1 / 1 x n")
for _name, (_bottleneck, _layers) in RESNET_CONFIGS.items():
    _kind = "bottleneck" if _bottleneck else "basic"
    register_model(
        _name,
        partial(ResNet, name=_name, bottleneck=_bottleneck, layers=_layers),
        f"ResNet (He et al. 2015), {_kind} blocks {_layers}",
    )
    register_model(
        f"preact_{_name}",
        partial(ResNet, name=f"preact_{_name}", bottleneck=_bottleneck, layers=_layers, preact=True),
        f"pre-activation ResNet (He et al. 2016), {_kind} blocks {_layers}",
    )
register_model(
    "unet", UNet, "U-Net (Ronneberger et al. 2015), image to image, same size out", image_output=True
)

__all__ = [
    "MLP", "ModelSpec", "Network", "create_model", "get_model_spec", "list_models", "mlp_parameter_count",
]  # fmt: skip
