"""A finished (or interrupted) run folder, and what can be done with it from Python."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from astrocnn.engine.config import RunConfig, load_yaml, merge, model_kwargs
from astrocnn.errors import AstroCNNError
from astrocnn.models import create_model, get_model_spec
from astrocnn.tasks import Task
from astrocnn.tasks.base import TaskKind
from astrocnn.tasks.registry import saved_task

METHODS = ("cnn", "mlp")


class RunError(AstroCNNError):
    """A run folder that is missing, incomplete or damaged."""


def member_name(which: str, k: int) -> str:
    """Checkpoint folder of ensemble member ``k`` of ``which`` ("cnn" or "mlp")."""
    return which if k == 0 else f"{which}-seed+{k}"


def build_model(config: RunConfig, task: Task, which: str = "cnn") -> nn.Module:
    """The untrained network ``which`` ("cnn" or "mlp", or an ensemble member of either) of a run."""
    if which.partition("-")[0] == "mlp":
        return task.build_mlp()
    name, options = config.model, model_kwargs(config.model_options)
    if get_model_spec(name).needs_input_size:
        options["input_size"] = task.input_size
    return create_model(
        name,
        spatial_dims=task.spatial_dims,
        in_channels=task.network_channels,
        num_outputs=task.num_outputs,
        **options,
    )


def checkpoint_problem(path: Path) -> str | None:
    """Why ``path`` is not a usable checkpoint (truncated, corrupt, carrying code), or None."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, bad pickle, a payload weights_only refuses
        return (
            f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"
            if str(error)
            else type(error).__name__
        )
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        return "no state_dict in it"
    return None


def rank_zero_warn_line(message: str) -> None:
    """One line on stderr, from the main process only."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    if rank_zero_only.rank == 0:
        print(f"astrocnn: warning: {message}", file=sys.stderr)


def load_checkpoint_weights(model: nn.Module, path: Path) -> nn.Module:
    """Load a Lightning checkpoint's weights without unpickling code (``weights_only=True``)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        state = {
            k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")
        }
        model.load_state_dict(state)
    except FileNotFoundError:
        raise RunError(f"{path}: checkpoint not found") from None
    except Exception as error:  # unpickling refused, truncated file, wrong keys
        raise RunError(
            f"{path}: not a usable checkpoint ({type(error).__name__}: {str(error)[:200]})"
        ) from None
    return model


def as_members(model: nn.Module | Sequence[nn.Module]) -> list[nn.Module]:
    """A network, or an ensemble's members, as a list."""
    return list(model) if isinstance(model, (list, tuple, nn.ModuleList)) else [model]


def mean_output(task: Task, nets: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """The task's natural prediction for preprocessed images: one network's postprocessed output,
    or the mean of an ensemble's (probabilities averaged, not logits)."""
    total = task.postprocess(nets[0](x))
    if len(nets) == 1:
        return total
    total = total.double()
    for net in nets[1:]:
        total = total + task.postprocess(net(x))
    return (total / len(nets)).float()


@torch.no_grad()
def predict_array(
    model: nn.Module | Sequence[nn.Module],
    task: Task,
    raw: np.ndarray | list[np.ndarray],
    *,
    batch_size: int = 256,
) -> np.ndarray:
    """The task's natural prediction for raw images (N, C, *S), or a list of images of several
    sizes (predicted size by size, returned in the input order). ``model`` is a network or an
    ensemble's members, whose postprocessed outputs are averaged."""
    nets = as_members(model)
    for net in nets:
        net.eval()
    if isinstance(raw, list):
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, x in enumerate(raw):
            groups.setdefault(x.shape, []).append(i)
        parts = {
            shape: predict_array(nets, task, np.stack([raw[i] for i in idx]), batch_size=batch_size)
            for shape, idx in groups.items()
        }
        first = next(iter(parts.values()))
        out = np.empty((len(raw), *first.shape[1:]), dtype=first.dtype)
        for shape, idx in groups.items():
            out[idx] = parts[shape]
        return out
    outputs = []
    for start in range(0, len(raw), batch_size):
        x = torch.from_numpy(task.preprocess(raw[start : start + batch_size]))
        outputs.append(mean_output(task, nets, x).numpy())
    return np.concatenate(outputs) if outputs else np.empty((0,))


@dataclass
class Run:
    """A run folder: its configuration, metrics and trained networks."""

    path: Path
    config: RunConfig

    @property
    def task(self) -> Task:
        return saved_task(self.config.task, self.config.task_options)

    @property
    def metrics(self) -> dict[str, Any]:
        path = self.path / "metrics.json"
        if not path.exists():
            raise RunError(f"{self.path}: no metrics.json (the run did not finish)")
        return json.loads(path.read_text())

    def checkpoint(self, which: str = "cnn", kind: str = "best") -> Path:
        return self.path / "checkpoints" / which / f"{kind}.ckpt"

    def has(self, which: str) -> bool:
        return self.checkpoint(which).exists()

    def model(self, which: str = "cnn", kind: str = "best") -> nn.Module:
        """The trained network ``which`` with its ``kind`` ("best" or "last") weights, in eval mode;
        the other checkpoint when that one is damaged (said on stderr)."""
        model = build_model(self.config, self.task, which)
        path = self.checkpoint(which, kind)
        problem = checkpoint_problem(path) if path.exists() else "missing"
        if problem is not None:
            other = self.checkpoint(which, "last" if kind == "best" else "best")
            if other.exists() and checkpoint_problem(other) is None:
                rank_zero_warn_line(
                    f"{path} is {'missing' if problem == 'missing' else 'damaged'}; using {other}"
                )
                path = other
        return load_checkpoint_weights(model, path).eval()

    def members(self, which: str = "cnn") -> list[nn.Module]:
        """The trained ensemble of ``which``, the main network first."""
        nets = [self.model(which)]
        for k in range(1, self.config.ensemble or 1):
            name = member_name(which, k)
            if self.has(name):
                nets.append(self.model(name))
        return nets

    def predictor(self, which: str = "cnn") -> list[nn.Module]:
        """What ``predict`` and ``export`` use: the ensemble whose mean prediction train and
        evaluate score (a generative task's main network alone: the mean of samples is not a
        sample)."""
        if self.task.kind is TaskKind.GENERATION:
            return [self.model(which)]
        return self.members(which)

    def predict(self, raw: np.ndarray, which: str = "cnn") -> np.ndarray:
        """The method's prediction for raw images: the mean of its ensemble's members'."""
        return predict_array(self.predictor(which), self.task, raw)


def load_run(path: str | Path) -> Run:
    """Open a run folder written by ``astrocnn train``."""
    path = Path(path)
    config_path = path / "config.yaml"
    if not config_path.is_file():
        raise RunError(f"{path}: not a run folder (no config.yaml)")
    values = load_yaml(config_path)
    if "task" not in values:
        raise RunError(f"{config_path}: no task named")
    config = merge(RunConfig(task=values["task"]), values, str(config_path))
    return Run(path, config)
