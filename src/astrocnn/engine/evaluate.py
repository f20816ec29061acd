"""``astrocnn evaluate``: recompute a run's metrics, on its own test split or on other data."""

from __future__ import annotations

import dataclasses
from typing import Any

from astrocnn.engine.results import evaluate_methods
from astrocnn.engine.run import METHODS, Run
from astrocnn.engine.splits import build_splits, materialise, open_labelled, record_data


def _training_data(run: Run):
    """The run's training split, which the classical baseline is fitted on; None (said on stderr)
    where the run's own data file is gone: the networks are scored all the same."""
    from astrocnn.data.readers import DataError
    from astrocnn.engine.run import rank_zero_warn_line

    try:
        record_data(run.config)
        return build_splits(run.task, run.config).baseline_train
    except DataError as error:
        rank_zero_warn_line(
            f"the run's training data are not available ({error}); the classical baseline, which is "
            "fitted on them, is left out"
        )
        return None


def evaluate_run(
    run: Run,
    data: str | None = None,
    *,
    images_key: str | None = None,
    labels_key: str | None = None,
    compile: bool = False,
) -> dict[str, Any]:
    """Metrics of every trained network of ``run`` and of the baseline, in metrics.json's shape.

    Without ``data`` the test split is regenerated from the run's seed, so the numbers equal the
    ones the run wrote. With ``data`` every image of that labelled file is scored, and the
    classical baseline is fitted on the run's own training data."""
    task = run.task
    if data is None:
        record_data(run.config)  # says so when the run's file has changed since
        splits = build_splits(task, run.config)
        test, baseline_train = splits.test, splits.baseline_train
    else:  # the whole file is the test set
        keys = {"images_key": images_key, "labels_key": labels_key}
        config = dataclasses.replace(run.config, **{k: v for k, v in keys.items() if v is not None})
        test = materialise(task, open_labelled(task, config, str(data)))
        baseline_train = _training_data(run)
    members = {which: run.members(which) for which in METHODS if run.has(which)}
    if compile:  # the compiled networks share the eager ones' parameters
        import torch

        members = {which: [torch.compile(m) for m in nets] for which, nets in members.items()}
    results, _ = evaluate_methods(run.config, run.task, test, baseline_train, members)
    return {"task": run.task.name, "results": results}
