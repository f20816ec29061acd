"""Figures shared by the tasks; each reads saved results and writes one PNG.

Also the vocabulary the report and the figures share: what a metric means and which way is
better (:data:`METRIC_NOTES`, the fallback for a task's own ``metric_notes``), and how a method
is named for a reader (:func:`method_label`)."""

from __future__ import annotations

import fnmatch
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no screen
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator, NullLocator

from astrocnn.data.writers import atomic_output

#: Metrics common to several tasks: what each measures and whether larger is better (None:
#: neither, e.g. a bias, whose ideal is zero). A task's ``metric_notes`` take precedence. Keys may
#: be shell patterns: ``*`` stands for a lattice size (``accuracy_L*``) or a class name (``iou_*``).
METRIC_NOTES: dict[str, tuple[str, bool | None]] = {
    "accuracy": ("fraction of the test samples classified correctly", True),
    "f1_macro": (
        "F1 score (harmonic mean of precision and recall) averaged over the classes, "
        "each class weighted equally",
        True,
    ),
    "log_loss": (
        "cross-entropy of the predicted class probabilities: low when the network is "
        "right and confident, high when it is confidently wrong",
        False,
    ),
    "precision": ("fraction of the predicted positives that are positive", True),
    "recall": ("fraction of the positives that are found", True),
    "roc_auc": (
        "area under the ROC curve: the probability that a random positive scores above a random negative",
        True,
    ),
    "rmse": ("root-mean-square error of the prediction, in the target's units", False),
    "mse": ("mean squared error of the prediction", False),
    "mae": ("mean absolute error of the prediction, in the target's units", False),
    "bias": ("mean of prediction minus truth: 0 is unbiased, the sign says which way it leans", None),
    "r2": (
        "coefficient of determination, 1 - residual variance / target variance: 1 is perfect, "
        "0 is no better than predicting the mean",
        True,
    ),
    "pixel_accuracy": ("fraction of the pixels classified correctly", True),
    "mean_iou": ("intersection over union of predicted and true masks, averaged over the classes", True),
    "iou_*": ("intersection over union of the predicted and true masks of one class", True),
    "iou": ("intersection over union of the predicted and true masks", True),
    "dice": ("Dice coefficient, 2 |A and B| / (|A| + |B|), of the predicted and true masks", True),
    "psnr": ("peak signal-to-noise ratio of the restored image, in dB", True),
    "ssim": ("structural similarity of the restored and true images (1: identical)", True),
    # what the engine adds to every network's entry
    "model": ("the network's architecture", None),
    "parameters": ("trainable weights of the network", None),
    "ensemble": (
        "networks trained with different seeds, scored on the mean of their predictions "
        "(astrocnn predict and export use the first)",
        None,
    ),
    "n_test": ("test samples the metrics are computed on", None),
}

#: Metrics whose values lie in [0, 1] (or are fractions of a reference value): the scale the
#: standard error is judged against is 1, not the value itself.
UNIT_SCALE = ("accuracy", "accuracy_*", "f1_*", "precision", "recall", "roc_auc", "pixel_accuracy",
              "mean_iou", "iou", "iou_*", "dice", "ssim", "r2", "*_relative_error")  # fmt: skip

#: Axis titles of the per-bin figures, by what follows ``_vs_`` in a metric's name.
AXIS_NAMES = {
    "snr": "signal-to-noise ratio (S/N)",
    "T": "temperature T",
    "L": "lattice size L",
    "log_size": "log10(cleaned image size / p.e.)",
}

_METHOD_LABELS = {"cnn": "CNN", "mlp": "fully connected"}


def _match(name: str, notes: Mapping[str, Any]) -> Any:
    if name in notes:
        return notes[name]
    for pattern, value in notes.items():
        if "*" in pattern and fnmatch.fnmatchcase(name, pattern):
            return value
    return None


