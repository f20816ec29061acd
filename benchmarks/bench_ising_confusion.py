"""Learning by confusion on the Ising model: an estimator of T_c in which training matters.

van Nieuwenburg, Liu and Huber (Nature Physics 13, 435, 2017): for each trial critical
temperature T', label every training configuration "below T'" or "above T'", train a network,
and measure its test accuracy. The accuracy over T' is W-shaped: trivially high at the two ends
(one label dominates), low where T' cuts through a phase, and high again where T' sits at the
transition, because there the labels agree with what the configurations show. The middle peak of
a lattice of size L sits at a pseudo-critical temperature; over L it is extrapolated in 1/L
(nu = 1) like any pseudo-critical point.

For every lattice size, every trial temperature and every seed, one network is trained from
scratch: the lecture's ``simple_cnn`` and the fully connected ``mlp`` of the zoo. As a control, the
same scheme with the best threshold on |m| (the order parameter itself, nothing learned).

The configurations come from astrocnn's Monte Carlo on a uniform temperature grid, a
training and a test set with different seeds. Writes the section "ising-confusion" of
docs/benchmarks.md and the W-curve figure of docs/ising.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from astrocnn.models import create_model
from astrocnn.tasks.ising import analysis, tasks
from astrocnn.tasks.ising import simulation as ising
from report import write_section

TC = ising.TC
GOAL_RELATIVE = 0.005


def flatten(data: dict[int, list[ising.IsingSamples]], L: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.concatenate([s.configs for s in data[L]]).astype(np.float32)[:, None]
    t = np.concatenate([np.full(len(s.configs), s.temperature) for s in data[L]])
    m = np.concatenate([np.abs(s.magnetisation) for s in data[L]])
    return x, t, m


def train_network(name: str, L: int, x: np.ndarray, y: np.ndarray, seed: int, epochs: int) -> nn.Module:
    torch.manual_seed(seed)
    options = {"input_size": (L, L)}
    if name == "mlp":
        options["hidden"] = (256, 128)
    net = create_model(name, in_channels=1, num_outputs=2, **options)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(order), 64):
            idx = order[start : start + 64]
            # the global flip s -> -s changes neither phase nor temperature
            sign = torch.randint(0, 2, (len(idx), 1, 1, 1), generator=gen).float() * 2 - 1
            loss = nn.functional.cross_entropy(net(xt[idx] * sign), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


@torch.no_grad()
def accuracy(net: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    pred = torch.cat([net(torch.from_numpy(x[i : i + 1024])).argmax(1) for i in range(0, len(x), 1024)])
    return float((pred.numpy() == y).mean())


def threshold_accuracy(m_train, y_train, m_test, y_test) -> float:
    """The best single threshold on |m| for the training labels, scored on the test set."""
    cuts = np.unique(np.quantile(m_train, np.linspace(0, 1, 201)))
    train_acc = [((m_train > c) == y_train).mean() for c in cuts]
    c = cuts[int(np.argmax(train_acc))]
    return float(((m_test > c) == y_test).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="16,32,64")
    ap.add_argument("--trials", default="1.6:3.0:0.1+2.0:2.6:0.04", help="trial critical temperatures")
    ap.add_argument(
        "--grid",
        default="1.0:3.5:0.05",
        help="temperatures of the configurations (uniform: the W depends on it)",
    )
    ap.add_argument("--models", default="simple_cnn,mlp")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--n-train", type=int, default=40, help="configurations per (L, T) to train on")
    ap.add_argument("--n-test", type=int, default=100, help="configurations per (L, T) to test on")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    ap.add_argument("--figure", type=Path, default=Path("docs/figures/ising/confusion.png"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    sizes = tasks.parse_sizes(args.sizes)
    trials = np.unique(np.concatenate([ising.parse_temperatures(p) for p in args.trials.split("+")]))
    grid = ising.parse_temperatures(args.grid)
    models = args.models.split(",")
    started = time.perf_counter()
    train_data = ising.generate(sizes, grid, args.n_train, seed=2001)
    test_data = ising.generate(sizes, grid, args.n_test, seed=2002)
    print(f"data: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

    # acc[method][L] -> (seeds, trials)
    acc: dict[str, dict[int, np.ndarray]] = {m: {} for m in [*models, "threshold on abs(m)"]}
    peaks: dict[str, dict[int, list[float]]] = {m: {} for m in acc}
    timing: dict[str, float] = dict.fromkeys(models, 0.0)
    for L in sizes:
        x_tr, t_tr, m_tr = flatten(train_data, L)
        x_te, t_te, m_te = flatten(test_data, L)
        control = np.array(
            [
                [
                    threshold_accuracy(
                        m_tr, analysis.confusion_labels(t_tr, T), m_te, analysis.confusion_labels(t_te, T)
                    )
                    for T in trials
                ]
            ]
        )
        acc["threshold on abs(m)"][L] = control
        peaks["threshold on abs(m)"][L] = [analysis.confusion_peak(trials, control[0], t_tr)]
        for name in models:
            curves = np.empty((args.seeds, len(trials)))
            for s in range(args.seeds):
                for j, T in enumerate(trials):
                    tick = time.perf_counter()
                    net = train_network(
                        name,
                        L,
                        x_tr,
                        analysis.confusion_labels(t_tr, T),
                        seed=100 * s + j,
                        epochs=args.epochs,
                    )
                    curves[s, j] = accuracy(net, x_te, analysis.confusion_labels(t_te, T))
                    timing[name] += time.perf_counter() - tick
                peak = analysis.confusion_peak(trials, curves[s], t_tr)
                print(f"L={L} {name} seed {s}: peak {peak:.4f}", file=sys.stderr, flush=True)
            acc[name][L] = curves
            peaks[name][L] = [analysis.confusion_peak(trials, c, t_tr) for c in curves]

    # each seed's peaks over L extrapolated in 1/L; spread over seeds is the training uncertainty
    rows = []
    for method in acc:
        per_seed = []
        n = len(next(iter(peaks[method].values())))
        for s in range(n):
            tc, _ = analysis.extrapolate(np.array(sizes), np.array([peaks[method][L][s] for L in sizes]))
            per_seed.append(tc)
        mean_peaks = {L: statistics.fmean(peaks[method][L]) for L in sizes}
        tc = statistics.fmean(per_seed)
        err = statistics.stdev(per_seed) / len(per_seed) ** 0.5 if len(per_seed) > 1 else float("nan")
        rows.append((method, mean_peaks, tc, err, per_seed))

    fig, axes = plt.subplots(1, len(sizes), figsize=(4.2 * len(sizes), 3.6), sharey=True)
    for ax, L in zip(np.atleast_1d(axes), sizes, strict=True):
        for method, style in zip(acc, ("-o", "-s", "--"), strict=False):
            curve = acc[method][L].mean(0)
            ax.plot(trials, curve, style, ms=3, label=method)
        ax.axvline(TC, color="k", lw=0.8, ls=":")
        ax.set_title(f"L = {L}")
        ax.set_xlabel("trial critical temperature T'")
    np.atleast_1d(axes)[0].set_ylabel("test accuracy")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.suptitle("learning by confusion (dotted: exact T_c)")
    fig.tight_layout()
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=110)

    head = " | ".join(f"peak L = {L}" for L in sizes)
    lines = [
        f"Training set {args.n_train} and test set {args.n_test} configurations per (L, T) on the "
        f"uniform grid {args.grid}, {len(trials)} trial temperatures "
        f"({args.trials}), {args.epochs} epochs of Adam per network, global-flip augmentation, "
        f"{args.seeds} seeds (a seed is one network per (L, T')); the threshold on |m| is deterministic. "
        f"T_c: each seed's peaks extrapolated in 1/L, mean over seeds +- its standard error. "
        f"{sum(timing.values()) / 60:.0f} min of training on 1 thread. Exact T_c = {TC:.6f}.",
        "",
        f"| method | {head} | T_c (1/L fit) | +- | relative error | pull |",
        "|---|" + "---:|" * (len(sizes) + 4),
    ]
    for method, mean_peaks, tc, err, _ in rows:
        pull = (tc - TC) / err if err == err and err > 0 else float("nan")
        lines.append(
            f"| {method} | "
            + " | ".join(f"{mean_peaks[L]:.4f}" for L in sizes)
            + f" | {tc:.4f} | {err:.4f} | {abs(tc - TC) / TC:.2%} | {pull:+.1f} |"
        )
    lines += [
        "",
        "Per seed (T_c from the 1/L fit): "
        + "; ".join(
            f"{method}: " + ", ".join(f"{v:.4f}" for v in per_seed) for method, _, _, _, per_seed in rows
        ),
        "",
        f"Figure: [{args.figure.name}](figures/ising/{args.figure.name}).",
    ]
    write_section(args.out, "ising-confusion", "Ising: learning by confusion", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
