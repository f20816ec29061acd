"""``astrocnn compare``: several networks trained on one task's data, side by side.

The lecture's claims about convolutional networks, measured: far fewer weights than a fully
connected network, and robustness to a shift of the object in the image. Every network trains on
the same training and validation splits (built once) with the engine's own training step, once
per seed (the seed changes the initial weights and the batch order, not the data), and is scored
on the same test split with the task's headline metric: on the images as they are, and on the
test images shifted by ``s`` pixels along each spatial axis, both ways (four shifted copies in 2-D,
the metric averaged over them). A periodic task (``Task.periodic``, the Ising lattices) is rolled
cyclically; any other brings in zeros at the border, where the object has left.

Results are saved first (``compare.json``); the table (Markdown, CSV) and the figures are made
from the saved results (:mod:`astrocnn.engine.compare_report`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from astrocnn.engine.config import RunConfig, resolve, save_yaml, validate
from astrocnn.engine.run import RunError, build_model, predict_array
from astrocnn.engine.splits import Splits, build_splits
from astrocnn.engine.train import _fit, check_model_fits, stage_line, with_task_defaults
from astrocnn.errors import OptionError
from astrocnn.models import get_model_spec
from astrocnn.tasks import ArraySplit, Task, get_task

DEFAULT_MODELS = ("mlp", "simple_cnn", "vgg11", "googlenet", "resnet18")
DEFAULT_SHIFTS = (0, 1, 2, 4)
#: Channel scale of the classic networks (those with a small-input mode) unless an option sets it:
#: at full width VGG-11 alone has 28 M weights, and GoogLeNet at 16 x 16 trains for minutes an epoch.
DEFAULT_WIDTH = 0.125
SHIFT_MODES = ("auto", "cyclic", "zero")


def shift_images(x: torch.Tensor, shift: int, dim: int, *, periodic: bool) -> torch.Tensor:
    """Images ``x`` (N, C, *S) moved by ``shift`` pixels (negative: the other way) along spatial
    axis ``dim`` (0 for the first of *S). ``periodic``: what leaves one edge comes back at the
    other (``torch.roll``); else zeros come in at the edge the images moved away from."""
    axis = 2 + dim
    out = torch.roll(x, shifts=shift, dims=axis)
    if not periodic and shift != 0:
        index = [slice(None)] * x.ndim
        index[axis] = slice(0, shift) if shift > 0 else slice(shift, None)
        out[tuple(index)] = 0
    return out


def shifted_copies(
    x: np.ndarray | list[np.ndarray], shift: int, spatial_dims: int, *, periodic: bool
) -> list[np.ndarray | list[np.ndarray]]:
    """The test images shifted by ``shift`` pixels along each spatial axis, both ways (2 x
    ``spatial_dims`` copies; one, the images themselves, for a shift of 0). A list of images of
    several sizes (Ising lattices of several L) is shifted image by image."""
    if shift == 0:
        return [x]
    moves = [(dim, sign * shift) for dim in range(spatial_dims) for sign in (1, -1)]
    if isinstance(x, list):
        return [
            [
                shift_images(torch.from_numpy(np.asarray(im)[None]), s, d, periodic=periodic)[0].numpy()
                for im in x
            ]
            for d, s in moves
        ]
    images = torch.from_numpy(np.ascontiguousarray(x))
    return [shift_images(images, s, d, periodic=periodic).numpy() for d, s in moves]


def parse_shifts(text: str | Sequence[int]) -> tuple[int, ...]:
    """``"0,1,2,4"`` -> ``(0, 1, 2, 4)``: distinct pixel counts, sorted, 0 (the images as they are)
    always among them."""
    items = text.split(",") if isinstance(text, str) else list(text)
    try:
        values = [int(str(v).strip()) for v in items if str(v).strip()]
    except ValueError:
        raise OptionError(
            f"--shifts must be whole pixel counts separated by commas (e.g. 0,1,2,4), got {text!r}"
        ) from None
    if any(v < 0 for v in values):
        raise OptionError(f"--shifts are pixel counts, 0 or more, got {text!r}")
    return tuple(sorted({0, *values}))


def parse_models(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"mlp,resnet18"`` -> ``("mlp", "resnet18")``; an unknown name is an error listing the valid ones."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if not names:
        raise OptionError("--models names no network (e.g. --models mlp,simple_cnn,resnet18)")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise OptionError(f"--models names {', '.join(repeated)} more than once")
    for name in names:
        get_model_spec(name)  # UnknownNameError: "unknown model ...; valid models: ..."
    return tuple(names)


def model_options(
    task: Task, model: str, width: float, given: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What ``model`` is built with: the task's own options for its default network; for the other
    classic networks (those with a small-input mode) that mode and ``width``; then ``given``."""
    if model == task.defaults.model:
        options = dict(task.defaults.model_options)
    else:
        spec_options = get_model_spec(model).options
        options = {}
        if "small_input" in spec_options:
            options["small_input"] = True
            if "width" in spec_options:
                options["width"] = width
    return {**options, **(given or {})}


