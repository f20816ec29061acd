"""Figures of the digits task; each reads saved results and writes one PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from astrocnn.tasks import plotting


def examples(images: np.ndarray, labels: np.ndarray, probs: np.ndarray, path: Path, n: int = 24) -> None:
    """The first ``n`` test digits, as scanned (row 0 at the top), each titled with the network's
    reading and its probability; misread ones in red."""
    plt = plotting.plt
    cols = 8
    rows = -(-min(n, len(images)) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.45 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= min(n, len(images)):
            continue
        guess = int(probs[i].argmax())
        ax.imshow(images[i], cmap="gray_r", vmin=0, vmax=16)
        ax.set_title(f"{labels[i]} -> {guess} ({probs[i, guess]:.2f})", fontsize=8,
                     color="black" if guess == labels[i] else "red")  # fmt: skip
    plotting.save(fig, path)
