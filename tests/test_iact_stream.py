"""Cherenkov-telescope files read from disk batch by batch: the same splits and network inputs as
the in-memory path, a block shuffle that visits every event once an epoch, block reads equal to
HDF5's own selection, files chunked by whole events, and a run trained from the stream, with
DataLoader worker processes."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

import astrocnn
from astrocnn.cli import main
from astrocnn.engine.splits import Splits
from astrocnn.errors import OptionError
from astrocnn.tasks import get_task
from astrocnn.tasks.iact import simulation as sim
from astrocnn.tasks.iact.stream import BlockShuffle, StreamedEvents


@pytest.fixture(scope="module")
def showers(tmp_path_factory):
    path = tmp_path_factory.mktemp("iact") / "showers.h5"
    assert main(["generate", "iact", "--n", "700", "--energy", "1:100", "--workers", "1",
                 "--out", str(path)]) == 0  # fmt: skip
    return path


def test_read_rows_equals_hdf5_selection_on_a_compressed_dataset(tmp_path):
    values = np.random.default_rng(0).normal(size=(5000, 9)).astype(np.float32)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("a", data=values, compression="gzip", chunks=(100, 9))
    rng = np.random.default_rng(1)
    with h5py.File(tmp_path / "a.h5") as f:
        for rows in (np.array([], int), np.array([4999]), np.sort(rng.choice(5000, 700, replace=False))):
            np.testing.assert_array_equal(sim.read_rows(f["a"], rows, block=512), values[rows])


def test_generated_files_are_chunked_by_whole_events(showers):
    """A compressed dataset in chunks of whole events: reading one event decompresses one chunk."""
    with h5py.File(showers) as f:
        for name in ("charge", "time"):
            rows, pixels = f[name].chunks
            assert pixels == f[name].shape[1] == 560 and 1 < rows * pixels * 4 <= 256 * 2**10


def test_block_shuffle_visits_every_event_once_reproducibly():
    sampler = BlockShuffle(2000, seed=3, block=64, window=4)
    first = list(sampler)
    assert sorted(first) == list(range(2000))
    assert list(BlockShuffle(2000, seed=3, block=64, window=4)) == first  # (seed, epoch) alone
    sampler.set_epoch(1)
    second = list(sampler)
    assert sorted(second) == list(range(2000)) and second != first
    # each run of 256 indices (a window of 4 blocks) comes from 4 blocks, far apart in the file
    window = np.array(first[:256])
    assert len(np.unique(window // 64)) == 4 and window.max() - window.min() > 256


@pytest.mark.parametrize("name", ["iact-gamma-hadron", "iact-energy"])
def test_streamed_splits_hold_the_in_memory_splits_events(showers, name):
    memory = get_task(name, {"stream": "no"}).splits_from_file(str(showers), seed=5)
    streamed = get_task(name, {"stream": "yes"}).splits_from_file(str(showers), seed=5)
    assert isinstance(streamed, Splits) and isinstance(memory, tuple)
    task = get_task(name)
    for split, data in zip(memory[:2], (streamed.train, streamed.val), strict=True):
        assert isinstance(data, StreamedEvents) and len(data) == len(split)
        order = np.random.default_rng(0).permutation(len(split))[:50]
        x, y = data.batch(order)  # any order: the inputs come back in it
        torch.testing.assert_close(x, torch.from_numpy(task.preprocess(split.x[order])))
        torch.testing.assert_close(y, task.target_tensor(split.y[order]))
    np.testing.assert_array_equal(streamed.test.x, memory[2].x)
    np.testing.assert_array_equal(streamed.test.y, memory[2].y)
    # the baseline fits on training events, whole (charges and times for the Hillas parameters)
    assert len(streamed.baseline_train) == len(memory[0])
    fitted = streamed.baseline_train.meta["charge"]
    assert set(map(bytes, fitted)) == set(map(bytes, memory[0].meta["charge"]))


def test_auto_streams_only_what_would_not_fit():
    task = get_task("iact-gamma-hadron")
    assert not task.streams(10_000) and task.streams(100_000)
    with pytest.raises(OptionError, match="stream must be auto, yes or no"):
        get_task("iact-gamma-hadron", {"stream": "maybe"})


def test_gamma_hadron_trains_from_a_streamed_file_with_worker_processes(showers, tmp_path):
    run = astrocnn.train(
        "iact-gamma-hadron", data=str(showers), out=str(tmp_path / "run"), epochs=1, num_workers=2,
        task_options={"stream": "yes"}, train_mlp=False, progress_bar=False,
    )  # fmt: skip
    results = json.loads((run.path / "metrics.json").read_text())["results"]
    assert 0.0 <= results["cnn"]["auc"] <= 1.0 and results["baseline"]["auc"] > 0.8
    assert run.config.task_options["stream"] == "yes"
