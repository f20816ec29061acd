"""Training on event files larger than memory.

The training and validation events of an ``astrocnn generate iact`` file stay on disk: a batch
reads its rows, maps them onto the square grid and preprocesses them (in DataLoader worker
processes with ``--num-workers``). The batches come in a block shuffle: each epoch visits blocks
of consecutive events in a random order and shuffles the events of a few blocks at a time, so
that a compressed file is decompressed about once an epoch instead of once per event, while the
order stays random at the scale of thousands of events and reproducible from (seed, epoch). The
test events and the classical baseline's training events are read into memory (their images
and per-pixel charges), as the metrics and the Hillas fit need them whole."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from astrocnn.tasks.iact import hillas
from astrocnn.tasks.iact import simulation as sim

if TYPE_CHECKING:
    from astrocnn.tasks.iact.tasks import _IactTask

#: Consecutive events a batch draws from (a block), and blocks shuffled together (a window).
BLOCK, WINDOW = 256, 4
#: Bounds of h5py's chunk cache per dataset. It must hold the chunks a window touches, or every
#: batch decompresses them again: a window's events are those passing the cut among the rows
#: between them, so the cache is sized from the rows' density (:meth:`StreamedEvents.cache_bytes`).
CACHE_MIN, CACHE_MAX = 8 * 2**20, 256 * 2**20


def scan(path: Path, task: _IactTask) -> tuple[SimpleNamespace, np.ndarray]:
    """The truth every task's targets come from (particle, energy, core: one entry per event of
    the file) and the cleaned image size of every event, its charges read one block at a time
    (the cut's input, in bounded memory)."""
    from astrocnn.data.readers import library_errors, open_hdf5

    with library_errors(path, "HDF5"), open_hdf5(path) as f:
        charge = f["charge"]
        n = charge.shape[0]
        sizes = np.empty(n)
        for start in range(0, n, sim.READ_BLOCK):
            block = charge[start : start + sim.READ_BLOCK].astype(np.float32)
            sizes[start : start + len(block)] = hillas.cleaned_sizes(task.camera, block)
        truth = SimpleNamespace(
            particle=f["particle"][()].astype(np.int64),
            energy=f["energy"][()].astype(np.float64),
            core=f["core"][()].astype(np.float64),
        )
        return truth, sizes


class StreamedEvents(Dataset):
    """The network's inputs and targets for the file rows ``rows`` (increasing), read on demand.

    A batch is fetched at once (``__getitems__``, which the DataLoader calls with a batch's
    indices); each process opens its own handle to the file."""

    def __init__(self, path: Path, task: _IactTask, rows: np.ndarray, targets: np.ndarray):
        self.path, self.task = Path(path), task
        self.rows = np.asarray(rows, dtype=np.int64)
        self.targets = task.target_tensor(targets)
        self._file = self._open = None

    def __len__(self) -> int:
        return len(self.rows)

    def _datasets(self):
        """The charge and time datasets, kept open: HDF5's chunk cache lives as long as the open
        dataset, so a dataset opened per batch would decompress every chunk again."""
        if self._file is None:
            import h5py

            self._file = h5py.File(self.path, "r", rdcc_nbytes=self.cache_bytes(), rdcc_nslots=100_003)
            self._open = (self._file["charge"], self._file["time"])
        return self._open

    def cache_bytes(self, row_bytes: int | None = None) -> int:
        """Twice the bytes of the file rows a window of the block shuffle spans (at this split's
        density of rows in the file), within [CACHE_MIN, CACHE_MAX]."""
        if row_bytes is None:
            row_bytes = 4 * self.task.camera.n_pixels
        span = (self.rows[-1] - self.rows[0] + 1) / max(len(self.rows), 1) if len(self.rows) else 1.0
        wanted = 2 * span * BLOCK * WINDOW * row_bytes
        return int(min(max(wanted, CACHE_MIN), CACHE_MAX))

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        x, y = self.batch(np.asarray(indices, dtype=np.int64))
        return list(zip(x, y, strict=True))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.__getitems__([index])[0]

    def batch(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (B, 4, H, W) and targets of the dataset's items ``indices``, in that order."""
        rows = self.rows[indices]
        order = np.argsort(rows, kind="stable")
        charge_ds, time_ds = self._datasets()
        charge = sim.read_rows(charge_ds, rows[order], 1024)
        time = sim.read_rows(time_ds, rows[order], 1024)
        images = self.task.preprocess(
            self.task.mapper.images(charge.astype(np.float32), time.astype(np.float32))
        )
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        return torch.from_numpy(np.ascontiguousarray(images[back])), self.targets[indices]

    def train_sampler(self, seed: int) -> BlockShuffle:
        return BlockShuffle(len(self), seed)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_file"] = state["_open"] = None  # each worker process opens the file itself
        return state

    def __del__(self) -> None:
        if getattr(self, "_file", None) is not None:
            try:
                self._file.close()
            except Exception:  # interpreter shutdown
                pass


class BlockShuffle(Sampler[int]):
    """Every index once an epoch: blocks of ``block`` consecutive indices in a random order, the
    indices of each ``window`` consecutive blocks of that order shuffled together; the order is
    a function of (seed, epoch) alone, as the in-memory path's."""

    def __init__(self, n: int, seed: int, block: int = BLOCK, window: int = WINDOW):
        self.n, self.seed, self.block, self.window = n, seed, block, window
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch])
        starts = rng.permutation(np.arange(0, self.n, self.block))
        for w in range(0, len(starts), self.window):
            group = np.concatenate(
                [np.arange(s, min(s + self.block, self.n)) for s in starts[w : w + self.window]]
            )
            yield from rng.permutation(group).tolist()
