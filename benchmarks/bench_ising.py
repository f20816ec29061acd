"""Ising benchmarks: Monte-Carlo speed, and T_c from the default ising-phase run.

1. Spin-flip attempts per second of astrocnn's multi-spin-coded Metropolis kernel against a
   straightforward vectorised NumPy checkerboard sweep, measured alternately in one run.
2. ``astrocnn train ising-phase`` with its defaults: T_c with its bootstrap uncertainty from the
   CNN, the fully connected network and the Binder-cumulant crossing.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import astrocnn
from astrocnn.sim import ising
from astrocnn.sim import ising_kernels as k
from report import write_section


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args()
    rows = []
    for size in (16, 64, 128):
        fast, slow = flip_rates(size, ising.TC, args.repeats)
        rows.append(f"| {size} | {fast:.3g} | {slow:.3g} | {fast / slow:,.0f} |")
    body = (
        f"Metropolis at T = T_c (J = 1), median of {args.repeats} alternating runs. astrocnn's kernel "
        "updates 64 replicas per 64-bit word (multi-spin coding, numba, rows of one checkerboard colour "
        "in parallel); the reference is a vectorised NumPy checkerboard sweep "
        "(`astrocnn.sim.ising.numpy_checkerboard_sweep`)."
        "\n\n| L | astrocnn attempts/s | NumPy attempts/s | ratio |\n|---:|---:|---:|---:|\n"
        + "\n".join(rows)
    )
    if not args.skip_training:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            run = astrocnn.train("ising-phase", out=str(Path(tmp) / "run"), progress_bar=False)
            seconds = time.perf_counter() - t0
            results = run.metrics["results"]
            config = run.config
        table = [
            "| method | T_c estimate | uncertainty | relative error | (estimate - exact) / uncertainty |",
            "|---|---:|---:|---:|---:|",
        ]
        for method, label in (("cnn", f"CNN ({config.model})"), ("mlp", "fully connected"),
                              ("baseline", "Binder crossing")):  # fmt: skip
            r = results[method]
            table.append(
                f"| {label} | {r['tc_estimate']:.4f} | {r['tc_uncertainty']:.4f} | "
                f"{100 * r['tc_relative_error']:.2f} % | {r['tc_pull']:+.1f} |"
            )
        per_size = ", ".join(f"T_c(L={L}) = {results['cnn'][f'tc_L{L}']:.4f}" for L in (16, 24, 32))
        body += (
            "\n\n### T_c from `astrocnn train ising-phase`\n\n"
            f"Defaults, seed {config.seed}, {seconds:.0f} s including the Monte Carlo. "
            f"Exact: T_c = 2 / ln(1 + sqrt 2) = {ising.TC:.6f}. Sizes 16, 24, 32; trained on T < 2.0 and "
            f"T > 2.5, {config.n_train} configurations per (L, T); tested on {config.n_test} per (L, T) over "
            "1.0 to 3.5. Uncertainties: bootstrap over configurations.\n\n"
            + "\n".join(table)
            + f"\n\nCNN crossings: {per_size}; extrapolated with T_c(L) = T_c + a/L. The bootstrap "
            "covers the test configurations' noise, not the spread between training runs."
        )
    write_section(args.out, "ising", "Ising: Monte-Carlo speed and T_c", body)
    print(body)


if __name__ == "__main__":
    main()
