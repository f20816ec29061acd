"""After training: predictions, metrics.json, plots and the report of a run."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from astrocnn.data.writers import atomic_output
from astrocnn.engine.config import RunConfig
from astrocnn.engine.report import write_report
from astrocnn.engine.run import predict_array
from astrocnn.tasks import Task, plotting
from astrocnn.tasks.base import ArraySplit


def _clean(value: Any) -> Any:
    """Strict JSON: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


def write_json(path: Path, data: dict[str, Any]) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(_clean(data), indent=2, allow_nan=False) + "\n")


def evaluate_methods(
    config: RunConfig,
    task: Task,
    test: ArraySplit,
    baseline_train: ArraySplit | None,
    members: dict[str, list[nn.Module]],
) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """Metrics and predictions of every method on the same test split. ``members`` holds each
    method's ensemble, its main network (the one whose predictions are scored) first."""
    predictions = {which: predict_array(nets[0], task, test.x) for which, nets in members.items()}
    results: dict[str, dict[str, Any]] = {}
    for method, prediction in predictions.items():
        results[method] = {
            "model": config.model if method == "cnn" else "mlp",
            "parameters": sum(p.numel() for p in members[method][0].parameters()),
            "ensemble": len(members[method]),
            **task.metrics(prediction, test),
            **task.network_metrics(members[method], test),
        }
    if config.baseline and baseline_train is not None:
        base = task.baseline(baseline_train, test)
        if isinstance(base, dict):  # a classical method that is not a predictor reports its metrics
            results["baseline"] = base
        elif base is not None:
            predictions["baseline"] = base
            results["baseline"] = task.metrics(base, test)
    return results, predictions


def read_history(run_dir: Path, which: str) -> dict[str, list[float]]:
    """Per-epoch train and validation loss from the CSV log."""
    folder = run_dir / "logs" / "csv" / which
    curves: dict[str, list[float]] = {"train": [], "val": []}
    # parts written before resumes sort first ("metrics.before-resume-NNN.csv" < "metrics.csv")
    for path in sorted(folder.glob("metrics*.csv")):
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                for key, column in (("train", "train_loss_epoch"), ("val", "val_loss")):
                    if row.get(column):
                        curves[key].append(float(row[column]))
    return curves


def finish(
    run_dir: Path, config: RunConfig, task: Task, splits, members: dict[str, list[nn.Module]]
) -> dict[str, Any]:
    results, predictions = evaluate_methods(config, task, splits.test, splits.baseline_train, members)
    networks = {which: nets[0] for which, nets in members.items()}
    with atomic_output(run_dir / "predictions.npz") as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(
                handle,
                y=splits.test.y,
                **{f"pred_{k}": v for k, v in predictions.items()},
                **{f"meta_{k}": v for k, v in splits.test.meta.items()},
            )
    metrics = {"task": task.name, "results": results}
    write_json(run_dir / "metrics.json", metrics)
    plots = run_dir / "plots"
    plots.mkdir(exist_ok=True)
    plotting.training_curves({w: read_history(run_dir, w) for w in networks}, plots / "training_curves.png")
    task.plots(results, splits.test, predictions, plots, networks)
    write_report(run_dir)
    return metrics
