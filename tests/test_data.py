"""Data I/O: every supported format read back exactly, every bad file refused with a one-line DataError."""

import os
import pickle
from pathlib import Path

import h5py
import numpy as np
import PIL.Image
import pytest
import torch
from astropy.io import fits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astrocnn.data import (
    MAX_PIXELS,
    DataError,
    FolderCSV,
    Image,
    LabelledHDF5,
    atomic_output,
    load_labelled,
    read_image,
    to_channels_first,
    write_csv,
    write_fits,
    write_hdf5,
)
from astrocnn.data.readers import finite_float32
from astrocnn.errors import AstroCNNError, OptionError

SUFFIXES = [
    ".fits",
    ".fit",
    ".fts",
    ".fits.gz",
    ".h5",
    ".hdf5",
    ".hdf",
    ".npy",
    ".npz",
    ".png",
    ".jpg",
    ".jpeg",
]


def ramp(*shape: int) -> np.ndarray:
    return np.arange(np.prod(shape), dtype=np.float64).reshape(shape)


def refused(path: Path, **kwargs) -> str:
    """The message of the DataError that reading ``path`` raises; it must be one line naming the file."""
    with pytest.raises(DataError) as info:
        read_image(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message


# --- FITS -------------------------------------------------------------------------------------------


def test_fits_round_trip_keeps_header_and_updates_bitpix(tmp_path):
    src = tmp_path / "raw.fits"
    hdu = fits.PrimaryHDU(np.array([[1, -2, 3], [4, 5, 32000]], dtype=np.int16))
    hdu.header["OBJECT"] = "M31"
    hdu.header["EXPTIME"] = (30.5, "seconds")
    hdu.header.add_history("flat-fielded")
    hdu.header.add_history("dark-subtracted")
    hdu.writeto(src)

    image = read_image(src)
    assert image.data.dtype == np.float32
    np.testing.assert_array_equal(image.data, [[1, -2, 3], [4, 5, 32000]])
    assert image.header["OBJECT"] == "M31" and image.header["EXPTIME"] == 30.5
    assert image.header["HISTORY"] == ["flat-fielded", "dark-subtracted"]
    assert image.mask is None and image.path == src

    out = tmp_path / "sub" / "out.fits"
    write_fits(out, image.data, header=image.fits_header)
    header = fits.getheader(out)
    assert header["BITPIX"] == -32  # int16 on disk became float32: astropy updated it
    assert header["OBJECT"] == "M31" and header["EXPTIME"] == 30.5
    assert header.comments["EXPTIME"] == "seconds"
    assert list(header["HISTORY"]) == ["flat-fielded", "dark-subtracted"]
    np.testing.assert_array_equal(read_image(out).data, image.data)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float64])
def test_write_fits_sets_bitpix_from_the_data_not_the_header(tmp_path, dtype):
    header = fits.Header([("BITPIX", -32), ("OBSERVER", "Hubble")])
    write_fits(tmp_path / "x.fits", np.arange(6, dtype=dtype).reshape(2, 3), header=header)
    with fits.open(tmp_path / "x.fits") as hdul:
        assert hdul[0].header["BITPIX"] == {np.uint8: 8, np.int16: 16, np.int32: 32, np.float64: -64}[dtype]
        assert hdul[0].header["OBSERVER"] == "Hubble"
    np.testing.assert_array_equal(read_image(tmp_path / "x.fits").data, np.arange(6).reshape(2, 3))


def test_write_fits_with_dict_header_from_another_image(tmp_path):
    src = tmp_path / "a.fits"
    fits.PrimaryHDU(np.ones((2, 2), np.float32), header=fits.Header([("TELESCOP", "HESS")])).writeto(src)
    image = read_image(src)
    write_fits(tmp_path / "b.fits.gz", np.zeros((4, 5, 6)), header=image.header)  # NAXIS etc. ignored
    back = read_image(tmp_path / "b.fits.gz")
    assert back.data.shape == (4, 5, 6) and back.header["TELESCOP"] == "HESS"