def _network_config(
    base: RunConfig, task: Task, model: str, options: dict[str, Any]
) -> tuple[RunConfig, str]:
    """The run configuration of one network and the engine's name for it ("cnn", or "mlp": the
    task's own fully connected network, as ``astrocnn train`` builds it)."""
    if model == "mlp":
        return dataclasses.replace(base, train_mlp=True, model=task.defaults.model,
                                   model_options=dict(task.defaults.model_options)), "mlp"  # fmt: skip
    return dataclasses.replace(base, model=model, model_options=options, train_mlp=False), "cnn"


def _headline(task: Task, prediction: np.ndarray, test: ArraySplit) -> float:
    metric = task.headline[0]
    value = task.metrics(prediction, test).get(metric)
    if not isinstance(value, int | float):
        raise OptionError(
            f"{task.name}: its headline metric {metric!r} does not come from predictions alone; "
            "astrocnn compare needs a task that it does"
        )
    return float(value)


def score_shifts(
    predict, task: Task, test: ArraySplit, shifts: Sequence[int], *, periodic: bool
) -> dict[int, float]:
    """The headline metric of ``predict`` (raw images -> predictions) on the test split shifted by
    each of ``shifts``, averaged over the shifted copies."""
    scores = {}
    for s in shifts:
        copies = shifted_copies(test.x, s, task.spatial_dims, periodic=periodic)
        values = [_headline(task, predict(x), dataclasses.replace(test, x=x)) for x in copies]
        scores[s] = float(np.mean(values))
    return scores


def _baseline_scores(
    task: Task, splits: Splits, shifts: Sequence[int], *, periodic: bool
) -> dict[str, Any] | None:
    """The classical method's headline metric on the shifted test images (refitted for each copy:
    the baseline API fits and predicts in one call; its fit is deterministic), or None where the
    task has no classical predictor."""
    started = time.perf_counter()
    first = task.baseline(splits.baseline_train, splits.test)
    seconds = time.perf_counter() - started
    if first is None or isinstance(first, dict):
        return None

    def predict(x):
        if x is splits.test.x:
            return first
        return task.baseline(splits.baseline_train, dataclasses.replace(splits.test, x=x))

    return {"seconds": seconds, "metric": score_shifts(predict, task, splits.test, shifts, periodic=periodic)}


def _summary(runs: list[dict[str, Any]], shifts: Sequence[int]) -> dict[str, Any]:
    def spread(values: list[float]) -> float:
        return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0

    by_shift = {s: [r["metric"][str(s)] for r in runs] for s in shifts}
    return {
        "metric_mean": {str(s): float(np.mean(v)) for s, v in by_shift.items()},
        "metric_std": {str(s): spread(v) for s, v in by_shift.items()},
        "train_seconds_mean": float(np.mean([r["train_seconds"] for r in runs])),
    }


