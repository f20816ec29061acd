"""Cherenkov-telescope files at scale: peak memory of a training run from a file, in memory and
streamed from disk, for 10^4 and 10^5 generated events, and the streamed loader's images/s
against the training step's.

Each training runs in a fresh process (``astrocnn train iact-gamma-hadron --data FILE --epochs 1
--no-mlp --task-option stream=no|yes``) that reports its own peak resident memory (and that of
its DataLoader workers). Writes the section "iact-stream" of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from report import write_section

CHILD = """
import json, resource, sys
from astrocnn.cli import main
code = main(sys.argv[1:])
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"code": code, "peak_mib": own, "worker_peak_mib": workers}))
"""


def peak_memory(data: Path, stream: str, out: Path, workers: int) -> dict:
    args = ["train", "iact-gamma-hadron", "--data", str(data), "--epochs", "1", "--no-mlp", "--task-option",
            f"stream={stream}", "--num-workers", str(workers), "--out", str(out)]  # fmt: skip
    done = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, check=False)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["code"] != 0:
        raise SystemExit(done.stderr[-2000:])
    return result


def passing_events(data: Path) -> int:
    """Events of the file that pass the task's cut (70 % of them train, 15 % validate)."""
    from astrocnn.tasks import get_task
    from astrocnn.tasks.iact import stream

    task = get_task("iact-gamma-hadron")
    truth, sizes = stream.scan(data, task)
    return int(np.sum((sizes >= task.min_size) & np.isin(truth.particle, task.particles)))


def loader_rate(data: Path, workers: int, batch: int = 64, batches: int = 60) -> float:
    from torch.utils.data import DataLoader

    from astrocnn.tasks import get_task

    splits = get_task("iact-gamma-hadron", {"stream": "yes"}).splits_from_file(str(data), seed=0)
    loader = DataLoader(
        splits.train, batch_size=batch, sampler=splits.train.train_sampler(0), num_workers=workers,
        persistent_workers=False,
    )  # fmt: skip
    it = iter(loader)
    next(it)  # workers started, the first blocks read
    t0 = time.perf_counter()
    n = 0
    for _ in range(min(batches, len(loader) - 1)):
        x, _ = next(it)
        n += len(x)
    return n / (time.perf_counter() - t0)


def step_rate(batch: int = 64) -> float:
    from astrocnn.engine.config import RunConfig
    from astrocnn.engine.run import build_model
    from astrocnn.engine.train import with_task_defaults
    from astrocnn.tasks import get_task

    task = get_task("iact-gamma-hadron")
    config = with_task_defaults(RunConfig(task=task.name), task)
    model = build_model(config, task)
    opt = torch.optim.AdamW(model.parameters())
    x = torch.randn(batch, task.network_channels, *task.input_size)
    y = torch.randint(0, 2, (batch,))
    times = []
    for _ in range(12):
        t0 = time.perf_counter()
        opt.zero_grad()
        task.loss(model(x), y).backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return batch / statistics.median(times[2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="generated events per file")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args()
    rows = [
        "| events in the file | file size | passing the cut | path | peak memory (MiB) |",
        "|---:|---:|---:|---|---:|",
    ]
    rates = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for n in (int(v) for v in args.sizes.split(",")):
            data = tmp / f"showers-{n}.h5"
            subprocess.run(
                [sys.executable, "-m", "astrocnn", "generate", "iact", "--n", str(n), "--out", str(data)],
                check=True, capture_output=True,
            )  # fmt: skip
            passing = passing_events(data)
            size = data.stat().st_size / 2**20
            for stream in ("no", "yes"):
                r = peak_memory(data, stream, tmp / f"run-{n}-{stream}", workers=0)
                path = "streamed from disk" if stream == "yes" else "in memory"
                rows.append(f"| {n:,} | {size:,.0f} MiB | {passing:,} | {path} | {r['peak_mib']:,.0f} |")
                print(rows[-1], flush=True)
            if n == max(int(v) for v in args.sizes.split(",")):
                rates = [(w, loader_rate(data, w)) for w in (0, 2)]
    step = step_rate()
    loader = "\n".join(
        f"| streamed loader, {w} worker process{'es' if w != 1 else ''} | {r:,.0f} |" for w, r in rates
    )
    body = f"""Peak resident memory of one process running `astrocnn train iact-gamma-hadron --data FILE
--epochs 1 --no-mlp --task-option stream=no|yes` (TAIGA camera, default network, batch 64; the
generator writes every simulated event, the cut keeps those of at least 50 p.e. after cleaning).
In memory, the events that pass the cut are read whole (their images, preprocessed inputs and
per-pixel charges and times); streamed, the training and validation events stay on disk and are
read, mapped and preprocessed batch by batch in a block shuffle, and only the test split and the
baseline's training events (at most 20,000) are held. `stream=auto` streams when the training and
validation events would take over 1 GiB.

{chr(10).join(rows)}

Loader against the training step (images/s, batch 64, the larger file):

| stage | images/s |
|---|---:|
{loader}
| training step of the default network (forward, backward, AdamW) | {step:,.0f} |
"""
    write_section(args.out, "iact-stream", "Cherenkov telescopes: files at scale", body)
    print(body)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