@pytest.mark.parametrize(
    "data",
    [
        np.array([[1.5, -2.25], [1e30, 0]], dtype=">f4"),
        np.array([[1.5, -2.25], [1e300, 0]], dtype=">f8"),
        np.array([[-32768, 0], [1, 32767]], dtype=">i2"),
        np.array([[0, 65535], [1, 40000]], dtype=np.uint16),  # stored as int16 with BZERO=32768
        np.array([[-(2**31), 7], [0, 2**31 - 1]], dtype=">i4"),
        np.array([[0, 255], [1, 128]], dtype=np.uint8),
    ],
    ids=["f4", "f8", "i2", "u2", "i4", "u1"],
)
def test_big_endian_and_integer_fits_become_native_float32(tmp_path, data):
    fits.PrimaryHDU(data).writeto(tmp_path / "x.fits")
    image = read_image(tmp_path / "x.fits", nan_policy="zero")
    assert image.data.dtype == np.float32 and image.data.dtype.isnative
    with np.errstate(over="ignore"):
        expected = data.astype(np.float32)
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(image.data[finite], expected[finite])
    assert (image.data[~finite] == 0).all()  # 1e300 does not fit float32: a bad pixel, filled


def test_boolean_data_written_to_fits_reads_as_zeros_and_ones(tmp_path):
    mask = np.array([[True, False], [False, True]])
    write_fits(tmp_path / "mask.fits", mask)
    assert fits.getheader(tmp_path / "mask.fits")["BITPIX"] == 8
    np.testing.assert_array_equal(read_image(tmp_path / "mask.fits").data, mask.astype(np.float32))


def test_fits_blank_pixels_are_masked_through_astropy_scaling(tmp_path):
    hdu = fits.PrimaryHDU(np.array([[1, 2], [3, -32768]], dtype=np.int16))
    hdu.header["BLANK"] = -32768
    hdu.header["BSCALE"] = 2.0
    hdu.header["BZERO"] = 10.0
    hdu.writeto(tmp_path / "x.fits")
    image = read_image(tmp_path / "x.fits", nan_policy="zero")
    np.testing.assert_array_equal(image.data, [[12, 14], [16, 0]])
    np.testing.assert_array_equal(image.mask, [[False, False], [False, True]])
    assert "1 of 4 pixels" in refused(tmp_path / "x.fits", nan_policy="error")


def mef(tmp_path: Path) -> Path:
    """Primary without data, a table, then two named image extensions."""
    path = tmp_path / "mef.fits"
    table = fits.BinTableHDU.from_columns(
        [fits.Column(name="E", format="E", array=np.ones(3))], name="EVENTS"
    )
    sci = fits.ImageHDU(np.full((2, 3), 7.0), name="SCI")
    err = fits.ImageHDU(np.full((2, 3), 0.5), name="ERR")
    fits.HDUList([fits.PrimaryHDU(), table, sci, err]).writeto(path)
    return path


def test_fits_hdu_chosen_by_default_index_and_extname(tmp_path):
    path = mef(tmp_path)
    assert (read_image(path).data == 7).all()  # the first HDU that holds an image
    assert (read_image(path, hdu=3).data == 0.5).all()
    assert (read_image(path, hdu=-1).data == 0.5).all()
    assert (read_image(path, hdu="err").data == 0.5).all()  # EXTNAME matching ignores case
    assert read_image(path, hdu="SCI").header["EXTNAME"] == "SCI"


def test_fits_hdu_errors_name_what_is_there(tmp_path):
    path = mef(tmp_path)
    assert refused(path, hdu=4) == f"{path}: HDU 4 does not exist (the file has 4 HDUs)"
    assert "no HDU is named 'DQ' (the names are PRIMARY, EVENTS, SCI, ERR)" in refused(path, hdu="DQ")
    message = refused(path, hdu="EVENTS")
    assert "HDU 'EVENTS' holds no image" in message and "BinTableHDU" in message
    with pytest.raises(OptionError):
        read_image(path, hdu=1.5)


def test_fits_without_any_image_is_refused(tmp_path):
    path = tmp_path / "table.fits"
    table = fits.BinTableHDU.from_columns([fits.Column(name="X", format="J", array=[1, 2])], name="CAT")
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    message = refused(path)
    assert "no HDU holds an image" in message and "1 CAT: BinTableHDU" in message


