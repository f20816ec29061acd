"""predict's input contract: a classifier trained on one image size refuses another, unless
--tile asks for a sliding window (one row per window, with its position and sky coordinates),
tested on a real frame that ships with astropy (M13, 300 x 300, with a WCS); and early stopping
can be switched off."""

from __future__ import annotations

import csv
from pathlib import Path

import astropy
import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

import astrocnn
from astrocnn.cli import main
from astrocnn.engine.predict import tile_origins

M13 = Path(astropy.__file__).parent / "io/fits/hdu/compressed/tests/data/m13.fits"


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("contract") / "shapes"
    return astrocnn.train(
        "sky-shapes", out=str(out), epochs=1, n_train=64, n_val=32, n_test=32, batch_size=32,
        train_mlp=False, baseline=False, progress_bar=False,
    )  # fmt: skip


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_real_frame_is_there():
    assert M13.is_file()
    assert fits.getdata(M13).shape == (300, 300)


def test_a_frame_of_another_size_is_refused_in_one_line(shapes_run, tmp_path, capsys):
    out = tmp_path / "p.csv"
    assert main(["predict", str(shapes_run.path), str(M13), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{M13}: images are 300x300, but sky-shapes was trained on 32x32" in err
    assert "--tile" in err
    assert not out.exists()


def test_tile_writes_one_row_per_window_with_pixel_and_sky_positions(shapes_run, tmp_path, capsys):
    out = tmp_path / "tiles.csv"
    assert main(["predict", str(shapes_run.path), str(M13), "--tile", "--out", str(out)]) == 0
    rows = read_rows(out)
    starts = [*range(0, 269, 32), 268]  # every 32 pixels, the last window moved in to the edge
    assert len(rows) == len(starts) ** 2
    assert {(int(r["x"]), int(r["y"])) for r in rows} == {(x, y) for y in starts for x in starts}
    wcs = WCS(fits.getheader(M13)).celestial
    data = fits.getdata(M13).astype(np.float32)
    picked = [rows[0], rows[len(rows) // 2], rows[-1]]
    for row in picked:
        x, y = int(row["x"]), int(row["y"])
        assert (float(row["x_centre"]), float(row["y_centre"])) == (x + 15.5, y + 15.5)
        ra, dec = wcs.pixel_to_world_values(x + 15.5, y + 15.5)
        assert float(row["ra"]) == pytest.approx(float(ra), abs=1e-6)
        assert float(row["dec"]) == pytest.approx(float(dec), abs=1e-6)
        expected = shapes_run.predict(data[None, None, y : y + 32, x : x + 32])[0]
        got = [float(row[f"p_{n}"]) for n in ("star", "galaxy", "ring")]
        np.testing.assert_allclose(got, expected, atol=1e-5)
        assert row["predicted"] == ("star", "galaxy", "ring")[int(np.argmax(expected))]
    # M13 itself (RA 250.42, Dec +36.46) lies inside the frame
    ras = [float(r["ra"]) for r in rows]
    decs = [float(r["dec"]) for r in rows]
    assert min(ras) < 250.42 < max(ras) and min(decs) < 36.46 < max(decs)


def test_tile_stride_and_pictures_without_wcs(shapes_run, tmp_path):
    frame = np.random.default_rng(0).normal(100, 10, (40, 70)).astype(np.float32)
    np.save(tmp_path / "frame.npy", frame)
    out = tmp_path / "tiles.csv"
    code = main(["predict", str(shapes_run.path), str(tmp_path / "frame.npy"), "--tile", "--stride", "8",
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    rows = read_rows(out)
    assert len(rows) == len(tile_origins(40, 32, 8)) * len(tile_origins(70, 32, 8))
    assert all(r["ra"] == "" and r["dec"] == "" for r in rows)


def test_tile_origins_cover_the_image():
    assert tile_origins(32, 32, 32) == [0]
    assert tile_origins(70, 32, 32) == [0, 32, 38]
    assert tile_origins(40, 32, 8) == [0, 8]
    for length in range(32, 100):
        starts = tile_origins(length, 32, 32)
        covered = np.zeros(length, bool)
        for s in starts:
            covered[s : s + 32] = True
        assert covered.all() and starts[-1] + 32 == length


def test_a_frame_smaller_than_the_tile_is_refused(shapes_run, tmp_path, capsys):
    np.save(tmp_path / "small.npy", np.zeros((20, 20), dtype=np.float32))
    code = main(["predict", str(shapes_run.path), str(tmp_path / "small.npy"), "--tile", "--out",
                 str(tmp_path / "p.csv")])  # fmt: skip
    assert code == 2 and "smaller than the 32x32 tile" in capsys.readouterr().err


def test_the_training_size_needs_no_tile(shapes_run, tmp_path):
    cut = fits.getdata(M13).astype(np.float32)[100:132, 100:132]
    np.save(tmp_path / "cut.npy", cut)
    assert (
        main(["predict", str(shapes_run.path), str(tmp_path / "cut.npy"), "--out", str(tmp_path / "p.csv")])
        == 0
    )
    assert len(read_rows(tmp_path / "p.csv")) == 1


def test_ising_runs_take_any_square_lattice():
    from astrocnn.tasks import get_task

    task = get_task("ising-phase")
    assert task.check_size((48, 48)) is None
    assert "square" in task.check_size((32, 48))


def test_early_stopping_can_be_switched_off(tmp_path):
    from lightning.pytorch.callbacks import EarlyStopping

    from astrocnn.engine.config import resolve
    from astrocnn.engine.train import _trainer, with_task_defaults
    from astrocnn.tasks import get_task

    task = get_task("sky-shapes")
    on = with_task_defaults(resolve("sky-shapes", early_stopping=3), task)
    off = with_task_defaults(resolve("sky-shapes", early_stopping=0), task)
    assert off.early_stopping == 0
    has = [
        any(isinstance(c, EarlyStopping) for c in _trainer(c, tmp_path, "cnn")[0].callbacks)
        for c in (on, off)
    ]
    assert has == [True, False]
    assert main(["train", "sky-shapes", "--early-stopping", "-1"]) == 2


def test_generated_data_do_not_depend_on_the_number_of_processes():
    from astrocnn.engine.splits import generate_split
    from astrocnn.tasks import get_task

    task = get_task("sky-shapes")
    n = 2 * task.chunk_size + 37  # three chunks, the last one short
    seed = np.random.SeedSequence(11)
    done = {1: [], 2: []}  # what each path reports to the progress bar, chunk by chunk
    one = generate_split(task, n, seed, "train", workers=1, advance=done[1].append)
    two = generate_split(task, n, seed, "train", workers=2, advance=done[2].append)
    assert len(one) == n
    assert done[1] == done[2] == [task.chunk_size, task.chunk_size, 37]
    np.testing.assert_array_equal(one.x, two.x)
    np.testing.assert_array_equal(one.y, two.y)
    np.testing.assert_array_equal(one.meta["snr"], two.meta["snr"])
    # the chunks differ from one another (each has its own stream) ...
    size = task.chunk_size
    assert not np.array_equal(one.x[:37], one.x[size : size + 37])
    # ... and up to one chunk the data are those of a single call on the seed
    first = task.generate(50, np.random.default_rng(np.random.SeedSequence(11)), "train")
    np.testing.assert_array_equal(generate_split(task, 50, seed, "train", workers=2).x, first.x)


def test_ising_data_do_not_depend_on_the_number_of_threads():
    """The Ising generator shares its (L, T) pairs out to threads (its numba kernels release the
    GIL): the configurations, and so everything computed from them, are the same for any count."""
    from astrocnn.engine.splits import generate_split
    from astrocnn.tasks import get_task
    from astrocnn.tasks.ising.kernels import PARALLEL_MIN_L

    # L = 48 sweeps its rows on every core when one pair runs at a time, on one core per pair
    # with several threads: both must give the same chains
    assert PARALLEL_MIN_L <= 48
    task = get_task("ising-phase", {"sizes": "8,16,48", "temperatures": "1.5,2.3,3.0"})
    seed = np.random.SeedSequence(5)
    one = generate_split(task, 64, seed, "test", workers=1)
    three = generate_split(task, 64, seed, "test", workers=3)
    # the three temperatures, and the finer ones the coarse scan's own crossing asks for
    assert len(one) == len(three) and len(one) > 3 * 3 * 64
    for a, b in zip(one.x, three.x, strict=True):
        np.testing.assert_array_equal(a, b)
    for key in ("temperature", "size", "energy", "magnetisation", "chain"):
        np.testing.assert_array_equal(one.meta[key], three.meta[key])


def test_model_options_from_the_command_line(tmp_path, capsys):
    """--model-option sets a network option (YAML values), on top of the task's defaults for its
    own network; a wrong name is one line naming the network's options."""
    from astrocnn.cli import main
    from astrocnn.engine.run import load_run

    out = tmp_path / "run"
    args = ["train", "sky-shapes", "--out", str(out), "--epochs", "1", "--no-mlp", "--no-baseline",
            "--config", str(_small_yaml(tmp_path))]  # fmt: skip
    assert main([*args, "--model-option", "width=0.125", "--model-option", "head_hidden=16"]) == 0
    options = load_run(out).config.model_options
    assert options["width"] == 0.125 and options["head_hidden"] == 16  # one hidden layer of 16
    assert options["small_input"] is True  # the task's own default kept
    capsys.readouterr()
    assert main([*args[:3], str(tmp_path / "bad"), *args[4:], "--model-option", "depth=3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not take option(s) depth" in err[0]


def _small_yaml(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text("n_train: 256\nn_val: 64\nn_test: 64\nbatch_size: 32\nprogress_bar: false\n")
    return path
