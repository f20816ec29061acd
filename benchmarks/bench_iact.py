"""Cherenkov-telescope tasks: the default runs, and the ways a hexagonal image reaches a network.

1. ``astrocnn train iact-gamma-hadron`` and ``astrocnn train iact-energy`` with their defaults:
   the CNN, the fully connected network and the Hillas + gradient-boosted-trees baseline on the
   same events.
2. What the true impact distance gives the baseline's trees, besides the Hillas parameters
   (``bound``): how much of their error is the impact distance's.
3. ``iact-energy`` on the same events for three networks: the default resnet18 on the
   axial mapping, the same on the bilinear mapping, and the native hexagonal ``hexnet``
   (hexagonal kernels on the axial grid, equal to the pixel-neighbour-table convolution) with
   resnet18's widths and depth, so a similar parameter count. To fit the benchmark's time, with
   fewer events and epochs than the defaults (``MAPPING_SETTINGS``); the fully connected network
   and the baseline are skipped (they are in part 1).

Writes the section "iact" of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import astrocnn
from report import write_section

METHODS = (("cnn", "CNN (resnet18)"), ("mlp", "fully connected"), ("baseline", "Hillas + trees"))
#: The mapping comparison's training (the defaults' would take three times the default run).
MAPPING_SETTINGS = {"n_train": 4000, "n_val": 600, "n_test": 2000, "epochs": 8}
#: The energy goal: the CNN's resolution at most this fraction of the baseline's in every bin.
RESOLUTION_GOAL = 0.8


def _train(task: str, out: Path, **options: Any) -> tuple[dict[str, Any], Any, float]:
    t0 = time.perf_counter()
    run = astrocnn.train(task, out=str(out), progress_bar=False, **options)
    return run.metrics["results"], run.config, time.perf_counter() - t0


def _f(value: Any, digits: int = 4) -> str:
    return (
        "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"
    )


def _pm(r: dict[str, Any], key: str, digits: int = 4) -> str:
    err = r.get(f"{key}_err")
    return _f(r.get(key), digits) + ("" if err is None else f" ± {_f(err, digits)}")


def _q(r: dict[str, Any], efficiency: int) -> str:
    """Q with the number of test protons behind it (none passing: no value)."""
    protons = r.get(f"q_factor_{efficiency}_protons")
    return f"{_pm(r, f'q_factor_{efficiency}', 2)} ({_f(protons, 1)} p)"


def gamma_hadron(tmp: Path) -> tuple[str, dict[str, Any]]:
    results, config, seconds = _train("iact-gamma-hadron", tmp / "gh")
    rows = [
        "| method | parameters | AUC | accuracy | Q at 50 % | Q at 80 % |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, label in METHODS:
        r = results[key]
        params = f"{r['parameters']:,}" if "parameters" in r else "-"
        rows.append(
            f"| {label} | {params} | {_pm(r, 'auc')} | {_pm(r, 'accuracy')} | {_q(r, 50)} | {_q(r, 80)} |"
        )
    text = (
        f"### iact-gamma-hadron, default run\n\n`astrocnn train iact-gamma-hadron` (seed {config.seed}): "
        f"{config.n_train} training, {config.n_val} validation and {config.n_test} test events "
        f"(half protons), {config.epochs} epochs, {seconds:.0f} s including the simulation. "
        "Errors: bootstrap over the test events. (N p): the test protons that pass the cut behind "
        "a quality factor; with a handful of them Q is a rough estimate.\n\n" + "\n".join(rows)
    )
    return text, results


def _bin_counts(run_dir: Path, bins: list[float]) -> list[int] | None:
    """Test events per bin of true log10 E, from the run's saved predictions (None if absent)."""
    import numpy as np

    path = run_dir / "predictions.npz"
    if not path.exists():
        return None
    with np.load(path) as f:
        key = next((k for k in ("y", "target", "targets", "truth") if k in f.files), None)
        if key is None:
            return None
        true = np.asarray(f[key], float).reshape(len(f[key]), -1)[:, 0]  # log10 E (then the impact)
    return np.histogram(true, bins=bins)[0].tolist()


