"""CCD frames of the sky in electrons, with every product's ground truth.

A frame is the expected image (``clean``: sky background with a linear gradient, stars through
the frame's point-spread function, Sersic galaxies convolved with it) observed through a CCD:
Poisson noise of the electrons, Gaussian read noise, digitisation at the gain (ADU steps of
``gain`` electrons) and saturation at the full well, the excess bleeding along columns
(``noisy``). Three products are built on it:

- ``frame``: ``noisy`` plus cosmic rays and hot pixels, clipped at the full well. Cosmic rays are
  charge deposited directly in the silicon, so they are never convolved with the PSF: sharp-edged
  spots (1-4 pixels), straight tracks at random angles, curved worms (a random walk) and broad
  tracks 2-4 pixels across (the shapes of deepCR's training data, Zhang and Bloom 2020). Their
  charge is set by the path in the silicon, not by the frame's sky: per pixel of path a ray
  deposits a level drawn log-normally around 800 e- (10^2 to 10^4 e-, faint rays included;
  Groom 2004, "Cosmic rays and other nonsense in astronomical CCD imagers": a minimum-ionising
  particle leaves ~80 e- per micron of silicon), each pixel fluctuating about it as a Landau
  distribution does (Moyal's approximation, long tail upwards), and 2-6 % of the charge diffuses
  into the eight neighbours (the faint rim L.A.Cosmic's neighbour growth looks for). ``cr_mask``
  marks the pixels where a ray's charge, as read out, is at least ``MASK_SIGMAS`` of the sky noise:
  the pixels a cleaning should replace (a ray below the noise, or on a saturated pixel, changes
  nothing there). Hot pixels are single bright pixels that are *not* cosmic rays.
- Saturated stars bleed: the charge above the full well spills up and down its column into the
  neighbouring pixels until they too are full (blooming along the readout direction). A bleed
  trail is a bright sharp-edged streak, the classic false positive of a cosmic-ray detector, and
  it is in ``noisy`` and never in ``cr_mask``.
- ``missing_mask``: pixels without data: round holes, satellite trails across the frame, a chip
  gap (a band of rows or columns) and bad columns.

The PSF is a Moffat profile (Moffat 1969; beta 2.5-4.5, the atmosphere's wings) or a Gaussian,
its FWHM (the seeing) drawn per frame. Stars are rendered from the PSF integrated over pixels on
a 5x5 sub-pixel grid, normalised analytically, so a star's pixels sum to its flux up to what
falls outside its stamp; their positions are kept on that 1/5-pixel grid and listed exactly.
Galaxies follow Sersic (1963) profiles, n 0.5-4, with random ellipticity and angle.

Frame i draws from its own random stream SeedSequence(seed, spawn_key=(i,)), so a file is the same
for any number of worker processes (:func:`generate`).
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, signal, stats

#: Sub-pixel steps per pixel of the rendered PSF (star positions lie on this grid).
OVERSAMPLE = 5
#: Stars listed per frame at most (the star table is padded with NaN to this length).
MAX_STARS = 64
#: Frames per independently generated chunk (one process each).
CHUNK = 64
#: Product names of a frame, as stored in the HDF5 file.
IMAGES = ("clean", "noisy", "frame")
MASKS = ("cr_mask", "missing_mask")
SCALARS = ("gain", "read_noise", "sky", "fwhm", "full_well")
#: A pixel is in the cosmic-ray mask where the ray's charge is at least this many sky sigmas.
MASK_SIGMAS = 1.0
#: How a cosmic ray's charge diffuses into its neighbours: sides twice the corners, summing to 1.
RIM = np.array([[1.0, 2.0, 1.0], [2.0, 0.0, 2.0], [1.0, 2.0, 1.0]]) / 12


@dataclass(frozen=True)
class Settings:
    """Ranges the frames are drawn from (electrons, pixels)."""

    sky: tuple[float, float] = (100.0, 2000.0)  # e- per pixel, log-uniform
    gradient: float = 0.15  # largest relative change of the sky across the frame
    fwhm: tuple[float, float] = (1.8, 4.0)  # seeing in pixels
    gaussian_fraction: float = 0.25  # frames with a Gaussian PSF instead of a Moffat one
    gain: tuple[float, float] = (0.8, 3.0)  # e- per ADU
    read_noise: tuple[float, float] = (3.0, 10.0)  # e-
    full_well: tuple[float, float] = (6e4, 1.5e5)  # e-
    star_density: float = 4e-3  # stars per pixel (Poisson mean)
    star_flux: tuple[float, float] = (50.0, 5e5)  # e-, dN/dlogF flat in log F
    bright_star_probability: float = 0.25  # frames with one more star, bright enough to saturate
    bright_star_flux: tuple[float, float] = (1e6, 2e7)  # e-, log-uniform
    galaxy_density: float = 5e-4
    galaxy_flux: tuple[float, float] = (500.0, 5e4)
    cosmic_density: float = 1.2e-3  # events per pixel
    cosmic_charge: tuple[float, float] = (800.0, 1.0)  # e- per pixel of path: median, log-normal sigma
    cosmic_charge_range: tuple[float, float] = (30.0, 3e4)  # e-, the log-normal clipped to this
    cosmic_rim: tuple[float, float] = (0.02, 0.06)  # share of the charge diffused into the neighbours
    hot_pixel_density: float = 5e-5  # left after dark subtraction
    hot_pixel_charge: tuple[float, float] = (300.0, 1e4)  # e-, log-uniform
    holes: tuple[int, int] = (0, 2)  # round holes per frame (inclusive)
    trail_probability: float = 0.3
    chip_gap_probability: float = 0.25
    bad_columns: tuple[int, int] = (0, 2)


def moffat_alpha(fwhm: float, beta: float) -> float:
    """The Moffat core width alpha of a profile of FWHM ``fwhm``."""
    return fwhm / (2 * math.sqrt(2 ** (1 / beta) - 1))


def psf_profile(r2: np.ndarray, fwhm: float, beta: float | None) -> np.ndarray:
    """Surface brightness at squared radius ``r2`` (pixels^2) of a unit-flux PSF: Moffat of index
    ``beta``, I = (beta - 1) / (pi alpha^2) (1 + r^2/alpha^2)^-beta, or Gaussian when beta is None."""
    if beta is None:
        sigma = fwhm / (2 * math.sqrt(2 * math.log(2)))
        return np.exp(-0.5 * r2 / sigma**2) / (2 * math.pi * sigma**2)
    alpha = moffat_alpha(fwhm, beta)
    return (beta - 1) / (math.pi * alpha**2) * (1 + r2 / alpha**2) ** (-beta)


def psf_stamps(fwhm: float, beta: float | None, radius: int) -> np.ndarray:
    """(OVERSAMPLE, OVERSAMPLE, 2r+1, 2r+1) stamps of a unit-flux PSF integrated over pixels (the
    mean of a 5x5 sub-pixel grid), centred at each sub-pixel offset (dy, dx) = (k - 2) / 5."""
    k = OVERSAMPLE
    n = 2 * radius + 1
    # sub-pixel centres, with a margin of k // 2 sub-pixels on each side for the shifts
    sub = (np.arange(-(k // 2), n * k + k // 2) - (n * k - 1) / 2) / k
    r2 = sub[:, None] ** 2 + sub[None, :] ** 2
    fine = psf_profile(r2, fwhm, beta)
    stamps = np.empty((k, k, n, n))
    for i in range(k):  # offsets -2/5 ... +2/5 of a pixel
        for j in range(k):
            # the star's centre moved by (i - k//2)/k: read the fine grid shifted the other way
            window = fine[k - 1 - i : k - 1 - i + n * k, k - 1 - j : k - 1 - j + n * k]
            stamps[i, j] = window.reshape(n, k, n, k).mean(axis=(1, 3))
    return stamps


def sersic_image(size: int, x: float, y: float, flux: float, n: float, r_e: float, q: float, angle: float):
    """A Sersic (1963) galaxy of total ``flux`` on a ``size`` x ``size`` grid (2x2 sub-pixels);
    b_n from Ciotti and Bertin (1999)."""
    b = 2 * n - 1 / 3 + 4 / (405 * n) + 46 / (25515 * n**2)
    sub = (np.arange(2 * size) + 0.5) / 2 - 0.5
    dy, dx = sub[:, None] - y, sub[None, :] - x
    c, s = math.cos(angle), math.sin(angle)
    u, v = c * dx + s * dy, (-s * dx + c * dy) / q
    r = np.sqrt(u**2 + v**2)
    fine = np.exp(-b * ((r / r_e) ** (1 / n) - 1))
    image = fine.reshape(size, 2, size, 2).mean(axis=(1, 3))
    total = image.sum()
    return image * (flux / total) if total > 0 else image


def _line(x0: float, y0: float, angle: float, length: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (rows, cols) a straight segment passes through, sampled every quarter pixel."""
    t = np.arange(0, max(length, 0.25), 0.25)
    return np.round(y0 + t * np.sin(angle)).astype(int), np.round(x0 + t * np.cos(angle)).astype(int)


