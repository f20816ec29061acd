"""The classical IACT image analysis: tail-cuts cleaning and Hillas parameters (Hillas 1985),
the features the gamma-hadron and energy baselines are trained on.

Conventions follow ctapipe's: moments of the cleaned image weighted by charge; ``length`` and
``width`` the square roots of the covariance's eigenvalues (larger, smaller); ``psi`` the major
axis' angle from +x; skewness and kurtosis of the charge along the major axis; ``r`` and ``phi``
the centroid's polar coordinates from the camera centre (where the source is assumed), ``alpha``
the angle between the major axis and the line from the centre to the centroid (0 to 90 degrees);
``leakage1``, ``leakage2`` the fractions of the size in the outermost one and two rings of pixels.
Lengths are in metres on the focal plane and in degrees on the sky (``*_deg``).
"""

from __future__ import annotations

import math

import numpy as np

from astrocnn.tasks.iact.camera import Camera

#: The features in the order :func:`hillas_features` returns them.
FEATURES = (
    "size", "log_size", "x", "y", "r", "phi", "length", "width", "length_deg", "width_deg", "psi",
    "skewness", "kurtosis", "alpha", "leakage1", "leakage2", "n_pixels",
)  # fmt: skip


def tailcuts_clean(
    camera: Camera, image: np.ndarray, picture: float = 7.0, boundary: float = 3.5, min_neighbours: int = 1
) -> np.ndarray:
    """Pixels kept by two-level cleaning: at least ``picture`` photoelectrons with at least
    ``min_neighbours`` neighbours of the same, and the pixels of at least ``boundary`` next to
    one of those: ctapipe's ``tailcuts_clean`` with ``keep_isolated_pixels=False`` for
    ``min_neighbours`` >= 1 (identical masks on every event of all three cameras:
    ``benchmarks/check_iact_ctapipe.py``); with ``min_neighbours=0`` isolated picture pixels stay,
    as with ctapipe's ``keep_isolated_pixels=True``."""
    image = np.asarray(image, dtype=float)
    return tailcuts_masks(camera, image[None], picture, boundary, min_neighbours)[0]


def tailcuts_masks(
    camera: Camera, images: np.ndarray, picture: float = 7.0, boundary: float = 3.5, min_neighbours: int = 1
) -> np.ndarray:
    """(n_events, n_pixels) :func:`tailcuts_clean` of many images at once."""
    table = _neighbours(camera)
    pad = np.zeros((len(images), 1), bool)  # index -1 (no neighbour) reads False
    above = np.concatenate([images >= picture, pad], axis=1)
    core = above[:, :-1] & (above[:, table].sum(axis=2) >= min_neighbours)
    core_padded = np.concatenate([core, pad], axis=1)
    return core | ((images >= boundary) & core_padded[:, table].any(axis=2))


def _neighbours(camera: Camera) -> np.ndarray:
    """(n, 6 or 4) adjacent-pixel table, -1 padded."""
    lists = camera.neighbours()
    width = max(len(n) for n in lists)
    return np.array([n + [-1] * (width - len(n)) for n in lists], dtype=np.int64)


