"""``astrocnn evaluate``: recompute a run's metrics, on its own test split or on other data."""

from __future__ import annotations

import dataclasses
from typing import Any

from astrocnn.engine.results import evaluate_methods
from astrocnn.engine.run import METHODS, Run
from astrocnn.engine.splits import build_splits


def evaluate_run(run: Run, data: str | None = None) -> dict[str, Any]:
    """Metrics of every trained network of ``run`` and of the baseline, in metrics.json's shape.

    Without ``data`` the test split is regenerated from the run's seed, so the numbers equal the
    ones the run wrote."""
    config = run.config if data is None else dataclasses.replace(run.config, data=str(data))
    splits = build_splits(run.task, config)
    networks = {which: run.model(which) for which in METHODS if run.has(which)}
    results, _ = evaluate_methods(config, run.task, splits.test, splits.baseline_train, networks)
    return {"task": run.task.name, "results": results}