def test_truncated_fits_is_refused(tmp_path):
    path = tmp_path / "cut.fits"
    fits.PrimaryHDU(ramp(100, 100)).writeto(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert "the file is truncated" in refused(path)


def test_fits_header_promising_a_huge_image_is_refused_before_reading(tmp_path):
    header = fits.Header(
        [("SIMPLE", True), ("BITPIX", -32), ("NAXIS", 2), ("NAXIS1", 1_000_000), ("NAXIS2", 1_000_000)]
    )
    block = header.tostring().encode("ascii")  # one 2880-byte block: the header, padded, no data
    assert len(block) == 2880
    path = tmp_path / "huge.fits"
    path.write_bytes(block)
    message = refused(path)  # 4 TB of float32 would be a MemoryError, not this, if it allocated
    assert "claims shape (1000000, 1000000)" in message and f"{MAX_PIXELS:,}" in message


# --- HDF5, NumPy, pictures --------------------------------------------------------------------------


def test_hdf5_round_trip_with_attrs_and_compression(tmp_path):
    path = tmp_path / "cube.h5"
    big = ramp(80, 80, 42).astype(np.float32)  # 1,075,200 bytes, above 1 MiB: compressed
    write_hdf5(path, {"obs/big": big, "small": ramp(3, 4)}, attrs={"instrument": "LST", "run": 42})
    with h5py.File(path) as f:
        assert f.attrs["instrument"] == "LST" and f.attrs["run"] == 42
        assert f["obs/big"].compression == "gzip" and f["small"].compression is None
    np.testing.assert_array_equal(read_image(path, dataset="obs/big").data, big)
    small = read_image(path, dataset="/small")
    np.testing.assert_array_equal(small.data, ramp(3, 4))
    assert small.header is None


def test_hdf5_dataset_choice_and_errors(tmp_path):
    one = tmp_path / "one.hdf5"
    with h5py.File(one, "w") as f:
        f.create_dataset("grp/frame", data=np.ones((2, 2), dtype=bool)).attrs["unit"] = "adu"
    image = read_image(one)  # the only dataset needs no name
    assert image.data.dtype == np.float32 and (image.data == 1).all()
    assert image.header == {"unit": "adu"}

    two = tmp_path / "two.h5"
    write_hdf5(two, {"a": np.ones(3), "b": np.zeros(3)})
    assert "name the dataset to read with --dataset (the datasets are: a, b)" in refused(two)
    assert refused(two, dataset="c") == f"{two}: dataset 'c' does not exist (the datasets are: a, b)"
    write_hdf5(tmp_path / "text.h5", {"names": np.array([b"x", b"y"])})
    assert "not numbers" in refused(tmp_path / "text.h5")


def test_hdf5_dataset_promising_a_huge_image_is_refused(tmp_path):
    path = tmp_path / "huge.h5"
    with h5py.File(path, "w") as f:  # chunked and never written: a tiny file that claims 40 GB
        f.create_dataset("sky", shape=(100_000, 100_000), dtype="f4", chunks=(100, 100))
    assert path.stat().st_size < 100_000
    assert "claims shape (100000, 100000)" in refused(path)


def test_corrupt_hdf5_is_refused(tmp_path):
    path = tmp_path / "noise.h5"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    assert "not a readable HDF5 file" in refused(path)


def test_npy_and_npz_round_trips(tmp_path):
    np.save(tmp_path / "a.npy", ramp(4, 5).astype(">i8"))
    np.testing.assert_array_equal(read_image(tmp_path / "a.npy").data, ramp(4, 5))
    np.savez(tmp_path / "one.npz", only=ramp(2, 3))
    np.testing.assert_array_equal(read_image(tmp_path / "one.npz").data, ramp(2, 3))
    np.savez_compressed(tmp_path / "two.npz", x=ramp(2, 3), y=-ramp(3))
    np.testing.assert_array_equal(read_image(tmp_path / "two.npz", dataset="y").data, -ramp(3))
    assert "name the array to read (the keys are: x, y)" in refused(tmp_path / "two.npz")
    assert "key 'z' does not exist" in refused(tmp_path / "two.npz", dataset="z")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert "not a readable NumPy .npy file" in refused(tmp_path / "objects.npy")
    np.save(tmp_path / "scalar.npy", np.float32(3))
    assert "a single number" in refused(tmp_path / "scalar.npy")


def test_png_gray_16bit_and_rgb_round_trips(tmp_path):
    gray = (ramp(6, 7) * 5).astype(np.uint8)
    PIL.Image.fromarray(gray).save(tmp_path / "gray.png")
    assert read_image(tmp_path / "gray.png").data.shape == (6, 7)
    np.testing.assert_array_equal(read_image(tmp_path / "gray.png").data, gray)

    deep = (ramp(6, 7) * 1000).astype(np.uint16)  # values above 255 must survive
    PIL.Image.fromarray(deep).save(tmp_path / "deep.png")
    np.testing.assert_array_equal(read_image(tmp_path / "deep.png").data, deep)

    rgb = np.stack([gray, 255 - gray, np.full_like(gray, 9)], axis=-1)
    PIL.Image.fromarray(rgb).save(tmp_path / "rgb.PNG")
    image = read_image(tmp_path / "rgb.PNG")
    np.testing.assert_array_equal(image.data, rgb)
    x = to_channels_first(image, in_channels=3, spatial_dims=2)
    assert x.shape == (3, 6, 7) and x.flags.c_contiguous
    np.testing.assert_array_equal(x[1], 255 - gray)


def test_jpeg_reads_back_close_to_what_was_saved(tmp_path):
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 0] = 200  # flat colours survive JPEG almost exactly
    rgb[..., 2] = 50
    PIL.Image.fromarray(rgb).save(tmp_path / "c.jpg", quality=95)
    PIL.Image.fromarray(rgb[..., 0]).save(tmp_path / "g.jpeg", quality=95)
    colour = read_image(tmp_path / "c.jpg").data
    assert colour.shape == (16, 16, 3) and np.abs(colour - rgb).max() <= 3
    assert read_image(tmp_path / "g.jpeg").data.shape == (16, 16)


