"""Sky-cleaning networks on real frames that ship inside installed packages (never trained on).

Frames: ``gmos.fits`` from astroscrappy's tests (a reduced Gemini/GMOS CCD cutout, 150x200, gain
1.933 e-/ADU, read noise 4.24 e-, two real cosmic rays) and astropy's ``m13.fits`` (a 300x300
Digitized Sky Survey plate scan of M13 from SkyView: not a CCD, its "gain" set here so that the
sky's variance is Poisson, an assumption said in the table).

For each frame and each given run folder:

- ``sky-cosmic-rays``: simulated cosmic rays injected into the real frame (the simulation's own
  spots, tracks and worms with their rims, their charge in electrons whatever the frame's noise,
  marked where they add one sky sigma), ``--seeds`` injections (default 10); true-positive rate at
  0.5 % and 0.01 % false positives of the network and of L.A.Cosmic (the task's baseline: the same
  sigclip sweep, with the objlim and sigfrac the run chose on its training frames), mean and
  standard deviation over the injections, with the number of false-positive pixels each rate
  rests on; the pixels L.A.Cosmic flags on the untouched frame left out of the negatives (real
  rays). On GMOS also: the share of the real rays' pixels (L.A.Cosmic, sigclip 4.5) the network
  flags.
- ``sky-inpaint``: the simulation's missing-pixel masks laid on the real frame; the error inside
  the mask against the real pixel values, in units of each pixel's noise variance (so a perfect
  fill scores about 1, the noise of the truth itself), network against biharmonic inpainting.
- ``sky-denoise``: aperture photometry of the frame's bright isolated peaks before and after
  (median flux ratio; no truth on a real frame), and the sky noise before and after.

    python benchmarks/bench_sky.py --runs RUN [RUN ...] [--seeds 10]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import astropy
import astroscrappy
import numpy as np
from astropy.io import fits
from scipy import ndimage

from astrocnn.engine.predict import predict_images
from astrocnn.engine.run import load_run
from astrocnn.tasks.sky import baseline as classical
from astrocnn.tasks.sky import simulation as sim
from astrocnn.tasks.sky import tasks as sky

SITE = Path(astropy.__file__).parent.parent


def robust_sigma(x: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def real_frames() -> dict[str, dict]:
    """name -> frame in electrons, gain, read noise (e-), sky noise (e-), saturation (e-)."""
    with fits.open(SITE / "astroscrappy/tests/data/gmos.fits") as hdul:
        gmos = np.asarray(hdul["SCI"].data, np.float64)
    m13 = np.asarray(fits.getdata(SITE / "astropy/io/fits/hdu/compressed/tests/data/m13.fits"), np.float64)
    # m13: the sky's variance taken as Poisson: gain = sky / variance (ADU)
    sky_adu = float(np.median(m13))
    m13_gain = sky_adu / robust_sigma(m13 - ndimage.median_filter(m13, 7)) ** 2
    frames = {}
    for name, adu, gain, read_noise in (("gmos", gmos, 1.933, 4.24), ("m13", m13, m13_gain, 0.0)):
        electrons = adu * gain
        frames[name] = {
            "frame": electrons,
            "gain": gain,
            "read_noise": read_noise,
            "noise": robust_sigma(electrons - ndimage.median_filter(electrons, 7)),
            "saturation": float(electrons.max()) * 1.01,
        }
    return frames


def network(run, which: str = "cnn"):
    model = run.model(which)
    return lambda raw: predict_images(model, run.task, raw[None])[0]


def cosmic_rays(run, frames: dict, seeds: int = 10) -> list[str]:
    rows = [
        "| frame | method | TPR at 0.5 % FPR | TPR at 0.01 % FPR | false-positive pixels at 0.5 % / 0.01 % |",
        "|---|---|---|---|---|",
    ]
    predict = {w: network(run, w) for w in ("cnn", "mlp")}
    chosen = run.metrics["results"].get("baseline", {})
    objlim, sigfrac = chosen.get("lacosmic_objlim", 5.0), chosen.get("lacosmic_sigfrac", 0.3)
    rows.insert(
        0, f"L.A.Cosmic with the run's choice objlim {objlim:g}, sigfrac {sigfrac:g}; {seeds} injections\n"
    )
    for name, f in frames.items():
        real, _ = astroscrappy.detect_cosmics(
            f["frame"].astype(np.float32), gain=1.0, readnoise=max(f["read_noise"], 1.0), sigclip=4.5,
            satlevel=f["saturation"],
        )  # fmt: skip
        flagged, real = real, ndimage.binary_dilation(real, iterations=1)  # rays' edges left out too
        tprs: dict[str, list[list[float]]] = {"cnn": [], "mlp": [], "L.A.Cosmic": []}
        counts, ray_pixels = [], []
        for seed in range(seeds):
            frame, mask = sim.inject_cosmic_rays(f["frame"], f["noise"], np.random.default_rng(seed))
            keep = ~(real & ~mask)  # pixels of real rays are neither positives nor negatives
            scores = {w: p(frame[None].astype(np.float32))[1] for w, p in predict.items()}
            scores["L.A.Cosmic"] = classical.lacosmic_scores(
                frame[None].astype(np.float32), np.array([max(f["read_noise"], 1.0)]),
                np.array([f["saturation"]]), objlim=objlim, sigfrac=sigfrac,
            )[0]  # fmt: skip
            for method, score in scores.items():
                tprs[method].append([sky.tpr_at_fpr(score[keep], mask[keep], fpr) for fpr in sky.FPRS])
            counts.append([fpr * (keep & ~mask).sum() for fpr in sky.FPRS])
            ray_pixels.append(int(mask.sum()))
        fp = np.mean(counts, axis=0)
        for method, values in tprs.items():
            mean, std = np.mean(values, axis=0), np.std(values, axis=0, ddof=1) if seeds > 1 else (0, 0)
            label = f"{name} ({np.mean(ray_pixels):.0f} ray pixels)"
            rows.append(
                f"| {label} | {method} | {mean[0]:.3f} +- {std[0]:.3f} | {mean[1]:.3f} +- {std[1]:.3f} | "
                f"{fp[0]:.0f} / {fp[1]:.1f} |"
            )
        if name == "gmos":
            clean_scores = predict["cnn"](f["frame"][None].astype(np.float32))[1]
            for threshold in (0.5, 0.1):
                found = (clean_scores > threshold)[flagged].mean()
                extra = int(((clean_scores > threshold) & ~real).sum())
                rows.append(
                    f"| gmos, real rays ({int(flagged.sum())} px flagged by L.A.Cosmic) | cnn at "
                    f"p > {threshold:g} | finds {found:.3f} of them | {extra} pixels flagged elsewhere | |"
                )
    return rows


def inpainting(run, frames: dict) -> list[str]:
    rows = [
        "| frame | masked pixels | cnn mean / median | mlp mean / median | biharmonic mean / median |",
        "|---|---|---|---|---|",
    ]
    predict = {w: network(run, w) for w in ("cnn", "mlp")}
    rng = np.random.default_rng(1)
    settings = sim.Settings()
    for name, f in frames.items():
        frame = f["frame"]
        mask = sim.missing_mask(rng, max(frame.shape), settings)[: frame.shape[0], : frame.shape[1]]
        mask |= sim.missing_mask(rng, max(frame.shape), settings)[: frame.shape[0], : frame.shape[1]]
        raw = run.task.network_input(frame.astype(np.float32), mask)
        variance = np.clip(frame, 0, None) + f["read_noise"] ** 2 + 1e-9
        # the pixels' own noise: against the real value a perfect fill scores about 1
        errors = {}
        for method, p in predict.items():
            errors[method] = (((p(raw)[0] - frame) ** 2) / variance)[mask]
        filled = classical.inpaint(np.where(mask, 0, frame)[None], mask[None])[0]
        errors["biharmonic"] = (((filled - frame) ** 2) / variance)[mask]
        cells = " | ".join(
            f"{errors[m].mean():.2f} / {np.median(errors[m]):.2f}" for m in ("cnn", "mlp", "biharmonic")
        )
        rows.append(f"| {name} | {int(mask.sum())} | {cells} |")
    return rows


def denoising(run, frames: dict) -> list[str]:
    rows = [
        "| frame | method | sky noise (e-) | median flux ratio of bright peaks | peaks |",
        "|---|---|---|---|---|",
    ]
    predict = {w: network(run, w) for w in ("cnn", "mlp")}
    for name, f in frames.items():
        frame = f["frame"]
        smooth = ndimage.median_filter(frame, 5)
        peaks = (frame == ndimage.maximum_filter(frame, 11)) & (smooth - np.median(frame) > 30 * f["noise"])
        ys, xs = np.nonzero(peaks)
        inside = (ys > 10) & (ys < frame.shape[0] - 10) & (xs > 10) & (xs < frame.shape[1] - 10)
        xs, ys = xs[inside].astype(float), ys[inside].astype(float)
        fwhm = 3.0
        before = classical.aperture_fluxes(frame, xs, ys, fwhm)
        outputs = {w: p(frame[None].astype(np.float32))[0] for w, p in predict.items()}
        outputs["identity"] = frame
        for method, image in outputs.items():
            after = classical.aperture_fluxes(image, xs, ys, fwhm)
            ratio = np.nanmedian(after / before) if len(xs) else math.nan
            noise = robust_sigma(image - ndimage.median_filter(image, 7))
            rows.append(f"| {name} | {method} | {noise:.1f} | {ratio:.4f} | {len(xs)} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", required=True, help="sky-* run folders")
    parser.add_argument("--seeds", type=int, default=10, help="cosmic-ray injections per frame")
    args = parser.parse_args()
    frames = real_frames()
    for name, f in frames.items():
        print(f"{name}: {f['frame'].shape}, gain {f['gain']:.3g} e-/ADU, sky noise {f['noise']:.1f} e-")
    for path in args.runs:
        run = load_run(path)
        section = {
            "sky-cosmic-rays": lambda r, f: cosmic_rays(r, f, args.seeds),
            "sky-inpaint": inpainting,
            "sky-denoise": denoising,
        }
        print(f"\n### {run.task.name} ({path})\n")
        print("\n".join(section[run.task.name](run, frames)), flush=True)


if __name__ == "__main__":
    main()
