"""A run's configuration: defaults, then a YAML file, then command-line flags.

The resolved configuration is saved as ``config.yaml`` in the run folder and is enough to
reproduce the run (``astrocnn train TASK --config RUN/config.yaml``)."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from astrocnn.errors import OptionError, did_you_mean

PRECISIONS = ("32-true", "32", "16-mixed", "bf16-mixed", "64-true", "64")
STRATEGIES = ("auto", "ddp", "ddp_spawn", "fsdp", "deepspeed")
COMPILE_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")


@dataclass
class RunConfig:
    task: str
    model: str | None = None  # None: the task's default
    model_options: dict[str, Any] = field(default_factory=dict)
    task_options: dict[str, Any] = field(default_factory=dict)  # e.g. lattice sizes
    data: str | None = None  # None: the task's built-in generator; stored as an absolute path
    data_sha256: str | None = None  # the --data file's checksum, written by the run
    images_key: str | None = None  # HDF5 dataset of the images in --data (default "images")
    labels_key: str | None = None  # HDF5 dataset or CSV column of the labels
    nan_policy: str = "error"  # NaN or infinite pixels in --data: "error", or fill with "median" / "zero"
    epochs: int | None = None
    batch_size: int | None = None  # the global batch, split over devices
    lr: float | None = None
    weight_decay: float = 1e-4
    seed: int = 0
    out: str | None = None
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    accelerator: str = "auto"
    precision: str = "32-true"
    num_workers: int = 0
    workers: int | None = None  # processes generating the data; None: every core available
    data_on_device: str = "auto"  # in-memory data moved once to the accelerator: auto, yes, no
    compile: str = "auto"  # torch.compile the network: auto (on a GPU), yes, no
    compile_mode: str | None = None  # torch.compile's mode; None: chosen by the network's size
    n_train: int | None = None
    n_val: int | None = None
    n_test: int | None = None
    early_stopping: int | None = None  # patience in epochs; 0: off; None: the task's default
    ensemble: int | None = None  # networks per method, seeds seed, seed + 1, ...; None: the task's
    train_mlp: bool = True
    baseline: bool = True
    progress_bar: bool | None = None  # None: when stderr is a terminal
    resume: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}
_HINTS = typing.get_type_hints(RunConfig)


def _check_type(key: str, value: Any, source: str) -> Any:
    hint = _HINTS[key]
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    allowed = tuple(typing.get_origin(a) or a for a in allowed)
    if value is None and type(None) in allowed:
        return None
    if isinstance(value, bool) and bool not in allowed:
        raise OptionError(f"{source}: {key} must be {_describe(allowed)}, got {value!r}")
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if float in allowed and isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if not isinstance(value, allowed):
        raise OptionError(f"{source}: {key} must be {_describe(allowed)}, got {value!r}")
    return value


def _describe(types_: tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", dict: "a mapping"}
    return " or ".join(names.get(t, "null" if t is type(None) else t.__name__) for t in types_)


def validate(config: RunConfig, source: str = "configuration") -> RunConfig:
    """Raise :class:`OptionError` naming the option for an impossible value."""
    positive = (
        "epochs",
        "batch_size",
        "devices",
        "num_nodes",
        "n_train",
        "n_val",
        "n_test",
        "ensemble",
    )
    for key in positive:
        value = getattr(config, key)
        if value is not None and value < 1:
            raise OptionError(f"{source}: {key} must be at least 1, got {value}")
    processes = config.devices * config.num_nodes
    if config.batch_size is not None and config.batch_size % processes:
        raise OptionError(
            f"{source}: batch_size {config.batch_size} is the global batch and must divide evenly over "
            f"{processes} processes (devices x num_nodes)"
        )
    if config.early_stopping is not None and config.early_stopping < 0:
        raise OptionError(
            f"{source}: early_stopping is a patience in epochs (0 switches it off), "
            f"got {config.early_stopping}"
        )
    if config.lr is not None and not 0 < config.lr < 10:
        raise OptionError(f"{source}: lr must be in (0, 10), got {config.lr}")
    if config.weight_decay < 0:
        raise OptionError(f"{source}: weight_decay must not be negative, got {config.weight_decay}")
    if config.workers is not None and config.workers < 1:
        raise OptionError(f"{source}: workers must be at least 1, got {config.workers}")
    if config.num_workers < 0:
        raise OptionError(f"{source}: num_workers must not be negative, got {config.num_workers}")
    for key, allowed in (
        ("nan_policy", ("error", "median", "zero")),
        ("data_on_device", ("auto", "yes", "no")),
        ("compile", ("auto", "yes", "no")),
        ("compile_mode", COMPILE_MODES),
        ("precision", PRECISIONS),
        ("strategy", STRATEGIES),
        ("accelerator", ACCELERATORS),
    ):
        if getattr(config, key) not in allowed:
            raise OptionError(
                f"{source}: {key} must be one of {', '.join(map(str, allowed))}, got {getattr(config, key)!r}"
            )
    return config


def merge(base: RunConfig, values: dict[str, Any], source: str) -> RunConfig:
    """``base`` with ``values`` laid over it; unknown keys and wrong types are errors naming ``source``."""
    unknown = sorted(repr(k) for k in set(values) - set(_FIELDS))  # repr: one line, whatever the key
    if unknown:
        first = sorted(str(k) for k in set(values) - set(_FIELDS))[0]
        raise OptionError(
            f"{source}: unknown option(s) {', '.join(unknown)}{did_you_mean(first, _FIELDS)}; "
            f"valid: {', '.join(_FIELDS)}"
        )
    checked = {key: _check_type(key, value, source) for key, value in values.items()}
    return validate(dataclasses.replace(base, **checked), source)


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise OptionError(f"{path}: cannot read the configuration ({error.__class__.__name__})") from None
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise OptionError(f"{path}: not valid YAML{where}") from None
    if values is None:
        return {}
    if not isinstance(values, dict) or not all(isinstance(k, str) for k in values):
        raise OptionError(f"{path}: the configuration must be a mapping of option names to values")
    return values


def resolve(task: str, *, config_file: str | Path | None = None, **flags: Any) -> RunConfig:
    """Defaults, then ``config_file``, then the flags that were given (None means not given)."""
    config = RunConfig(task=task)
    if config_file is not None:
        values = load_yaml(config_file)
        if values.get("task", task) != task:
            raise OptionError(f"{config_file}: is for task {values['task']!r}, not {task!r}")
        config = merge(config, values, str(config_file))
    given = {k: v for k, v in flags.items() if v is not None}
    for key in ("task_options", "model_options"):  # flags add to the file's options
        if isinstance(given.get(key), dict):
            given[key] = {**getattr(config, key), **given[key]}
    return merge(config, given, "command line")


def save_yaml(config: RunConfig, path: Path) -> None:
    from astrocnn.data.writers import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_text(yaml.safe_dump(_plain(config.to_dict()), sort_keys=False))


def _plain(value: Any) -> Any:
    """Tuples to lists, so the YAML is plain."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


#: Activation names accepted in configuration files and on the command line.
ACTIVATIONS = {
    "relu": "ReLU", "gelu": "GELU", "silu": "SiLU", "elu": "ELU", "leaky_relu": "LeakyReLU", "tanh": "Tanh",
}  # fmt: skip


def model_kwargs(options: dict[str, Any], source: str = "model_options") -> dict[str, Any]:
    """Resolve the strings of a configuration (``norm: group``, ``act: gelu``) to what models take."""
    from torch import nn

    from astrocnn.layers.dims import Norm

    resolved = dict(options)
    if "norm" in resolved:
        try:
            resolved["norm"] = Norm(resolved["norm"])
        except ValueError:
            raise OptionError(
                f"{source}: norm must be one of {', '.join(n.value for n in Norm)}, got {resolved['norm']!r}"
            ) from None
    if "act" in resolved:
        if resolved["act"] not in ACTIVATIONS:
            raise OptionError(
                f"{source}: act must be one of {', '.join(ACTIVATIONS)}, got {resolved['act']!r}"
            )
        resolved["act"] = getattr(nn, ACTIVATIONS[resolved["act"]])
    return resolved
