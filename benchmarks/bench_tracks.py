"""Particle-track tasks: memory of 3-D training per batch, and sliding-window inference.

1. Peak resident memory of one process training ``tracks-segment-3d``'s default network (U-Net,
   width 0.125, 32^3 crops) for three steps, one fresh process per batch size (``ru_maxrss`` is a
   process's peak; torch's CPU allocations are invisible to tracemalloc). The figure is the peak
   minus the resident memory before the first step (data, model and libraries loaded).
2. A 64^3 (or larger) volume labelled by the same network whole and through
   ``engine.tiling.sliding_window`` in 32^3 windows: the peak memory of each and the largest
   difference of their class probabilities.

``python benchmarks/bench_tracks.py [--batches 2,4,8,16] [--volume 64]``; prints a Markdown table.

``--ambiguity``: instead, how ambiguous the labels are in themselves (``simulation.shared_hits``:
hits holding charge of both classes, 1000 2-D and 300 3-D events of seed 0).
``--confusion RUN``: instead, where a ``tracks-segment-2d`` run's network confuses track and
shower, on the run's own test events (regenerated from its seed, with the true deposits): the
confusion matrix with and without a shower, delta-ray hits, and the rate of track hits called
shower against the distance to the nearest shower hit and against the track's momentum, and the
track hit efficiency and purity after a cluster vote (each connected cluster of signal hits
given its larger mean class probability).
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


def ambiguity() -> None:
    import numpy as np

    from astrocnn.tasks.tracks import simulation as sim

    print("| events | track hits with shower charge | (>= 1/4 of theirs) | shower hits with track charge "
          "| (>= 1/4 of theirs) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|")
    for dims, size, n in ((2, 64, 1000), (3, 32, 300)):
        r = sim.shared_hits(n, np.random.default_rng(0), sim.Settings(dims=dims, size=size))
        print(f"| {n} x {size}^{dims} | {r['track_hits_with_shower_charge']:.4f} | "
              f"{r['track_hits_with_shower_quarter']:.4f} | {r['shower_hits_with_track_charge']:.4f} | "
              f"{r['shower_hits_with_track_quarter']:.4f} |")  # fmt: skip


def confusion(run_dir: str) -> None:
    import numpy as np
    import torch
    import yaml
    from scipy import ndimage

    from astrocnn.engine.splits import generate_split
    from astrocnn.tasks import get_task
    from astrocnn.tasks.tracks import simulation as sim

    config = yaml.safe_load(open(f"{run_dir}/config.yaml"))
    task = get_task("tracks-segment-2d", config.get("task_options") or {})
    parts = []

    def simulate(n, rng, settings):  # the run's test events, with their true deposits
        events, true = sim._simulate(n, rng, settings)
        parts.append((events, true["delta"], true["track"]))
        return events

    sim.simulate = simulate
    test_stream = np.random.SeedSequence(config["seed"]).spawn(3)[2]
    generate_split(task, config["n_test"], test_stream, "test", 1)
    ev = sim.concatenate([p[0] for p in parts])
    delta, e_track = (np.concatenate([p[k] for p in parts]) for k in (1, 2))
    saved = np.load(f"{run_dir}/predictions.npz")
    if not np.array_equal(np.where(ev.image > 0, ev.label, 3), saved["y"]):
        raise SystemExit(f"{run_dir}: the regenerated test events differ from the run's")
    pred, label, hit = saved["pred_cnn"].argmax(1), ev.label, ev.image > 0
    # post-processing: each connected cluster of signal hits takes its larger mean class probability
    prob = torch.softmax(torch.from_numpy(saved["pred_cnn"]).double(), dim=1).numpy()
    voted = pred.copy()
    for i in range(len(pred)):
        signal = hit[i] & (pred[i] > 0)
        clusters, n = ndimage.label(signal, structure=np.ones((3, 3)))
        if n:
            means = [ndimage.mean(prob[i, k], clusters, range(1, n + 1)) for k in (1, 2)]
            voted[i][signal] = np.where(means[0] >= means[1], 1, 2)[clusters[signal] - 1]
    for name, labels in (("as trained", pred), ("cluster vote", voted)):
        tp = ((labels == sim.TRACK) & (label == sim.TRACK) & hit).sum()
        eff, pur = tp / ((label == sim.TRACK) & hit).sum(), tp / ((labels == sim.TRACK) & hit).sum()
        print(f"{name}: track hit efficiency {eff:.3f}, purity {pur:.3f}")
    shower_event = ev.n_showers.astype(bool)[:, None, None]
    track = label == sim.TRACK
    print("true \\ predicted (background, track, shower), hits of events without / with a shower:")
    for name, where in (("without", ~shower_event), ("with", shower_event)):
        m = [[int(((label == t) & (pred == q) & hit & where).sum()) for q in range(3)] for t in range(3)]
        print(f"  {name}: {m}")
    is_delta = track & (delta > 0.5 * e_track)
    print(f"track hits mostly from delta rays: {is_delta.mean() / track.mean():.3f}")
    for name, where in (("without", ~shower_event), ("with", shower_event)):
        d, rest = is_delta & where, track & ~is_delta & where
        print(f"  events {name} a shower: delta-ray hits called shower {np.mean(pred[d] == 2):.3f}, "
              f"other track hits {np.mean(pred[rest] == 2):.3f}")  # fmt: skip
    far = np.stack([ndimage.distance_transform_edt(label[i] != sim.SHOWER) for i in range(len(label))])
    for lo, hi in ((0, 1.5), (1.5, 3), (3, 6), (6, 12), (12, 99)):
        m = track & shower_event & (far >= lo) & (far < hi)
        called = np.mean(pred[m] == 2)
        print(f"track hits {lo}-{hi} cells from a shower hit: {m.sum()}, called shower {called:.3f}")
    for pdg, (lo, hi) in (
        (13, (100, 200)),
        (13, (200, 1000)),
        (211, (100, 200)),
        (211, (200, 1000)),
        (2212, (0, 1e4)),
    ):
        for name, where in (("without", ~ev.n_showers.astype(bool)), ("with", ev.n_showers.astype(bool))):
            sel = (ev.pdg == pdg) & (ev.momentum >= lo) & (ev.momentum < hi) & where[:, None]
            i, j = np.nonzero(sel)
            m = np.zeros_like(track)
            for a, b in zip(i, j, strict=True):
                m[a] |= ev.track_id[a] == b + 1
            print(f"pdg {pdg}, p {lo:.0f}-{hi:.0f} MeV/c, events {name} a shower: {m.sum()} hits, "
                  f"called shower {np.mean(pred[m] == 2):.3f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="2,4,8,16")
    parser.add_argument("--volume", type=int, default=64)
    parser.add_argument("--ambiguity", action="store_true")
    parser.add_argument("--confusion", metavar="RUN")
    args = parser.parse_args()
    if args.ambiguity:
        return ambiguity()
    if args.confusion:
        return confusion(args.confusion)
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
