"""Ising benchmarks: Monte-Carlo speed, the T_c estimator, and the default runs of both Ising tasks.

1. Spin-flip attempts per second of astrocnn's multi-spin-coded Metropolis kernel against a
   straightforward vectorised NumPy checkerboard sweep, measured alternately in one run.
2. The Binder-crossing estimator of T_c on independent Monte-Carlo data sets: the former
   estimator (before issue 16) and the current ``analysis.tc_from_cumulants`` on the same data,
   for the current default and quick test sets and for the former default one.
3. ``astrocnn train ising-phase`` with its defaults for several seeds: T_c from the CNN, the
   fully connected network and the Binder crossing of the magnetisation.
4. ``astrocnn train ising-temperature`` with its defaults for several seeds: RMSE of T against
   the energy baseline.

Parts skipped with --skip-datasets or --skip-training, or left out by --only, keep the text they
have in --out. Without the speed part (``--only`` not naming ``speed``) the section's header and
flip-rate table stay as they are and only the subsections of the parts run are replaced, each of
which states the command and date that produced it.
"""

from __future__ import annotations

import argparse
import itertools
import math
import re
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

import astrocnn
from astrocnn.engine.run import load_run
from astrocnn.tasks.ising import analysis, tasks
from astrocnn.tasks.ising import kernels as k
from astrocnn.tasks.ising import simulation as ising
from report import machine, write_section

TC = ising.TC
#: The goal of issue 16 for a T_c estimate: |relative error| <= 0.5 % and |pull| <= 2.
GOAL_RELATIVE, GOAL_PULL = 0.005, 2.0
#: Goal for ising-temperature: the CNN's RMSE at most 5 % above the energy baseline's.
GOAL_RMSE_RATIO = 1.05
#: (name, sizes, temperature grid, its refinement, configurations per (L, T)) of the data-set
#: study: ising-phase's two-pass grid (the quick configuration reads the first 100 configurations
#: of the default's cells, so it shares the default data set's refined grid).
CONFIGURATIONS = (
    ("default", (16, 32, 64), tasks.TEMPERATURES, analysis.REFINE, 200),
    ("quick", (16, 32, 64), tasks.TEMPERATURES, analysis.REFINE, 100),
    ("former default", (16, 24, 32), "1.0:3.5:0.05", "no", 200),
)
ESTIMATORS = (("former", "former (window 2.0-2.6, median)"), ("current", "current (tc_from_cumulants)"))
DATA_SEED = 1000  # data set k uses seed DATA_SEED + k
BOOTSTRAP = 100

# subsection headings (a skipped part keeps the subsection of --out whose heading starts so)
H_DATASETS = "### Binder-crossing estimator over independent data sets"
H_PHASE = "### T_c from the default `astrocnn train ising-phase`"
H_TEMPERATURE = "### ising-temperature default run"
PARTS = ("speed", "datasets", "phase", "temperature")


# ---- 1. Monte-Carlo speed -----------------------------------------------------------------------


