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
