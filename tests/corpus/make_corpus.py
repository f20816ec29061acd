"""Writes the bad-input corpus into this folder (the files are committed; rerun to rebuild them).

.venv/bin/python tests/corpus/make_corpus.py
"""

from pathlib import Path

import h5py
import numpy as np
from astropy.io import fits
from PIL import Image

HERE = Path(__file__).parent


def main() -> None:
    rng = np.random.default_rng(0)
    sky = (100 + rng.normal(0, 10, size=(32, 32))).astype(np.float32)

    # files that are broken
    full = HERE / "_valid.fits"
    fits.PrimaryHDU(sky).writeto(full, overwrite=True)
    data = full.read_bytes()
    (HERE / "truncated.fits").write_bytes(data[: len(data) // 2])
    full.unlink()
    (HERE / "corrupt.h5").write_bytes(rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    (HERE / "empty.fits").write_bytes(b"")
    table = fits.BinTableHDU.from_columns([fits.Column(name="flux", format="E", array=np.arange(4.0))])
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(HERE / "no_image.fits", overwrite=True)
    header = fits.Header()
    header["SIMPLE"], header["BITPIX"], header["NAXIS"] = True, -32, 2
    header["NAXIS1"], header["NAXIS2"] = 1_000_000, 1_000_000
    (HERE / "huge_header.fits").write_bytes(header.tostring().encode().ljust(2880, b" "))

    # pixels that need a decision
    nan = sky.copy()
    nan[3, 4] = np.nan
    nan[10, 10] = np.inf
    fits.PrimaryHDU(nan).writeto(HERE / "nan_pixels.fits", overwrite=True)
    np.save(HERE / "inf_pixels.npy", np.where(sky > 110, np.inf, sky))

    # valid but unusual pixel types: must give a result
    fits.PrimaryHDU(sky.astype(np.int16)).writeto(HERE / "int16.fits", overwrite=True)
    fits.PrimaryHDU(sky.astype(">f8")).writeto(HERE / "big_endian.fits", overwrite=True)
    np.save(HERE / "boolean.npy", sky > 100)
    with h5py.File(HERE / "uint8_stack.h5", "w") as f:
        f["images"] = np.clip(np.stack([sky, sky]), 0, 255).astype(np.uint8)

    # shapes the 1-channel 2-D smoke model cannot take
    np.save(HERE / "wrong_rank.npy", np.zeros((2, 3, 16, 16, 16), np.float32))
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(HERE / "rgb.png")

    # labelled data with bad labels
    images = HERE / "images"
    images.mkdir(exist_ok=True)
    np.save(images / "a.npy", sky)
    np.save(images / "b.npy", sky)
    (HERE / "labels_missing_file.csv").write_text("file,label\nimages/a.npy,0\nimages/nope.npy,1\n")
    (HERE / "labels_not_a_class.csv").write_text("file,label\nimages/a.npy,0\nimages/b.npy,quasar\n")

    # configuration files
    (HERE / "config_unknown_key.yaml").write_text("epochs: 2\nbatchsize: 16\n")
    (HERE / "config_wrong_type.yaml").write_text("epochs: two\n")
    (HERE / "config_negative_batch.yaml").write_text("batch_size: -8\n")
    (HERE / "config_zero_epochs.yaml").write_text("epochs: 0\n")
    (HERE / "config_not_yaml.yaml").write_text("epochs: [2\n")


if __name__ == "__main__":
    main()
