"""The classical methods the networks are compared with, and the photometry the metrics rest on.

- Denoising: the better of a median and a Gaussian filter, size chosen on training frames.
- Cosmic rays: L.A.Cosmic (van Dokkum 2001) as astroscrappy implements it (McCully et al. 2018),
  with each frame's gain (1: the frames are in electrons), read noise and saturation level. It
  gives a mask, not a score: sweeping its threshold ``sigclip`` from high to low and scoring a
  pixel by the share of thresholds that flag it turns the sweep into a score map whose ROC curve
  passes through every point of the sweep (deepCR's comparison, Zhang and Bloom 2020).
- Missing pixels: biharmonic inpainting (scikit-image; Damelin and Hoang 2018).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import ndimage

#: The filters the denoising baseline chooses from: (kind, size or sigma).
FILTERS = (("median", 3), ("median", 5), ("gaussian", 0.7), ("gaussian", 1.0), ("gaussian", 1.5))
#: L.A.Cosmic thresholds swept, high to low (its default is 4.5); the top ones reach down to
#: false-positive rates of 1e-4, where the brightest rays are all it may flag.
SIGCLIPS = (200.0, 100.0, 60.0, 30.0, 20.0, 14.0, 10.0, 7.0, 5.0, 4.5, 4.0, 3.5, 3.0, 2.5, 2.0)


def smooth(images: np.ndarray, kind: str, size: float) -> np.ndarray:
    """(N, C, H, W) filtered over the two image axes."""
    if kind == "median":
        return ndimage.median_filter(images, size=(1, 1, int(size), int(size)), mode="reflect")
    return ndimage.gaussian_filter(images, sigma=(0, 0, size, size), mode="reflect")


def best_filter(
    noisy: np.ndarray, clean: np.ndarray, score: Callable[[np.ndarray], float]
) -> tuple[str, float]:
    """The filter of :data:`FILTERS` whose output of the training frames ``noisy`` (N, C, H, W)
    has the highest ``score`` (the task's headline metric against ``clean``)."""
    scores = {f: score(smooth(noisy, *f)) for f in FILTERS}
    return max(scores, key=scores.get)


def lacosmic_scores(frames: np.ndarray, read_noise: np.ndarray, full_well: np.ndarray) -> np.ndarray:
    """(N, H, W) in [0, 1]: the share of :data:`SIGCLIPS` at which L.A.Cosmic flags each pixel."""
    import astroscrappy

    scores = np.zeros(frames.shape, np.float32)
    for i, frame in enumerate(frames):
        for sigclip in SIGCLIPS:
            mask, _ = astroscrappy.detect_cosmics(
                np.asarray(frame, np.float32), gain=1.0, readnoise=float(read_noise[i]), sigclip=sigclip,
                satlevel=float(full_well[i]), niter=4, sepmed=True,
            )  # fmt: skip
            scores[i] += mask
    return scores / len(SIGCLIPS)


def inpaint(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(N, H, W) with the masked pixels filled by biharmonic inpainting from the others."""
    from skimage.restoration import inpaint_biharmonic

    out = np.array(images, np.float64)
    for i in range(len(out)):
        if masks[i].any() and not masks[i].all():
            out[i] = inpaint_biharmonic(out[i], masks[i])
    return out.astype(np.float32)


# ---- photometry ------------------------------------------------------------------------------------


def aperture_fluxes(image: np.ndarray, x: np.ndarray, y: np.ndarray, fwhm: float) -> np.ndarray:
    """Background-subtracted aperture sums at (x, y) in one image (H, W): radius 1.5 FWHM, the
    background the median of the annulus from 2.5 to 3.5 FWHM times the aperture's pixel count."""
    height, width = image.shape
    r_ap, r_in, r_out = 1.5 * fwhm, 2.5 * fwhm, 3.5 * fwhm
    half = math.ceil(r_out)
    fluxes = np.full(len(x), np.nan)
    for k, (cx, cy) in enumerate(zip(x, y, strict=True)):
        row, col = int(np.rint(cy)), int(np.rint(cx))
        rows = slice(max(row - half, 0), min(row + half + 1, height))
        cols = slice(max(col - half, 0), min(col + half + 1, width))
        yy, xx = np.mgrid[rows, cols]
        r2 = (yy - cy) ** 2 + (xx - cx) ** 2
        cut = image[rows, cols]
        aperture = r2 <= r_ap**2
        annulus = (r2 >= r_in**2) & (r2 <= r_out**2)
        if annulus.sum() >= 8:
            fluxes[k] = cut[aperture].sum() - np.median(cut[annulus]) * aperture.sum()
    return fluxes


def local_peaks(image: np.ndarray, x: np.ndarray, y: np.ndarray, fwhm: float) -> np.ndarray:
    """For each position: the height above the annulus background (see :func:`aperture_fluxes`)
    of the brightest local maximum (3x3) within 1.5 pixels, or -inf where there is none."""
    height, width = image.shape
    is_peak = image >= ndimage.maximum_filter(image, size=3, mode="nearest")
    r_in, r_out = 2.5 * fwhm, 3.5 * fwhm
    half = math.ceil(r_out)
    peaks = np.full(len(x), -np.inf)
    for k, (cx, cy) in enumerate(zip(x, y, strict=True)):
        row, col = int(np.rint(cy)), int(np.rint(cx))
        rows = slice(max(row - half, 0), min(row + half + 1, height))
        cols = slice(max(col - half, 0), min(col + half + 1, width))
        yy, xx = np.mgrid[rows, cols]
        r2 = (yy - cy) ** 2 + (xx - cx) ** 2
        cut = image[rows, cols]
        near = (r2 <= 1.5**2) & is_peak[rows, cols]
        annulus = (r2 >= r_in**2) & (r2 <= r_out**2)
        if near.any() and annulus.sum() >= 8:
            peaks[k] = cut[near].max() - np.median(cut[annulus])
    return peaks
