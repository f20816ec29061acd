"""After training: predictions, metrics.json, plots and the report of a run.

Every metric of a method's predictions comes with its standard error over the test samples,
``<metric>_err`` beside ``<metric>``, and every method with ``n_test``: a number from 300 test
images is not a number from 30 000, and the report and the CLI should say so. The error is the
spread of the metric over :data:`BOOTSTRAP` resamples of the test set (the metric need not be a
mean, and a subset it scores, e.g. one lattice size, has its own n); where one evaluation of the
metrics is too slow for that, accuracy gets the binomial sqrt(p (1 - p) / n) and the rest none.
Metrics a task gives its own uncertainty (``tc_estimate`` and ``tc_uncertainty``) keep it.

A method trained as an ensemble (``--ensemble N``: N networks, seeds s, s + 1, ...) is scored on
the mean of its members' predictions, a deep ensemble (Lakshminarayanan, Pritzel and Blundell,
NeurIPS 2017): for a classifier the mean of the class probabilities, for values and images the
mean values. Members trained from different initial weights and batch orders err partly
independently, and the mean keeps what they agree on.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from astrocnn.data.writers import atomic_output
from astrocnn.engine.config import RunConfig
from astrocnn.engine.report import has_own_uncertainty, small_test_warning, write_report
from astrocnn.engine.run import predict_array, rank_zero_warn_line
from astrocnn.tasks import Task, plotting
from astrocnn.tasks.base import ArraySplit, TaskKind

#: Resamples of the test set behind each standard error, and their seed (the errors are
#: reproducible: ``astrocnn evaluate`` recomputes them exactly).
BOOTSTRAP = 200
BOOTSTRAP_SEED = 0
#: Metadata that fix a test set's design (the Ising generator draws a set number of
#: configurations at each lattice size and temperature): resamples keep every such cell's size.
STRATA = ("size", "temperature")
#: Metadata naming the Markov chain a sample comes from (numbered within its cell): whole chains
#: are resampled, as successive samples of a chain are correlated (as in ``ising.analysis``).
BLOCKS = "chain"
#: Share of the resamples that must give a finite value for an error to be quoted.
MIN_FINITE = 0.8


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


def _number(value: Any) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool) and math.isfinite(value)


def resample_plan(test: ArraySplit) -> list[list[np.ndarray]] | None:
    """The test samples as blocks to resample, grouped by cell (:data:`STRATA`): each block a
    Markov chain (:data:`BLOCKS`) or a single sample. None where the samples are independent
    draws of one population (plain resampling)."""
    n = len(test)
    meta = {k: np.asarray(v) for k, v in test.meta.items() if np.ndim(v) == 1 and len(v) == n}
    keys = [meta[k].astype(np.float64) for k in STRATA if k in meta]
    if not keys and BLOCKS not in meta:
        return None
    cell = np.unique(np.stack(keys, axis=1), axis=0, return_inverse=True)[1].ravel() if keys else np.zeros(n)
    block = meta.get(BLOCKS, np.arange(n))
    plan = []
    for c in np.unique(cell):
        idx = np.flatnonzero(cell == c)
        _, which = np.unique(block[idx], return_inverse=True)
        order = np.argsort(which, kind="stable")
        plan.append(np.split(idx[order], np.flatnonzero(np.diff(which[order])) + 1))
    return plan


def resample(plan: list[list[np.ndarray]] | None, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of one bootstrap resample: in every cell, as many blocks as it holds, drawn with
    replacement."""
    if plan is None:
        return rng.integers(n, size=n)
    parts: list[np.ndarray] = []
    for blocks in plan:
        parts.extend(blocks[i] for i in rng.integers(len(blocks), size=len(blocks)))
    return np.concatenate(parts)


def subset(test: ArraySplit, idx: np.ndarray) -> ArraySplit:
    n = len(test)
    x = [test.x[i] for i in idx] if isinstance(test.x, list) else test.x[idx]
    meta = {k: v[idx] if np.ndim(v) >= 1 and len(v) == n else v for k, v in test.meta.items()}
    return ArraySplit(x, test.y[idx], meta)


