"""Figures shared by the tasks; each reads saved results and writes one PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no screen
import matplotlib.pyplot as plt
import numpy as np

from astrocnn.data.writers import atomic_output


def save(fig: plt.Figure, path: Path) -> None:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)


def examples(
    images: np.ndarray, labels: np.ndarray, probs: np.ndarray, names: Sequence[str], path: Path
) -> None:
    """Four test images per class with the network's predicted class and probability."""
    fig, axes = plt.subplots(len(names), 4, figsize=(8, 2.1 * len(names)), squeeze=False)
    for k, row in enumerate(axes):
        idx = np.flatnonzero(labels == k)[:4]
        for ax, i in zip(row, idx, strict=False):
            ax.imshow(images[i], cmap="magma", origin="lower")
            guess = int(probs[i].argmax())
            ax.set_title(
                f"{names[k]} -> {names[guess]} ({probs[i, guess]:.2f})",
                fontsize=8,
                color="black" if guess == k else "red",
            )
        for ax in row:
            ax.set_axis_off()
    save(fig, path)


def confusion_matrices(
    labels: np.ndarray, predictions: dict[str, np.ndarray], names: Sequence[str], path: Path
) -> None:
    fig, axes = plt.subplots(1, len(predictions), figsize=(3.6 * len(predictions), 3.4), squeeze=False)
    k = len(names)
    for ax, (method, probs) in zip(axes[0], predictions.items(), strict=True):
        matrix = np.zeros((k, k), dtype=int)
        np.add.at(matrix, (labels, probs.argmax(axis=1)), 1)
        ax.imshow(matrix, cmap="Blues")
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=9)
        ax.set_xticks(range(k), names, rotation=45)
        ax.set_yticks(range(k), names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(method)
    save(fig, path)


def metric_vs_bins(
    results: dict[str, dict[str, Any]], metric: str, xlabel: str, path: Path, *, log_x: bool = True
) -> None:
    """A per-bin metric (list plus ``<metric>_bins`` edges) for every method that has it."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for method, values in results.items():
        if metric in values:
            edges = np.asarray(values[f"{metric}_bins"])
            centres = np.sqrt(edges[:-1] * edges[1:]) if edges.min() > 0 else (edges[:-1] + edges[1:]) / 2
            ax.plot(centres, values[metric], marker="o", label=method)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(metric.split("_vs_")[0])
    ax.legend()
    ax.grid(alpha=0.3)
    save(fig, path)


def training_curves(history: dict[str, dict[str, list[float]]], path: Path) -> None:
    """Train and validation loss per epoch, one line pair per trained network."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for method, curves in history.items():
        for key, values in curves.items():
            ax.plot(range(1, len(values) + 1), values, marker=".", label=f"{method} {key}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    save(fig, path)
