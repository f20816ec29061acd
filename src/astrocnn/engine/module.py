"""The LightningModule (loss, metrics, optimiser around a plain backbone) and the data module."""

from __future__ import annotations

import math
from collections import Counter

import lightning as L
import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, Dataset, SequentialSampler, TensorDataset

from astrocnn.engine.sampling import EpochSeededSampler, GroupedBatchSampler
from astrocnn.errors import AstroCNNError
from astrocnn.tasks.base import Task, TaskKind


class TrainingDiverged(AstroCNNError):
    """The loss became NaN or infinite."""


#: Weight of the auxiliary classifiers' losses (Szegedy et al. 2014 use 0.3).
AUX_WEIGHT = 0.3


class TaskModule(L.LightningModule):
    """Trains ``model`` on ``task``'s loss with AdamW and a cosine learning-rate schedule.

    The step is written out (Lightning's manual optimisation): zero the gradients, backward,
    AdamW step. It is the same arithmetic as Lightning's automatic path without its closure and
    per-step hook machinery, which cost a small network a third of a millisecond a step
    (docs/benchmarks.md, engine). The learning rate of epoch ``e`` is set at its start from ``e``
    alone, so that a resumed run continues the schedule exactly where it stopped."""

    def __init__(
        self,
        model: nn.Module,
        task: Task,
        *,
        lr: float,
        weight_decay: float,
        epochs: int,
        compile_mode: str | None = None,
    ):
        super().__init__()
        self.model = model
        # the compiled network is kept beside the module, not registered in it: checkpoints,
        # resume and export see the plain network's parameters, without the compiler's prefix
        compiled = torch.compile(model, mode=compile_mode) if compile_mode else model
        object.__setattr__(self, "network", compiled)
        self.task = task
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self._sums: dict[str, torch.Tensor] = {}  # per stage: loss sum, samples, correct
        self.automatic_optimization = False
        #: Check each training loss for NaN on the CPU; on an accelerator, where reading a value
        #: stalls the device, check the epoch's running sum at every logging step instead.
        self.check_each_step: bool | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, y = batch
        if stage == "train":
            x = self.task.augment(x)
        aux_heads = getattr(self.model, "aux_heads", None)
        if stage == "train" and aux_heads is not None and len(aux_heads):
            out, aux = self.model.forward_with_aux(x)
            loss = self.task.loss(out, y) + AUX_WEIGHT * sum(self.task.loss(a, y) for a in aux)
        else:
            out = self.network(x)
            loss = self.task.loss(out, y)
        if self.check_each_step is None:
            self.check_each_step = loss.device.type == "cpu"
        if stage == "train" and self.check_each_step and not torch.isfinite(loss):
            self._diverged(loss.item(), "at")
        # Epoch means are summed here and logged once an epoch: a self.log call costs about a
        # millisecond, as much as a whole training step of a small network on a CPU.
        sums = self._sums.setdefault(stage, torch.zeros(3, device=loss.device))
        sums[0] += loss.detach() * len(x)
        sums[1] += len(x)
        if self.task.kind is TaskKind.CLASSIFICATION:
            sums[2] += (out.detach().argmax(dim=1) == y).sum()
        if stage == "train" and self._log_this_step():
            if not self.check_each_step and not torch.isfinite(sums[0]):
                self._diverged(sums[0].item(), "by")
            self.log("train_loss_step", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=len(x))
        return loss

    def _diverged(self, value: float, when: str) -> None:
        raise TrainingDiverged(
            f"the training loss became {value} {when} epoch {self.current_epoch}, "
            f"step {self.global_step} (try a smaller --lr)"
        )

    def _log_this_step(self) -> bool:
        """The steps whose loss the loggers write (Lightning's ``log_every_n_steps``)."""
        trainer = self._trainer
        every = getattr(trainer, "log_every_n_steps", 1) if trainer is not None else 1
        return self.global_step % max(every, 1) == 0

    def _log_epoch(self, stage: str) -> None:
        sums = self._sums.pop(stage, None)
        if sums is None or sums[1] == 0:
            return
        name = "train_loss_epoch" if stage == "train" else "val_loss"
        self.log(name, sums[0] / sums[1], on_epoch=True, prog_bar=True, sync_dist=True)
        if self.task.kind is TaskKind.CLASSIFICATION:
            self.log(f"{stage}_acc", sums[2] / sums[1], on_epoch=True, prog_bar=True, sync_dist=True)

    def on_train_epoch_start(self) -> None:
        self._sums.pop("train", None)
        for group in self.optimizers().optimizer.param_groups:
            group["lr"] = self.lr * self._cosine(self.current_epoch)

    def on_train_epoch_end(self) -> None:
        sums = self._sums.get("train")
        if sums is not None and not self.check_each_step and not torch.isfinite(sums[0]):
            self._diverged(sums[0].item(), "by")
        self._log_epoch("train")

    def on_validation_epoch_start(self) -> None:
        self._sums.pop("val", None)

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        optimiser = self.optimizers()
        loss = self._step(batch, "train")
        optimiser.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimiser.step()
        return loss

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)

    def _cosine(self, epoch: int) -> float:
        """Cosine decay over the trainer's epochs, read at each epoch's start, so that a run
        resumed with more epochs stretches the schedule instead of replaying a finished one."""
        total = max(self.trainer.max_epochs or self.epochs, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(epoch, total) / total))


