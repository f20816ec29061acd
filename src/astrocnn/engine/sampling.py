"""Datasets of images of several sizes (e.g. Ising lattices of several L) and batches that never
mix sizes, so every batch stacks into one tensor, in one process or under DDP."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import BatchSampler, Dataset, DistributedSampler, RandomSampler


class EpochSeededSampler(RandomSampler):
    """A shuffled order that depends only on (seed, epoch), which Lightning sets every epoch: a
    run resumed from a checkpoint sees the same order as one that was never interrupted."""

    def __init__(self, data_source: Dataset, seed: int):
        super().__init__(data_source)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def permutation(self) -> torch.Tensor:
        """This epoch's order as one tensor of indices."""
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return torch.randperm(len(self.data_source), generator=generator)

    def __iter__(self) -> Iterator[int]:
        yield from self.permutation().tolist()


class GroupedTensors(Dataset):
    """Items ``(x[i], y[i])`` where the ``x[i]`` may differ in shape; ``groups[i]`` is the shape."""

    def __init__(self, xs: Sequence[torch.Tensor], ys: torch.Tensor):
        self.xs, self.ys = list(xs), ys
        shapes = sorted({tuple(x.shape) for x in self.xs})
        index = {s: k for k, s in enumerate(shapes)}
        self.groups = [index[tuple(x.shape)] for x in self.xs]

    def __len__(self) -> int:
        return len(self.xs)

    def __getitem__(self, i: int):
        return self.xs[i], self.ys[i]


class GroupedBatchSampler(BatchSampler):
    """Batches of ``batch_size`` indices from one group each.

    In one process the wrapped sampler's order is kept (shuffled or not). Under DDP, where
    Lightning hands in a ``DistributedSampler``, all ranks build the same global batches from
    the same seeded permutation and take every ``world``-th one, truncated to an equal count, so
    no rank waits for a batch another rank does not have."""

    def __init__(self, sampler, batch_size: int, drop_last: bool):
        super().__init__(sampler, batch_size, drop_last)
        dataset = getattr(sampler, "dataset", None) or getattr(sampler, "data_source", None)
        if dataset is None or not hasattr(dataset, "groups"):
            raise TypeError("GroupedBatchSampler needs a sampler over a dataset with .groups")
        self.groups = dataset.groups

    def _batches(self, order: Iterator[int]) -> list[list[int]]:
        buckets: dict[int, list[int]] = defaultdict(list)
        batches = []
        for i in order:
            bucket = buckets[self.groups[i]]
            bucket.append(i)
            if len(bucket) == self.batch_size:
                batches.append(bucket.copy())
                bucket.clear()
        if not self.drop_last:
            batches.extend(b for b in buckets.values() if b)
        return batches

    def _plan(self) -> list[list[int]]:
        if isinstance(self.sampler, DistributedSampler):
            s = self.sampler
            n = len(s.dataset)
            if s.shuffle:
                g = torch.Generator().manual_seed(s.seed + s.epoch)
                order = torch.randperm(n, generator=g).tolist()
            else:
                order = list(range(n))
            batches = self._batches(iter(order))
            per_rank = len(batches) // s.num_replicas
            return batches[s.rank :: s.num_replicas][:per_rank]
        return self._batches(iter(self.sampler))

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._plan()

    def __len__(self) -> int:
        return len(self._plan())