def metric_note(
    name: str, task_notes: Mapping[str, tuple[str, bool | None]] | None = None
) -> tuple[str, bool | None]:
    """(description, larger is better) of metric ``name``: the task's own note, else the common
    one, else for ``X_vs_Y`` the note of X read per bin of Y; ("", None) when nobody knows."""
    for notes in (task_notes or {}, METRIC_NOTES):
        found = _match(name, notes)
        if found is not None:
            return found
    quantity, _, axis = name.partition("_vs_")
    if axis:
        description, higher = metric_note(quantity, task_notes)
        return (f"{quantity} in bins of {axis}" + (f" ({description})" if description else ""), higher)
    return "", None


def on_unit_scale(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in UNIT_SCALE)


def method_label(method: str, baseline_name: str = "") -> str:
    """How a reader sees a method: "CNN", "fully connected", or the classical method's name."""
    if method == "baseline":
        return baseline_name or "classical baseline"
    return _METHOD_LABELS.get(method, method)


def save(fig: plt.Figure, path: Path) -> None:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)


def legend(ax: plt.Axes, **options: Any) -> None:
    """A legend only where something is labelled (matplotlib warns on stderr otherwise)."""
    if ax.get_legend_handles_labels()[1]:
        ax.legend(**options)


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
    labels: np.ndarray,
    predictions: dict[str, np.ndarray],
    names: Sequence[str],
    path: Path,
    *,
    baseline_name: str = "",
) -> None:
    """One confusion matrix per method, side by side. The panels share the class axis, so only
    the first carries the true-class labels: a panel's row labels would otherwise run into its
    left neighbour. Column labels are horizontal where they fit their column and vertical where
    they do not (diagonal ones crowd each other's corners); the counts are white on dark cells."""
    k = len(names)
    side = max(3.0, 0.45 * k + 1.6)  # room for the counts as k grows
    # a 9-point character is about 0.075 inch wide; the matrix takes about 3/4 of a panel
    rotation = 0 if max(map(len, names), default=0) * 0.075 < 0.75 * side / k * 0.85 else 90
    fig, axes = plt.subplots(
        1, len(predictions), figsize=(side * len(predictions) + 0.8, side + 0.6), squeeze=False,
        sharey=True, layout="constrained",
    )  # fmt: skip
    for col, (ax, (method, probs)) in enumerate(zip(axes[0], predictions.items(), strict=True)):
        matrix = np.zeros((k, k), dtype=int)
        np.add.at(matrix, (labels, probs.argmax(axis=1)), 1)
        ax.imshow(matrix, cmap="Blues", vmin=0)
        dark = matrix > 0.6 * max(matrix.max(), 1)
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=9,
                        color="white" if dark[i, j] else "black")  # fmt: skip
        ax.set_xticks(range(k), names, rotation=rotation, fontsize=9)
        ax.set_xlabel("predicted")
        if col == 0:
            ax.set_yticks(range(k), names, fontsize=9)
            ax.set_ylabel("true")
        else:
            ax.tick_params(axis="y", labelleft=False)
        ax.set_title("\n".join(textwrap.wrap(method_label(method, baseline_name), 28)), fontsize=10)
    save(fig, path)