def flip_rates(size: int, temperature: float, repeats: int) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    words = rng.integers(0, 2**64, size=(size, size), dtype=np.uint64)
    states = k.seed_states(rng, size)
    digits = k.probability_digits(math.exp(-4.0 / temperature))
    spins = rng.choice(np.array([-1, 1], np.int8), size=(size, size))
    k.multispin_sweeps(words, digits, 1, states)  # compile
    sweeps_fast = max(1, int(4e8 / (64 * size * size)))
    sweeps_numpy = max(1, int(2e6 / (size * size)))
    fast, slow = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        k.multispin_sweeps(words, digits, sweeps_fast, states)
        fast.append(64 * size * size * sweeps_fast / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        for _ in range(sweeps_numpy):
            ising.numpy_checkerboard_sweep(spins, 1.0 / temperature, rng)
        slow.append(size * size * sweeps_numpy / (time.perf_counter() - t0))
    return statistics.median(fast), statistics.median(slow)


def speed_section(repeats: int) -> str:
    rows = []
    for size in (16, 64, 128):
        fast, slow = flip_rates(size, TC, repeats)
        rows.append(f"| {size} | {fast:.3g} | {slow:.3g} | {fast / slow:,.0f} |")
    return (
        f"Metropolis at T = T_c (J = 1), median of {repeats} alternating runs. astrocnn's kernel "
        "updates 64 replicas per 64-bit word (multi-spin coding, numba, rows of one checkerboard colour "
        "in parallel); the reference is a vectorised NumPy checkerboard sweep "
        "(`astrocnn.tasks.ising.simulation.numpy_checkerboard_sweep`)."
        "\n\n| L | astrocnn attempts/s | NumPy attempts/s | ratio |\n|---:|---:|---:|---:|\n"
        + "\n".join(rows)
    )


# ---- 2. the estimator over independent data sets ------------------------------------------------

# The T_c estimator before issue 16 (astrocnn.tasks.ising_analysis.tc_from_binder at the commit
# before it), kept here verbatim but for names and the number of resamples, to measure the change;
# its crossing and cumulant are ``analysis.crossing`` and ``analysis.binder_cumulant``, unchanged.
# Crossings are searched in a fixed window, every configuration is resampled on its own (not by
# Markov chain), and each pair of sizes contributes the median of all sign changes of U_a - U_b.
_FORMER_WINDOW = (2.0, 2.6)


def _former_cells(t: np.ndarray, size: np.ndarray):
    sizes = np.unique(size)
    temps = np.unique(t)
    return sizes, temps, {(L, T): np.flatnonzero((size == L) & (t == T)) for L in sizes for T in temps}


def _former_resamples(cells: dict, rng: np.random.Generator | None) -> dict:
    if rng is None:
        return cells
    return {key: rng.choice(idx, size=len(idx)) if len(idx) else idx for key, idx in cells.items()}


def _former_binder_tc(m: np.ndarray, sizes, temps, cells) -> tuple[float, dict]:
    window = (temps >= _FORMER_WINDOW[0]) & (temps <= _FORMER_WINDOW[1])
    u = {L: np.array([analysis.binder_cumulant(m[cells[(L, T)]]) for T in temps[window]]) for L in sizes}
    pairs = {
        (int(a), int(b)): analysis.crossing(temps[window], u[a] - u[b], 0.0)
        for a, b in itertools.combinations(sizes, 2)
    }
    values = [v for v in pairs.values() if np.isfinite(v)]
    return (float(np.mean(values)) if values else float("nan")), pairs


def _former_tc_from_binder(
    m: np.ndarray, t: np.ndarray, size: np.ndarray, seed: int = 0, bootstrap: int = BOOTSTRAP
) -> tuple[float, float]:
    """(estimate, bootstrap uncertainty) of the former ``tc_from_binder``."""
    sizes, temps, cells = _former_cells(t, size)
    tc, _pairs = _former_binder_tc(m, sizes, temps, cells)
    rng = np.random.default_rng(seed)
    boot = [_former_binder_tc(m, sizes, temps, _former_resamples(cells, rng))[0] for _ in range(bootstrap)]
    return tc, float(np.nanstd(boot))


def _arrays(data: dict[int, list[ising.IsingSamples]]) -> dict[str, np.ndarray]:
    """m, t, size and chain of every configuration, cell after cell, as
    ``baseline.binder_crossing`` reads them from a test split."""
    samples = [s for group in data.values() for s in group]
    return {
        "m": np.concatenate([s.magnetisation for s in samples]),
        "t": np.concatenate([np.full(len(s.magnetisation), s.temperature) for s in samples]),
        "size": np.concatenate([np.full(len(s.magnetisation), s.size) for s in samples]),
        "chain": np.concatenate([s.chain for s in samples]),
    }


def _first(arrays: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """The first ``n`` configurations of every (L, T) cell."""
    keep = np.zeros(len(arrays["m"]), bool)
    for L, T in {(L, T) for L, T in zip(arrays["size"], arrays["t"], strict=True)}:
        keep[np.flatnonzero((arrays["size"] == L) & (arrays["t"] == T))[:n]] = True
    return {k: v[keep] for k, v in arrays.items()}


def data_set(
    sizes: tuple[int, ...], grid: str, refine: str, per_t: int, seed: int, cache: Path | None
) -> dict:
    """``_arrays`` of ``simulation.generate_refined(sizes, grid, per_t, seed, refine)``; with
    ``cache``, read from there when an earlier run saved them (the same arguments give the same
    data) or saved there."""
    zoom = "" if analysis.parse_refine(refine) is None else f"-R{refine.replace(':', '_')}"
    temps = re.sub(r"[^0-9.]+", "_", grid)
    name = f"ising-L{'-'.join(map(str, sizes))}-T{temps}{zoom}-n{per_t}-seed{seed}.npz"
    if cache is not None and (cache / name).exists():
        with np.load(cache / name) as saved:
            return {k: saved[k] for k in ("m", "t", "size", "chain")}
    arrays = _arrays(
        ising.generate_refined(sizes, tasks.parse_grid(grid), per_t, seed, analysis.parse_refine(refine))
    )
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(cache / f"{name}.tmp.npz", **arrays)
        (cache / f"{name}.tmp.npz").replace(cache / name)
    return arrays


def estimate_all(data: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    former = _former_tc_from_binder(data["m"], data["t"], data["size"])
    current = analysis.tc_from_cumulants(
        data["m"], data["t"], data["size"], data["chain"], bootstrap=BOOTSTRAP
    )
    return {"former": former, "current": (current.estimate, current.uncertainty)}


def dataset_study(n_sets: int, cache: Path | None = None) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """(configuration, estimator) -> [(estimate, uncertainty)] over data sets DATA_SEED + k."""
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    # configurations on the same sizes and grid share one generation: the first n configurations
    # of every (L, T) cell of generate(..., per_t, seed) are exactly generate(..., n, seed)'s
    # (sample() interleaves its chains; only the sign of each configuration is drawn afterwards)
    groups: dict[tuple, list[tuple[str, int]]] = {}
    for name, sizes, grid, refine, per_t in CONFIGURATIONS:
        groups.setdefault((sizes, grid, refine), []).append((name, per_t))
    for k_set in range(n_sets):
        seed = DATA_SEED + k_set
        for (sizes, grid, refine), members in groups.items():
            t0 = time.perf_counter()
            data = data_set(sizes, grid, refine, max(n for _, n in members), seed, cache)
            seconds = time.perf_counter() - t0
            for name, per_t in members:
                for method, value in estimate_all(_first(data, per_t)).items():
                    results.setdefault((name, method), []).append(value)
                line = ", ".join(f"{m} {results[(name, m)][-1][0]:.4f}" for m, _ in ESTIMATORS)
                print(f"data set {seed}, {name}: {line} (Monte Carlo {seconds:.0f} s)", file=sys.stderr)
    return results


def summary(values: list[tuple[float, float]]) -> dict[str, float]:
    est = np.array([v[0] for v in values])
    sig = np.array([v[1] for v in values])
    ok = np.isfinite(est)
    with np.errstate(invalid="ignore", divide="ignore"):
        pull = np.where(ok & np.isfinite(sig) & (sig > 0), (est - TC) / sig, np.nan)
    good = np.isfinite(pull)
    nan = float("nan")
    return {
        "mean": float(est[ok].mean()) if ok.any() else nan,
        "spread": float(est[ok].std(ddof=1)) if ok.sum() > 1 else nan,
        "sigma": float(np.nanmean(sig[ok])) if np.isfinite(sig[ok]).any() else nan,
        "rms_rel": 100 * float(np.sqrt(np.mean(((est[ok] - TC) / TC) ** 2))) if ok.any() else nan,
        "max_err": float(np.max(np.abs(est[ok] - TC))) if ok.any() else nan,
        "rms_pull": float(np.sqrt(np.mean(pull[good] ** 2))) if good.any() else nan,
        # a data set without an estimate (or uncertainty) counts as a miss in the fractions
        "within2": float(np.mean(np.abs(np.where(good, pull, np.inf)) < 2)),
        "goal": float(
            np.mean(
                good
                & (np.abs(np.where(ok, est - TC, np.inf)) / TC <= GOAL_RELATIVE)
                & (np.abs(np.where(good, pull, np.inf)) <= GOAL_PULL)
            )
        ),
        "nan": float(np.mean(~ok)),
    }


def datasets_section(n_sets: int, cache: Path | None = None) -> str:
    t0 = time.perf_counter()
    results = dataset_study(n_sets, cache)
    minutes = (time.perf_counter() - t0) / 60
    rows = [
        "| configuration | estimator | mean T_c | spread (SD) | mean quoted σ | RMS rel. error | "
        "max abs error | RMS pull | abs pull < 2 | goal met | NaN |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, *_ in CONFIGURATIONS:
        for method, label in ESTIMATORS:
            s = summary(results[(name, method)])
            rows.append(
                f"| {name} | {label} | "
                f"{s['mean']:.4f} | {s['spread']:.4f} | {s['sigma']:.4f} | {s['rms_rel']:.2f} % | "
                f"{s['max_err']:.4f} | {s['rms_pull']:.2f} | {100 * s['within2']:.0f} % | "
                f"{100 * s['goal']:.0f} % | {100 * s['nan']:.0f} % |"
            )
    return (
        f"{H_DATASETS}\n\n"
        f"{_provenance()} {n_sets} independent Monte-Carlo data sets "
        f"(`simulation.generate(sizes, temperatures, per_t, seed)`, seeds {DATA_SEED} to "
        f"{DATA_SEED + n_sets - 1}; {minutes:.0f} min in all"
        + (", the data sets kept in or read from `--cache`" if cache else "")
        + "). Each data set's magnetisations are "
        "given to both estimators: the former one (before issue 16: crossings searched in the fixed "
        "window 2.0 ≤ T ≤ 2.6, the median of every sign change of U_a - U_b per pair of sizes, "
        "the pairs averaged, configurations resampled one by one) and the current "
        "`analysis.tc_from_cumulants` (the classical baseline's estimator: the crossing of the smallest "
        "and the largest lattice where their cumulants separate significantly on both sides, whole "
        "Markov chains resampled, rescaled for the number of chains per cell). Both with "
        f"{BOOTSTRAP} bootstrap resamples. The quick configuration uses the first 100 configurations "
        "of every (L, T) cell of the default data set, which are exactly what "
        "`generate(..., 100, seed)` returns. The former default (sizes 16, 24, 32, T = 1.0 to 3.5 in "
        "steps of 0.05) is the test set the former estimator was designed for.\n\n"
        f"Exact T_c = {TC:.6f}. Pull = (estimate - T_c) / quoted σ; spread: standard deviation of the "
        "estimates over the data sets, to compare with the mean quoted σ. Goal met: |relative error| "
        f"≤ {100 * GOAL_RELATIVE:.1f} % and |pull| ≤ {GOAL_PULL:.0f}. A data set without an estimate "
        "counts as a miss in the fractions.\n\n"
        + "\n".join(
            f"- {name}: sizes {', '.join(map(str, sizes))}; T = {grid}"
            + ("" if analysis.parse_refine(refine) is None else f", refined ({refine}) around its crossing")
            + f"; {per_t} configurations per (L, T)"
            for name, sizes, grid, refine, per_t in CONFIGURATIONS
        )
        + "\n\n"
        + "\n".join(rows)
    )


# ---- 3. and 4. the default training runs --------------------------------------------------------


def _num(value: Any) -> float:
    """A metric from metrics.json, where NaN is written as null."""
    return float("nan") if value is None else float(value)


#: Written into each run folder: the seconds the whole run took (read back when the run is reused).
SECONDS_FILE = "bench_seconds.txt"


def _train(task: str, out: Path, **options: Any) -> tuple[dict[str, Any], Any, float]:
    """A default run into ``out``; a run that finished there before (``--runs``, e.g. seeds run
    side by side) is read, not trained again."""
    if (out / "metrics.json").exists() and (out / SECONDS_FILE).exists():
        run = load_run(out)
        print(f"{out}: finished before, read", file=sys.stderr)
        return run.metrics["results"], run.config, float((out / SECONDS_FILE).read_text())
    t0 = time.perf_counter()
    run = astrocnn.train(task, out=str(out), progress_bar=False, **options)
    seconds = time.perf_counter() - t0
    if run is None:
        raise SystemExit(f"astrocnn.train({task!r}) returned no run")
    (out / SECONDS_FILE).write_text(f"{seconds:.1f}\n")
    return run.metrics["results"], run.config, seconds


def _tc_cell(r: dict[str, Any]) -> str:
    est, sig = _num(r.get("tc_estimate")), _num(r.get("tc_uncertainty"))
    return f"{est:.4f} ± {sig:.4f} ({100 * (est - TC) / TC:+.2f} %, {_num(r.get('tc_pull')):+.1f})"


def _meets_goal(r: dict[str, Any]) -> bool:
    error, pull = _num(r.get("tc_relative_error")), _num(r.get("tc_pull"))
    return bool(abs(error) <= GOAL_RELATIVE and abs(pull) <= GOAL_PULL)  # NaN: False


PHASE_METHODS = (("cnn", "CNN"), ("mlp", "fully connected"), ("baseline", "Binder crossing of m"))


def phase_section(seeds: int, tmp: Path) -> str:
    rows = [
        "| seed | " + " | ".join(label for _, label in PHASE_METHODS) + " | CNN σ stat. / training | "
        "CNN ensemble members | time |",
        "|---:|" + "---:|" * len(PHASE_METHODS) + "---:|---|---:|",
    ]
    met = {method: 0 for method, _ in PHASE_METHODS}
    config = None
    for seed in range(seeds):
        results, config, seconds = _train("ising-phase", tmp / f"ising-phase-{seed}", seed=seed)
        cnn = results["cnn"]
        members = ", ".join(f"{_num(v):.4f}" for v in cnn.get("tc_members", []))
        rows.append(
            f"| {seed} | "
            + " | ".join(_tc_cell(results[method]) for method, _ in PHASE_METHODS)
            + f" | {_num(cnn.get('tc_uncertainty_statistical')):.4f} / "
            f"{_num(cnn.get('tc_uncertainty_training')):.4f} | {members} | {seconds:.0f} s |"
        )
        for method, _ in PHASE_METHODS:
            met[method] += _meets_goal(results[method])
    goal = ", ".join(f"{label} {met[method]}/{seeds}" for method, label in PHASE_METHODS)
    sizes = ", ".join(map(str, config.task_options["sizes"])) if config else "?"
    grid = config.task_options["temperatures"] if config else "?"
    refine = config.task_options.get("refine", "no") if config else "?"
    if refine not in ("no", "?"):
        half, step = refine.split(":")
        grid = f"{grid}, refined in steps of {step} within {half} of the crossing this coarse scan shows"
    return (
        f"{H_PHASE}, {seeds} seeds\n\n"
        f"{_provenance()} `astrocnn train ising-phase --seed S` with the defaults, S = 0 to {seeds - 1} "
        f'(`astrocnn.train("ising-phase", seed=S)`): sizes {sizes}; test grid {grid}; '
        f"{config.n_test if config else '?'} test configurations per (L, T); "
        f"{config.n_train if config else '?'} training configurations per (L, T) on T < "
        f"{tasks.ORDERED_BELOW} and T > {tasks.DISORDERED_ABOVE}; ensembles of "
        f"{config.ensemble if config else '?'} networks; {config.epochs if config else '?'} epochs. "
        f"Exact T_c = {TC:.6f}. Each cell: T_c ± uncertainty (relative error, pull = (estimate - "
        "exact) / uncertainty). The CNN's and the fully connected network's T_c is the Binder crossing "
        "of their learned order parameter, averaged over the ensemble; its uncertainty adds the test "
        "configurations' bootstrap (stat.) and the spread between members (training) in quadrature. "
        "Time: the whole run, Monte Carlo included.\n\n"
        + "\n".join(rows)
        + f"\n\nGoal (|relative error| ≤ {100 * GOAL_RELATIVE:.1f} % and |pull| ≤ {GOAL_PULL:.0f}) "
        f"reached by: {goal}."
    )


def temperature_section(seeds: int, tmp: Path) -> str:
    rows = [
        "| seed | CNN RMSE | CNN networks alone | fully connected RMSE | baseline RMSE | CNN / baseline "
        "| networks alone / baseline | time |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ratios, alone_ratios = [], []
    config = None
    for seed in range(seeds):
        results, config, seconds = _train("ising-temperature", tmp / f"ising-temperature-{seed}", seed=seed)
        cnn, mlp, base = (_num(results[m]["rmse"]) for m in ("cnn", "mlp", "baseline"))
        # an ensemble is scored on its mean prediction; each network alone, for comparison
        alone = [_num(v) for v in results["cnn"].get("rmse_members", [cnn])]
        ratios.append(cnn / base)
        alone_ratios += [a / base for a in alone]
        rows.append(
            f"| {seed} | {cnn:.4f} | {', '.join(f'{a:.4f}' for a in alone)} | {mlp:.4f} | {base:.4f} | "
            f"{cnn / base:.3f} | {', '.join(f'{a / base:.3f}' for a in alone)} | {seconds:.0f} s |"
        )
        print(f"ising-temperature seed {seed}: {rows[-1]}", file=sys.stderr)
    met = sum(r <= GOAL_RMSE_RATIO for r in ratios)  # NaN: a miss
    met_alone = sum(r <= GOAL_RMSE_RATIO for r in alone_ratios)
    spread = statistics.stdev(ratios) if len(ratios) > 1 else float("nan")
    misses = [f"seed {seed} at {r:.3f}" for seed, r in enumerate(ratios) if not r <= GOAL_RMSE_RATIO]
    opts = config.task_options if config else {"sizes": ["?"], "temperatures": "?"}
    return (
        f"{H_TEMPERATURE}, {seeds} seeds\n\n"
        f"{_provenance()} `astrocnn train ising-temperature --seed S` with the defaults, S = 0 to "
        f'{seeds - 1} (`astrocnn.train("ising-temperature", seed=S)`; {machine()}): sizes '
        f"{', '.join(map(str, opts['sizes']))}; grid {opts['temperatures']}; "
        f"{config.n_train if config else '?'} training and {config.n_test if config else '?'} test "
        f"configurations per (L, T); {config.epochs if config else '?'} epochs; ensembles of "
        f"{config.ensemble if config else '?'} networks (seeds S, S + 1, ...), scored on the mean of "
        "their predictions, each network alone beside it. Each seed draws its own "
        "Monte-Carlo data, so the baseline differs between seeds. Baseline: the exact posterior mean "
        "of T given the energy per spin (Kaufman's partition function; the training split's "
        "temperatures as the prior), the bound. Time: the whole run, Monte Carlo and the fully "
        "connected network included.\n\n"
        + "\n".join(rows)
        + f"\n\nCNN / baseline over the {seeds} seeds: mean {statistics.fmean(ratios):.3f}, standard "
        f"deviation {spread:.3f}, range {min(ratios):.3f} to {max(ratios):.3f}. Goal (CNN / baseline "
        f"≤ {GOAL_RMSE_RATIO}) met by {met}/{seeds} seeds"
        + (f" (missed: {', '.join(misses)})." if misses else ".")
        + f" Networks alone: mean {statistics.fmean(alone_ratios):.3f}, goal met by {met_alone}/"
        f"{len(alone_ratios)}."
    )


# ---- the page -----------------------------------------------------------------------------------


def _provenance() -> str:
    return f"Produced by `python {' '.join(sys.argv)}` on {date.today().isoformat()}:"


def _ising_section(path: Path) -> re.Match[str] | None:
    if not path.exists():
        return None
    return re.search(r"<!-- begin ising -->(.*?)<!-- end ising -->", path.read_text(), re.S)


def existing_subsections(path: Path) -> list[str]:
    """The "### " subsections of the ising section of ``path`` (empty when there is none)."""
    found = _ising_section(path)
    if not found:
        return []
    parts = re.split(r"(?m)^(?=### )", found.group(1))
    return [p.strip() for p in parts[1:]]


def kept(old: list[str], heading: str) -> list[str]:
    return [part for part in old if part.startswith(heading)]


def replace_subsections(path: Path, new: list[tuple[str, str]]) -> bool:
    """Replace, in the ising section of ``path``, the subsection whose heading starts with each
    (heading, text) of ``new`` (appended when there is none), keeping the header, the flip-rate
    table and every other subsection as they are. False when ``path`` has no ising section."""
    found = _ising_section(path)
    if not found:
        return False
    preamble, *subsections = re.split(r"(?m)^(?=### )", found.group(1))
    subsections = [p.strip() for p in subsections]
    for heading, text in new:
        hits = [i for i, part in enumerate(subsections) if part.startswith(heading)]
        if hits:
            subsections[hits[0]] = text.strip()
            subsections = [p for i, p in enumerate(subsections) if i not in hits[1:]]
        else:
            subsections.append(text.strip())
    body = "\n\n".join(subsections)
    section = f"<!-- begin ising -->{preamble.rstrip()}\n\n{body}\n<!-- end ising -->"
    text = path.read_text()
    text = text[: found.start()] + section + text[found.end() :]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timing repeats of the flip rates")
    parser.add_argument("--datasets", type=int, default=20, help="independent data sets for the estimator")
    parser.add_argument("--seeds", type=int, default=5, help="seeds of the ising-phase default run")
    parser.add_argument(
        "--temperature-seeds", type=int, default=5, help="seeds of the ising-temperature default run"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=PARTS,
        metavar="PART",
        help=f"run only this part ({', '.join(PARTS)}; repeat for several); the others keep their text",
    )
    parser.add_argument("--skip-datasets", action="store_true")
    parser.add_argument(
        "--cache",
        type=Path,
        help="keep the independent data sets' magnetisations here, and read them from here on a later run "
        "(the same seed gives the same data): the estimator measured again without the Monte Carlo",
    )
    parser.add_argument("--skip-training", action="store_true", help="skip both default training runs")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument(
        "--runs", type=Path, help="keep the training runs' folders here (default: a temporary, deleted)"
    )
    args = parser.parse_args()
    run = set(args.only or PARTS)
    if args.skip_datasets:
        run.discard("datasets")
    if args.skip_training:
        run -= {"phase", "temperature"}
    old = existing_subsections(args.out)
    new: list[tuple[str, str]] = []  # (heading, text) of the subsections produced by this run
    if "datasets" in run:
        new.append((H_DATASETS, datasets_section(args.datasets, args.cache)))
    if run & {"phase", "temperature"}:
        with tempfile.TemporaryDirectory() as tmp:
            runs = args.runs or Path(tmp)
            if "phase" in run:
                new.append((H_PHASE, phase_section(args.seeds, runs)))
            if "temperature" in run:
                new.append((H_TEMPERATURE, temperature_section(args.temperature_seeds, runs)))
    fresh = dict(new)
    if "speed" in run or not replace_subsections(args.out, new):
        parts = [speed_section(args.repeats)] if "speed" in run else []
        for heading in (H_DATASETS, H_PHASE, H_TEMPERATURE):
            parts += [fresh[heading]] if heading in fresh else kept(old, heading)
        write_section(args.out, "ising", "Ising: Monte-Carlo speed and T_c", "\n\n".join(parts))
    print("\n\n".join(text for _, text in new))


if __name__ == "__main__":
    main()
