"""Writing FITS, HDF5 and CSV files atomically: a reader sees the old file or the whole new one."""

import csv
import os
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np
from astropy.io import fits

_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz")
_GZIP_ABOVE_BYTES = 1 << 20  # small arrays gain little from gzip and cost a filter on every read
# Keywords astropy derives from the data; taken from a dict they would contradict it.
_STRUCTURAL = ("SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT", "END")
# Keywords that describe stored integers; float data written as is must not carry them.
_SCALING = ("BSCALE", "BZERO", "BLANK")


def _temp_name(path: Path) -> str:
    # Keep the format suffix (and a compression suffix after it) so libraries that choose the
    # format by name, astropy's gzip for instance, write the same format as the final file.
    suffix = path.suffix
    stem = path.name[: len(path.name) - len(suffix)]
    if suffix.lower() in _COMPRESSION_SUFFIXES and Path(stem).suffix:
        suffix = Path(stem).suffix + suffix
        stem = stem[: len(stem) - len(Path(stem).suffix)]
    return f".{stem}.tmp-{secrets.token_hex(4)}{suffix}"


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path`` in one step.

    If the body raises, the temporary file is removed and ``path`` is left as it was, so no
    half-written output ever exists under the final name. Parent directories are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        temp = path.parent / _temp_name(path)
        try:
            # O_EXCL reserves the name; mode 0o666 lets the umask decide, as for any new file.
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield temp
        # Flushed to disk before the rename, or a crash could leave the new name on empty data.
        with temp.open("rb") as fp:
            os.fsync(fp.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _fits_header(header: fits.Header | Mapping[str, object] | None, data: np.ndarray) -> fits.Header:
    if header is None:
        out = fits.Header()
    elif isinstance(header, fits.Header):
        out = header.copy()
    else:
        out = fits.Header()
        for key, value in header.items():
            if key.upper() in _STRUCTURAL or key.upper().startswith("NAXIS"):
                continue
            if key.upper() in ("COMMENT", "HISTORY") and isinstance(value, list | tuple):
                for line in value:
                    out.append((key, line))
            else:
                out[key] = value
    if data.dtype.kind == "f":
        for key in _SCALING:
            out.remove(key, ignore_missing=True, remove_all=True)
    # A header read from an extension goes into a primary HDU here.
    for key in ("XTENSION", "PCOUNT", "GCOUNT"):
        out.remove(key, ignore_missing=True)
    return out


def write_fits(
    path: str | Path, data: np.ndarray, header: fits.Header | Mapping[str, object] | None = None
) -> None:
    """Write ``data`` as the primary HDU of a FITS file, atomically.

    ``header`` may be an astropy Header (written unchanged except what astropy must update to
    match the data: BITPIX, NAXISn, and scaling keywords dropped for float data) or a dict of
    keyword -> value (COMMENT/HISTORY as lists, as :func:`read_image` gives them).
    """
    data = np.asarray(data)
    if data.dtype == np.bool_:
        data = data.astype(np.uint8)  # FITS has no boolean image type
    elif data.dtype == np.float16:
        data = data.astype(np.float32)  # nor a half-precision one
    hdu = fits.PrimaryHDU(data=np.ascontiguousarray(data), header=_fits_header(header, data))
    with atomic_output(path) as temp:
        hdu.writeto(temp, overwrite=True)  # the temp name exists already: it was reserved


def write_hdf5(
    path: str | Path, datasets: Mapping[str, np.ndarray], attrs: Mapping[str, object] | None = None
) -> None:
    """Write ``datasets`` (name -> array; names may contain "/" groups) and root ``attrs``, atomically.

    Arrays larger than 1 MiB are gzip-compressed, in chunks of whole samples (rows of the first
    axis, about 256 KiB a chunk): a sample is then read by decompressing one chunk, not a slice
    of every chunk along a row, as readers that draw samples at random need.
    """
    with atomic_output(path) as temp, h5py.File(temp, "w") as f:
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
        for name, array in datasets.items():
            array = np.asarray(array)
            compress = array.nbytes > _GZIP_ABOVE_BYTES and array.ndim > 0
            chunks = sample_chunks(array.shape, array.dtype.itemsize) if compress else None
            f.create_dataset(name, data=array, compression="gzip" if compress else None, chunks=chunks)


def sample_chunks(shape: tuple[int, ...], itemsize: int, target: int = 256 * 2**10) -> tuple[int, ...]:
    """HDF5 chunks of whole samples (the first axis), about ``target`` bytes each."""
    per_sample = itemsize * int(np.prod(shape[1:], dtype=np.int64))
    rows = max(1, min(shape[0], target // max(per_sample, 1)))
    return (rows, *shape[1:])


def write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Write a CSV file with a header row, atomically; every row must have as many fields as the header."""
    with atomic_output(path) as temp, temp.open("w", newline="", encoding="utf-8") as fp:
        writer = csv.writer(fp)
        writer.writerow(header)
        for number, row in enumerate(rows, start=1):
            if len(row) != len(header):
                raise ValueError(f"{path}: row {number} has {len(row)} fields, the header has {len(header)}")
            writer.writerow(row)
