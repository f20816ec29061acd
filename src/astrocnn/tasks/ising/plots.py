"""Figures of the Ising tasks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import nn

from astrocnn.tasks.ising import analysis
from astrocnn.tasks.ising.simulation import TC
from astrocnn.tasks.plotting import plt, save


def shade_training(ax, trained: tuple[float, float] | None, t) -> None:
    """Shade the temperatures a network was trained on, ``T < trained[0]`` (ordered) and
    ``T > trained[1]`` (disordered), over the data's range: what lies between was never seen."""
    if trained is None:
        return
    below, above = trained
    low, high = float(np.min(t)), float(np.max(t))
    if low < below:
        ax.axvspan(low, below, color="tab:blue", alpha=0.1, lw=0, label=f"trained as ordered (T < {below})")
    if high > above:
        ax.axvspan(above, high, color="tab:red", alpha=0.1, lw=0,
                   label=f"trained as disordered (T > {above})")  # fmt: skip


def ordered_output(test, predictions, ordered: int, path: Path, trained=None) -> None:
    """Mean "ordered" output against T for each L: solid CNN, dashed fully connected; the training
    ranges ``trained`` (T below, T above) shaded."""
    t, size = test.meta["temperature"], test.meta["size"]
    temps = np.unique(t)
    fig, ax = plt.subplots(figsize=(6, 4))
    for k, L in enumerate(np.unique(size)):
        for method, style in (("cnn", "-"), ("mlp", "--")):
            if method in predictions:
                p = predictions[method][:, ordered]
                curve = [p[(size == L) & (t == T)].mean() for T in temps]
                ax.plot(temps, curve, style, color=f"C{k}", label=f"{method} L={L}")
    shade_training(ax, trained, t)
    ax.axvline(TC, color="k", lw=1, label="exact $T_c$")
    ax.axhline(0.5, color="grey", lw=0.5)
    ax.set_xlabel("T")
    ax.set_ylabel("mean ordered output")
    ax.legend(fontsize=7)
    save(fig, path)


def output_crossing_drift(results, sizes, path: Path) -> None:
    """Where each network's mean "ordered" output crosses 1/2, against 1/L: the fixed-threshold
    crossing drifts with L, which is why it is not the T_c estimator (docs/ising.md)."""
    fig, ax = plt.subplots(figsize=(5, 4))
    x = 1.0 / np.array(sizes, float)
    for k, method in enumerate(("cnn", "mlp")):
        r = results.get(method, {})
        if f"tc_L{sizes[0]}" in r:
            ax.plot(x, [r.get(f"tc_L{L}", np.nan) for L in sizes], "o-", color=f"C{k}",
                    label=f"{method}: output crosses 1/2")  # fmt: skip
            if r.get("tc_estimate") is not None:
                ax.errorbar([0], [r["tc_estimate"]], yerr=[r["tc_uncertainty"]], fmt="s", color=f"C{k}",
                            capsize=3, label=f"{method}: Binder crossing of its order parameter")  # fmt: skip
    ax.plot([0], [TC], "k*", ms=12, label="Onsager")
    ax.set_xlabel("1 / L")
    ax.set_ylabel("T")
    ax.legend(fontsize=7)
    save(fig, path)


def estimates(results, path: Path) -> None:
    """Every method's T_c with its uncertainty (and each ensemble member's), against the exact value."""
    fig, ax = plt.subplots(figsize=(5, 3))
    methods = [m for m in ("cnn", "mlp", "baseline") if results.get(m, {}).get("tc_estimate") is not None]
    for k, method in enumerate(methods):
        r = results[method]
        ax.errorbar([r["tc_estimate"]], [k], xerr=[r["tc_uncertainty"]], fmt="o", color=f"C{k}", capsize=4)
        members = r.get("tc_members") or []
        ax.plot(members, [k + 0.15] * len(members), "x", color=f"C{k}", ms=5)
    ax.axvline(TC, color="k", lw=1)
    ax.set_yticks(range(len(methods)), ["Binder (m)" if m == "baseline" else m for m in methods])
    ax.set_xlabel("$T_c$ (x: each network of the ensemble; line: Onsager)")
    save(fig, path)


def binder(test, path: Path, phi=None, label: str = "magnetisation", trained=None) -> None:
    """Binder cumulants of ``phi`` (default: the magnetisation) against T for each L; the networks'
    training ranges ``trained`` shaded."""
    fig, ax = plt.subplots(figsize=(5, 4))
    values = test.meta["magnetisation"] if phi is None else phi
    for L, (temps, u) in analysis.binder_curves(values, test.meta["temperature"], test.meta["size"]).items():
        ax.plot(temps, u, ".-", ms=3, label=f"L={L}")
    shade_training(ax, trained, test.meta["temperature"])
    ax.axvline(TC, color="k", lw=1, label="exact $T_c$")
    ax.set_xlim(1.9, 2.7)
    ax.set_xlabel("T")
    ax.set_ylabel(f"Binder cumulant $U_L$ of the {label}")
    ax.legend(fontsize=7)
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


def rmse_vs_temperature(results, path: Path) -> None:
    """RMSE of the predicted T in each temperature bin, every method."""
    fig, ax = plt.subplots(figsize=(5, 4))
    for k, method in enumerate(("cnn", "mlp", "baseline")):
        r = results.get(method, {})
        if "rmse_vs_T" in r:
            edges = np.array(r["rmse_vs_T_bins"])
            centres = (edges[:-1] + edges[1:]) / 2
            name = "energy baseline" if method == "baseline" else method
            ax.plot(centres, np.array(r["rmse_vs_T"], dtype=float), "o-", ms=3, color=f"C{k}", label=name)
    ax.axvline(TC, color="grey", lw=0.5)
    ax.set_xlabel("true T")
    ax.set_ylabel("RMSE of T")
    ax.legend()
    save(fig, path)
