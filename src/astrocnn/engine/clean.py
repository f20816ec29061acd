"""``astrocnn clean RUN in.fits --out out.fits``: a trained sky-cleaning network on a real frame.

The frame is read from any 2-D image HDU (``--hdu``; default the first with 2-D data), of any
size and data type, scaled to electrons by the gain (``--gain``, else the header's GAIN, else 1),
passed through the run's network in overlapping windows of its training size (no seams, memory
bound by the window, :mod:`astrocnn.engine.tiling`) and written back in the input's units:

- the cleaned image as the primary HDU under the input's header (WCS included);
- ``CRPROB`` (float32): the cosmic-ray probability, for a ``sky-cosmic-rays`` run, whose cleaned
  image has the pixels above probability 0.5 replaced by biharmonic inpainting;
- ``MASK`` (uint8): the pixels replaced: flagged cosmic rays, or the missing (non-finite) pixels
  an inpainting run fills; a denoising run changes every pixel and marks the non-finite ones.

The output is written to a temporary name and moved into place only when complete, and never
onto the input.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits

from astrocnn.data.readers import DataError
from astrocnn.data.writers import atomic_output
from astrocnn.engine.predict import predict_images
from astrocnn.engine.run import Run
from astrocnn.errors import OptionError

#: Tasks whose runs ``clean`` takes.
CLEANING_TASKS = ("sky-denoise", "sky-cosmic-rays", "sky-inpaint")
#: Cosmic-ray probability above which a pixel is replaced.
CR_THRESHOLD = 0.5


def _image_hdu(hdul: fits.HDUList, source: Path, hdu: int | str | None):
    if hdu is not None:
        try:
            chosen = hdul[int(hdu) if str(hdu).isdigit() else hdu]
        except (KeyError, IndexError):
            raise DataError(f"{source}: no HDU {hdu!r} (it has {len(hdul)})") from None
        if chosen.data is None or np.ndim(chosen.data) != 2:
            raise DataError(f"{source}: HDU {hdu!r} holds no 2-D image")
        return chosen
    for candidate in hdul:
        if isinstance(candidate, fits.ImageHDU | fits.PrimaryHDU | fits.CompImageHDU):
            if candidate.data is not None and candidate.data.ndim == 2:
                return candidate
    raise DataError(f"{source}: no 2-D image HDU (give --hdu for another layout)")


def read_frame(source: Path, hdu: int | str | None = None) -> tuple[np.ndarray, fits.Header]:
    """The image (H, W) as float64 and its header."""
    if not source.is_file():
        raise DataError(f"{source}: no such file")
    try:
        with fits.open(source, memmap=False) as hdul, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            chosen = _image_hdu(hdul, source, hdu)
            return np.asarray(chosen.data, np.float64), chosen.header.copy()
    except DataError:
        raise
    except Exception as error:  # astropy's many ways of refusing a file
        raise DataError(f"{source}: cannot read it as FITS ({type(error).__name__}: {error})") from None


def clean_frame(
    run: Run, frame: np.ndarray, *, which: str = "cnn", gain: float = 1.0
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The cleaned frame (input units) and the extensions (name -> image) for ``run``'s task."""
    task = run.task
    if task.name not in CLEANING_TASKS:
        raise OptionError(f"clean takes a {', '.join(CLEANING_TASKS)} run; {run.path} is a {task.name} run")
    electrons = frame * gain
    missing = ~np.isfinite(electrons)
    filled = np.where(missing, np.median(electrons[~missing]) if (~missing).any() else 0.0, electrons)
    raw = task.network_input(filled, missing) if task.name == "sky-inpaint" else task.network_input(filled)
    output = predict_images(run.predictor(which), task, raw[None])[0]  # (C_out, H, W)
    extensions: dict[str, np.ndarray] = {}
    if task.name == "sky-cosmic-rays":
        from astrocnn.tasks.sky.baseline import inpaint

        probability = output[1].astype(np.float32)
        replaced = (probability > CR_THRESHOLD) | missing
        cleaned = inpaint(filled[None], replaced[None])[0]
        extensions["CRPROB"] = probability
    elif task.name == "sky-inpaint":
        replaced = missing
        cleaned = np.where(missing, output[0], electrons)
    else:
        replaced = missing
        cleaned = output[0]
    extensions["MASK"] = replaced.astype(np.uint8)
    return (cleaned / gain).astype(np.float32), extensions


def clean_file(
    run: Run,
    source: Path,
    out: Path,
    *,
    hdu: int | str | None = None,
    which: str = "cnn",
    gain: float | None = None,
) -> Path:
    """Clean the image of ``source`` into ``out`` (see the module docstring)."""
    source, out = Path(source), Path(out)
    if out.suffix.lower() not in (".fits", ".fit", ".fts"):
        raise DataError(f"{out}: clean writes FITS; name the output .fits")
    if out.resolve() == source.resolve():
        raise OptionError(f"{out}: clean never overwrites its input; give another --out")
    frame, header = read_frame(source, hdu)
    if gain is None:
        gain = float(header.get("GAIN", 1.0) or 1.0)
    if not gain > 0:
        raise OptionError(f"--gain must be positive (electrons per ADU), got {gain}")
    if min(frame.shape) < 2:
        raise DataError(f"{source}: the image is {frame.shape[0]}x{frame.shape[1]}, too small to clean")
    cleaned, extensions = clean_frame(run, frame, which=which, gain=gain)
    for key in ("BSCALE", "BZERO", "BLANK", "XTENSION", "PCOUNT", "GCOUNT", "EXTNAME"):
        header.remove(key, ignore_missing=True, remove_all=True)
    header["HISTORY"] = f"astrocnn clean: {run.task.name} run {run.path.name} ({which}), gain {gain:g} e-/ADU"
    hdus = [fits.PrimaryHDU(cleaned, header=header)]
    hdus += [fits.ImageHDU(image, name=name) for name, image in extensions.items()]
    with atomic_output(out) as temp:
        fits.HDUList(hdus).writeto(temp, overwrite=True, output_verify="silentfix")
    return out
