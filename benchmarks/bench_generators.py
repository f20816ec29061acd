"""Built-in generators: images per second against the number of generating processes.

Each task whose generator works in independently seeded chunks (``Task.chunk_size``, processes)
or shares its work out itself (``Task.generates_in_parallel``: the Ising tasks' (L, T) pairs over
threads) makes the same data for any number of workers (tests/test_predict_contract.py); this
measures what the workers buy. Median of ``--repeats`` runs per count, counts interleaved.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from astrocnn.engine.splits import available_cores, generate_split
from astrocnn.tasks import get_task, list_tasks
from report import write_section


def workers(count: int, kind: str) -> str:
    """ "1 process", "2 processes", "2 threads"."""
    if count == 1:
        return f"1 {kind}"
    return f"{count} {kind}es" if kind == "process" else f"{count} {kind}s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=8000, help="samples per run")
    parser.add_argument("--ising-per-t", type=int, default=20, help="Ising configurations per (L, T)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tasks", help="tasks to measure, comma separated  [default: every generated task]")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args()
    counts = sorted({1, *range(2, available_cores() + 1, 2), available_cores()})
    rows = []
    for name in args.tasks.split(",") if args.tasks else list_tasks():
        task = get_task(name)
        parallel = task.chunk_size is not None or task.generates_in_parallel
        if not parallel or getattr(task, "learns_from_data", False):
            continue
        n = args.ising_per_t if task.generates_in_parallel else args.n
        times: dict[int, list[float]] = {c: [] for c in counts}
        for r in range(args.repeats):
            for c in counts:
                start = time.perf_counter()
                made = len(generate_split(task, n, np.random.SeedSequence(r), "test", workers=c))
                times[c].append(time.perf_counter() - start)
        base = made / statistics.median(times[1])
        how = "thread" if task.generates_in_parallel else "process"
        for c in counts:
            rate = made / statistics.median(times[c])
            rows.append(f"| `{name}` | {workers(c, how)} | {rate:,.0f} | {rate / base:.2f} |")
    from astrocnn.tasks.iact import simulation
    from astrocnn.tasks.iact.camera import get_camera

    for name in ("taiga", "lst"):
        camera = get_camera(name)
        n = max(args.n // 4, simulation.CHUNK)
        times = {c: [] for c in counts}
        for r in range(args.repeats):
            for c in counts:
                start = time.perf_counter()
                simulation.generate(camera, n, r, workers=c)
                times[c].append(time.perf_counter() - start)
        base = n / statistics.median(times[1])
        for c in counts:
            rate = n / statistics.median(times[c])
            rows.append(
                f"| `generate iact --camera {name}` (0.3-100 TeV) | {workers(c, 'process')} | {rate:,.0f} | "
                f"{rate / base:.2f} |"
            )
    body = (
        f"{args.n:,} samples per run ({max(args.n // 4, simulation.CHUNK):,} Cherenkov events; for the "
        f"Ising tasks {args.ising_per_t} configurations per (L, T) of the task's test grid), chunks of "
        f"`Task.chunk_size`, median of {args.repeats} runs. The Ising tasks share their (L, T) pairs "
        "out to threads, each running the numba kernels on one core; with one worker a pair's large "
        "lattices (L >= 48) sweep their rows on every core.\n\n"
        "| task | workers | samples/s | speed-up |\n|---|---:|---:|---:|\n" + "\n".join(rows)
    )
    write_section(args.out, "generators", "Generators: samples per second against processes", body)
    print(body)


if __name__ == "__main__":
    main()
