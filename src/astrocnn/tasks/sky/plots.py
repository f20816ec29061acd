"""Figures of the sky-cleaning tasks: frames before and after each method with the residuals, and
the cosmic-ray ROC curves. Frames are drawn on the asinh stretch an astronomer would use."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_curve

from astrocnn.tasks import plotting
from astrocnn.tasks.sky.tasks import FPRS, STRETCH

ROWS = 3


def _show(ax, image: np.ndarray, title: str, **style) -> None:
    ax.imshow(image, origin="lower", interpolation="nearest", **style)
    ax.set_axis_off()
    if title:
        ax.set_title(textwrap.fill(title, 24), fontsize=8)


def before_after(
    inputs: np.ndarray,
    truth: np.ndarray,
    predictions: dict[str, np.ndarray],
    path: Path,
    baseline_name: str,
    *,
    truth_label: str = "noise-free frame",
    mask: np.ndarray | None = None,
    scores: bool = False,
) -> None:
    """Per test frame: the input, the truth, then each method's output and its residual (output
    minus truth). Frames share one asinh stretch; residuals one symmetric scale in electrons, or,
    for ``scores`` (cosmic-ray probabilities), the maps are drawn from 0 to 1."""
    methods = [plotting.method_label(m, baseline_name) for m in predictions]
    outputs = [np.asarray(p).reshape(len(inputs), *inputs.shape[1:]) for p in predictions.values()]
    columns = 2 + 2 * len(outputs)
    rows = min(ROWS, len(inputs))
    fig, axes = plotting.plt.subplots(rows, columns, figsize=(2.1 * columns, 2.2 * rows), squeeze=False)
    for i in range(rows):
        shown = np.arcsinh(inputs[i] / STRETCH)
        frame_style = {"cmap": "magma", "vmin": float(np.percentile(shown, 1)), "vmax": float(shown.max())}
        _show(axes[i, 0], shown, "input" if i == 0 else "", **frame_style)
        if scores:
            _show(axes[i, 1], truth[i], truth_label if i == 0 else "", cmap="gray", vmin=0, vmax=1)
        else:
            _show(axes[i, 1], np.arcsinh(truth[i] / STRETCH), truth_label if i == 0 else "", **frame_style)
            if mask is not None:
                axes[i, 1].contour(mask[i], levels=[0.5], colors="cyan", linewidths=0.5)
        spread = max(float(np.percentile(np.abs(outputs[0][i] - truth[i]), 99)), 1e-6)
        for k, (label, out) in enumerate(zip(methods, outputs, strict=True)):
            image_ax, residual_ax = axes[i, 2 + 2 * k], axes[i, 3 + 2 * k]
            if scores:
                _show(image_ax, out[i], label if i == 0 else "", cmap="gray", vmin=0, vmax=1)
                residual = out[i] - truth[i]
                _show(residual_ax, residual, "minus truth" if i == 0 else "", cmap="RdBu_r", vmin=-1, vmax=1)
            else:
                _show(image_ax, np.arcsinh(out[i] / STRETCH), label if i == 0 else "", **frame_style)
                _show(
                    residual_ax, out[i] - truth[i], "minus truth (e-)" if i == 0 else "", cmap="RdBu_r",
                    vmin=-spread, vmax=spread,
                )  # fmt: skip
    plotting.save(fig, path)


def roc_curves(truth: np.ndarray, predictions: dict[str, np.ndarray], path: Path, baseline_name: str) -> None:
    """Pixel ROC curves of every method's cosmic-ray score, false-positive rate on a log axis,
    with the rates the metrics quote marked."""
    fig, ax = plotting.plt.subplots(figsize=(5.2, 4.2))
    labels = np.asarray(truth).ravel().astype(bool)
    for method, prediction in predictions.items():
        false, true, _ = roc_curve(labels, np.asarray(prediction)[:, 1].ravel())
        keep = false > 0
        ax.plot(false[keep], true[keep], label=plotting.method_label(method, baseline_name))
    for fpr in FPRS:
        ax.axvline(fpr, color="grey", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xlim(1e-5, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false-positive rate (clean pixels flagged)")
    ax.set_ylabel("true-positive rate (cosmic-ray pixels found)")
    plotting.legend(ax, loc="lower right")
    plotting.save(fig, path)