@pytest.mark.parametrize(
    ("policy", "expected"), [("zero", [0, 1, 0, 3, 0]), ("median", [2, 1, 2, 3, 2])], ids=["zero", "median"]
)
def test_nan_policies_fill_and_mask(tmp_path, policy, expected):
    np.save(tmp_path / "x.npy", np.array([np.nan, 1, np.inf, 3, -np.inf]))
    image = read_image(tmp_path / "x.npy", nan_policy=policy)
    np.testing.assert_array_equal(image.data, expected)
    np.testing.assert_array_equal(image.mask, [True, False, True, False, True])


def test_nan_policy_error_counts_bad_pixels_and_median_of_nothing_is_zero(tmp_path):
    np.save(tmp_path / "x.npy", np.array([np.nan, 1, np.inf, 3]))
    assert "2 of 4 pixels are NaN, infinite or masked" in refused(tmp_path / "x.npy", nan_policy="error")
    np.save(tmp_path / "all.npy", np.full(3, np.nan))
    np.testing.assert_array_equal(read_image(tmp_path / "all.npy").data, [0, 0, 0])
    with pytest.raises(OptionError):
        read_image(tmp_path / "x.npy", nan_policy="drop")


def test_numpy_masked_arrays_count_as_bad_pixels():
    masked = np.ma.masked_array([1.0, 50.0, 3.0, 5.0], mask=[False, True, False, False])
    data, mask = finite_float32(masked, nan_policy="median", source="m")
    np.testing.assert_array_equal(data, [1, 3, 3, 5])
    np.testing.assert_array_equal(mask, [False, True, False, False])


# --- files that are not there or not right ----------------------------------------------------------


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_missing_and_empty_files_are_refused(tmp_path, suffix):
    assert refused(tmp_path / f"nope{suffix}") == f"{tmp_path / f'nope{suffix}'}: file does not exist"
    (tmp_path / f"empty{suffix}").touch()
    assert refused(tmp_path / f"empty{suffix}") == f"{tmp_path / f'empty{suffix}'}: file is empty"


def test_unsupported_suffix_and_misplaced_options(tmp_path):
    (tmp_path / "x.tiff").write_bytes(b"II*\x00")
    assert "unsupported file type '.tiff'" in refused(tmp_path / "x.tiff")
    assert "unsupported file type '(no suffix)'" in refused(tmp_path / "README")
    np.save(tmp_path / "x.npy", np.ones(3))
    with pytest.raises(OptionError, match="--hdu applies only to FITS"):
        read_image(tmp_path / "x.npy", hdu=0)
    with pytest.raises(OptionError, match="--dataset applies only to HDF5"):
        read_image(tmp_path / "x.npy", dataset="x")


