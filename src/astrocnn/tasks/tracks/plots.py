"""Event displays of the track tasks: each method's labels beside the truth (2-D images; for 3-D,
three projections and a 3-D scatter of the hits), and the confusion matrix of the track count."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from astrocnn.tasks import plotting
from astrocnn.tasks.base import ArraySplit

#: Drawn codes: 0 no hit, 1 a hit labelled background (noise), 2 track, 3 shower.
COLOURS = ("white", "0.6", "tab:blue", "tab:red")
NAMES = ("no hit", "background hit", "track", "shower")
CMAP = ListedColormap(COLOURS)
EVENTS = 3


def _codes(labels: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Labels as drawn: the class + 1 on hits, 0 where nothing was read out."""
    return np.where(image > 0, labels + 1, 0)


def _panels(test: ArraySplit, predictions: dict[str, np.ndarray], baseline_name: str, i: int):
    image = np.asarray(test.x[i, 0])
    rows = {"truth": _codes(np.asarray(test.y[i]), image)}
    for method, pred in predictions.items():
        rows[plotting.method_label(method, baseline_name)] = _codes(pred[i].argmax(axis=0), image)
    return image, rows


def _legend(fig) -> None:
    handles = [Patch(color=c, label=n) for c, n in zip(COLOURS[1:], NAMES[1:], strict=True)]
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False)


def event_displays(
    test: ArraySplit, predictions: dict[str, np.ndarray], out: Path, baseline_name: str
) -> None:
    """``events.png`` (2-D), or ``event_<i>.png`` per event (3-D): the hits coloured by class."""
    if np.asarray(test.x).ndim == 4:
        _displays_2d(test, predictions, out / "events.png", baseline_name)
    else:
        for i in range(min(EVENTS, len(test))):
            _display_3d(test, predictions, out / f"event_{i}.png", baseline_name, i)


def _displays_2d(test, predictions, path: Path, baseline_name: str) -> None:
    rows = min(EVENTS, len(test))
    columns = 2 + len(predictions)
    fig, axes = plotting.plt.subplots(rows, columns, figsize=(2.7 * columns, 2.7 * rows + 0.5), squeeze=False)
    for i in range(rows):
        image, panels = _panels(test, predictions, baseline_name, i)
        axes[i, 0].imshow(np.arcsinh(image), origin="lower", cmap="magma", interpolation="nearest")
        if i == 0:
            axes[i, 0].set_title("image (asinh MeV)", fontsize=9)
        for ax, (title, codes) in zip(axes[i, 1:], panels.items(), strict=True):
            ax.imshow(codes, origin="lower", cmap=CMAP, vmin=-0.5, vmax=3.5, interpolation="nearest")
            if i == 0:
                ax.set_title(textwrap.fill(title, 28), fontsize=8)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
        axes[i, 0].set_ylabel(
            f"{int(test.meta['n_tracks'][i])} tracks, noise {test.meta['noise'][i]:.2f}", fontsize=8
        )
    _legend(fig)
    plotting.save(fig, path)


def _display_3d(test, predictions, path: Path, baseline_name: str, i: int) -> None:
    _, panels = _panels(test, predictions, baseline_name, i)
    fig = plotting.plt.figure(figsize=(13, 3.0 * len(panels) + 0.6))
    for r, (title, codes) in enumerate(panels.items()):
        for axis in range(3):
            ax = fig.add_subplot(len(panels), 4, 4 * r + axis + 1)
            ax.imshow(
                codes.max(axis=axis), origin="lower", cmap=CMAP, vmin=-0.5, vmax=3.5, interpolation="nearest"
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if axis == 0:
                ax.set_ylabel(textwrap.fill(title, 24), fontsize=8)
            if r == 0:
                ax.set_title(f"projection along axis {axis}", fontsize=9)
        ax = fig.add_subplot(len(panels), 4, 4 * r + 4, projection="3d")
        where = np.argwhere(codes > 0)
        colours = np.array(COLOURS, dtype=object)[codes[tuple(where.T)]]
        ax.scatter(where[:, 2], where[:, 1], where[:, 0], c=list(colours), s=3, depthshade=False)
        ax.set_xlim(0, codes.shape[2])
        ax.set_ylim(0, codes.shape[1])
        ax.set_zlim(0, codes.shape[0])
        ax.tick_params(labelsize=6)
        if r == 0:
            ax.set_title("hits in 3-D", fontsize=9)
    fig.suptitle(
        f"event {i}: {int(test.meta['n_tracks'][i])} tracks, noise level {test.meta['noise'][i]:.2f}"
    )
    _legend(fig)
    plotting.save(fig, path)


def count_matrix(
    test: ArraySplit, predictions: dict[str, np.ndarray], path: Path, baseline_name: str
) -> None:
    """Predicted against true number of tracks, each method, as fractions of each true count."""
    truth = np.asarray(test.y)
    k = next(iter(predictions.values())).shape[1]
    fig, axes = plotting.plt.subplots(
        1, len(predictions), figsize=(3.6 * len(predictions), 3.4), squeeze=False
    )
    for ax, (method, pred) in zip(axes[0], predictions.items(), strict=True):
        matrix = np.zeros((k, k))
        np.add.at(matrix, (truth, pred.argmax(axis=1)), 1)
        matrix /= np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        ax.imshow(matrix, origin="lower", cmap="Blues", vmin=0, vmax=1)
        ax.set_xlabel("predicted tracks")
        ax.set_ylabel("true tracks")
        ax.set_title(textwrap.fill(plotting.method_label(method, baseline_name), 36), fontsize=8)
    plotting.save(fig, path)