def cosmic_ray(rng: np.random.Generator, size: int, s: Settings = Settings()) -> np.ndarray:
    """One cosmic ray's deposit (size, size) in electrons: a spot, a track, a worm or a broad
    track (charge spread 2-4 pixels across, as in thick, deep-depletion CCDs), with its rim."""
    deposit = np.zeros((size, size))
    median, spread = s.cosmic_charge
    level = float(np.clip(median * math.exp(rng.normal(0.0, spread)), *s.cosmic_charge_range))
    x0, y0 = rng.uniform(0, size, 2)
    kind = rng.choice(4, p=[0.35, 0.35, 0.2, 0.1])
    if kind == 0:  # spot: 1-4 adjacent pixels (a ray that crossed the silicon near the normal)
        rows, cols = [int(y0)], [int(x0)]
        for _ in range(rng.integers(0, 4)):
            dy, dx = [(0, 1), (1, 0), (0, -1), (-1, 0)][rng.integers(4)]
            rows.append(rows[-1] + dy)
            cols.append(cols[-1] + dx)
        rows, cols = np.array(rows), np.array(cols)
    elif kind == 1:  # track: a straight line at a random angle (a grazing muon)
        rows, cols = _line(x0, y0, rng.uniform(0, math.pi), rng.uniform(3, 25))
    elif kind == 2:  # worm: a curved low-energy electron track
        steps = rng.integers(6, 30)
        angles = rng.uniform(0, 2 * math.pi) + np.cumsum(rng.normal(0, 0.5, steps))
        ys, xs = y0 + np.cumsum(np.sin(angles) * 0.7), x0 + np.cumsum(np.cos(angles) * 0.7)
        rows, cols = np.round(ys).astype(int), np.round(xs).astype(int)
    else:  # broad track: every pixel within half a width (2-4 pixels) of a segment
        angle, length, half = rng.uniform(0, math.pi), rng.uniform(4, 30), rng.uniform(1.0, 2.0)
        yy, xx = np.mgrid[:size, :size]
        along = (xx - x0) * math.cos(angle) + (yy - y0) * math.sin(angle)
        across = -(xx - x0) * math.sin(angle) + (yy - y0) * math.cos(angle)
        rows, cols = np.nonzero((np.abs(across) <= half) & (along >= 0) & (along <= length))
    keep = (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size)
    pixels = np.unique(np.stack([rows[keep], cols[keep]]), axis=1)
    # Landau fluctuations of the energy loss per pixel (Moyal's form: the level is the most probable
    # value, the tail reaches several times it), bounded below so that a track has no gaps
    spread = np.clip(1 + 0.25 * stats.moyal.rvs(size=pixels.shape[1], random_state=rng), 0.4, 5.0)
    deposit[pixels[0], pixels[1]] = level * spread
    rim = rng.uniform(*s.cosmic_rim)
    return (1 - rim) * deposit + rim * ndimage.convolve(deposit, RIM, mode="constant")


