"""Export a trained network: ONNX for inference elsewhere, safetensors for weights that load
without unpickling anything."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from astrocnn.data.writers import atomic_output
from astrocnn.engine.config import model_kwargs
from astrocnn.engine.run import Run, RunError
from astrocnn.models import create_model, get_model_spec

FORMATS = ("onnx", "safetensors")


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


def model_description(run: Run) -> dict[str, Any]:
    """Everything needed to rebuild the trained CNN and use its outputs, as plain JSON."""
    task = run.task
    name = run.config.model
    options = dict(run.config.model_options)
    if get_model_spec(name).needs_input_size:
        options["input_size"] = list(task.input_size)
    return {
        "format": "astrocnn-model/1",
        "task": task.name,
        "kind": task.kind.value,
        "model": name,
        "spatial_dims": task.spatial_dims,
        "in_channels": task.in_channels,
        "num_outputs": task.num_outputs,
        "options": options,
        "input_size": list(task.input_size),
        "class_names": list(task.class_names),
        "outputs": "logits" if task.class_names else "values",
        "preprocessing": f"astrocnn task {task.name!r} preprocess() (apply before the network)",
    }


def export_run(run: Run, fmt: str, *, out: Path | None = None) -> Path:
    """Write the trained CNN to ``RUN/export/model.<fmt>`` (and ``model.json``); returns its path."""
    if fmt not in FORMATS:
        raise RunError(f"unknown export format {fmt!r}; valid: {', '.join(FORMATS)}")
    model = run.model("cnn")
    description = model_description(run)
    folder = Path(out) if out else run.path / "export"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"model.{fmt}"
    if fmt == "onnx":
        example = torch.zeros((2, run.task.in_channels, *run.task.input_size))
        batch = torch.export.Dim("batch", min=1)
        with atomic_output(target) as tmp, _quiet_exporter():
            torch.onnx.export(
                model,
                (example,),
                str(tmp),
                dynamo=True,
                input_names=["image"],
                output_names=["output"],
                dynamic_shapes=({0: batch},),
                verbose=False,
            )
    else:
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        with atomic_output(target) as tmp:
            save_file(state, str(tmp), metadata={"astrocnn": json.dumps(description)})
    with atomic_output(target.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(description, indent=2) + "\n")
    return target


def load_safetensors_model(path: str | Path) -> nn.Module:
    """Rebuild an exported network from ``model.safetensors`` and its ``model.json``, in eval mode."""
    path = Path(path)
    try:
        description = json.loads(path.with_suffix(".json").read_text())
        state = load_file(str(path))
    except (OSError, ValueError) as error:
        raise RunError(f"{path}: cannot load the exported model ({type(error).__name__})") from None
    options = model_kwargs(description["options"])
    if "input_size" in options:
        options["input_size"] = tuple(options["input_size"])
    model = create_model(
        description["model"],
        spatial_dims=description["spatial_dims"],
        in_channels=description["in_channels"],
        num_outputs=description["num_outputs"],
        **options,
    )
    model.load_state_dict(state)
    return model.eval()