def per_bin_metrics(results: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Names of the per-bin metrics (a list with its edges under ``<name>_bins``) any method has."""
    names: list[str] = []
    for entry in results.values():
        for key, value in entry.items():
            if isinstance(value, list) and isinstance(entry.get(f"{key}_bins"), list) and key not in names:
                names.append(key)
    return names


def metric_vs_bins(
    results: dict[str, dict[str, Any]],
    metric: str,
    xlabel: str,
    path: Path,
    *,
    log_x: bool | None = None,
    baseline_name: str = "",
    errors: Mapping[str, Sequence[float]] | None = None,
    notes: Mapping[str, tuple[str, bool | None]] | None = None,
) -> None:
    """A per-bin metric (list plus ``<metric>_bins`` edges) for every method that has it, at the
    bin centres, with ``errors[method]`` as error bars where given. ``log_x`` (default: when the
    edges are positive and span more than a factor 10) puts the centres at the geometric means of
    the edges. A few bins get their edges as ticks and grid lines, so that each bin shows."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    edges = None
    for k, (method, values) in enumerate(results.items()):
        if not isinstance(values.get(metric), list):
            continue
        edges = np.asarray(values[f"{metric}_bins"], dtype=float)
        if log_x is None:
            log_x = bool(edges.min() > 0 and edges.max() / edges.min() > 10)
        centres = np.sqrt(edges[:-1] * edges[1:]) if log_x else (edges[:-1] + edges[1:]) / 2
        y = np.array([np.nan if v is None else v for v in values[metric]], dtype=float)
        yerr = None
        if errors and method in errors:
            yerr = np.array([np.nan if v is None else v for v in errors[method]], dtype=float)
        ax.errorbar(centres, y, yerr=yerr, fmt="o-", ms=4, lw=1, capsize=2, color=f"C{k}",
                    label=method_label(method, baseline_name))  # fmt: skip
    if log_x:
        ax.set_xscale("log")
    if edges is not None and len(edges) <= 12:
        ax.set_xticks(edges, [f"{e:g}" for e in edges])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlim(edges[0], edges[-1])
    quantity = metric.split("_vs_")[0]
    ax.set_xlabel(xlabel)
    ax.set_ylabel(quantity)
    higher = metric_note(quantity, notes)[1]
    if higher is not None:
        ax.set_title(f"{quantity} per bin ({'higher' if higher else 'lower'} is better)", fontsize=10)
    legend(ax, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    ax.grid(alpha=0.3)
    save(fig, path)


def training_curves(history: dict[str, dict[str, list[float]]], path: Path) -> None:
    """Train and validation loss per epoch, one line pair per trained network. Every epoch is a
    visible marker (circles train, squares validation), so that a one-epoch run shows its losses
    too; the epoch axis is in integers."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    epochs = 0
    positive = True
    for k, (method, curves) in enumerate(history.items()):
        for key, values in curves.items():
            if not values:
                continue
            epochs = max(epochs, len(values))
            positive &= min(values) > 0
            train = key == "train"
            ax.plot(range(1, len(values) + 1), values, "-" if train else "--", marker="o" if train else "s",
                    ms=6, color=f"C{k}", mfc=f"C{k}" if train else "white",
                    label=f"{method_label(method)} {key}")  # fmt: skip
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if epochs and positive:
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlim(0.5, max(epochs, 1) + 0.5)
    if not epochs:
        ax.text(0.5, 0.5, "no training history logged", ha="center", va="center", transform=ax.transAxes)
    legend(ax)
    ax.grid(alpha=0.3)
    save(fig, path)


def convolution_outputs(model, x, layers: int = 2) -> list[np.ndarray]:
    """The outputs (C, H, W) of the first ``layers`` convolutions of ``model`` for one input
    ``x`` (1, C, H, W), from forward hooks; the network is run once, in evaluation mode."""
    import torch

    convs = [m for m in model.modules() if isinstance(m, torch.nn.modules.conv._ConvNd)][:layers]
    outputs: list[np.ndarray] = []
    hooks = [
        # a copy: an in-place activation right after a convolution would change the hooked tensor
        m.register_forward_hook(lambda _m, _i, out: outputs.append(out[0].detach().numpy().copy()))
        for m in convs
    ]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return outputs


def activation_maps(model, x, path: Path, title: str, *, layers: int = 2, channels: int = 8) -> None:
    """One input (1, C, H, W) and what the first ``layers`` convolutions make of it: the first
    ``channels`` feature maps of each, a row per layer (the lecture's pictures of what the
    filters respond to)."""
    maps = convolution_outputs(model, x, layers)
    if not maps:
        return
    cols = max(channels, 1)
    fig, axes = plt.subplots(len(maps) + 1, cols, figsize=(1.6 * cols, 1.7 * (len(maps) + 1)), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    inputs = x[0].detach().numpy()
    for k in range(min(cols, inputs.shape[0])):
        axes[0, k].imshow(inputs[k], cmap="magma", origin="lower")
        axes[0, k].set_title(f"input {k}", fontsize=7)
    for row, fmap in enumerate(maps, start=1):
        for k in range(min(cols, fmap.shape[0])):
            axes[row, k].imshow(
                fmap[k], cmap="RdBu_r", origin="lower", vmin=-abs(fmap[k]).max(), vmax=abs(fmap[k]).max()
            )
            axes[row, k].set_title(f"conv {row}, map {k}", fontsize=7)
    fig.suptitle(title, fontsize=9)
    save(fig, path)
