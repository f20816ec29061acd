"""The LightningModule (loss, metrics, optimiser around a plain backbone) and the data module."""

from __future__ import annotations

import math
from collections import Counter

import lightning as L
import numpy as np
import torch
from lightning.pytorch.plugins.precision import MixedPrecision, Precision
from lightning.pytorch.strategies import SingleDeviceStrategy
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, Dataset, SequentialSampler, TensorDataset

from astrocnn.engine.sampling import EpochSeededSampler, GroupedBatchSampler
from astrocnn.errors import AstroCNNError
from astrocnn.tasks.base import Task, TaskKind


class TrainingDiverged(AstroCNNError):
    """The loss became NaN or infinite."""


#: Weight of the auxiliary classifiers' losses (Szegedy et al. 2014 use 0.3).
AUX_WEIGHT = 0.3


#: Attribute values that are never parameters, buffers or submodules.
_PLAIN = frozenset({str, bool, int, float, type(None)})


class EpochSums:
    """An epoch's loss sum, sample count and correct predictions: Python numbers where values
    are read each step (the CPU), 0-d tensors on an accelerator, where reading them would stall
    it."""

    __slots__ = ("correct", "loss", "n")

    def __init__(self) -> None:
        self.loss: float | torch.Tensor = 0.0
        self.n = 0
        self.correct: int | torch.Tensor = 0

    def add(self, loss, n: int, correct) -> None:
        self.loss = self.loss + loss * n
        self.n += n
        if correct is not None:
            self.correct = self.correct + correct

    def mean(self, total) -> torch.Tensor:
        return torch.as_tensor(total, dtype=torch.float32) / self.n

    def finite(self) -> bool:
        """Whether the loss sum is finite (on an accelerator, a sync: call it rarely)."""
        return bool(torch.isfinite(torch.as_tensor(self.loss)))


