"""The one model registry: ``create_model`` and ``list_models``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from astrocnn.errors import OptionError, UnknownNameError, did_you_mean
from astrocnn.layers.dims import check_spatial_dims

# Arguments every builder takes; everything else is a model-specific option.
_COMMON = ("spatial_dims", "in_channels", "num_outputs")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: Callable[..., nn.Module]
    description: str
    #: Fully connected models (``mlp``, ``simple_cnn``'s head) must know the input size.
    needs_input_size: bool = False
    #: An image out per image in (U-Net), rather than a vector of class scores or values.
    image_output: bool = False
    #: The task family that registered a network made for its data only (e.g. a hexagonal
    #: camera's ``hexnet``); None for the zoo's networks, which take any 1-, 2- or 3-D input.
    family: str | None = None

    @property
    def options(self) -> dict[str, inspect.Parameter]:
        """Options the builder takes beyond the common arguments, with their defaults."""
        bound = self.builder.keywords if isinstance(self.builder, functools.partial) else {}
        params = inspect.signature(self.builder).parameters
        return {
            name: p
            for name, p in params.items()
            if name not in _COMMON and name not in bound and p.kind is inspect.Parameter.KEYWORD_ONLY
        }


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    builder: Callable[..., nn.Module],
    description: str,
    *,
    needs_input_size: bool = False,
    image_output: bool = False,
    family: str | None = None,
) -> None:
    """Add a model to the registry; a name may be registered once. A task family registers its
    own networks with ``family`` set: they are built by name like any other, but are not part
    of the generic zoo that :func:`list_models` lists."""
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    _REGISTRY[name] = ModelSpec(name, builder, description, needs_input_size, image_output, family)


def list_models(*, families: bool = False) -> list[str]:
    """Names of the zoo's models, sorted; with ``families``, the task families' own networks too."""
    return sorted(name for name, spec in _REGISTRY.items() if families or spec.family is None)


def get_model_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown model {name!r}{did_you_mean(name, list_models(families=True))}; "
            f"valid models: {', '.join(list_models(families=True))}"
        ) from None


def create_model(
    name: str, *, spatial_dims: int = 2, in_channels: int, num_outputs: int, **options
) -> nn.Module:
    """Build a registered model for ``spatial_dims``-D inputs with ``in_channels`` channels.

    ``options`` are the model's own (``width``, ``small_input``, ``norm``, ...); an option the
    model does not take is an error, never silently dropped."""
    spec = get_model_spec(name)
    check_spatial_dims(spatial_dims)
    for arg, value in (("in_channels", in_channels), ("num_outputs", num_outputs)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise OptionError(f"{arg} must be a positive integer, got {value!r}")
    valid = spec.options
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise OptionError(
            f"{name} does not take option(s) {', '.join(unknown)}; its options are: "
            f"{', '.join(valid) or 'none'}"
        )
    if spec.needs_input_size and options.get("input_size") is None:
        raise OptionError(f"{name} needs input_size (its fully connected layers depend on it)")
    if "width" in options and not options["width"] > 0:
        raise OptionError(f"width must be positive, got {options['width']!r}")
    return spec.builder(
        spatial_dims=spatial_dims, in_channels=in_channels, num_outputs=num_outputs, **options
    )