def _spread(replicates: list[Any]) -> float:
    """Standard deviation of the finite replicates; NaN when too few are finite."""
    values = np.array([float(v) if _number(v) else np.nan for v in replicates])
    finite = values[np.isfinite(values)]
    if len(finite) < max(2, MIN_FINITE * len(values)):
        return float("nan")
    return float(finite.std(ddof=1))


def standard_errors(
    task: Task, prediction: np.ndarray, test: ArraySplit, values: dict[str, Any]
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Standard errors of the scalar metrics ``values`` (= ``task.metrics(prediction, test)``)
    and, per bin, of its per-bin metrics (NaN for a bin without enough finite resamples).

    Resamples may be degenerate (a class or a bin left empty): what the metrics warn or raise
    about them is not the user's concern and stays off stderr; an error is quoted only where at
    least :data:`MIN_FINITE` of the resamples give a finite value."""
    n = len(test)
    scalars = [k for k, v in values.items() if _number(v) and not has_own_uncertainty(k, values)]
    binned = plotting.per_bin_metrics({"method": values})
    if n < 2:
        return {}, {}
    plan = resample_plan(test)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    replicates: list[dict[str, Any]] = []
    # a task whose metrics are themselves expensive (a T_c fit with its own bootstrap) says so;
    # decided by the task, never by a clock, so that the same run always reports the same errors
    if task.resample_metrics:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            for _ in range(BOOTSTRAP):
                idx = resample(plan, n, rng)
                try:
                    replicates.append(task.metrics(prediction[idx], subset(test, idx)))
                except Exception:  # a degenerate resample (one class left, say): not finite
                    replicates.append({})
    errors: dict[str, float] = {}
    if not replicates:  # not resampled: the binomial error of a fraction of all n samples
        p = values.get("accuracy")
        if "accuracy" in scalars and 0 <= p <= 1:
            errors["accuracy"] = math.sqrt(p * (1 - p) / n)
        return errors, {}
    for name in scalars:
        spread = _spread([r.get(name) for r in replicates])
        if math.isfinite(spread):
            errors[name] = spread
    per_bin: dict[str, list[float]] = {}
    for name in binned:
        rows = [r.get(name) for r in replicates]
        if all(isinstance(row, list) and len(row) == len(values[name]) for row in rows):
            per_bin[name] = [_spread([row[b] for row in rows]) for b in range(len(values[name]))]
    return errors, per_bin


def with_errors(values: dict[str, Any], errors: dict[str, float]) -> dict[str, Any]:
    """``values`` with ``<name>_err`` right after each metric that has an error."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        out[name] = value
        if name in errors:
            out[f"{name}_err"] = errors[name]
    return out


def member_predictions(
    task: Task, nets: list[nn.Module], raw: np.ndarray | list[np.ndarray]
) -> list[np.ndarray]:
    """Each member's natural prediction (class probabilities, values or images); a generative
    task's main network's alone: the mean of samples is not a sample."""
    if task.kind is TaskKind.GENERATION:
        nets = nets[:1]
    return [predict_array(net, task, raw) for net in nets]


def ensemble_mean(predictions: list[np.ndarray]) -> np.ndarray:
    """The members' mean, accumulated in float64 and returned in their dtype; one member's
    prediction as it is."""
    if len(predictions) == 1:
        return predictions[0]
    total = predictions[0].astype(np.float64)
    for p in predictions[1:]:
        total += p
    return (total / len(predictions)).astype(predictions[0].dtype)


def ensemble_prediction(task: Task, nets: list[nn.Module], raw: np.ndarray | list[np.ndarray]) -> np.ndarray:
    """A method's prediction: the mean of its members' (:func:`member_predictions`)."""
    return ensemble_mean(member_predictions(task, nets, raw))


def evaluate_methods(
    config: RunConfig,
    task: Task,
    test: ArraySplit,
    baseline_train: ArraySplit | None,
    members: dict[str, list[nn.Module]],
    per_bin_errors: dict[str, dict[str, list[float]]] | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """Metrics and predictions of every method on the same test split. ``members`` holds each
    method's ensemble, its main network first; a method's prediction is the mean of its members'
    (:func:`ensemble_prediction`), and an ensemble's entry holds each member's headline metric
    alone (``<headline>_members``). Each method's entry holds ``n_test`` and the standard errors
    ``<metric>_err``; the per-bin ones, kept out of metrics.json (whose lists are the metrics), go
    into ``per_bin_errors``."""
    per_member = {which: member_predictions(task, nets, test.x) for which, nets in members.items()}
    predictions = {which: ensemble_mean(p) for which, p in per_member.items()}
    results: dict[str, dict[str, Any]] = {}
    bin_errors: dict[str, dict[str, list[float]]] = {}

    def scored(method: str, prediction: np.ndarray) -> dict[str, Any]:
        values = task.metrics(prediction, test)
        errors, bin_errors[method] = standard_errors(task, prediction, test, values)
        return with_errors(values, errors)

    headline = task.headline[0]
    for method, prediction in predictions.items():
        results[method] = {
            "model": config.model if method == "cnn" else "mlp",
            "parameters": sum(p.numel() for p in members[method][0].parameters()),
            "ensemble": len(members[method]),
            "n_test": len(test),
            **scored(method, prediction),
            **task.network_metrics(members[method], test),
        }
        if len(per_member[method]) > 1:  # what each network alone scores, beside the ensemble
            alone = [task.metrics(p, test).get(headline) for p in per_member[method]]
            if all(_number(v) for v in alone):
                results[method][f"{headline}_members"] = alone
    if config.baseline and baseline_train is not None:
        base = task.baseline(baseline_train, test)
        if isinstance(base, dict):  # a classical method that is not a predictor reports its metrics
            results["baseline"] = {"n_test": len(test), **base}
        elif base is not None:
            predictions["baseline"] = base
            results["baseline"] = {"n_test": len(test), **scored("baseline", base)}
    if per_bin_errors is not None:
        per_bin_errors.update(bin_errors)
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


def per_bin_plots(
    task: Task,
    results: dict[str, dict[str, Any]],
    out: Path,
    errors: dict[str, dict[str, list[float]]] | None = None,
    drawn: Collection[Path] = (),
) -> list[Path]:
    """One figure ``<name>.png`` per per-bin metric, every method that has it on it, unless the
    task drew that file itself (``drawn``): the report shows these instead of lists of numbers."""
    written = []
    for name in plotting.per_bin_metrics(results):
        path = out / f"{name}.png"
        if path in drawn:
            continue
        axis = name.partition("_vs_")[2] or "bin"
        label = task.bin_axes.get(name) or plotting.AXIS_NAMES.get(axis, axis)
        plotting.metric_vs_bins(
            results, name, label, path, baseline_name=task.baseline_name,
            errors={m: e[name] for m, e in (errors or {}).items() if name in e}, notes=task.metric_notes,
        )  # fmt: skip
        written.append(path)
    return written


def _stamps(folder: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in folder.glob("*.png")}


def finish(
    run_dir: Path, config: RunConfig, task: Task, splits, members: dict[str, list[nn.Module]]
) -> dict[str, Any]:
    bin_errors: dict[str, dict[str, list[float]]] = {}
    results, predictions = evaluate_methods(
        config, task, splits.test, splits.baseline_train, members, per_bin_errors=bin_errors
    )
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
    before = _stamps(plots)  # a resumed run's folder may hold figures of the first attempt
    task.plots(results, splits.test, predictions, plots, networks)
    drawn = {p for p, stamp in _stamps(plots).items() if before.get(p) != stamp}
    per_bin_plots(task, results, plots, bin_errors, drawn)
    warning = small_test_warning(task, results)
    if warning:
        rank_zero_warn_line(warning)
    write_report(run_dir, task)
    return metrics