def cosmic_deposits(
    rng: np.random.Generator, height: int, width: int, s: Settings = Settings()
) -> np.ndarray:
    """The charge (H, W) in electrons of a Poisson number of cosmic rays (``s.cosmic_density``)."""
    size = max(height, width)
    deposits = np.zeros((size, size))
    for _ in range(rng.poisson(s.cosmic_density * height * width)):
        deposits += cosmic_ray(rng, size, s)
    return deposits[:height, :width]


def inject_cosmic_rays(
    frame: np.ndarray, noise: float, rng: np.random.Generator, s: Settings = Settings()
) -> tuple[np.ndarray, np.ndarray]:
    """A real frame (H, W) in electrons with simulated cosmic rays added, as the simulation makes
    them (charge in electrons, whatever the frame's noise): (frame, their mask), the mask where a
    ray adds at least ``MASK_SIGMAS`` times ``noise``, the frame's sky noise in electrons."""
    deposits = cosmic_deposits(rng, *frame.shape, s)
    return frame + deposits, deposits >= MASK_SIGMAS * noise


def bleed(electrons: np.ndarray, full_well: float) -> np.ndarray:
    """Charge above the full well spilt up and down its column (half each way) into the next
    pixels, each filled to the full well before the rest moves on; what reaches the frame's edge
    is lost. Pixels are then at most the full well."""
    out = np.array(electrons, np.float64)
    for col in np.nonzero((out > full_well).any(axis=0))[0]:
        column = out[:, col]
        over = column > full_well
        labels, count = ndimage.label(over)
        for run in range(1, count + 1):
            rows = np.nonzero(labels == run)[0]
            excess = float((column[rows] - full_well).sum())
            column[rows] = full_well
            for direction, start in ((-1, rows[0] - 1), (1, rows[-1] + 1)):
                left, row = excess / 2, start
                while left > 0 and 0 <= row < len(column):
                    take = min(left, max(full_well - column[row], 0.0))
                    column[row] += take
                    left -= take
                    row += direction
    return out