def energy(tmp: Path) -> str:
    results, config, seconds = _train("iact-energy", tmp / "energy")
    bins = results["cnn"]["energy_resolution_bins"]
    counts = _bin_counts(tmp / "energy", bins)
    head = [
        "| log10(E/TeV) | test events | "
        + " | ".join(f"{label} res. / bias" for _, label in METHODS)
        + " | CNN / trees |"
    ]
    head.append("|---|---:|" + "---:|" * len(METHODS) + "---:|")
    for b in range(len(bins) - 1):
        cells = []
        for key, _ in METHODS:
            r = results[key]
            cells.append(f"{_f(r['energy_resolution'][b], 3)} / {_f(r['energy_bias'][b], 3)}")
        if all(c.startswith("n/a") for c in cells):
            continue
        ratio = results["cnn"]["energy_resolution"][b] / results["baseline"]["energy_resolution"][b]
        mark = "" if math.isnan(ratio) else (" (goal met)" if ratio <= RESOLUTION_GOAL else "")
        count = counts[b] if counts is not None else "-"
        head.append(
            f"| {bins[b]:.1f} - {bins[b + 1]:.1f} | {count} | "
            + " | ".join(cells)
            + f" | {_f(ratio, 2)}{mark} |"
        )
    summary = ", ".join(f"{label} {_pm(results[key], 'energy_resolution_mean', 3)}" for key, label in METHODS)
    if "impact_resolution" in results["cnn"]:
        summary += ". The second output, the impact distance (68 % containment of its error): " + ", ".join(
            f"{label} {_pm(results[key], 'impact_resolution', 1)} m" for key, label in METHODS
        )
    return (
        f"### iact-energy, default run\n\n`astrocnn train iact-energy` (seed {config.seed}): "
        f"{config.n_train} training and {config.n_test} test gamma rays, {config.epochs} epochs, "
        f"{seconds:.0f} s. Resolution: 68 % containment of |E_reco / E_true - 1|; bias: its median "
        f"(bins with fewer than 10 events left out). Mean resolution over the bins: {summary}. "
        f"Goal: the CNN's resolution at most {RESOLUTION_GOAL} of the trees' in every bin.\n\n"
        + "\n".join(head)
    )


def mappings(tmp: Path) -> str:
    rows = [
        "| network | mapping | parameters | mean energy resolution | impact resolution | time |",
        "|---|---|---:|---:|---:|---:|",
    ]
    variants = (
        ("resnet18 (width 0.25)", "axial", {}),
        ("resnet18 (width 0.25)", "bilinear", {}),
        ("hexnet (resnet18's widths x 0.25, hexagonal kernels)", "axial", {"model": "hexnet"}),
    )
    for i, (label, mapping, options) in enumerate(variants):
        results, _, seconds = _train(
            # no rotations, so that all three see exactly the same events
            "iact-energy", tmp / f"map{i}", task_options={"mapping": mapping, "augment": "no"},
            train_mlp=False,
            baseline=False, **MAPPING_SETTINGS, **options,
        )  # fmt: skip
        r = results["cnn"]
        rows.append(
            f"| {label} | {mapping} | {r['parameters']:,} | {_pm(r, 'energy_resolution_mean', 3)} | "
            f"{_pm(r, 'impact_resolution', 1)} m | {seconds:.0f} s |"
        )
    settings = ", ".join(f"{k} {v}" for k, v in MAPPING_SETTINGS.items())
    return (
        "### Square mappings against the native hexagonal convolution\n\n"
        f"`iact-energy` (same events, seed 0; {settings}: fewer than the defaults, to fit the "
        "benchmark's time; `augment=no` for all three, so that they see exactly the same events), "
        "the CNN only: the energy task, because on particle type every network is within a few "
        "10^-4 of an AUC of 1 on these events and cannot be told apart. `hexnet`: resnet18's widths "
        "(x 0.25) and depth with "
        "hexagonal kernels (`HexConv2d`, a 3 x 3 kernel without the two corners that are not "
        "lattice neighbours, so 7 of its 9 weights are used: the count includes the two unused) on "
        "the axial grid, stride 2 between stages. (Its first version, a gather over the "
        "pixel-neighbour table on all 560 pixels without pooling, took about 3 minutes an epoch; the "
        "masked Conv2d runs at Conv2d's speed.)\n\n" + "\n".join(rows)
    )


#: The information bound's events: as many as the default run's training and test splits, twice.
BOUND_EVENTS = {"n_train": 20000, "n_test": 6000}