def plain_step_serves(trainer: L.Trainer) -> bool:
    """Whether a plain ``backward(); optimiser.step()`` is exactly Lightning's manual step: one
    device (DDP's backward prepares its gradient reduction), and a precision that scales no
    gradients (float32, or bfloat16 autocast)."""
    precision = trainer.precision_plugin
    plain = type(precision) is Precision or (
        type(precision) is MixedPrecision and getattr(precision, "scaler", None) is None
    )
    return plain and isinstance(trainer.strategy, SingleDeviceStrategy)


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
        seed: int = 0,
    ):
        super().__init__()
        #: Seeds the task's training transformations together with the step and the process.
        self.seed = int(seed)
        self.model = model
        # the compiled network is kept beside the module, not registered in it: checkpoints,
        # resume and export see the plain network's parameters, without the compiler's prefix
        compiled = torch.compile(model, mode=compile_mode) if compile_mode else model
        object.__setattr__(self, "network", compiled)
        self.task = task
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self._sums: dict[str, EpochSums] = {}  # per stage
        self.automatic_optimization = False
        #: Check each training loss for NaN on the CPU; on an accelerator, where reading a value
        #: stalls the device, check the epoch's running sum at every logging step instead.
        self.check_each_step: bool | None = None
        self._plain_step = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)

    def __setattr__(self, name: str, value) -> None:
        # Lightning sets bookkeeping attributes (the hook being run, and so on) on the module a
        # few dozen times a step; nn.Module's checks for parameters, buffers and submodules cost
        # a small network several percent of its step. Plain values skip them.
        if (
            type(value) in _PLAIN
            and name not in self._parameters
            and name not in self._buffers
            and (name not in self._modules)
        ):
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, y = batch
        if stage == "train":
            x, y = self._augment_pair(x, y)
        aux_heads = getattr(self.model, "aux_heads", None)
        if stage == "train" and aux_heads is not None and len(aux_heads):
            out, aux = self.model.forward_with_aux(x)
            loss = self.task.loss(out, y) + AUX_WEIGHT * sum(self.task.loss(a, y) for a in aux)
        else:
            out = self.network(x)
            loss = self.task.loss(out, y)
        if self.check_each_step is None:
            self.check_each_step = loss.device.type == "cpu"
        # Epoch means are summed here and logged once an epoch: a self.log call costs about a
        # millisecond, as much as a whole training step of a small network on a CPU.
        correct = None
        if self.task.kind is TaskKind.CLASSIFICATION:
            correct = (out.detach().argmax(dim=1) == y).sum()
        sums = self._sums.get(stage)
        if sums is None:
            sums = self._sums[stage] = EpochSums()
        if self.check_each_step:  # on the CPU a value is at hand: check each step, sum numbers
            value = loss.item()
            if stage == "train" and not math.isfinite(value):
                self._diverged(value, "at")
            sums.add(value, len(x), None if correct is None else correct.item())
        else:  # on an accelerator, reading a value would stall it: sum on the device
            sums.add(loss.detach(), len(x), correct)
        if stage == "train" and self._log_this_step():
            if not self.check_each_step and not sums.finite():
                self._diverged(float(sums.loss), "by")
            self._log_step_loss(loss, len(x))
        return loss

    def _augment_pair(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The task's training transformations, drawn from torch's generator seeded by (seed,
        step, process) for the call and then put back as it was: a run resumed from a checkpoint
        draws what the uninterrupted run drew at each step, and DDP's processes draw differently."""
        if type(self.task).augment_pair is Task.augment_pair and type(self.task).augment is Task.augment:
            return x, y  # nothing to draw
        entropy = [self.seed, self.global_step, self.global_rank]
        seed = int(np.random.SeedSequence(entropy).generate_state(1)[0])
        devices = [x.device.index or 0] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            return self.task.augment_pair(x, y)

    def _log_step_loss(self, loss: torch.Tensor, batch_size: int) -> None:
        """The loss of this step, at this step, straight to the loggers: ``self.log`` costs a
        millisecond (its result collection), ten times a small network's step; it now serves
        only the progress bar, where there is one."""
        metrics = {"train_loss_step": loss.detach().item(), "epoch": self.current_epoch}
        for logger in self.loggers:
            logger.log_metrics(metrics, step=self.global_step)
        if self._trainer is not None and self._trainer.progress_bar_callback is not None:
            self.log("train_loss_step", loss, prog_bar=True, logger=False, batch_size=batch_size)

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
        if sums is None or sums.n == 0:
            return
        name = "train_loss_epoch" if stage == "train" else "val_loss"
        self.log(name, sums.mean(sums.loss), on_epoch=True, prog_bar=True, sync_dist=True)
        if self.task.kind is TaskKind.CLASSIFICATION:
            self.log(f"{stage}_acc", sums.mean(sums.correct), on_epoch=True, prog_bar=True, sync_dist=True)

    def on_train_epoch_start(self) -> None:
        self._sums.pop("train", None)
        for group in self.optimizers().optimizer.param_groups:
            group["lr"] = self.lr * self._cosine(self.current_epoch)

    def on_train_epoch_end(self) -> None:
        sums = self._sums.get("train")
        if sums is not None and not self.check_each_step and not sums.finite():
            self._diverged(float(sums.loss), "by")
        self._log_epoch("train")

    def on_validation_epoch_start(self) -> None:
        self._sums.pop("val", None)

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_train_start(self) -> None:
        self._plain_step = plain_step_serves(self.trainer)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        optimiser = self.optimizers()
        loss = self._step(batch, "train")
        if self._plain_step:
            # Lightning's path below with nothing in it to do: its hooks (none used here) and
            # the strategy's and precision's pass-throughs skipped, the loop's step counters kept
            optimiser.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimiser._on_before_step()
            optimiser.optimizer.step()
            optimiser._on_after_step()
        else:
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

    def transfer_batch_to_device(self, batch, device: torch.device, dataloader_idx: int):
        # Batches already on the device (the CPU, or data kept on the accelerator) need no walk
        # through Lightning's collection mover.
        if isinstance(batch, (tuple, list)) and all(
            isinstance(t, torch.Tensor) and t.device == device for t in batch
        ):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

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
            device = dataset.tensors[0].device
            on_device = device.type != "cpu"
            return DataLoader(
                dataset,
                sampler=IndexBatches(sampler, self.batch_size, drop_last, device if on_device else None),
                batch_size=None,
                pin_memory=self._pinned() and not on_device,
            )
        return DataLoader(dataset, self.batch_size, sampler=sampler, drop_last=drop_last, **workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val, train=False)


class IndexBatches(BatchSampler):
    """The indices of the batches the per-sample path would make, each fetched at once
    (``TensorDataset[index]`` gathers the whole batch); Lightning's epoch reaches the sampler.
    An epoch's order is one tensor, moved once to ``device`` (where the data are) and cut into
    batches there: no list converted per batch and tensor, no copy of indices per batch."""

    def __init__(self, sampler, batch_size: int, drop_last: bool, device: torch.device | None = None):
        super().__init__(sampler, batch_size, drop_last)
        self.device = device

    def __iter__(self):
        if hasattr(self.sampler, "permutation"):
            order = self.sampler.permutation()
        else:  # any other order, e.g. the validation split's
            order = torch.as_tensor(list(self.sampler), dtype=torch.long)
        if self.device is not None:
            order = order.to(self.device)
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        yield from order[:stop].split(self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)
