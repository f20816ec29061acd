"""``astrocnn evaluate``: recompute a run's metrics, on its own test split or on other data."""

from __future__ import annotations

from typing import Any

from astrocnn.engine.results import evaluate_methods
from astrocnn.engine.run import METHODS, Run
from astrocnn.engine.splits import build_splits, check_labelled, materialise


def evaluate_run(run: Run, data: str | None = None) -> dict[str, Any]:
    """Metrics of every trained network of ``run`` and of the baseline, in metrics.json's shape.

    Without ``data`` the test split is regenerated from the run's seed, so the numbers equal the
    ones the run wrote. With ``data`` every image of that labelled file is scored, and the
    classical baseline is fitted on the run's own training data."""
    task = run.task
    splits = build_splits(task, run.config)
    test = splits.test
    if data is not None:  # the whole file is the test set
        from astrocnn.data.datasets import load_labelled

        dataset = load_labelled(data, in_channels=task.in_channels, spatial_dims=task.spatial_dims)
        check_labelled(task, dataset, str(data))
        test = materialise(task, dataset)
    members = {which: run.members(which) for which in METHODS if run.has(which)}
    results, _ = evaluate_methods(run.config, run.task, test, splits.baseline_train, members)
    return {"task": run.task.name, "results": results}
