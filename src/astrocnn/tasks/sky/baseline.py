"""The classical methods the networks are compared with, and the photometry the metrics rest on.

- Denoising: the better of a median and a Gaussian filter, size chosen on training frames.
- Cosmic rays: L.A.Cosmic (van Dokkum 2001) as astroscrappy implements it (McCully et al. 2018),
  with each frame's gain (1: the frames are in electrons), read noise and saturation level. It
  gives a mask, not a score: sweeping its threshold ``sigclip`` from high to low over a fine
  log-spaced grid and scoring a pixel by the share of thresholds that flag it turns the sweep into
  a score map whose ROC curve passes through every point of the sweep (deepCR's comparison, Zhang
  and Bloom 2020). Its two other parameters, ``objlim`` (the contrast a ray must have over a star
  of the fine-structure image) and ``sigfrac`` (the threshold, relative to sigclip, for a ray's
  neighbours), are chosen on training frames for the best true-positive rate at the headline's
  false-positive rate, as the denoising filter is (:func:`tune_lacosmic`).
- Missing pixels: biharmonic inpainting (scikit-image; Damelin and Hoang 2018).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import ndimage

#: The filters the denoising baseline chooses from: (kind, size or sigma).
FILTERS = (("median", 3), ("median", 5), ("gaussian", 0.7), ("gaussian", 1.0), ("gaussian", 1.5))
#: L.A.Cosmic thresholds swept, high to low (its default is 4.5): 48 log-spaced values, 11 % apart,
#: so that the ROC's points near 0.5 % and 0.01 % false positives lie close together (a review
#: found the former 15-value grid cost it 0.07 of true-positive rate at 0.5 %); the top ones reach
#: false-positive rates of 1e-5, where the brightest rays are all it may flag.
SIGCLIPS = tuple(float(v) for v in np.geomspace(300.0, 1.5, 48))
#: The coarser sweep the tuning on training frames uses (every third threshold of the fine one).
TUNING_SIGCLIPS = SIGCLIPS[::3]
#: Candidates for L.A.Cosmic's objlim (default 5) and sigfrac (default 0.3).
OBJLIMS = (2.0, 3.0, 4.0, 5.0, 8.0)
SIGFRACS = (0.1, 0.3, 0.6)
#: Training frames the tuning looks at (~2000 ray pixels, ~500 false positives at 0.5 %).
TUNING_FRAMES = 24


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


def lacosmic_scores(
    frames: np.ndarray,
    read_noise: np.ndarray,
    full_well: np.ndarray,
    *,
    objlim: float = 5.0,
    sigfrac: float = 0.3,
    sigclips: tuple[float, ...] = SIGCLIPS,
) -> np.ndarray:
    """(N, H, W) in [0, 1]: the share of ``sigclips`` at which L.A.Cosmic flags each pixel."""
    import astroscrappy

    scores = np.zeros(frames.shape, np.float32)
    for i, frame in enumerate(frames):
        for sigclip in sigclips:
            mask, _ = astroscrappy.detect_cosmics(
                np.asarray(frame, np.float32), gain=1.0, readnoise=float(read_noise[i]), sigclip=sigclip,
                sigfrac=sigfrac, objlim=objlim, satlevel=float(full_well[i]), niter=4, sepmed=True,
            )  # fmt: skip
            scores[i] += mask
    return scores / len(sigclips)


def tune_lacosmic(
    frames: np.ndarray,
    truth: np.ndarray,
    read_noise: np.ndarray,
    full_well: np.ndarray,
    score: Callable[[np.ndarray, np.ndarray], float],
) -> dict[str, float]:
    """objlim, then sigfrac at that objlim, chosen on training ``frames`` (N, H, W) with their
    cosmic-ray masks ``truth`` for the highest ``score(scores, truth)`` of the coarse sweep
    :data:`TUNING_SIGCLIPS`; ties go to the default (5, 0.3). Returns the choice and its score."""
    frames, truth = frames[:TUNING_FRAMES], truth[:TUNING_FRAMES]
    read_noise, full_well = read_noise[:TUNING_FRAMES], full_well[:TUNING_FRAMES]

    def value(objlim: float, sigfrac: float) -> float:
        maps = lacosmic_scores(
            frames, read_noise, full_well, objlim=objlim, sigfrac=sigfrac, sigclips=TUNING_SIGCLIPS
        )
        return score(maps, truth)

    by_objlim = {o: value(o, 0.3) for o in OBJLIMS}
    objlim = max(OBJLIMS, key=lambda o: (by_objlim[o], o == 5.0))
    by_sigfrac = {f: (by_objlim[objlim] if f == 0.3 else value(objlim, f)) for f in SIGFRACS}
    sigfrac = max(SIGFRACS, key=lambda f: (by_sigfrac[f], f == 0.3))
    return {"objlim": objlim, "sigfrac": sigfrac, "training_score": by_sigfrac[sigfrac]}


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


def annulus(fwhm: float) -> np.ndarray:
    """The footprint (2h+1, 2h+1) of the background annulus, 2.5 to 3.5 FWHM from its centre."""
    half = math.ceil(3.5 * fwhm)
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
    r2 = yy**2 + xx**2
    return (r2 >= (2.5 * fwhm) ** 2) & (r2 <= (3.5 * fwhm) ** 2)


def peak_heights(image: np.ndarray, fwhm: float) -> tuple[np.ndarray, np.ndarray]:
    """(heights, peaks) of an image (H, W): every pixel's value above the median of its annulus
    (see :func:`aperture_fluxes`; mirrored at the frame's edges), and where the local (3x3)
    maxima are."""
    background = ndimage.median_filter(image, footprint=annulus(fwhm), mode="mirror")
    peaks = image >= ndimage.maximum_filter(image, size=3, mode="nearest")
    return image - background, peaks


def nearby_maximum(heights: np.ndarray, peaks: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """For each position (x, y): the largest height of a local maximum within 1.5 pixels, or -inf
    where there is none."""
    rows, cols = np.nonzero(peaks)
    values = heights[rows, cols]
    out = np.full(len(x), -np.inf)
    for k, (cx, cy) in enumerate(zip(x, y, strict=True)):
        near = (rows - cy) ** 2 + (cols - cx) ** 2 <= 1.5**2
        if near.any():
            out[k] = values[near].max()
    return out
