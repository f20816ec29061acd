"""Camera images drawn as the camera sees them: one real hexagon (or square) per pixel."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.collections import PolyCollection

from astrocnn.tasks import plotting
from astrocnn.tasks.iact.camera import Camera


def pixel_polygons(camera: Camera) -> np.ndarray:
    """(n_pixels, corners, 2) outlines in metres: pointy-top hexagons of flat-to-flat width
    ``pitch`` (they tile the plane), or squares of side ``pitch``."""
    if camera.pixel_shape == "hexagon":
        radius = camera.pitch / math.sqrt(3)  # centre to corner
        angles = np.deg2rad(30 + 60 * np.arange(6))
    else:
        radius = camera.pitch / math.sqrt(2)
        angles = np.deg2rad(45 + 90 * np.arange(4))
    corners = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return np.stack([camera.x, camera.y], axis=1)[:, None, :] + corners[None]


def draw_camera(
    ax, camera: Camera, values: np.ndarray, *, label: str = "photoelectrons", cmap: str = "viridis"
):
    """One image on ``ax`` with a colour bar in ``label``; returns the PolyCollection."""
    values = np.asarray(values, dtype=float)
    if values.shape != (camera.n_pixels,):
        raise ValueError(f"{camera.name} has {camera.n_pixels} pixels, the image {values.shape}")
    cells = PolyCollection(pixel_polygons(camera), array=values, cmap=cmap, edgecolors="face", linewidths=0.2)
    ax.add_collection(cells)
    margin = camera.pitch
    ax.set_xlim(camera.x.min() - margin, camera.x.max() + margin)
    ax.set_ylim(camera.y.min() - margin, camera.y.max() + margin)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.figure.colorbar(cells, ax=ax, label=label, shrink=0.8)
    return cells


def camera_images(
    camera: Camera, images: np.ndarray, titles: list[str], path: Path, *, label: str = "photoelectrons"
) -> None:
    """Several images of one camera side by side, each with its colour bar."""
    fig, axes = plotting.plt.subplots(1, len(images), figsize=(5.6 * len(images), 4), squeeze=False)
    for ax, image, title in zip(axes[0], images, titles, strict=True):
        draw_camera(ax, camera, image, label=label)
        ax.set_title(f"{camera.name}: {title}", fontsize=9)
    plotting.save(fig, path)


def example_events(camera: Camera, test, path: Path) -> None:
    """Two test events of each particle kind present (the brightest of the first few), as hexagons."""
    picks, titles = [], []
    particle, energy, size = test.meta["particle"], test.meta["energy"], test.meta["image_size"]
    for kind, name in ((0, "gamma"), (1, "proton")):
        idx = np.flatnonzero(particle == kind)[:40]
        for i in idx[np.argsort(size[idx])[::-1][:2]]:
            picks.append(test.meta["charge"][i])
            titles.append(f"{name}, {energy[i]:.2f} TeV, size {size[i]:.0f} p.e.")
    if picks:
        camera_images(camera, np.array(picks), titles, path)


def roc_curves(test, predictions: dict[str, np.ndarray], path: Path, baseline_name: str = "") -> None:
    """Proton efficiency against gamma-ray efficiency (log scale) for every method."""
    from sklearn.metrics import roc_curve

    is_gamma = np.asarray(test.y) == 0
    fig, ax = plotting.plt.subplots(figsize=(5, 4))
    for method, prob in predictions.items():
        fpr, tpr, _ = roc_curve(is_gamma, prob[:, 0])
        ax.plot(tpr, np.maximum(fpr, 1e-4), label=plotting.method_label(method, baseline_name))
    ax.set_yscale("log")
    ax.set_xlabel("gamma-ray efficiency")
    ax.set_ylabel("proton efficiency (background kept)")
    ax.set_title("ROC: gamma rays against protons")
    plotting.legend(ax, fontsize=8)
    plotting.save(fig, path)


def migration_matrices(test, predictions: dict[str, np.ndarray], path: Path, baseline_name: str = "") -> None:
    """Reconstructed against true log10 E for every method, as 2-D histograms (column 0 of the
    targets and predictions: ``iact-energy`` may also predict the impact distance)."""
    true = np.asarray(test.y, float).reshape(len(test.y), -1)[:, 0]
    edges = np.linspace(-0.6, 2.0, 27)
    fig, axes = plotting.plt.subplots(
        1, len(predictions), figsize=(4.2 * len(predictions), 3.8), squeeze=False
    )
    for ax, (method, pred) in zip(axes[0], predictions.items(), strict=True):
        reco = np.asarray(pred, float).reshape(len(true), -1)[:, 0]
        hist, _, _ = np.histogram2d(true, reco, bins=[edges, edges])
        norm = hist / np.maximum(hist.sum(axis=1, keepdims=True), 1)  # each true bin sums to one
        mesh = ax.pcolormesh(edges, edges, norm.T, cmap="Blues", vmin=0)
        ax.plot(edges, edges, "k:", lw=0.8)
        ax.set_title(plotting.method_label(method, baseline_name), fontsize=9)
        ax.set_xlabel("true log10(E / TeV)")
        ax.set_ylabel("reconstructed log10(E / TeV)")
        fig.colorbar(mesh, ax=ax, label="fraction of the true bin", shrink=0.8)
    plotting.save(fig, path)


def generated_vs_simulated(camera: Camera, generated: dict, simulated: dict, path: Path, n: int = 4) -> None:
    """The ``n`` brightest events of each sample, generated on top, simulated below."""
    fig, axes = plotting.plt.subplots(2, n, figsize=(3.6 * n, 6.4), squeeze=False)
    for row, (name, events) in enumerate((("generated", generated), ("simulated", simulated))):
        brightest = np.argsort(-np.asarray(events["charge"]).sum(axis=1))[:n]
        for ax, i in zip(axes[row], brightest, strict=False):
            draw_camera(ax, camera, np.asarray(events["charge"][i], float))
            particle = ("gamma", "proton")[int(events["particle"][i])]
            ax.set_title(
                f"{name}: {particle}, {events['energy'][i]:.1f} TeV, {events['impact'][i]:.0f} m", fontsize=8
            )
            ax.set_axis_off()
    plotting.save(fig, path)


def hillas_overlay(tables: dict[str, np.ndarray], names: list[str], path: Path) -> None:
    """Histograms of each Hillas parameter: generated against simulated (A, with B dashed)."""
    labels = {"gen": "generated", "a": "simulated", "b": "simulated, second sample"}
    fig, axes = plotting.plt.subplots(2, (len(names) + 1) // 2, figsize=(4 * ((len(names) + 1) // 2), 6.4))
    for k, (ax, name) in enumerate(zip(axes.ravel(), names, strict=False)):
        columns = {key: t[:, k][np.isfinite(t[:, k])] for key, t in tables.items()}
        if name == "size":
            columns = {key: np.log10(np.maximum(c, 1.0)) for key, c in columns.items()}
        pooled = np.concatenate(list(columns.values()))
        edges = np.quantile(pooled, [0.005, 0.995]) if len(pooled) else np.array([0.0, 1.0])
        bins = np.linspace(edges[0], edges[1] + 1e-9, 30)
        for key, c in columns.items():
            ax.hist(c, bins, histtype="step", density=True, ls="--" if key == "b" else "-", label=labels[key])
        ax.set_xlabel("log10 size (p.e.)" if name == "size" else name)
    plotting.legend(axes.ravel()[0], fontsize=7)
    plotting.save(fig, path)


def correlation_matrices(correlations: dict[str, np.ndarray], names: list[str], path: Path) -> None:
    """The Hillas parameters' correlation matrices, simulated and generated side by side."""
    fig, axes = plotting.plt.subplots(1, 2, figsize=(10, 4.4))
    for ax, (key, title) in zip(axes, (("a", "simulated"), ("gen", "generated")), strict=True):
        image = ax.imshow(correlations[key], vmin=-1, vmax=1, cmap="coolwarm")
        ax.set_xticks(range(len(names)), names, rotation=45, fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        for (i, j), value in np.ndenumerate(correlations[key]):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6)
        ax.set_title(title)
    fig.colorbar(image, ax=axes, shrink=0.8)
    plotting.save(fig, path)


def energy_conditioning(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> None:
    """Median E_reco / E against the requested (generated) or true (simulated) energy of gamma
    rays, E_reco from the Hillas analysis trained on simulated events: 1 where conditioning holds."""
    labels = {"gen": "generated (E requested)", "b": "simulated (E true)"}
    fig, ax = plotting.plt.subplots(figsize=(5, 4))
    edges = np.linspace(-0.5, 2.0, 11)
    for key, (energy, ratio) in curves.items():
        which = np.digitize(np.log10(energy), edges) - 1
        medians = [np.median(ratio[which == b]) if np.sum(which == b) >= 5 else np.nan for b in range(10)]
        ax.plot(10 ** (0.5 * (edges[1:] + edges[:-1])), medians, "o-", label=labels[key])
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("E (TeV)")
    ax.set_ylabel("median E_reco / E")
    plotting.legend(ax, fontsize=8)
    plotting.save(fig, path)