def compare(
    task: str,
    *,
    models: str | Sequence[str] = DEFAULT_MODELS,
    seeds: int = 5,
    shifts: str | Sequence[int] = DEFAULT_SHIFTS,
    out: str | Path | None = None,
    shift_mode: str = "auto",
    width: float = DEFAULT_WIDTH,
    options: dict[str, dict[str, Any]] | None = None,
    baseline: bool = True,
    task_options: dict[str, Any] | None = None,
    command: str | None = None,
    **run_options: Any,
) -> dict[str, Any]:
    """Python API of ``astrocnn compare``: train each of ``models`` ``seeds`` times on ``task``'s
    data and write the table and figures into ``out``; returns what ``compare.json`` holds.

    ``options`` maps a model to options of its network (e.g. ``{"vgg11": {"width": 0.5}}``);
    ``run_options`` are those of :func:`astrocnn.train` (``epochs``, ``n_train``, ``lr``, ``seed``:
    the first seed, ...)."""
    from astrocnn.engine.compare_report import write_report

    names = parse_models(models)
    shift_list = parse_shifts(shifts)
    if not isinstance(seeds, int) or seeds < 1:
        raise OptionError(f"--seeds must be at least 1, got {seeds!r}")
    if shift_mode not in SHIFT_MODES:
        raise OptionError(f"--shift-mode must be one of {', '.join(SHIFT_MODES)}, got {shift_mode!r}")
    if "mlp" in (options or {}):
        raise OptionError(
            "--model-option for mlp: the mlp is the task's own fully connected network, built as "
            "astrocnn train builds it; compare it as it is"
        )
    unknown = sorted(set(options or {}) - set(names))
    if unknown:
        raise OptionError(f"--model-option for {', '.join(unknown)}, which --models does not name")
    the_task = get_task(task, task_options)
    if getattr(the_task, "learns_from_data", False):
        raise OptionError(f"astrocnn compare trains on a task's built-in data; {task} needs --data")
    periodic = the_task.periodic if shift_mode == "auto" else shift_mode == "cyclic"
    base = resolve(task, task_options=task_options, progress_bar=False, **run_options)
    base = validate(with_task_defaults(base, the_task), "configuration")
    base = dataclasses.replace(base, ensemble=1, devices=1, num_nodes=1, resume=False)
    out = Path(out or f"compare-{task}")
    if (out / "compare.json").exists() or (out / "runs").exists():
        raise RunError(f"{out}: already holds a comparison; choose another --out")

    # every network is built before anything trains: a bad name, option or size fails at once
    plan = []
    for name in names:
        config, which = _network_config(
            base, the_task, name, model_options(the_task, name, width, (options or {}).get(name))
        )
        if which == "cnn":
            check_model_fits(config, the_task)
        network = build_model(config, the_task, which)
        if hasattr(network, "check_input"):  # an image too small for it is refused in one line
            network.check_input((1, the_task.network_channels, *the_task.input_size))
        parameters = sum(p.numel() for p in network.parameters())
        plan.append((name, config, which, parameters))

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    L.seed_everything(base.seed, workers=True, verbose=False)
    stage_line(f"compare {task}: making the data ({base.n_train} training, {base.n_test} test images)")
    splits = build_splits(the_task, base)
    metric, higher = the_task.headline
    results: dict[str, Any] = {
        "task": task, "metric": metric, "higher_is_better": higher, "seeds": seeds,
        "first_seed": base.seed, "shifts": list(shift_list), "shift_mode": "cyclic" if periodic else "zero",
        "command": command, "n_train": len(splits.train), "n_val": len(splits.val),
        "n_test": len(splits.test),
        "epochs": base.epochs, "batch_size": base.batch_size, "lr": base.lr, "models": {},
    }  # fmt: skip
    for name, config, which, parameters in plan:
        run_dir = out / "runs" / name
        run_dir.mkdir(parents=True, exist_ok=True)
        save_yaml(dataclasses.replace(config, out=None, ensemble=seeds), run_dir / "config.yaml")
        runs = []
        for k in range(seeds):
            started = time.perf_counter()
            network = _fit(config, run_dir, the_task, splits, which, k).float().eval()
            seconds = time.perf_counter() - started
            scores = score_shifts(
                lambda x, net=network: predict_array(net, the_task, x), the_task, splits.test, shift_list,
                periodic=periodic,
            )  # fmt: skip
            runs.append(
                {
                    "seed": base.seed + k,
                    "train_seconds": seconds,
                    "metric": {str(s): v for s, v in scores.items()},
                }
            )
            shown = ", ".join(f"{s} px {v:.4f}" for s, v in scores.items())
            stage_line(
                f"compare {task}: {name} seed {base.seed + k} ({k + 1}/{seeds}): {metric} {shown} "
                f"({seconds:.0f} s)"
            )
        results["models"][name] = {
            "parameters": parameters,
            "options": config.model_options if which == "cnn" else dict(the_task.defaults.mlp_options),
            "runs": runs,
            **_summary(runs, shift_list),
        }
    if baseline:
        stage_line(f"compare {task}: the classical baseline ({the_task.baseline_name or 'none'})")
        scores = _baseline_scores(the_task, splits, shift_list, periodic=periodic)
        if scores is not None:
            results["baseline"] = {"name": the_task.baseline_name, "seconds": scores["seconds"],
                                   "metric": {str(s): v for s, v in scores["metric"].items()}}  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    from astrocnn.data.writers import atomic_output

    with atomic_output(out / "compare.json") as tmp:
        tmp.write_text(json.dumps(results, indent=1))
    write_report(results, out)
    return results