def bound() -> str:
    """How much of the Hillas baseline's energy error is the impact distance's: the same
    gradient-boosted trees given, besides the Hillas parameters and the time gradient, the true
    impact distance (which no image analysis knows). Not a bound: other estimators with the
    same truth, or with the shower maximum's depth too, do better (docs/iact.md)."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingRegressor

    from astrocnn.tasks.iact.tasks import HEADLINE_BINS, IactEnergy

    task = IactEnergy(impact="no")
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    train = task.generate(BOUND_EVENTS["n_train"], rng, "train")
    test = task.generate(BOUND_EVENTS["n_test"], rng, "test")
    features = {"Hillas + time gradient (the baseline)": (task.hillas(train), task.hillas(test))}
    extra = (train.meta["impact"][:, None], test.meta["impact"][:, None])
    features["the same + the true impact distance"] = tuple(
        np.hstack([f, e]) for f, e in zip(next(iter(features.values())), extra, strict=True)
    )
    y = np.asarray(train.y).reshape(-1)
    results = {}
    for label, (a, b) in features.items():
        model = HistGradientBoostingRegressor(max_iter=300, learning_rate=0.1, random_state=0).fit(a, y)
        results[label] = task.metrics(model.predict(b)[:, None], test)
    seconds = time.perf_counter() - t0
    bins = next(iter(results.values()))["energy_resolution_bins"]
    counts = np.histogram(np.asarray(test.y).reshape(-1), bins=bins)[0]
    labels = list(results)
    rows = [
        "| log10(E/TeV) | test events | " + " | ".join(labels) + " | ratio |",
        "|---|---:|---:|---:|---:|",
    ]
    for b in range(len(bins) - 1):
        values = [results[k]["energy_resolution"][b] for k in labels]
        if any(math.isnan(v) for v in values):
            continue
        rows.append(
            f"| {bins[b]:.1f} - {bins[b + 1]:.1f} | {counts[b]} | "
            + " | ".join(_f(v, 3) for v in values)
            + f" | {_f(values[1] / values[0], 2)} |"
        )
    means = " and ".join(f"{_f(results[k]['energy_resolution_mean'], 3)}" for k in labels)
    low, high = HEADLINE_BINS
    return (
        "### iact-energy: what the true impact distance gives the baseline's trees\n\n"
        "`python benchmarks/bench_iact.py` (part `bound`): the baseline's gradient-boosted trees "
        "trained once on the Hillas parameters and the time gradient, once with the true impact "
        f"distance added, on {BOUND_EVENTS['n_train']} training and {BOUND_EVENTS['n_test']} test "
        f"gamma rays (seed 0; {seconds:.0f} s). A gamma ray's light density at the telescope is "
        "flat out to 120 m and falls beyond, so the energy is the image's size over a density "
        "that only the impact distance fixes; what the true distance leaves is the photoelectron "
        "statistics, the night-sky noise, the cleaning and the camera's edge, which no analysis "
        "of the image removes. Not a bound on what an analysis of the image can reach: estimators "
        "with the same truth that use the light pool's shape, or that also know the depth of the "
        f"shower maximum, do better (docs/iact.md). Mean resolution over log10 E {low} - {high}: {means}."
        "\n\n" + "\n".join(rows)
    )


#: The page's subsections, in order: part name -> its heading.
HEADINGS = {
    "gamma_hadron": "### iact-gamma-hadron, default run",
    "energy": "### iact-energy, default run",
    "bound": "### iact-energy: what the true impact distance gives the baseline's trees",
    "mappings": "### Square mappings against the native hexagonal convolution",
}
NOT_RERUN = "*Not rerun with the parts above (`--only`): the last measurement, with the code of its date.*"


def _previous(path: Path, part: str) -> str:
    """A part's subsection as the page holds it now (for the parts ``--only`` leaves out)."""
    text = path.read_text() if path.exists() else ""
    heading = HEADINGS[part]
    start = text.find(heading)
    if start < 0:
        return f"{heading}\n\nNot measured yet."
    ends = [text.find(h, start + len(heading)) for h in [*HEADINGS.values(), "<!-- end iact -->"]]
    end = min(e for e in ends if e > start)
    body = text[start + len(heading) : end].strip().replace(NOT_RERUN, "").strip()
    return f"{heading}\n\n{NOT_RERUN}\n\n{body}"


def _part(name: str) -> tuple[str, dict[str, Any] | None]:
    with tempfile.TemporaryDirectory() as tmp:
        if name == "gamma_hadron":
            return gamma_hadron(Path(tmp))
        if name == "bound":
            return bound(), None
        if name == "mappings":
            return mappings(Path(tmp)), None
        return energy(Path(tmp)), None


def _one_share_of_threads() -> None:
    import os

    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument(
        "--jobs", type=int, default=1, help="2: the two default runs at once, in two processes"
    )
    parser.add_argument(
        "--only",
        default=",".join(HEADINGS),
        help=f"comma-separated parts to run ({', '.join(HEADINGS)}); the page keeps the others",
    )
    args = parser.parse_args()
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(HEADINGS))
    if unknown:
        parser.error(f"unknown part {unknown[0]!r}; the parts are {', '.join(HEADINGS)}")
    texts: dict[str, str] = {}
    runs = [p for p in ("gamma_hadron", "energy") if p in parts]
    if args.jobs > 1 and len(runs) == 2:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # half the cores each: two processes with every core's threads oversubscribe the CPU
        with ProcessPoolExecutor(
            2, mp_context=multiprocessing.get_context("spawn"), initializer=_one_share_of_threads
        ) as pool:
            futures = {p: pool.submit(_part, p) for p in runs}
            texts.update({p: f.result()[0] for p, f in futures.items()})
    for part in parts:
        if part not in texts:
            texts[part] = _part(part)[0]
        print(texts[part], flush=True)
    body = "\n\n".join(texts.get(p) or _previous(args.out, p) for p in HEADINGS)
    write_section(args.out, "iact", "Cherenkov telescopes: particle type and energy", body)


if __name__ == "__main__":
    main()
