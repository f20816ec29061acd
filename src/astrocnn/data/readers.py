"""Reading one user image (FITS, HDF5, NumPy, PNG/JPEG) into a native float32 array.

Every way a user's file can be wrong ends in a :class:`DataError` whose one-line message names the
file and the problem; no OSError, KeyError or astropy/h5py exception escapes.
"""

import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import PIL.Image
from astropy.io import fits

from astrocnn.errors import AstroCNNError, OptionError

# 2**31 float32 pixels is 8 GiB: a header promising more is far likelier corrupt or hostile than real,
# and numpy would try to allocate it before noticing the data is not there.
MAX_PIXELS = 2**31
NAN_POLICIES = ("error", "zero", "median")

_SUFFIXES = {
    "fits": (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz"),
    "hdf5": (".h5", ".hdf5", ".hdf"),
    "npy": (".npy",),
    "npz": (".npz",),
    "picture": (".png", ".jpg", ".jpeg"),
}
_AXIS_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


class DataError(AstroCNNError, ValueError):
    """A user file that cannot be read as asked; the message names the file and the problem."""


@dataclass
class Image:
    """An image as read from disk: native float32 data, its metadata, and where pixels were bad."""

    data: np.ndarray
    header: dict[str, object] | None
    path: Path
    mask: np.ndarray | None  # True where the file had NaN, inf or a masked/BLANK pixel
    fits_header: object | None = None  # the astropy Header itself, so write_fits can write it back


def file_kind(path: str | Path) -> str:
    """The format of ``path`` judged by its suffix: "fits", "hdf5", "npy", "npz" or "picture"."""
    name = Path(path).name.lower()
    for kind, suffixes in _SUFFIXES.items():
        if name.endswith(suffixes):
            return kind
    known = " ".join(s for suffixes in _SUFFIXES.values() for s in suffixes)
    raise DataError(
        f"{path}: unsupported file type {Path(path).suffix or '(no suffix)'!r}; astrocnn reads {known}"
    )


def read_image(
    path: str | Path, *, hdu: int | str | None = None, dataset: str | None = None, nan_policy: str = "median"
) -> Image:
    """Read one image from a FITS, HDF5, .npy, .npz, PNG or JPEG file.

    ``hdu`` picks a FITS HDU by index or EXTNAME (default: the first that holds an image);
    ``dataset`` picks an HDF5 dataset or .npz key (default: the only one). NaN, inf and masked
    pixels are refused (``nan_policy="error"``) or replaced by 0 or the median of the finite
    pixels; ``Image.mask`` marks them either way.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a file")
    if nan_policy not in NAN_POLICIES:
        raise OptionError(f"--nan-policy must be one of {', '.join(NAN_POLICIES)}, not {nan_policy!r}")
    kind = file_kind(path)
    if hdu is not None and kind != "fits":
        raise OptionError(f"{path}: --hdu applies only to FITS files")
    if dataset is not None and kind not in ("hdf5", "npz"):
        raise OptionError(f"{path}: --dataset applies only to HDF5 and .npz files")
    check_file(path)
    fits_header = None
    if kind == "fits":
        raw, header, fits_header = _read_fits(path, hdu)
    elif kind == "hdf5":
        raw, header = _read_hdf5(path, dataset)
    elif kind == "npy":
        raw, header = _read_npy(path), None
    elif kind == "npz":
        raw, header = _read_npz(path, dataset), None
    else:
        raw, header = _read_picture(path), None
    data, mask = finite_float32(raw, nan_policy=nan_policy, source=path)
    return Image(data=data, header=header, path=path, mask=mask, fits_header=fits_header)


def check_file(path: Path) -> None:
    """Refuse a path that is missing, not a regular file, or empty, before any library sees it."""
    if not path.exists():
        raise DataError(f"{path}: file does not exist")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a file")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")


@contextmanager
def library_errors(path: str | Path, fmt: str) -> Iterator[None]:
    """Turn whatever a file-format library raises into a DataError naming the file.

    astropy, h5py, numpy and PIL raise undocumented mixtures (OSError, ValueError, KeyError,
    struct.error, zlib.error, UnicodeDecodeError, ...) on corrupt input, so at this boundary
    every failure that is not already ours becomes one line in the user's terms.
    """
    try:
        yield
    except (DataError, OptionError):
        raise
    except Exception as err:
        raise DataError(f"{path}: not a readable {fmt} file ({_one_line(err)})") from err


def _one_line(err: object) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _check_size(path: str | Path, shape: Sequence[int], what: str) -> None:
    # Checked on the header's or dataset's promised shape, before numpy allocates anything.
    dims = tuple(int(n) for n in shape)
    if any(n < 0 for n in dims):
        raise DataError(f"{path}: {what} claims the impossible shape {dims}")
    count = math.prod(dims)
    if count > MAX_PIXELS:
        raise DataError(
            f"{path}: {what} claims shape {dims} ({count:,} elements), more than the {MAX_PIXELS:,} "
            "astrocnn will read"
        )


# --- FITS -------------------------------------------------------------------------------------------


def _read_fits(path: Path, hdu: int | str | None) -> tuple[np.ndarray, dict[str, object], fits.Header]:
    # Warnings are recorded, not shown: astropy's "File may have been truncated" is the best
    # explanation when the data then fail to read, and its header-fixing chatter is noise here.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with fits.open(path, memmap=False) as hdul:
                index = _choose_hdu(path, hdul, hdu)
                chosen = hdul[index]
                _check_size(path, chosen.shape, f"HDU {index}")
                data = chosen.data
                # Copied after reading: astropy has then dropped BSCALE/BZERO/BLANK and set BITPIX to
                # the scaled type, so the header describes the values we return.
                header = chosen.header.copy()
                return data, _header_dict(header), header
        except (DataError, OptionError):
            raise
        except Exception as err:  # see library_errors for why this is broad
            truncated = [str(w.message) for w in caught if "truncated" in str(w.message)]
            if truncated:
                raise DataError(f"{path}: the file is truncated ({_one_line(truncated[0])})") from err
            raise DataError(f"{path}: not a readable FITS file ({_one_line(err)})") from err


def _is_image_hdu(hdu: object) -> bool:
    # GroupsHDU subclasses PrimaryHDU but holds records; CompImageHDU subclasses ImageHDU.
    return (
        isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU)
        and not isinstance(hdu, fits.GroupsHDU)
        and hdu.header.get("NAXIS", 0) > 0
        and math.prod(hdu.shape) > 0
    )


def _describe_hdus(hdul: fits.HDUList) -> str:
    parts = []
    for i, h in enumerate(hdul):
        content = f"shape {h.shape}" if _is_image_hdu(h) else "no image"
        parts.append(f"{i} {h.name or '-'}: {type(h).__name__}, {content}")
        if len(parts) == 8:
            parts.append("...")
            break
    return "; ".join(parts)


def _choose_hdu(path: Path, hdul: fits.HDUList, hdu: int | str | None) -> int:
    count = len(hdul)  # reads every header, so a damaged one fails here, inside library_errors
    if hdu is None:
        for i, h in enumerate(hdul):
            if _is_image_hdu(h):
                return i
        raise DataError(f"{path}: no HDU holds an image ({_describe_hdus(hdul)})")
    if isinstance(hdu, bool) or not isinstance(hdu, int | str):
        raise OptionError(f"--hdu must be an index or an EXTNAME, not {hdu!r}")
    if isinstance(hdu, int):
        if not -count <= hdu < count:
            plural = "HDU" if count == 1 else "HDUs"
            raise DataError(f"{path}: HDU {hdu} does not exist (the file has {count} {plural})")
        index = hdu % count
    else:
        names = [h.name for h in hdul]
        matches = [i for i, name in enumerate(names) if name.upper() == hdu.upper()]
        if not matches:
            raise DataError(f"{path}: no HDU is named {hdu!r} (the names are {', '.join(names)})")
        index = matches[0]
    if not _is_image_hdu(hdul[index]):
        raise DataError(f"{path}: HDU {hdu!r} holds no image ({_describe_hdus(hdul)})")
    return index


def _header_dict(header: fits.Header) -> dict[str, object]:
    # COMMENT and HISTORY repeat by design, so they become lists; blank cards are layout only.
    out: dict[str, object] = {}
    for card in header.cards:
        key = card.keyword
        if key in ("COMMENT", "HISTORY"):
            out.setdefault(key, []).append(str(card.value))  # type: ignore[union-attr]
        elif key:
            out[key] = None if isinstance(card.value, fits.card.Undefined) else card.value
    return out


# --- HDF5 -------------------------------------------------------------------------------------------


def open_hdf5(path: Path) -> h5py.File:
    """Open an HDF5 file for reading, or raise a DataError naming it."""
    check_file(path)
    with library_errors(path, "HDF5"):
        return h5py.File(path, "r")


def hdf5_dataset_names(f: h5py.File) -> list[str]:
    """Every dataset in an HDF5 file, by path without the leading slash."""
    names: list[str] = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return names


def hdf5_listing(names: list[str]) -> str:
    """What a file holds, for error messages: the first ten dataset names."""
    return ", ".join(names[:10]) + (", ..." if len(names) > 10 else "") if names else "none"


def hdf5_dataset(path: Path, f: h5py.File, name: str | None) -> h5py.Dataset:
    """The dataset ``name`` in ``f`` (default: the only one), or a DataError listing what is there."""
    names = hdf5_dataset_names(f)
    listing = hdf5_listing(names)
    if name is None:
        if "images" in names:  # the name astrocnn's own files and labelled files use
            name = "images"
        elif len(names) != 1:
            raise DataError(f"{path}: name the dataset to read with --dataset (the datasets are: {listing})")
        else:
            name = names[0]
    obj = f.get(name)
    if not isinstance(obj, h5py.Dataset):
        raise DataError(f"{path}: dataset {name!r} does not exist (the datasets are: {listing})")
    if obj.shape is None:  # a null dataspace: attributes-only placeholder
        raise DataError(f"{path}: dataset {name!r} is empty")
    return obj


def _read_hdf5(path: Path, dataset: str | None) -> tuple[np.ndarray, dict[str, object] | None]:
    with library_errors(path, "HDF5"), h5py.File(path, "r") as f:
        ds = hdf5_dataset(path, f, dataset)
        _check_size(path, ds.shape, f"dataset {ds.name!r}")
        if ds.dtype.kind not in "biuf":
            raise DataError(f"{path}: dataset {ds.name!r} holds {ds.dtype}, not numbers")
        header = {key: _plain(value) for key, value in ds.attrs.items()}
        return ds[()], header or None


def _plain(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    return value


# --- NumPy ------------------------------------------------------------------------------------------


def _npy_shape(fp: object) -> tuple[int, ...]:
    # Reads only the .npy header, so an absurd shape is refused before np.load allocates it.
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        shape, _, _ = np.lib.format.read_array_header_1_0(fp)
    else:
        shape, _, _ = np.lib.format.read_array_header_2_0(fp)
    return shape


def _read_npy(path: Path) -> np.ndarray:
    with library_errors(path, "NumPy .npy"):
        with path.open("rb") as fp:
            _check_size(path, _npy_shape(fp), "the array")
        return np.load(path, allow_pickle=False)


def _read_npz(path: Path, key: str | None) -> np.ndarray:
    # The file is opened here, not by np.load, which leaks its handle when the zip is corrupt.
    with library_errors(path, "NumPy .npz"), path.open("rb") as archive:
        # np.load would happily read a bare .npy here, past the size check below.
        if archive.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):
            raise DataError(f"{path}: not a .npz archive")
        archive.seek(0)
        with np.load(archive, allow_pickle=False) as npz:
            keys = list(npz.files)
            if key is None:
                if len(keys) != 1:
                    raise DataError(
                        f"{path}: name the array to read (the keys are: {', '.join(keys) or 'none'})"
                    )
                key = keys[0]
            if key not in keys:
                raise DataError(f"{path}: key {key!r} does not exist (the keys are: {', '.join(keys)})")
            member = key + ".npy" if key + ".npy" in npz.zip.namelist() else key
            with npz.zip.open(member) as fp:
                _check_size(path, _npy_shape(fp), f"array {key!r}")
            return npz[key]


# --- PNG / JPEG -------------------------------------------------------------------------------------


def _read_picture(path: Path) -> np.ndarray:
    with library_errors(path, "PNG/JPEG"), PIL.Image.open(path, formats=["PNG", "JPEG"]) as im:
        _check_size(path, (im.height, im.width, len(im.getbands())), "the picture")
        picture = im
        if im.mode in ("P", "PA"):  # palette indices mean nothing to a network; expand to colours
            picture = im.convert("RGBA" if im.mode == "PA" or "transparency" in im.info else "RGB")
        elif im.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
            picture = im.convert("RGB")
        # Gray (L, I;16, I, F, 1) comes as (H, W), colour as (H, W, bands), values kept (0-255, 0-65535).
        return np.array(picture)


# --- values and layout ------------------------------------------------------------------------------


def finite_float32(
    raw: np.ndarray, *, nan_policy: str, source: str | Path
) -> tuple[np.ndarray, np.ndarray | None]:
    """Native-endian float32 copy of ``raw`` with NaN/inf/masked pixels handled by ``nan_policy``.

    Returns the data and a mask of the bad pixels (None when there were none). ``source`` names
    the file (and item) in error messages.
    """
    if not isinstance(raw, np.ndarray):
        raise DataError(f"{source}: holds no array")
    given_mask = np.ma.getmaskarray(raw) if np.ma.isMaskedArray(raw) else None
    values = np.ma.getdata(raw)
    if values.dtype.kind not in "biuf":
        raise DataError(f"{source}: holds {values.dtype} data, not numbers")
    if values.ndim == 0:
        raise DataError(f"{source}: holds a single number, not an image")
    if values.size == 0:
        raise DataError(f"{source}: holds an empty image of shape {values.shape}")
    # float64 beyond float32's range becomes inf and is then treated as a bad pixel, not warned about.
    with np.errstate(over="ignore", invalid="ignore"):
        data = values.astype(np.float32)  # always a copy: native order, writable, ours to fill
    bad = ~np.isfinite(data)
    if given_mask is not None:
        bad |= given_mask
    count = int(bad.sum())
    if count == 0:
        return data, None
    if nan_policy == "error":
        raise DataError(
            f"{source}: {count} of {data.size} pixels are NaN, infinite or masked "
            "(--nan-policy error; --nan-policy zero or median would fill them)"
        )
    good = data[~bad]
    data[bad] = float(np.median(good)) if nan_policy == "median" and good.size else 0.0
    return data, bad


def _expected(in_channels: int, spatial_dims: int) -> str:
    axes = ", ".join(_AXIS_NAMES[spatial_dims])
    if in_channels == 1:
        return f"({in_channels}, {axes}) or ({axes})"
    return f"({in_channels}, {axes}) or ({axes}, {in_channels})"


def channel_layout(shape: Sequence[int], *, in_channels: int, spatial_dims: int, source: str | Path) -> str:
    """How an image of ``shape`` becomes (C, *S): "add" a channel axis, channels already "first",
    or channels "last" (PNG/JPEG colour); a DataError if it fits none of these."""
    if spatial_dims not in _AXIS_NAMES:
        raise OptionError(f"spatial_dims must be 1, 2 or 3, not {spatial_dims!r}")
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise OptionError(f"in_channels must be a positive integer, not {in_channels!r}")
    shape = tuple(int(n) for n in shape)
    if len(shape) == spatial_dims and in_channels == 1:
        return "add"
    if len(shape) == spatial_dims + 1:
        if shape[0] == in_channels:
            return "first"
        if shape[-1] == in_channels:
            return "last"
    raise DataError(
        f"{source}: image of shape {shape} does not fit the model, which expects "
        f"{_expected(in_channels, spatial_dims)}"
    )


def arrange_channels(
    data: np.ndarray, *, in_channels: int, spatial_dims: int, source: str | Path
) -> np.ndarray:
    """``data`` rearranged to a contiguous float32 (C, *S) array, by the rules of :func:`channel_layout`."""
    layout = channel_layout(data.shape, in_channels=in_channels, spatial_dims=spatial_dims, source=source)
    if layout == "add":
        data = data[np.newaxis]
    elif layout == "last":
        data = np.moveaxis(data, -1, 0)
    return np.ascontiguousarray(data, dtype=np.float32)


def to_channels_first(image: Image, *, in_channels: int, spatial_dims: int) -> np.ndarray:
    """The image as a (C, *S) float32 array for a model with ``in_channels`` and ``spatial_dims``.

    (*S) gains a channel axis when ``in_channels`` is 1; (C, *S) is kept; (*S, C), the PNG/JPEG
    colour layout, has its last axis moved first. Anything else is a DataError naming the shapes.
    """
    return arrange_channels(image.data, in_channels=in_channels, spatial_dims=spatial_dims, source=image.path)