def missing_mask(rng: np.random.Generator, size: int, s: Settings) -> np.ndarray:
    """Pixels without data: holes, a satellite trail, a chip gap, bad columns."""
    mask = np.zeros((size, size), bool)
    yy, xx = np.mgrid[:size, :size]
    for _ in range(rng.integers(s.holes[0], s.holes[1] + 1)):
        cy, cx, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(1.5, 5.0)
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
    if rng.random() < s.trail_probability:  # a straight trail across the frame, 1-3 pixels wide
        angle, width = rng.uniform(0, math.pi), rng.uniform(0.6, 1.6)
        cy, cx = rng.uniform(0, size, 2)
        mask |= np.abs(-(xx - cx) * math.sin(angle) + (yy - cy) * math.cos(angle)) <= width
    if rng.random() < s.chip_gap_probability:
        start, width = rng.integers(0, size - 4), rng.integers(2, 6)
        if rng.random() < 0.5:
            mask[start : start + width] = True
        else:
            mask[:, start : start + width] = True
    for _ in range(rng.integers(s.bad_columns[0], s.bad_columns[1] + 1)):
        column, first = rng.integers(size), rng.integers(size)
        mask[first:, column] = True  # a bad column from a charge trap to the readout
    return mask


def simulate_frame(rng: np.random.Generator, size: int, s: Settings = Settings()) -> dict:
    """One frame's products (float32 images in electrons, bool masks), scalars and star list."""
    log_uniform = lambda lo_hi: math.exp(rng.uniform(math.log(lo_hi[0]), math.log(lo_hi[1])))  # noqa: E731
    sky, fwhm = log_uniform(s.sky), rng.uniform(*s.fwhm)
    gain, read_noise = rng.uniform(*s.gain), rng.uniform(*s.read_noise)
    full_well = rng.uniform(*s.full_well)
    beta = None if rng.random() < s.gaussian_fraction else rng.uniform(2.5, 4.5)
    yy, xx = np.mgrid[:size, :size] / max(size - 1, 1) - 0.5
    slope = rng.normal(0, s.gradient / 2, 2)
    clean = sky * (1 + slope[0] * yy + slope[1] * xx)

    radius = math.ceil(4 * fwhm)
    stamps = psf_stamps(fwhm, beta, radius)
    n_stars = min(rng.poisson(s.star_density * size * size), MAX_STARS)
    bright = rng.random() < s.bright_star_probability and n_stars < MAX_STARS  # one that bleeds
    stars = np.full((MAX_STARS, 3), np.nan, np.float32)  # x, y, flux
    padded = np.zeros((size + 2 * radius, size + 2 * radius))
    for k in range(n_stars + bright):
        flux = log_uniform(s.bright_star_flux if k == n_stars else s.star_flux)
        col, row = rng.integers(0, size, 2)
        i, j = rng.integers(0, OVERSAMPLE, 2)
        padded[row : row + 2 * radius + 1, col : col + 2 * radius + 1] += flux * stamps[i, j]
        stars[k] = (col + (j - OVERSAMPLE // 2) / OVERSAMPLE, row + (i - OVERSAMPLE // 2) / OVERSAMPLE, flux)
    clean += padded[radius : radius + size, radius : radius + size]

    galaxies = np.zeros((size, size))
    for _ in range(rng.poisson(s.galaxy_density * size * size)):
        galaxies += sersic_image(
            size, *rng.uniform(0, size, 2), log_uniform(s.galaxy_flux), rng.uniform(0.5, 4.0),
            rng.uniform(1.0, 5.0), rng.uniform(0.3, 1.0), rng.uniform(0, math.pi),
        )  # fmt: skip
    if galaxies.any():
        psf = stamps[OVERSAMPLE // 2, OVERSAMPLE // 2]
        clean += np.clip(signal.fftconvolve(galaxies, psf, mode="same"), 0, None)

    collected = bleed(rng.poisson(clean), full_well)  # saturated stars spill along their columns
    electrons = collected + rng.normal(0, read_noise, clean.shape)
    noisy = np.minimum(np.round(electrons / gain) * gain, full_well)  # digitised, saturated

    noise = math.sqrt(sky + read_noise**2)
    deposits = cosmic_deposits(rng, size, size, s)
    hot = np.zeros((size, size))
    n_hot = rng.poisson(s.hot_pixel_density * size * size)
    hot[rng.integers(0, size, n_hot), rng.integers(0, size, n_hot)] = np.exp(
        rng.uniform(*np.log(s.hot_pixel_charge), n_hot)
    )
    frame = np.minimum(noisy + np.round((deposits + hot) / gain) * gain, full_well)
    seen = np.minimum(noisy + deposits, full_well) - noisy  # a ray on a full pixel leaves no trace
    return {
        "clean": clean.astype(np.float32),
        "noisy": noisy.astype(np.float32),
        "frame": frame.astype(np.float32),
        "cr_mask": seen >= MASK_SIGMAS * noise,
        "missing_mask": missing_mask(rng, size, s),
        "gain": gain,
        "read_noise": read_noise,
        "sky": sky,
        "fwhm": fwhm,
        "full_well": full_well,
        "stars": stars,
    }


def simulate(n: int, size: int, seed: int, *, first: int = 0, settings: Settings = Settings()) -> dict:
    """Frames ``first`` ... ``first + n - 1`` of the stream ``seed``, stacked: images (n, size,
    size), masks, scalars (n,) and ``stars`` (n, MAX_STARS, 3) = x, y, flux (NaN-padded)."""
    frames = [
        simulate_frame(np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,))), size, settings)
        for i in range(first, first + n)
    ]
    return {key: np.stack([f[key] for f in frames]) for key in (*IMAGES, *MASKS, *SCALARS, "stars")}


