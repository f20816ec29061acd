"""Figures of the Ising tasks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import nn

from astrocnn.sim.ising import TC
from astrocnn.tasks import ising_analysis as analysis
from astrocnn.tasks.plotting import plt, save


def ordered_output(test, predictions, ordered: int, path: Path) -> None:
    """Mean "ordered" output against T for each L: solid CNN, dashed fully connected."""
    t, size = test.meta["temperature"], test.meta["size"]
    temps = np.unique(t)
    fig, ax = plt.subplots(figsize=(6, 4))
    for k, L in enumerate(np.unique(size)):
        for method, style in (("cnn", "-"), ("mlp", "--")):
            if method in predictions:
                p = predictions[method][:, ordered]
                curve = [p[(size == L) & (t == T)].mean() for T in temps]
                ax.plot(temps, curve, style, color=f"C{k}", label=f"{method} L={L}")
    ax.axvline(TC, color="k", lw=1, label="exact $T_c$")
    ax.axhline(0.5, color="grey", lw=0.5)
    ax.set_xlabel("T")
    ax.set_ylabel("mean ordered output")
    ax.legend(fontsize=7)
    save(fig, path)


def extrapolation(results, sizes, path: Path) -> None:
    """T_c(L) against L^(-1/nu) with the fit, the Binder estimate and the exact value."""
    fig, ax = plt.subplots(figsize=(5, 4))
    x = np.array(sizes, float) ** (-1 / analysis.NU)
    grid = np.linspace(0, x.max() * 1.1, 50)
    for k, method in enumerate(("cnn", "mlp")):
        r = results.get(method, {})
        if "tc_estimate" in r:
            ax.plot(
                x, [r.get(f"tc_L{L}", np.nan) for L in sizes], "o", color=f"C{k}", label=f"{method} $T_c(L)$"
            )
            ax.plot(grid, r["tc_estimate"] + r.get("tc_fit_amplitude", 0.0) * grid, color=f"C{k}")
            ax.errorbar(
                [0], [r["tc_estimate"]], yerr=[r["tc_uncertainty"]], fmt="s", color=f"C{k}", capsize=3
            )
    if "baseline" in results and "tc_estimate" in results["baseline"]:
        b = results["baseline"]
        ax.axhspan(b["tc_estimate"] - b["tc_uncertainty"], b["tc_estimate"] + b["tc_uncertainty"],
                   color="C2", alpha=0.3, label="Binder crossing")  # fmt: skip
    ax.plot([0], [TC], "k*", ms=12, label="Onsager")
    ax.set_xlabel("$L^{-1/\\nu}$")
    ax.set_ylabel("$T_c$")
    ax.legend(fontsize=7)
    save(fig, path)


def binder(test, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 4))
    for L, (temps, u) in analysis.binder_curves(
        test.meta["magnetisation"], test.meta["temperature"], test.meta["size"]
    ).items():
        ax.plot(temps, u, label=f"L={L}")
    ax.axvline(TC, color="k", lw=1)
    ax.set_xlabel("T")
    ax.set_ylabel("Binder cumulant $U_L$")
    ax.legend()
    save(fig, path)


def configurations(test, path: Path) -> None:
    """One configuration of the largest lattice below, at and above T_c."""
    t, size = test.meta["temperature"], test.meta["size"]
    L = size.max()
    temps = np.unique(t)
    chosen = [temps[np.argmin(abs(temps - target))] for target in (1.5, TC, 3.0)]
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    for ax, T in zip(axes, chosen, strict=True):
        i = np.flatnonzero((size == L) & (t == T))[0]
        ax.imshow(test.x[i][0], cmap="gray", vmin=-1, vmax=1)
        ax.set_title(f"L={L}, T={T:.2f}")
        ax.set_axis_off()
    save(fig, path)


def first_layer_filters(model: nn.Module, path: Path) -> None:
    conv = next(m for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd))
    w = conv.weight.detach().cpu().numpy()[:, 0]
    n = min(len(w), 16)
    fig, axes = plt.subplots(2, (n + 1) // 2, figsize=(1.2 * ((n + 1) // 2), 2.6), squeeze=False)
    for ax, f in zip(axes.flat, w[:n], strict=False):
        lim = np.abs(f).max()
        ax.imshow(f, cmap="coolwarm", vmin=-lim, vmax=lim)
    for ax in axes.flat:
        ax.set_axis_off()
    fig.suptitle("first-layer filters")
    save(fig, path)


def temperature_predictions(test, predictions, path: Path) -> None:
    """Mean predicted T (and its spread) against the true T, for every method."""
    t = test.meta["temperature"]
    temps = np.unique(t)
    fig, ax = plt.subplots(figsize=(5, 4))
    for k, (method, pred) in enumerate(predictions.items()):
        mean = [pred[t == T, 0].mean() for T in temps]
        std = [pred[t == T, 0].std() for T in temps]
        ax.errorbar(temps, mean, yerr=std, fmt="o", ms=3, color=f"C{k}", label=method, alpha=0.8)
    ax.plot(temps, temps, "k-", lw=1)
    ax.axvline(TC, color="grey", lw=0.5)
    ax.set_xlabel("true T")
    ax.set_ylabel("predicted T")
    ax.legend()
    save(fig, path)