def test_data_error_is_an_astrocnn_error_and_a_value_error():
    assert issubclass(DataError, AstroCNNError) and issubclass(DataError, ValueError)


def mutated_file(data: st.DataObject, valid: bytes) -> bytes:
    """Random bytes, or a valid file cut short, or a valid file with a stretch overwritten."""
    how = data.draw(st.sampled_from(["random", "cut", "overwrite"]))
    if how == "random":
        return data.draw(st.binary(min_size=1, max_size=4000))
    cut = data.draw(st.integers(1, len(valid)))
    if how == "cut":
        return valid[:cut]
    return valid[:cut] + data.draw(st.binary(min_size=1, max_size=64)) + valid[cut + 64 :]


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory) -> dict[str, bytes]:
    """The bytes of one small valid file per suffix, to be mutated by the fuzz test."""
    folder = tmp_path_factory.mktemp("valid")
    data = (ramp(8, 8) * 3).astype(np.uint8)
    out = {}
    for suffix in SUFFIXES:
        path = folder / f"v{suffix}"
        if suffix in (".fits", ".fit", ".fts", ".fits.gz"):
            write_fits(path, data, header={"OBJECT": "fuzz"})
        elif suffix in (".h5", ".hdf5", ".hdf"):
            write_hdf5(path, {"x": data}, attrs={"a": 1})
        elif suffix == ".npy":
            np.save(path, data)
        elif suffix == ".npz":
            np.savez_compressed(path, x=data)
        else:
            PIL.Image.fromarray(data).save(path)
        out[suffix] = path.read_bytes()
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_files_give_an_image_or_a_data_error(tmp_path, valid_files, data):
    suffix = data.draw(st.sampled_from(SUFFIXES))
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(mutated_file(data, valid_files[suffix]))
    try:
        image = read_image(path)
    except DataError as err:
        assert "\n" not in str(err) and str(err).startswith(str(path))
    else:
        assert isinstance(image, Image) and image.data.dtype == np.float32
        assert np.isfinite(image.data).all()


# --- layout -----------------------------------------------------------------------------------------


def image_of(shape: tuple[int, ...]) -> Image:
    return Image(data=ramp(*shape).astype(np.float32), header=None, path=Path("x.fits"), mask=None)


@pytest.mark.parametrize(
    ("shape", "in_channels", "spatial_dims", "expected"),
    [
        ((5, 6), 1, 2, (1, 5, 6)),  # a channel axis is added
        ((1, 5, 6), 1, 2, (1, 5, 6)),
        ((3, 5, 6), 3, 2, (3, 5, 6)),  # channels first stays
        ((5, 6, 3), 3, 2, (3, 5, 6)),  # PNG/JPEG colour moves
        ((7,), 1, 1, (1, 7)),
        ((4, 5, 6), 1, 3, (1, 4, 5, 6)),
        ((2, 4, 5, 6), 2, 3, (2, 4, 5, 6)),
    ],
)
def test_to_channels_first_rules(shape, in_channels, spatial_dims, expected):
    image = image_of(shape)
    x = to_channels_first(image, in_channels=in_channels, spatial_dims=spatial_dims)
    assert x.shape == expected and x.dtype == np.float32
    assert x.sum() == image.data.sum()
    if shape[-1] == in_channels != shape[0]:
        np.testing.assert_array_equal(x[0], image.data[..., 0])


def test_to_channels_first_errors_say_what_was_found_and_expected():
    with pytest.raises(DataError) as info:
        to_channels_first(image_of((3, 64, 64)), in_channels=1, spatial_dims=2)
    assert (
        str(info.value)
        == "x.fits: image of shape (3, 64, 64) does not fit the model, which expects (1, H, W) or (H, W)"
    )
    with pytest.raises(DataError, match=r"shape \(64, 64\) .* expects \(3, H, W\) or \(H, W, 3\)"):
        to_channels_first(image_of((64, 64)), in_channels=3, spatial_dims=2)
    with pytest.raises(DataError, match=r"expects \(1, D, H, W\) or \(D, H, W\)"):
        to_channels_first(image_of((2, 3, 4, 5, 6)), in_channels=1, spatial_dims=3)
    with pytest.raises(OptionError):
        to_channels_first(image_of((4, 4)), in_channels=1, spatial_dims=4)