def concatenate(parts: list[dict]) -> dict:
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def generate(
    n: int,
    size: int,
    seed: int,
    *,
    workers: int = 1,
    settings: Settings = Settings(),
    progress: Callable[[int], None] | None = None,
) -> dict:
    """``n`` frames in chunks of ``CHUNK`` shared out to ``workers`` processes; frame i is the
    same whatever the chunking (its stream is (seed, i)). ``progress(done)`` after each chunk."""
    starts = list(range(0, n, CHUNK))
    jobs = [(min(CHUNK, n - s), size, seed, s) for s in starts]
    parts = []
    if workers <= 1 or len(jobs) == 1:
        for count, *rest in jobs:
            parts.append(simulate(count, rest[0], rest[1], first=rest[2], settings=settings))
            if progress:
                progress(count)
        return concatenate(parts)
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context) as pool:
        futures = [
            pool.submit(simulate, count, sz, sd, first=first, settings=settings)
            for count, sz, sd, first in jobs
        ]
        for future, (count, *_) in zip(futures, jobs, strict=True):
            parts.append(future.result())
            if progress:
                progress(count)
    return concatenate(parts)


def read_frames(path) -> dict:
    """What :func:`generate` wrote with ``astrocnn generate sky``, as arrays; a file without the
    products is refused in one line naming it."""
    import h5py

    from astrocnn.data.readers import DataError

    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in (*IMAGES, *MASKS, *SCALARS, "stars") if k not in f]
            if missing:
                raise DataError(
                    f"{path}: not a sky file from `astrocnn generate sky` (no {', '.join(missing)})"
                )
            data = {k: f[k][()] for k in (*IMAGES, *MASKS, *SCALARS, "stars")}
    except OSError as error:
        raise DataError(f"{path}: cannot read it as HDF5 ({error})") from None
    sizes = {data[k].shape[1:] for k in (*IMAGES, *MASKS)}
    if len(sizes) != 1 or len(next(iter(sizes))) != 2:
        raise DataError(f"{path}: the frames' products differ in shape or are not 2-D: {sorted(sizes)}")
    return {
        **data,
        "cr_mask": data["cr_mask"].astype(bool),
        "missing_mask": data["missing_mask"].astype(bool),
    }
