"""Particle-track tasks: memory of 3-D training per batch, and sliding-window inference.

1. Peak resident memory of one process training ``tracks-segment-3d``'s default network (U-Net,
   width 0.125, 32^3 crops) for three steps, one fresh process per batch size (``ru_maxrss`` is a
   process's peak; torch's CPU allocations are invisible to tracemalloc). The figure is the peak
   minus the resident memory before the first step (data, model and libraries loaded).
2. A 64^3 (or larger) volume labelled by the same network whole and through
   ``engine.tiling.sliding_window`` in 32^3 windows: the peak memory of each and the largest
   difference of their class probabilities.

``python benchmarks/bench_tracks.py [--batches 2,4,8,16] [--volume 64]``; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
from astrocnn.models import create_model
from astrocnn.tasks import get_task
torch.set_num_threads(1)
mode, value = sys.argv[1], int(sys.argv[2])
task = get_task("tracks-segment-3d")
d = task.defaults
net = create_model("unet", spatial_dims=3, in_channels=1, num_outputs=3, **d.model_options)
def rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux: KiB)
if mode == "train":
    data = task.generate(value, np.random.default_rng(0))
    x = torch.from_numpy(task.preprocess(data.x))
    y = task.target_tensor(data.y)
    opt = torch.optim.AdamW(net.parameters())
    before = rss()
    t0 = time.perf_counter()
    for _ in range(3):
        loss = task.loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(json.dumps({"before": before, "peak": rss(), "seconds": (time.perf_counter() - t0) / 3}))
else:
    from astrocnn.engine.tiling import sliding_window
    volume = get_task("tracks-segment-3d", {"size": value}).generate(1, np.random.default_rng(1))
    x = torch.from_numpy(task.preprocess(volume.x))[0]
    net.eval()
    before = rss()
    with torch.no_grad():
        if mode == "whole":
            out = task.postprocess(net(x[None]))[0]
        else:
            out = sliding_window(lambda b: task.postprocess(net(b)), x, (32,) * 3, overlap=0.25, batch_size=4)
    np.save(f"/tmp/bench_tracks_{mode}.npy", out.numpy())
    print(json.dumps({"before": before, "peak": rss()}))
"""


def _child(mode: str, value: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(value)], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="2,4,8,16")
    parser.add_argument("--volume", type=int, default=64)
    args = parser.parse_args()
    print("| batch (32^3 volumes) | peak RSS, MiB | of which training, MiB | s per step |")
    print("|---:|---:|---:|---:|")
    for batch in (int(b) for b in args.batches.split(",")):
        r = _child("train", batch)
        print(f"| {batch} | {r['peak']:.0f} | {r['peak'] - r['before']:.0f} | {r['seconds']:.2f} |")
    import numpy as np

    whole, windows = _child("whole", args.volume), _child("windows", args.volume)
    diff = np.abs(np.load("/tmp/bench_tracks_whole.npy") - np.load("/tmp/bench_tracks_windows.npy")).max()
    print()
    print(f"| {args.volume}^3 volume, inference | peak RSS, MiB | of which inference, MiB |")
    print("|---|---:|---:|")
    for name, r in (("whole volume", whole), ("32^3 windows, overlap 0.25", windows)):
        print(f"| {name} | {r['peak']:.0f} | {r['peak'] - r['before']:.0f} |")
    print(f"\nlargest difference of the class probabilities, windows against whole: {diff:.3g}")
    print(f"(this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")


if __name__ == "__main__":
    main()
