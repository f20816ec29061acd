"""Sky shapes: how the classical baseline's radial profile is normalised (issue 16).

For each seed the train, validation and test splits are generated exactly as ``astrocnn train
sky-shapes --seed SEED`` generates them (task defaults), and the task's own ``baseline(train,
test)`` (preprocessing, features, gradient boosting) is fitted once per normalisation of the
profile in ``profile_features``: its central bin (the old behaviour), the flux inside 12 px, or
the flux of the pixels above 2 sigma (the default). The differences are paired: every
normalisation sees the same images.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from functools import partial
from pathlib import Path
from unittest import mock

from astrocnn.engine.config import RunConfig
from astrocnn.engine.splits import generated_splits
from astrocnn.engine.train import with_task_defaults
from astrocnn.tasks import get_task, sky_shapes
from report import write_section

LABELS = {
    "centre": "central bin (old)",
    "aperture": "flux inside 12 px",
    "isophotal": "flux above 2 sigma (default)",
}


def accuracies(seed: int, normalisations: list[str], split: str) -> dict[str, float]:
    """Accuracy of the task's baseline on one seed's test (or validation) split, per normalisation."""
    task = get_task("sky-shapes")
    config = with_task_defaults(RunConfig(task="sky-shapes", seed=seed), task)
    train, val, test = generated_splits(task, config)
    target = test if split == "test" else val
    result = {}
    for normalise in normalisations:
        features = partial(sky_shapes.profile_features, normalise=normalise)
        with mock.patch.object(sky_shapes, "profile_features", features):
            prediction = task.baseline(train, target)
        result[normalise] = task.metrics(prediction, target)["accuracy"]
    return result


def mean_and_sem(values: list[float]) -> tuple[float, float]:
    sem = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return statistics.fmean(values), sem


def table(rows: list[dict[str, float]], normalisations: list[str]) -> str:
    reference, others = normalisations[0], normalisations[1:]
    diffs = [f"{n} - {reference}" for n in others]
    lines = [
        "| seed | " + " | ".join(normalisations + diffs) + " |",
        "|---:|" + "---:|" * (len(normalisations) + len(diffs)),
    ]
    columns: dict[str, list[float]] = {c: [] for c in normalisations + diffs}
    for seed, row in enumerate(rows):
        for n in normalisations:
            columns[n].append(row[n])
        for n, d in zip(others, diffs, strict=True):
            columns[d].append(row[n] - row[reference])
        lines.append(f"| {seed} | " + " | ".join(f"{columns[c][-1]:.3f}" for c in normalisations))
        lines[-1] += "".join(f" | {100 * columns[d][-1]:+.1f} pt" for d in diffs) + " |"
    stats = {c: mean_and_sem(v) for c, v in columns.items()}
    lines.append("| **mean** | " + " | ".join(f"**{stats[c][0]:.4f}**" for c in normalisations))
    lines[-1] += "".join(f" | **{100 * stats[d][0]:+.2f} pt**" for d in diffs) + " |"
    lines.append("| s.e.m. | " + " | ".join(f"{stats[c][1]:.4f}" for c in normalisations))
    lines[-1] += "".join(f" | {100 * stats[d][1]:.2f} pt" for d in diffs) + " |"
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=8, help="seeds 0 .. SEEDS-1 (default 8)")
    parser.add_argument(
        "--normalisations",
        default="centre,aperture,isophotal",
        help="comma-separated, from " + ", ".join(sky_shapes.NORMALISATIONS) + "; the first is the reference",
    )
    parser.add_argument("--split", choices=("test", "val"), default="test", help="where accuracy is measured")
    parser.add_argument("--out", type=Path, default=None, help="write the section into this file")
    args = parser.parse_args()
    normalisations = args.normalisations.split(",")
    for n in normalisations:
        if n not in sky_shapes.NORMALISATIONS:
            parser.error(f"unknown normalisation {n!r}; choose from {', '.join(sky_shapes.NORMALISATIONS)}")
    t0 = time.perf_counter()
    rows = []
    for seed in range(args.seeds):
        rows.append(accuracies(seed, normalisations, args.split))
        print(f"seed {seed}: " + ", ".join(f"{n} {a:.3f}" for n, a in rows[-1].items()), flush=True)
    seconds = time.perf_counter() - t0
    d = get_task("sky-shapes").defaults
    size = d.n_test if args.split == "test" else d.n_val
    legend = "; ".join(f"`{n}`: {LABELS[n]}" for n in normalisations)
    body = (
        f"Accuracy of the classical baseline (`SkyShapes.baseline`: radial profile, ellipticity and "
        f"log flux into a gradient-boosted classifier) on the {args.split} split ({size} images) of "
        f"seeds 0 to {args.seeds - 1}, trained on {d.n_train} images each, with the splits "
        f"`astrocnn train sky-shapes --seed SEED` generates; {seconds:.0f} s in all. The profile is "
        f"divided by: {legend}. Differences are paired (same images), in percentage points; "
        "s.e.m.: standard error of the mean over seeds.\n\n" + table(rows, normalisations)
    )
    if args.out is not None:
        write_section(args.out, "sky-baseline", "Sky shapes: normalisation of the baseline's profile", body)
    print(body)


if __name__ == "__main__":
    main()