class DataModule(L.LightningDataModule):
    """Train and validation loaders over datasets the engine prepared.

    Data held as tensors in memory (what the generators make) are served whole batches at a
    time by index (:class:`IndexBatches`), with no per-sample collation, and with
    ``data_on_device`` moved once to the accelerator, where the batches are then drawn; the
    order is the host path's for the same seed. Several processes (DDP), images of several sizes
    and files read lazily keep the per-sample DataLoader."""

    def __init__(
        self,
        train: Dataset,
        val: Dataset,
        *,
        batch_size: int,
        num_workers: int,
        seed: int,
        data_on_device: str = "auto",
        processes: int = 1,
    ):
        super().__init__()
        self.train, self.val = train, val
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.data_on_device, self.processes = data_on_device, processes

    def setup(self, stage: str) -> None:
        trainer = getattr(self, "trainer", None)
        device = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
        if device.type != "cpu" and self._by_index(self.train) and self._to_device(device):
            self.train, self.val = (
                TensorDataset(*(t.to(device) for t in d.tensors)) if isinstance(d, TensorDataset) else d
                for d in (self.train, self.val)
            )

    def _to_device(self, device: torch.device) -> bool:
        """``data_on_device``: "yes", "no", or "auto": when the data take at most half of the
        accelerator's free memory."""
        if self.data_on_device != "auto":
            return self.data_on_device == "yes"
        size = sum(
            t.nbytes for d in (self.train, self.val) if isinstance(d, TensorDataset) for t in d.tensors
        )
        try:
            free, _ = torch.cuda.mem_get_info(device)
        except Exception:  # not a CUDA device, or no way to ask: keep the host path
            return False
        return size <= free / 2

    def _by_index(self, dataset: Dataset) -> bool:
        return isinstance(dataset, TensorDataset) and self.processes == 1 and self.data_on_device != "no"

    def _pinned(self) -> bool:
        """Host batches bound for a CUDA device go through pinned memory (Lightning then copies
        them without blocking)."""
        trainer = getattr(self, "trainer", None)
        return trainer is not None and trainer.strategy.root_device.type == "cuda"

    def _loader(self, dataset: Dataset, *, train: bool) -> DataLoader:
        workers = {
            "num_workers": self.num_workers,
            "persistent_workers": self.num_workers > 0,
            "pin_memory": self._pinned(),
        }
        drop_last = train and len(dataset) > self.batch_size  # no 1-image batch for batch norm
        if train and hasattr(dataset, "train_sampler"):  # a dataset read from disk picks its order
            sampler = dataset.train_sampler(self.seed)
        elif train:
            sampler = EpochSeededSampler(dataset, self.seed)
        else:
            sampler = SequentialSampler(dataset)
        if hasattr(dataset, "groups"):  # images of several sizes: one size per batch
            # a size with fewer images than a batch would lose them all to drop_last
            drop_last = drop_last and min(Counter(dataset.groups).values()) > self.batch_size
            batches = GroupedBatchSampler(sampler, self.batch_size, drop_last)
            return DataLoader(dataset, batch_sampler=batches, **workers)
        if self._by_index(dataset):  # whole batches by index: the same batches, no collation
            on_device = isinstance(dataset, TensorDataset) and dataset.tensors[0].device.type != "cpu"
            return DataLoader(
                dataset,
                sampler=IndexBatches(sampler, self.batch_size, drop_last),
                batch_size=None,
                pin_memory=self._pinned() and not on_device,
            )
        return DataLoader(dataset, self.batch_size, sampler=sampler, drop_last=drop_last, **workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val, train=False)


class IndexBatches(BatchSampler):
    """The index lists of the batches the per-sample path would make, each fetched at once
    (``TensorDataset[list]`` gathers the whole batch); Lightning's epoch reaches the sampler."""

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)
