"""The classical track finder the CNN is compared with: a sequential line search over the hits,
then hit assignment.

2-D: the Hough transform (Hough 1962; Duda and Hart 1972's (theta, rho) form, scikit-image's
``hough_line``): take the strongest line, keep it if at least ``min_hits`` hits lie within
``distance`` pixels of it, assign those hits to a track, remove them and search again.
3-D: the same loop with RANSAC (Fischler and Bolles 1981; scikit-image's ``ransac`` with
``LineModelND``), a Hough search being costly in the four parameters of a 3-D line.
Hits on no line are a shower when they lie in a connected cluster of at least ``shower_hits``
hits (a shower is many hits no straight line explains), otherwise noise (background).

Lines fit straight tracks; helices, scattered low-momentum tracks and showers (which attract
lines of their own) are where it fails, which is the comparison the tasks make.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.measure import LineModelND, ransac
from skimage.transform import hough_line, hough_line_peaks

from astrocnn.tasks.tracks.simulation import BACKGROUND, SHOWER, TRACK

MIN_HITS = 8
DISTANCE = 1.0  # cells from the line
SHOWER_HITS = 6
MAX_LINES = 8
ANGLES = np.linspace(-np.pi / 2, np.pi / 2, 360, endpoint=False)


def _hough_lines(points: np.ndarray, shape: tuple[int, int]) -> list[np.ndarray]:
    """Indices into ``points`` (K, 2) of the hits of each line found, strongest first."""
    remaining = np.arange(len(points))
    lines = []
    while len(remaining) >= MIN_HITS and len(lines) < MAX_LINES:
        image = np.zeros(shape, bool)
        image[points[remaining, 0], points[remaining, 1]] = True
        accumulator, angles, distances = hough_line(image, theta=ANGLES)
        _, theta, rho = hough_line_peaks(accumulator, angles, distances, num_peaks=1)
        if len(theta) == 0:
            break
        # skimage's line: rho = col cos(theta) + row sin(theta)
        r, c = points[remaining, 0], points[remaining, 1]
        near = np.abs(c * np.cos(theta[0]) + r * np.sin(theta[0]) - rho[0]) <= DISTANCE
        if near.sum() < MIN_HITS:
            break
        lines.append(remaining[near])
        remaining = remaining[~near]
    return lines


def _ransac_lines(points: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    remaining = np.arange(len(points))
    lines = []
    while len(remaining) >= MIN_HITS and len(lines) < MAX_LINES:
        model, inliers = ransac(
            points[remaining].astype(np.float64), LineModelND, min_samples=2, residual_threshold=DISTANCE,
            max_trials=300, rng=rng,
        )  # fmt: skip
        if model is None or inliers is None or inliers.sum() < MIN_HITS:
            break
        lines.append(remaining[inliers])
        remaining = remaining[~inliers]
    return lines


def find_tracks(image: np.ndarray, seed: int = 0) -> tuple[np.ndarray, int]:
    """(class per cell, number of lines) for one event's image (*S) of 2 or 3 dimensions."""
    points = np.argwhere(image > 0)
    labels = np.zeros(image.shape, np.int8)
    if image.ndim == 2:
        lines = _hough_lines(points, image.shape)
    else:
        lines = _ransac_lines(points, np.random.default_rng(seed))
    on_line = np.zeros(len(points), bool)
    for hits in lines:
        on_line[hits] = True
    rest = np.zeros(image.shape, bool)
    rest[tuple(points[~on_line].T)] = True
    clusters, _ = ndimage.label(rest, structure=np.ones((3,) * image.ndim))
    sizes = np.bincount(clusters.ravel())
    big = sizes >= SHOWER_HITS
    big[0] = False
    labels[rest] = np.where(big[clusters[rest]], SHOWER, BACKGROUND)
    labels[tuple(points[on_line].T)] = TRACK
    return labels, len(lines)


def classify(images: np.ndarray, num_classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """One-hot class probabilities (N, K, *S) and the line counts (N,) of raw images (N, *S)."""
    out = np.zeros((len(images), num_classes, *images.shape[1:]), np.float32)
    counts = np.zeros(len(images), np.int64)
    for i, image in enumerate(images):
        labels, counts[i] = find_tracks(image, seed=i)
        np.put_along_axis(out[i], labels[None].astype(np.int64), 1.0, axis=0)
    return out, counts
