"""The Cherenkov surrogate against the Monte Carlo it replaces: events per second, same camera,
one process, one thread (``torch.set_num_threads(1)``; the simulation is NumPy in one process).

- simulated: showers per second from ``Simulator.simulate`` (gamma rays and protons, the task's
  energy ranges), and the same per event passing the size cut (what the surrogate produces);
- generated: images per second from a trained ``iact-generate`` run's network, for several
  numbers of Euler steps, batch size ``--batch``, charge and time mapped back onto the camera.

With no RUN, a small run is trained first (its images are poor; the speed is the same).
Writes the section "iact-generate" of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import astrocnn
from astrocnn.engine.run import load_run
from astrocnn.tasks.iact import generative
from astrocnn.tasks.iact import simulation as sim
from report import write_section


def simulated_rates(task, n: int) -> tuple[float, float]:
    """(showers / s, events passing the cut / s), half gamma rays and half protons."""
    simulator = sim.Simulator(task.camera, task.settings)
    showers = passed = 0
    start = time.perf_counter()
    for k, particle in enumerate(task.particles):
        events = simulator.simulate(
            n // 2, 100 + k, particles=(particle,), energy_range=task.energy_range(particle)
        )
        showers += len(events)
        passed += int(task.select(events).sum())
    seconds = time.perf_counter() - start
    return showers / seconds, passed / seconds


def generated_rate(network, task, n: int, steps: int, batch: int) -> float:
    rng = np.random.default_rng(0)
    energy = generative.draw_energies(n, 1.0, 10.0, rng)
    cond = generative.conditions(np.arange(n) % 2, energy, rng.uniform(0, 200, n))
    start = time.perf_counter()
    generative.decode(task, generative.sample(network, task, cond, steps=steps, batch_size=batch))
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", help="a finished iact-generate run folder")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument("--n", type=int, default=1024, help="images generated per setting")
    parser.add_argument("--showers", type=int, default=2000, help="showers simulated")
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        if args.run:
            run = load_run(args.run)
        else:
            run = astrocnn.train(
                "iact-generate", out=f"{tmp}/run", n_train=100, n_val=20, n_test=40, epochs=1,
                train_mlp=False, baseline=False, progress_bar=False,
            )  # fmt: skip
        task, network = run.task, run.model("cnn")
        showers, passed = simulated_rates(task, args.showers)
        rows = [
            f"| simulation, showers (before the cut) | {showers:,.0f} | - |",
            f"| simulation, events passing the size cut | {passed:,.0f} | 1 |",
        ]
        for steps in (16, 8, 4):
            rate = generated_rate(network, task, args.n, steps, args.batch)
            rows.append(
                f"| surrogate, {steps} Euler steps ({run.config.model}) | {rate:,.0f} | {rate / passed:.2f} |"
            )
    body = (
        f"TAIGA camera ({task.camera.n_pixels} pixels, axial grid {'x'.join(map(str, task.input_size))}), "
        f"one thread, generation in batches of {args.batch}, {args.n} images per setting, "
        f"{args.showers} showers simulated; run: {args.run or 'a 1-epoch run trained here'}.\n\n"
        "| source | events / s | vs passing simulated events |\n|---|---:|---:|\n" + "\n".join(rows)
    )
    print(body)
    write_section(args.out, "iact-generate", "Cherenkov surrogate: generated against simulated events", body)


if __name__ == "__main__":
    main()