def border_rings(camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the outermost ring of pixels (fewer than the full set of neighbours) and of the
    outermost two rings."""
    lists = camera.neighbours()
    full = max(len(n) for n in lists)
    first = np.array([len(n) < full for n in lists])
    second = first | np.array([any(first[j] for j in n) for n in lists])
    return first, second


def hillas_parameters(camera: Camera, image: np.ndarray, mask: np.ndarray | None = None) -> dict[str, float]:
    """Hillas parameters of ``image`` (photoelectrons per pixel) over the pixels in ``mask``
    (default: all); NaN for an image with fewer than two pixels or no charge left."""
    image = np.asarray(image, dtype=float)
    keep = np.ones(camera.n_pixels, bool) if mask is None else np.asarray(mask, bool)
    q = np.where(keep, image, 0.0)
    size = float(q.sum())
    nan = dict.fromkeys(FEATURES, float("nan"))
    nan.update(size=size, n_pixels=float(keep.sum()))
    if keep.sum() < 2 or size <= 0:
        return nan
    x_mean = float((q * camera.x).sum() / size)
    y_mean = float((q * camera.y).sum() / size)
    dx, dy = camera.x - x_mean, camera.y - y_mean
    sxx, syy, sxy = (q * dx * dx).sum() / size, (q * dy * dy).sum() / size, (q * dx * dy).sum() / size
    eigenvalues, eigenvectors = np.linalg.eigh(np.array([[sxx, sxy], [sxy, syy]]))
    width2, length2 = (max(float(v), 0.0) for v in eigenvalues)
    major = eigenvectors[:, 1]
    psi = math.atan2(major[1], major[0])
    if psi > math.pi / 2:  # the axis, not a direction: psi in (-90, 90] degrees
        psi -= math.pi
    elif psi <= -math.pi / 2:
        psi += math.pi
    length, width = math.sqrt(length2), math.sqrt(width2)
    longitudinal = dx * math.cos(psi) + dy * math.sin(psi)
    skewness = float((q * longitudinal**3).sum() / size / length**3) if length > 0 else float("nan")
    kurtosis = float((q * longitudinal**4).sum() / size / length**4) if length > 0 else float("nan")
    r = math.hypot(x_mean, y_mean)
    phi = math.atan2(y_mean, x_mean)
    alpha = abs(math.degrees(phi - psi)) % 180
    alpha = min(alpha, 180 - alpha)
    first, second = border_rings(camera)
    to_degrees = 180 / math.pi / camera.focal_length  # small angles: radians = metres / focal length
    return {
        "size": size,
        "log_size": math.log10(size),
        "x": x_mean,
        "y": y_mean,
        "r": r,
        "phi": math.degrees(phi),
        "length": length,
        "width": width,
        "length_deg": length * to_degrees,
        "width_deg": width * to_degrees,
        "psi": math.degrees(psi),
        "skewness": skewness,
        "kurtosis": kurtosis,
        "alpha": alpha,
        "leakage1": float(q[first].sum() / size),
        "leakage2": float(q[second].sum() / size),
        "n_pixels": float(keep.sum()),
    }


#: The timing features :func:`hillas_features` appends when given the arrival times.
TIMING_FEATURES = ("time_gradient", "time_intercept")


def hillas_features(
    camera: Camera, images: np.ndarray, times: np.ndarray | None = None, **cleaning: float
) -> np.ndarray:
    """(n_events, len(FEATURES)) Hillas parameters of tail-cut-cleaned images (NaN where the
    cleaning left too little; tree ensembles take NaN as missing). With ``times`` (ns per pixel),
    the :data:`TIMING_FEATURES` follow, fitted over the same cleaned pixels (:func:`_time_fit`)."""
    images = np.asarray(images, dtype=float)
    masks = tailcuts_masks(camera, images, **cleaning)
    rows = []
    for k, (image, keep) in enumerate(zip(images, masks, strict=True)):
        params = hillas_parameters(camera, image, keep)
        row = [params[name] for name in FEATURES]
        if times is not None:
            row += _time_fit(camera, image, np.asarray(times[k], dtype=float), keep, params)
        rows.append(row)
    width = len(FEATURES) + (len(TIMING_FEATURES) if times is not None else 0)
    return np.array(rows, dtype=float).reshape(-1, width)


def _time_fit(
    camera: Camera, image: np.ndarray, time: np.ndarray, keep: np.ndarray, params: dict
) -> list[float]:
    """The arrival-time gradient along the image's major axis (ns per degree) and the time at the
    centroid (ns), from a charge-weighted straight-line fit over the cleaned pixels (ctapipe's
    ``timing_parameters``). The axis is oriented away from the camera centre, so the gradient's
    sign is physical: it grows with the impact distance. NaN where the Hillas parameters are."""
    if not np.isfinite(params["psi"]):
        return [float("nan"), float("nan")]
    w = np.where(keep, image, 0.0)
    x0, y0, psi = params["x"], params["y"], math.radians(params["psi"])
    axis = (math.cos(psi), math.sin(psi))
    if axis[0] * x0 + axis[1] * y0 < 0:  # point away from the camera centre
        axis = (-axis[0], -axis[1])
    s = ((camera.x - x0) * axis[0] + (camera.y - y0) * axis[1]) * (180 / math.pi / camera.focal_length)
    sw, sws, swt = w.sum(), (w * s).sum(), (w * time).sum()
    denominator = sw * (w * s * s).sum() - sws**2
    if denominator <= 0:
        return [float("nan"), float("nan")]
    slope = (sw * (w * s * time).sum() - sws * swt) / denominator
    return [float(slope), float((swt - slope * sws) / sw)]


def cleaned_sizes(
    camera: Camera, images: np.ndarray, picture: float = 7.0, boundary: float = 3.5
) -> np.ndarray:
    """(n_events,) the size (total photoelectrons) of each tail-cut-cleaned image, for many
    images at once (the analysis' size cut)."""
    images = np.asarray(images, dtype=np.float32)
    return np.where(tailcuts_masks(camera, images, picture, boundary), images, 0.0).sum(axis=1)