# --- writers ----------------------------------------------------------------------------------------


def test_atomic_output_replaces_on_success_with_a_same_suffix_temp(tmp_path):
    target = tmp_path / "new" / "deep" / "out.fits.gz"
    with atomic_output(target) as temp:
        assert (
            temp.parent == target.parent and temp.name.endswith(".fits.gz") and temp.name.startswith(".out")
        )
        temp.write_bytes(b"done")
    assert target.read_bytes() == b"done"
    assert os.listdir(target.parent) == ["out.fits.gz"]


def test_atomic_output_leaves_old_file_untouched_and_nothing_behind_on_error(tmp_path):
    target = tmp_path / "result.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_output(target) as temp:
        temp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["result.csv"]

    with pytest.raises(ValueError, match="row 2 has 1 fields, the header has 2"):
        write_csv(target, ["a", "b"], [(1, 2), (3,)])
    assert target.read_text() == "old\n" and os.listdir(tmp_path) == ["result.csv"]


def test_write_csv_round_trip(tmp_path):
    write_csv(tmp_path / "t.csv", ["file", "label"], [("a,b.png", 1), ("c.png", 2)])
    assert (tmp_path / "t.csv").read_text() == 'file,label\n"a,b.png",1\nc.png,2\n'


# --- datasets ---------------------------------------------------------------------------------------


def labelled_h5(tmp_path: Path, labels: np.ndarray, name: str = "labels", n: int = 6) -> Path:
    path = tmp_path / "set.h5"
    images = np.stack([np.full((1, 4, 5), i, np.float32) for i in range(n)])
    write_hdf5(path, {"images": images, name: labels})
    return path


def h5_is_open(path: Path) -> bool:
    # HDF5 refuses, within one process, to open for writing a file already open read-only.
    try:
        h5py.File(path, "r+").close()
    except OSError:
        return True
    return False


def test_labelled_hdf5_items_and_label_types(tmp_path):
    path = labelled_h5(tmp_path, np.arange(6) % 3)
    ds = LabelledHDF5(path, in_channels=1, spatial_dims=2)
    assert len(ds) == 6
    x, y = ds[4]
    assert x.dtype == torch.float32 and x.shape == (1, 4, 5) and (x == 4).all()
    assert y.dtype == torch.long and y.item() == 1
    assert ds[-1][1].item() == 2
    with pytest.raises(IndexError):
        ds[6]
    assert ds.targets.tolist() == [0, 1, 2, 0, 1, 2]

    floats = LabelledHDF5(
        labelled_h5(tmp_path, np.linspace(0, 1, 12).reshape(6, 2), "targets"), in_channels=1, spatial_dims=2
    )
    assert floats[1][1].dtype == torch.float32 and floats[1][1].shape == (2,)


def test_labelled_hdf5_is_lazy_and_survives_pickling(tmp_path):
    path = labelled_h5(tmp_path, np.arange(6))
    ds = LabelledHDF5(path, in_channels=1, spatial_dims=2)
    assert not h5_is_open(path)  # construction validated, then closed the file
    first = ds[2]
    assert h5_is_open(path)  # the per-process handle, opened on first read
    copy = pickle.loads(pickle.dumps(ds))  # what a spawned DataLoader worker receives
    again = copy[2]
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    ds.close()
    copy.close()
    assert not h5_is_open(path)
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2)
    batches = list(loader)
    assert [b[1].tolist() for b in batches] == [[0, 1, 2], [3, 4, 5]]


def test_labelled_hdf5_validates_on_construction(tmp_path):
    path = labelled_h5(tmp_path, np.arange(6), name="classes")
    with pytest.raises(DataError, match="neither a 'labels' nor a 'targets' dataset"):
        LabelledHDF5(path, in_channels=1, spatial_dims=2)
    assert len(LabelledHDF5(path, labels="classes", in_channels=1, spatial_dims=2)) == 6
    with pytest.raises(DataError, match="6 images in 'images' but labels of shape \\(5,\\)"):
        LabelledHDF5(labelled_h5(tmp_path, np.arange(5)), in_channels=1, spatial_dims=2)
    with pytest.raises(DataError, match=r"image of shape \(1, 4, 5\) does not fit the model"):
        LabelledHDF5(labelled_h5(tmp_path, np.arange(6)), in_channels=3, spatial_dims=2)
    with pytest.raises(DataError, match="dataset 'imgs' does not exist"):
        LabelledHDF5(path, images="imgs", labels="classes", in_channels=1, spatial_dims=2)
    assert not h5_is_open(path)


