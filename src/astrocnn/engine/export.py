"""Export a trained network: ONNX for inference elsewhere, safetensors for weights that load
without unpickling anything.

``model.onnx`` is one self-contained file that takes what ``astrocnn predict`` takes (raw
images) and gives what it writes (class probabilities or values): the task's preprocessing and
postprocessing are part of the graph, so a user elsewhere needs nothing but onnxruntime.
``model.safetensors`` holds the network's weights only; ``model.json`` states in words what
goes in and out of either file, and :func:`load_exported` puts the steps back around the
weights in Python.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from astrocnn.data.writers import atomic_output
from astrocnn.engine.config import model_kwargs
from astrocnn.engine.run import Run, RunError, as_members, mean_output, predict_array
from astrocnn.errors import AstroCNNError
from astrocnn.models import create_model, get_model_spec
from astrocnn.tasks import Task, TaskKind
from astrocnn.tasks.registry import saved_task

FORMATS = ("onnx", "safetensors")
FORMAT_VERSION = "astrocnn-model/2"


@contextlib.contextmanager
def _quiet_exporter():
    """The ONNX exporter reports its progress and optional operators it skips (torchvision's);
    none of that concerns a user whose export succeeds."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        logger.setLevel(level)


def _classes(task: Task) -> bool:
    return task.kind in (TaskKind.CLASSIFICATION, TaskKind.SEGMENTATION)


class RawImageModel(nn.Module):
    """The network between its task's preprocessing and postprocessing: raw images in, what
    ``astrocnn predict`` returns out, and for classes the logits beside it (a caller who wants a
    temperature-scaled softmax or a log-likelihood needs them, and they cost nothing). An
    ensemble's members give the mean of their outputs, as train and evaluate score it; its
    "logits" are then the log of the mean probabilities (their softmax is the output)."""

    def __init__(self, network: nn.Module | list[nn.Module], task: Task):
        super().__init__()
        self.members = nn.ModuleList(as_members(network))
        self.task = task  # not a module: its preprocess_torch and postprocess are traced inline

    def forward(self, image: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        x = self.task.preprocess_torch(image)
        if len(self.members) == 1:
            logits = self.members[0](x)
            output = self.task.postprocess(logits)
            return (output, logits) if _classes(self.task) else output
        output = mean_output(self.task, list(self.members), x)
        if _classes(self.task):
            return output, torch.log(output.clamp_min(torch.finfo(output.dtype).tiny))
        return output


def preprocessing_text(task: Task) -> str:
    """Raw image -> network input, in words exact enough to reimplement."""
    return task.describe_preprocessing()


def postprocessing_text(task: Task) -> str:
    """Network output -> what ``astrocnn predict`` returns, in words exact enough to reimplement."""
    return task.describe_postprocessing()


def _input_text(task: Task) -> str:
    units = task.raw_units
    return (
        "raw images as `astrocnn predict` reads them from FITS, HDF5, NPY/NPZ or PNG/JPEG, "
        f"not preprocessed: {units}"
    )


def _output_text(task: Task) -> str:
    if _classes(task):
        where = "axis 1" if task.kind is TaskKind.SEGMENTATION else "columns"
        return (
            f"class probabilities ({where} in the order of class_names, summing to 1), as "
            "`astrocnn predict` writes them"
        )
    units = task.value_units
    return f"predicted values ({units}), as `astrocnn predict` writes them"


def model_description(
    run: Run, output_shape: tuple[int, ...] | None = None, members: int = 1
) -> dict[str, Any]:
    """Everything needed to rebuild the trained CNN and to feed and read it, as plain JSON.

    ``output_shape`` is the shape of one prediction (without the batch axis), where known;
    ``members`` the networks of the ensemble exported (the prediction is their mean)."""
    task = run.task
    name = run.config.model
    options = dict(run.config.model_options)
    if get_model_spec(name).needs_input_size:
        options["input_size"] = list(task.input_size)
    input_shape = ["N", task.in_channels, *task.input_size]
    output_shape_ = ["N", *output_shape] if output_shape is not None else None
    onnx_outputs = {"output": "the output above: the postprocessing is in the graph"}
    if _classes(task):
        onnx_outputs["logits"] = (
            "the network's output before the softmax, same shape as output"
            if members == 1
            else "the log of the mean probabilities (the ensemble's output before a softmax)"
        )
    if members == 1:
        weights = (
            "the network's weights only: it takes preprocessed images and gives the output before "
            "postprocessing; astrocnn.engine.export.load_exported(folder) applies both"
        )
    else:
        weights = (
            f"the weights of the ensemble's {members} networks, keys prefixed member0. to "
            f"member{members - 1}.; each takes preprocessed images and gives its output before "
            "postprocessing; the prediction is the mean of the members' postprocessed outputs "
            "(astrocnn.engine.export.load_exported(folder) does all of it)"
        )
    return {
        "format": FORMAT_VERSION,
        "task": task.name,
        "task_options": task.options(),
        "kind": task.kind.value,
        "model": name,
        "spatial_dims": task.spatial_dims,
        "in_channels": task.in_channels,
        "network_in_channels": task.network_channels,
        "num_outputs": task.num_outputs,
        "options": options,
        "input_size": list(task.input_size),
        "class_names": list(task.class_names),
        "output_names": list(task.output_names),
        "input": {"shape": input_shape, "dtype": "float32", "is": _input_text(task)},
        "output": {"shape": output_shape_, "dtype": "float32", "is": _output_text(task)},
        "preprocessing": preprocessing_text(task),
        "postprocessing": postprocessing_text(task),
        "model.onnx": {
            "inputs": {"image": "the input above (raw images): the preprocessing is in the graph"},
            "outputs": onnx_outputs,
            "dynamic_axes": "the batch axis only: images must have the size input_size",
        },
        "members": members,
        "model.safetensors": {"holds": weights},
    }


def export_run(run: Run, fmt: str, *, out: Path | None = None) -> Path:
    """Write the trained CNN to ``RUN/export/model.<fmt>`` (and ``model.json``); returns its path."""
    if fmt not in FORMATS:
        raise RunError(f"unknown export format {fmt!r}; valid: {', '.join(FORMATS)}")
    task = run.task
    members = run.predictor("cnn")
    wrapped = RawImageModel(members, task).eval()
    example = torch.zeros((2, task.in_channels, *task.input_size))
    with torch.no_grad():
        outputs = wrapped(example)
    output = outputs[0] if isinstance(outputs, tuple) else outputs
    description = model_description(run, tuple(output.shape[1:]), members=len(members))
    folder = Path(out) if out else run.path / "export"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"model.{fmt}"
    if fmt == "onnx":
        batch = torch.export.Dim("batch", min=1)
        with atomic_output(target) as tmp, _quiet_exporter():
            # external_data=False: the weights go inside the one file. Beside it they would be
            # named after the temporary file, which the final rename does not carry along.
            torch.onnx.export(
                wrapped,
                (example,),
                str(tmp),
                dynamo=True,
                external_data=False,
                input_names=["image"],
                output_names=["output", "logits"] if _classes(task) else ["output"],
                dynamic_shapes=({0: batch},),
                verbose=False,
            )
    else:
        state = {
            (f"member{k}.{name}" if len(members) > 1 else name): value.contiguous()
            for k, net in enumerate(members)
            for name, value in net.state_dict().items()
        }
        # safetensors' save_file writes its own temporary file (mode 0600) and renames it onto
        # ours; the bytes written into ours keep the mode the umask gives every output.
        data = save(state, metadata={"astrocnn": json.dumps(description)})
        with atomic_output(target) as tmp:
            tmp.write_bytes(data)
    with atomic_output(target.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(description, indent=2) + "\n")
    return target


def _export_files(path: str | Path) -> tuple[Path, Path]:
    """``model.safetensors`` and ``model.json`` of an export folder, or of a .safetensors path."""
    path = Path(path)
    if path.is_dir():
        weights = path / "model.safetensors"
    elif path.suffix == ".safetensors":
        weights = path
    elif not path.exists():
        raise RunError(f"{path}: does not exist")
    else:
        raise RunError(f"{path}: neither an export folder nor a .safetensors file")
    return weights, weights.with_suffix(".json")


def _read_description(path: Path) -> dict[str, Any]:
    try:
        description = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path}: does not exist") from None
    except OSError as error:
        raise RunError(f"{path}: cannot be read ({error.strerror or type(error).__name__})") from None
    except ValueError as error:  # a JSONDecodeError or a UnicodeDecodeError
        raise RunError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(description, dict):
        raise RunError(f"{path}: not a model description (a JSON object)")
    missing = [k for k in ("model", "spatial_dims", "in_channels", "num_outputs") if k not in description]
    if missing:
        raise RunError(f"{path}: no {', '.join(missing)} in it")
    return description


def _load(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    weights, json_path = _export_files(path)
    try:
        state = load_file(str(weights))
    except FileNotFoundError:
        raise RunError(f"{weights}: does not exist") from None
    except OSError as error:
        raise RunError(f"{weights}: cannot be read ({error.strerror or type(error).__name__})") from None
    except SafetensorError as error:
        raise RunError(f"{weights}: not a safetensors file ({error})") from None
    description = _read_description(json_path)
    count = description.get("members", 1)
    if not isinstance(count, int) or count < 1:
        raise RunError(f"{json_path}: members must be a whole number of at least 1, not {count!r}")
    try:
        options = model_kwargs(description.get("options", {}), "options")
        if "input_size" in options:
            options["input_size"] = tuple(options["input_size"])
        members = [
            create_model(
                description["model"],
                spatial_dims=description["spatial_dims"],
                in_channels=description.get("network_in_channels", description["in_channels"]),
                num_outputs=description["num_outputs"],
                **options,
            )
            for _ in range(count)
        ]
    except AstroCNNError as error:
        raise RunError(f"{json_path}: {error}") from None
    for k, model in enumerate(members):
        prefix = f"member{k}." if count > 1 else ""
        part = {name[len(prefix) :]: value for name, value in state.items() if name.startswith(prefix)}
        try:
            model.load_state_dict(part)
        except RuntimeError as error:
            first = str(error).splitlines()[0]
            raise RunError(
                f"{weights}: the weights do not fit the network of {json_path} ({first})"
            ) from None
        model.eval()
    return (members[0] if count == 1 else nn.ModuleList(members)), description


def load_safetensors_model(path: str | Path) -> nn.Module:
    """Rebuild an exported network from ``model.safetensors`` and its ``model.json``, in eval mode;
    an exported ensemble as an ``nn.ModuleList`` of its networks.

    ``path`` is the export folder or the .safetensors file. The network takes preprocessed images
    and gives its raw output; :func:`load_exported` adds both steps (and an ensemble's mean)."""
    return _load(path)[0]


def load_exported(path: str | Path) -> Callable[[np.ndarray], np.ndarray]:
    """A function raw images (N, C, *S) -> what ``astrocnn predict`` returns, from an export
    folder (or its .safetensors file): the network with its task's preprocessing and
    postprocessing, as the run applied them."""
    model, description = _load(path)
    try:
        task = saved_task(description["task"], description.get("task_options"))
    except (KeyError, AstroCNNError) as error:
        raise RunError(f"{_export_files(path)[1]}: no usable task in it ({error})") from None

    def predict(raw: np.ndarray) -> np.ndarray:
        return predict_array(model, task, raw)

    return predict
