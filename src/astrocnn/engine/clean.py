"""``astrocnn clean RUN in.fits --out out.fits``: a trained sky-cleaning network on a real frame.

The frame is read from any 2-D image HDU (``--hdu``; default the first with 2-D data), of any
size and data type, scaled to electrons by the gain (``--gain``, else the header's GAIN, else 1),
passed through the run's network in overlapping windows of its training size (no seams, memory
bound by the window, :mod:`astrocnn.engine.tiling`) and written back in the input's units:

- the cleaned image as the primary HDU under the input's header (WCS included);
- ``CRPROB`` (float32): the cosmic-ray probability, for a ``sky-cosmic-rays`` run, whose cleaned
  image has the pixels above probability 0.5 replaced by biharmonic inpainting, each group of
  them from its own surroundings (:func:`fill_regions`);
- ``MASK`` (uint8): the pixels replaced: flagged cosmic rays, or the missing (non-finite) pixels
  an inpainting run fills; a denoising run changes every pixel and marks the non-finite ones.

The output is written to a temporary name and moved into place only when complete, and never
onto the input. A frame larger than ``STRIP_BYTES`` (as float64) is read from the file in strips
of rows as they are needed (memory-mapped) and each strip, read from a row where the whole
frame's windows start and with a margin of one window, so that every window over its rows is
one of the whole frame's, with its weight, is written into the output in place:
memory is bound by a strip, not by the frame (a tile-compressed HDU is still read whole).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from scipy import ndimage

from astrocnn.data.readers import DataError
from astrocnn.data.writers import atomic_output
from astrocnn.engine.predict import OVERLAP, predict_images
from astrocnn.engine.run import Run
from astrocnn.errors import OptionError

#: Tasks whose runs ``clean`` takes.
CLEANING_TASKS = ("sky-denoise", "sky-cosmic-rays", "sky-inpaint")
#: Cosmic-ray probability above which a pixel is replaced.
CR_THRESHOLD = 0.5
#: Frames whose float64 copy is larger than this are cleaned strip by strip.
STRIP_BYTES = 2**28


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


def _open_image(
    source: Path, hdu: int | str | None, **options
) -> tuple[fits.HDUList, fits.hdu.base._BaseHDU]:
    """The open file and its chosen 2-D image HDU (``options``: :func:`fits.open`'s); astropy's
    many ways of refusing a file become one DataError naming it. The caller closes the file."""
    if not source.is_file():
        raise DataError(f"{source}: no such file")
    try:
        hdul = fits.open(source, **options)
    except Exception as error:
        raise DataError(f"{source}: cannot read it as FITS ({type(error).__name__}: {error})") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return hdul, _image_hdu(hdul, source, hdu)
    except DataError:
        hdul.close()
        raise
    except Exception as error:
        hdul.close()
        raise DataError(f"{source}: cannot read it as FITS ({type(error).__name__}: {error})") from None


def read_frame(source: Path, hdu: int | str | None = None) -> tuple[np.ndarray, fits.Header]:
    """The image (H, W) as float64 and its header."""
    hdul, chosen = _open_image(source, hdu, memmap=False)
    try:
        with hdul, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(chosen.data, np.float64), chosen.header.copy()
    except Exception as error:  # astropy reads the data only now
        raise DataError(f"{source}: cannot read it as FITS ({type(error).__name__}: {error})") from None


def _check_task(run: Run) -> None:
    if run.task.name not in CLEANING_TASKS:
        raise OptionError(
            f"clean takes a {', '.join(CLEANING_TASKS)} run; {run.path} is a {run.task.name} run"
        )


def clean_frame(
    run: Run, frame: np.ndarray, *, which: str = "cnn", gain: float = 1.0, fill: float | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The cleaned frame (input units) and the extensions (name -> image) for ``run``'s task;
    missing (non-finite) pixels enter the network as ``fill`` electrons (default: the frame's
    median)."""
    _check_task(run)
    task = run.task
    electrons = frame * gain
    missing = ~np.isfinite(electrons)
    if fill is None:
        fill = float(np.median(electrons[~missing])) if (~missing).any() else 0.0
    filled = np.where(missing, fill, electrons)
    raw = task.network_input(filled, missing) if task.name == "sky-inpaint" else task.network_input(filled)
    output = predict_images(run.predictor(which), task, raw[None])[0]  # (C_out, H, W)
    extensions: dict[str, np.ndarray] = {}
    if task.name == "sky-cosmic-rays":
        probability = output[1].astype(np.float32)
        replaced = (probability > CR_THRESHOLD) | missing
        cleaned = fill_regions(filled, replaced)
        extensions["CRPROB"] = probability
    elif task.name == "sky-inpaint":
        replaced = missing
        cleaned = np.where(missing, output[0], electrons)
    else:
        replaced = missing
        cleaned = output[0]
    extensions["MASK"] = replaced.astype(np.uint8)
    return (cleaned / gain).astype(np.float32), extensions


def fill_regions(image: np.ndarray, replaced: np.ndarray) -> np.ndarray:
    """``image`` (H, W) with each connected group of ``replaced`` pixels filled by biharmonic
    inpainting (scikit-image) from the pixels around it alone: skimage clips a fill to the range of
    the known pixels it is given, so given the whole frame a fill would depend on the frame's
    brightest pixel anywhere, and a strip (which holds another brightest pixel) would differ."""
    from skimage.restoration import inpaint_biharmonic

    out = np.array(image, np.float64)
    radius = 2  # the biharmonic stencil's reach, as skimage's own split into regions
    labels, _ = ndimage.label(ndimage.binary_dilation(replaced))
    for k, box in enumerate(ndimage.find_objects(labels), start=1):
        roi = tuple(
            slice(max(s.start - radius, 0), min(s.stop + radius, n))
            for s, n in zip(box, image.shape, strict=True)
        )
        region = (labels[roi] == k) & replaced[roi]
        if region.any() and not region.all():
            out[roi][region] = inpaint_biharmonic(np.asarray(image[roi], np.float64), region)[region]
    return out


def clean_file(
    run: Run,
    source: Path,
    out: Path,
    *,
    hdu: int | str | None = None,
    which: str = "cnn",
    gain: float | None = None,
    strip_rows: int | None = None,
) -> Path:
    """Clean the image of ``source`` into ``out`` (see the module docstring); ``strip_rows``
    forces the strip-by-strip path with strips of that many rows."""
    source, out = Path(source), Path(out)
    if out.suffix.lower() not in (".fits", ".fit", ".fts"):
        raise DataError(f"{out}: clean writes FITS; name the output .fits")
    if out.resolve() == source.resolve():
        raise OptionError(f"{out}: clean never overwrites its input; give another --out")
    _check_task(run)
    shape, header, compressed = _frame_layout(source, hdu)
    if gain is None:
        gain = float(header.get("GAIN", 1.0) or 1.0)
    if not gain > 0:
        raise OptionError(f"--gain must be positive (electrons per ADU), got {gain}")
    if min(shape) < 2:
        raise DataError(f"{source}: the image is {shape[0]}x{shape[1]}, too small to clean")
    # the input's checksums do not hold for the cleaned data
    for key in ("BSCALE", "BZERO", "BLANK", "XTENSION", "PCOUNT", "GCOUNT", "EXTNAME", "CHECKSUM", "DATASUM"):
        header.remove(key, ignore_missing=True, remove_all=True)
    header["HISTORY"] = f"astrocnn clean: {run.task.name} run {run.path.name} ({which}), gain {gain:g} e-/ADU"
    names = (["CRPROB"] if run.task.name == "sky-cosmic-rays" else []) + ["MASK"]
    by_strips = strip_rows is not None or (shape[0] * shape[1] * 8 > STRIP_BYTES and not compressed)
    with atomic_output(out) as temp:
        if not by_strips:
            frame, _ = read_frame(source, hdu)
            cleaned, extensions = clean_frame(run, frame, which=which, gain=gain)
            hdus = [fits.PrimaryHDU(cleaned, header=header)]
            hdus += [fits.ImageHDU(extensions[name], name=name) for name in names]
            fits.HDUList(hdus).writeto(temp, overwrite=True, output_verify="silentfix")
        else:
            _clean_by_strips(run, source, hdu, temp, header, names, shape, which, gain, strip_rows)
    return out


def _frame_layout(source: Path, hdu: int | str | None) -> tuple[tuple[int, int], fits.Header, bool]:
    """The image's (rows, columns), header and whether it is tile-compressed, without reading it."""
    hdul, chosen = _open_image(source, hdu, memmap=True, do_not_scale_image_data=True)
    with hdul:
        return tuple(chosen.data.shape), chosen.header.copy(), isinstance(chosen, fits.CompImageHDU)


def _allocate(path: Path, headers: list[fits.Header], shape: tuple[int, int]) -> None:
    """A FITS file of these HDUs, each ``shape``, its data zero and not yet written (a sparse
    file): the documented way to make a FITS file larger than memory."""
    with open(path, "wb") as f:
        for header in headers:
            header["NAXIS1"], header["NAXIS2"] = shape[1], shape[0]
            f.write(header.tostring().encode("ascii"))
            nbytes = shape[0] * shape[1] * abs(header["BITPIX"]) // 8
            f.seek(-(-nbytes // 2880) * 2880 - 1, 1)
            f.write(b"\0")


def _clean_by_strips(run, source, hdu, temp, header, names, shape, which, gain, strip_rows) -> None:
    rows, columns = shape
    window = tuple(getattr(run.task, "input_size", None) or (64,))
    # a strip's windows must be the whole frame's: the windows start every `stride` rows from the
    # frame's top (MONAI's scan), so a strip is read from a multiple of the stride, and a margin of
    # a whole window keeps the strip's own last window (clamped to its end) off the rows it keeps.
    # Every window over a kept row then sits where, and weighs what, it does in the whole frame.
    margin = int(window[0])
    stride = max(1, int(margin * (1 - OVERLAP)))
    step = strip_rows or max(margin, STRIP_BYTES // (columns * 8 * 8))
    headers = [fits.PrimaryHDU(np.zeros((1, 1), np.float32), header=header).header]
    headers += [
        fits.ImageHDU(np.zeros((1, 1), np.float32 if name == "CRPROB" else np.uint8), name=name).header
        for name in names
    ]
    _allocate(temp, headers, shape)
    hdul, chosen = _open_image(source, hdu, memmap=True, do_not_scale_image_data=True)
    with hdul, fits.open(temp, mode="update", memmap=True) as target, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = chosen.data
        scale, zero = float(chosen.header.get("BSCALE", 1.0)), float(chosen.header.get("BZERO", 0.0))
        blank = chosen.header.get("BLANK") if raw.dtype.kind in "iu" else None

        def read(a: int, b: int) -> np.ndarray:
            block = np.asarray(raw[a:b])
            values = block.astype(np.float64) * scale + zero
            if blank is not None:
                values[block == blank] = np.nan
            return values

        sample = np.concatenate([read(r, r + 1) for r in range(0, rows, max(1, rows // 256))])
        finite = sample[np.isfinite(sample)] * gain
        fill = float(np.median(finite)) if finite.size else 0.0
        for start in range(0, rows, step):
            stop = min(rows, start + step)
            a, b = max(0, (start - margin) // stride * stride), min(rows, stop + margin)
            cleaned, extensions = clean_frame(run, read(a, b), which=which, gain=gain, fill=fill)
            keep = slice(start - a, stop - a)
            target[0].data[start:stop] = cleaned[keep]
            for k, name in enumerate(names, start=1):
                target[k].data[start:stop] = extensions[name][keep]