def folder(tmp_path: Path, csv_text: str, files: tuple[str, ...] = ("a.npy", "b.npy")) -> Path:
    for i, name in enumerate(files):
        np.save(tmp_path / name, np.full((4, 4), i, np.float32))
    (tmp_path / "index.csv").write_text(csv_text)
    return tmp_path / "index.csv"


def test_folder_csv_labels_and_targets(tmp_path):
    ds = FolderCSV(folder(tmp_path, "file,label\na.npy,0\nb.npy,3\n"), in_channels=1, spatial_dims=2)
    assert len(ds) == 2 and ds.targets.dtype == torch.long
    x, y = ds[1]
    assert x.shape == (1, 4, 4) and (x == 1).all() and y.item() == 3

    ds = FolderCSV(folder(tmp_path, "file,target\na.npy,0.5\nb.npy,2\n"), in_channels=1, spatial_dims=2)
    assert ds.targets.dtype == torch.float32 and ds[0][1].item() == 0.5

    ds = FolderCSV(folder(tmp_path, "file,z,mass\na.npy,0.1,2\nb.npy,0.2,3\n"), in_channels=1, spatial_dims=2)
    assert ds[1][1].tolist() == pytest.approx([0.2, 3.0]) and ds[1][1].dtype == torch.float32


def test_folder_csv_with_root_elsewhere(tmp_path):
    (tmp_path / "imgs").mkdir()
    folder(tmp_path / "imgs", "", files=("a.npy",))
    (tmp_path / "list.csv").write_text("file,label\na.npy,1\n")
    ds = FolderCSV(tmp_path / "list.csv", root=tmp_path / "imgs", in_channels=1, spatial_dims=2)
    assert ds[0][1].item() == 1


def test_folder_csv_errors_name_the_line(tmp_path):
    csv_path = folder(tmp_path, "file,label\na.npy,0\nmissing.npy,1\n")
    with pytest.raises(DataError) as info:
        FolderCSV(csv_path, in_channels=1, spatial_dims=2)
    assert str(info.value) == f"{csv_path}: line 3: file 'missing.npy' does not exist in {tmp_path}"

    csv_path = folder(tmp_path, "file,label\na.npy,0\nb.npy,galaxy\n")
    with pytest.raises(DataError, match="line 3: label 'galaxy' is not a finite number"):
        FolderCSV(csv_path, in_channels=1, spatial_dims=2)

    csv_path = folder(tmp_path, "name,label\na.npy,0\n")
    with pytest.raises(DataError, match="no 'file' column"):
        FolderCSV(csv_path, in_channels=1, spatial_dims=2)

    csv_path = folder(tmp_path, "file,label\na.npy,0\n")
    with pytest.raises(DataError, match=r"shape \(4, 4\) does not fit"):
        FolderCSV(csv_path, in_channels=3, spatial_dims=2)  # one image is read at construction


def test_load_labelled_dispatch(tmp_path):
    h5 = labelled_h5(tmp_path, np.arange(6))
    assert isinstance(load_labelled(h5, in_channels=1, spatial_dims=2), LabelledHDF5)
    csv_path = folder(tmp_path, "file,label\na.npy,0\n")
    assert isinstance(load_labelled(csv_path, in_channels=1, spatial_dims=2), FolderCSV)
    assert isinstance(load_labelled(tmp_path, in_channels=1, spatial_dims=2), FolderCSV)  # the one CSV
    (tmp_path / "other.csv").write_text("file,label\nb.npy,1\n")
    with pytest.raises(DataError, match=r"exactly one CSV file \(found: index\.csv, other\.csv\)"):
        load_labelled(tmp_path, in_channels=1, spatial_dims=2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="found: none"):
        load_labelled(tmp_path / "empty", in_channels=1, spatial_dims=2)
    with pytest.raises(DataError, match="does not exist"):
        load_labelled(tmp_path / "gone.h5", in_channels=1, spatial_dims=2)
    with pytest.raises(DataError, match="a labelled dataset is an HDF5 file"):
        load_labelled(tmp_path / "a.npy", in_channels=1, spatial_dims=2)
