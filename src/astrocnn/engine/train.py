"""Training a task's network (and its fully connected rival) with Lightning, then evaluating
both and the classical baseline on the same test split."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from astrocnn.engine.config import RunConfig, resolve, save_yaml, validate
from astrocnn.engine.module import DataModule, TaskModule, TrainingDiverged
from astrocnn.engine.results import finish
from astrocnn.engine.run import (
    Run,
    RunError,
    build_model,
    checkpoint_problem,
    load_checkpoint_weights,
    load_run,
    member_name,
    rank_zero_warn_line,
)
from astrocnn.engine.splits import build_splits, configure_from_data, record_data
from astrocnn.errors import Interrupted, OptionError
from astrocnn.models import get_model_spec
from astrocnn.tasks import Task, get_task

# Lightning's own use of a deprecated torch API; nothing a user can act on
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
# short laptop-sized epochs: Lightning warns that they hold fewer steps than the logging interval
warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")

#: Set by the launching process so DDP workers, which re-run the command, find the same folder.
RUN_DIR_ENV = "ASTROCNN_RUN_DIR"


class _SavedEverySeconds:
    """Lightning saves each logger after every logging call (the CSV file written, the
    TensorBoard queue flushed): a millisecond each time, ten times the step of a small network.
    Here a logger saves at most every :attr:`save_every_s` seconds, and always when it finishes."""

    save_every_s = 5.0
    _saved_at = -math.inf

    def save(self) -> None:
        now = time.monotonic()
        if now - self._saved_at >= self.save_every_s:
            self._saved_at = now
            super().save()

    def finalize(self, status: str) -> None:
        self._saved_at = -math.inf  # the final save always writes
        super().finalize(status)


class CSVLogs(_SavedEverySeconds, CSVLogger):
    """Lightning's CSV logger, saved every few seconds and at the end."""


class TensorBoardLogs(_SavedEverySeconds, TensorBoardLogger):
    """Lightning's TensorBoard logger, saved every few seconds and at the end."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes a checkpoint to a temporary file and renames it into place: a run killed while
    saving leaves the previous checkpoint intact, never a truncated one."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "wb") as handle:
                torch.save(checkpoint, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def with_task_defaults(config: RunConfig, task: Task) -> RunConfig:
    d = task.defaults
    filled = {
        "model": config.model or d.model,
        "model_options": config.model_options
        if config.model
        else {**d.model_options, **config.model_options},
        "epochs": config.epochs or d.epochs,
        "batch_size": config.batch_size or d.batch_size,
        "lr": config.lr or d.lr,
        "n_train": config.n_train or d.n_train,
        "n_val": config.n_val or d.n_val,
        "n_test": config.n_test or d.n_test,
        "early_stopping": d.early_stopping if config.early_stopping is None else config.early_stopping,
        "ensemble": config.ensemble or d.ensemble,
        "task_options": task.options(),  # resolved, so that config.yaml shows every value
    }
    return dataclasses.replace(config, **filled)


#: What a resumed run may change: how it runs, not what it computes (and more epochs).
RESUMABLE = (
    "epochs",
    "devices",
    "num_nodes",
    "strategy",
    "accelerator",
    "precision",
    "num_workers",
    "workers",
    "data_on_device",
    "compile",
    "progress_bar",
)
_DEFAULTS = RunConfig(task="")


def _is_worker() -> bool:
    """A DDP process that Lightning (or torchrun, SLURM) started besides rank 0."""
    return rank_zero_only.rank != 0


def _run_dir(config: RunConfig) -> Path:
    if _is_worker() and os.environ.get(RUN_DIR_ENV):
        return Path(os.environ[RUN_DIR_ENV])
    if config.out:
        return Path(config.out)
    return Path("runs") / f"{config.task}-{time.strftime('%Y%m%d-%H%M%S')}"


def _holds_run(run_dir: Path) -> bool:
    return (run_dir / "metrics.json").exists() or any((run_dir / "checkpoints").glob("*/*.ckpt"))


def _prepare(config: RunConfig) -> tuple[Path, RunConfig]:
    run_dir = _run_dir(config)
    if config.data is not None:  # compared and stored as the file itself, however it was typed
        config = dataclasses.replace(config, data=str(Path(config.data).expanduser().resolve()))
    if config.resume:
        saved = load_run(run_dir).config  # raises RunError when there is nothing to resume
        changed = {
            f.name: getattr(config, f.name)
            for f in dataclasses.fields(RunConfig)
            if f.name not in (*RESUMABLE, "task", "out", "resume")
            and getattr(config, f.name) != getattr(_DEFAULTS, f.name)
            and getattr(config, f.name) != getattr(saved, f.name)
        }
        if changed:
            raise OptionError(
                f"{run_dir}: --resume continues the saved configuration; it cannot change "
                f"{', '.join(changed)} (it can change {', '.join(RESUMABLE)})"
            )
        given = {k: getattr(config, k) for k in RESUMABLE if getattr(config, k) != getattr(_DEFAULTS, k)}
        config = dataclasses.replace(saved, resume=True, out=str(run_dir), **given)
    elif _holds_run(run_dir) and not os.environ.get(RUN_DIR_ENV):
        # every rank refuses, rank 0 and the others that torchrun or SLURM started beside it (those
        # Lightning starts itself inherit RUN_DIR_ENV and join a run that rank 0 accepted): a rank
        # that went on would wait for rank 0 until the process group timed out
        raise RunError(f"{run_dir}: already holds a run; use --resume to continue it or choose another --out")
    return run_dir, config


def _trainer(config: RunConfig, run_dir: Path, which: str) -> tuple[L.Trainer, ModelCheckpoint]:
    checkpoint = ModelCheckpoint(
        dirpath=run_dir / "checkpoints" / which,
        filename="best",
        monitor="val_loss",
        mode="min",
        save_top_k=1,
        save_last=True,
        enable_version_counter=False,
    )
    callbacks: list = [checkpoint, SaveOnInterrupt(run_dir / "checkpoints" / which / "last.ckpt")]
    if config.early_stopping:
        callbacks.append(EarlyStopping(monitor="val_loss", mode="min", patience=config.early_stopping))
    progress = sys.stderr.isatty() if config.progress_bar is None else config.progress_bar
    if progress:
        callbacks.append(RichProgressBar())
    elif config.progress_bar is None:  # a log, not a terminal: one line per epoch says where it is
        callbacks.append(EpochLines(config.task, which, config.model if which.startswith("cnn") else "mlp"))
    trainer = L.Trainer(
        max_epochs=config.epochs,
        accelerator=config.accelerator,
        devices=config.devices,
        num_nodes=config.num_nodes,
        strategy=config.strategy,
        precision=config.precision,
        logger=[
            CSVLogs(run_dir / "logs", name="csv", version=which),
            TensorBoardLogs(run_dir / "logs", name="tensorboard", version=which, default_hp_metric=False),
        ],
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        deterministic="warn",  # bit-reproducible on the CPU; warn where a GPU kernel cannot be
        enable_progress_bar=progress,
        enable_model_summary=False,
        log_every_n_steps=10,  # per-step logging costs throughput; epochs are logged anyway
        num_sanity_val_steps=0,
        default_root_dir=run_dir,
    )
    return trainer, checkpoint


def _fit(
    config: RunConfig, run_dir: Path, task: Task, splits, which: str, member: int = 0
) -> torch.nn.Module:
    """Train network ``which``; member k of an ensemble uses the seed ``config.seed + k`` for its
    initial weights and its batch order, on the same data."""
    seed = config.seed + member
    L.seed_everything(seed, workers=True, verbose=False)
    name = member_name(which, member)
    model = build_model(config, task, which)
    module = TaskModule(
        model, task, lr=config.lr, weight_decay=config.weight_decay, epochs=config.epochs,
        compile_mode=compile_mode(config, model), seed=seed,
    )  # fmt: skip
    per_device = max(1, config.batch_size // (config.devices * config.num_nodes))
    data = DataModule(
        splits.train, splits.val, batch_size=per_device, num_workers=config.num_workers, seed=seed,
        data_on_device=config.data_on_device, processes=config.devices * config.num_nodes,
    )  # fmt: skip
    which = name
    folder = run_dir / "checkpoints" / which
    resume_from = _resume_point(folder) if config.resume else None
    if resume_from is not None and not _is_worker():
        _keep_csv_history(run_dir / "logs" / "csv" / which)
    trainer, checkpoint = _make_trainer(config, run_dir, which)
    try:
        trainer.fit(module, datamodule=data, ckpt_path=resume_from, weights_only=True)
    except TrainingDiverged as error:
        kept = (
            f"; the last good checkpoint is {folder / 'last.ckpt'}" if (folder / "last.ckpt").exists() else ""
        )
        raise TrainingDiverged(f"{which}: {error}{kept}") from None
    except SystemExit:  # Lightning's answer to Ctrl-C, after our callback saved a checkpoint
        if trainer.interrupted:
            raise Interrupted(
                f"interrupted at epoch {trainer.current_epoch}, step {trainer.global_step}; saved "
                f"{folder / 'last.ckpt'}; continue with: "
                f"astrocnn train {config.task} --out {run_dir} --resume"
            ) from None
        raise
    best = Path(checkpoint.best_model_path) if checkpoint.best_model_path else folder / "last.ckpt"
    if trainer.is_global_zero:
        load_checkpoint_weights(model, best)
    return model


#: Networks with fewer parameters than this are bound by kernel launches on a GPU, where CUDA
#: graphs ("reduce-overhead") help and the default mode slowed a small resnet18 (0.85x eager).
SMALL_NETWORK = 5_000_000


def compile_mode(config: RunConfig, model: torch.nn.Module) -> str | None:
    """torch.compile's mode for this run, or None to train eagerly: ``compile`` "auto" compiles
    on a GPU only (on a CPU the compilation costs more than a laptop-sized run gains)."""
    if config.compile == "no":
        return None
    on_gpu = config.accelerator in ("gpu", "cuda") or (
        config.accelerator == "auto" and torch.cuda.is_available()
    )
    if config.compile == "auto" and not on_gpu:
        return None
    if config.compile_mode:
        return config.compile_mode
    return choose_compile_mode(model, "cuda" if on_gpu else "cpu")


def choose_compile_mode(model: torch.nn.Module, device_type: str) -> str:
    """The mode astrocnn compiles ``model`` with: CUDA graphs ("reduce-overhead") for a small
    network on a GPU, whose steps are bound by kernel launches, else the default."""
    small = sum(p.numel() for p in model.parameters()) < SMALL_NETWORK
    return "reduce-overhead" if device_type == "cuda" and small else "default"


def _make_trainer(config: RunConfig, run_dir: Path, which: str) -> tuple[L.Trainer, ModelCheckpoint]:
    try:
        return _trainer(config, run_dir, which)
    except (MisconfigurationException, ImportError, RuntimeError) as error:  # e.g. a GPU asked, none here
        if config.accelerator in ("gpu", "cuda", "mps"):
            raise OptionError(
                f"--accelerator {config.accelerator}: no such device is available here; use --accelerator "
                "cpu, or auto to take a GPU where there is one"
            ) from None
        raise OptionError(f"cannot train with these settings: {str(error).splitlines()[0]}") from None


def _more_epochs(config: RunConfig, run_dir: Path) -> bool:
    """Whether a resumed, finished run was asked for more epochs than it trained."""
    try:
        saved = load_run(run_dir).config.epochs
    except RunError:
        return True
    return config.epochs is not None and saved is not None and config.epochs > saved


def _resume_point(folder: Path) -> Path | None:
    """The newest loadable checkpoint: ``last.ckpt``, or ``best.ckpt`` where the last one is
    damaged (said on stderr). None when the network has not saved any yet."""
    candidates = [p for p in (folder / "last.ckpt", folder / "best.ckpt") if p.exists()]
    for path in candidates:
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        rank_zero_warn_line(f"{path} is damaged ({problem}); trying an older checkpoint")
    if candidates:
        raise RunError(f"{folder}: no usable checkpoint to resume from")
    return None


class EpochLines(Callback):
    """For logs: after each epoch one line on stderr naming the task, the network, the epoch and
    the losses (the progress bar's job on a terminal)."""

    def __init__(self, task: str, which: str, model: str):
        self.task, self.which, self.model = task, which, model
        self.started = time.monotonic()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = time.monotonic()
        stage_line(f"{self.task}: training {self.which} ({self.model}) for {trainer.max_epochs} epochs")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning calls this before the module's own hook, which logs the epoch's training loss:
        # that is read from the module's running sums (validation was logged already)
        logged = dict(trainer.callback_metrics)
        sums = getattr(pl_module, "_sums", {}).get("train")
        if sums is not None and sums.n > 0:
            logged["train_loss_epoch"] = sums.mean(sums.loss)
        losses = ", ".join(
            f"{key} {float(logged[key]):.4g}"
            for key in ("train_loss_epoch", "val_loss", "val_acc")
            if key in logged
        )
        stage_line(
            f"{self.task}: {self.which} epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"
            f"{': ' + losses if losses else ''} ({time.monotonic() - self.started:.0f} s)"
        )


def stage_line(message: str) -> None:
    """One progress line on stderr from the main process, flushed so a log shows it at once."""
    if not _is_worker():
        print(f"astrocnn: {message}", file=sys.stderr, flush=True)


class SaveOnInterrupt(Callback):
    """Ctrl-C: save ``last.ckpt`` (atomically, through the checkpoint IO) before Lightning exits."""

    def __init__(self, path: Path):
        self.path = path

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, KeyboardInterrupt):
            trainer.save_checkpoint(self.path)


def _keep_csv_history(folder: Path) -> None:
    """Lightning's CSV logger starts its file afresh; keep the epochs before a resume beside it."""
    current = folder / "metrics.csv"
    if current.exists():
        k = len(list(folder.glob("metrics.before-resume-*.csv"))) + 1
        current.rename(folder / f"metrics.before-resume-{k:03d}.csv")


def check_model_fits(config: RunConfig, task: Task) -> None:
    """Refuse a network whose output cannot be the task's: an image for one label per image, or
    the reverse."""
    spec = get_model_spec(config.model)
    if spec.image_output == task.kind.image_output:
        return
    if spec.image_output:
        raise OptionError(
            f"model {config.model} outputs an image per input; {task.name} ({task.kind.value}) needs one "
            "output per image: choose a network such as resnet18, vgg11 or simple_cnn (see astrocnn models)"
        )
    raise OptionError(
        f"model {config.model} outputs one vector per input; {task.name} ({task.kind.value}) needs an "
        "output image: choose unet (astrocnn models)"
    )


def run_training(config: RunConfig) -> Run | None:
    """Train, evaluate and report; returns the run (None in DDP worker processes)."""
    run_dir, config = _prepare(config)
    if config.resume and (run_dir / "metrics.json").exists() and not _more_epochs(config, run_dir):
        rank_zero_warn_line(
            f"{run_dir} is finished (it has metrics.json): nothing to resume. `astrocnn evaluate "
            f"{run_dir}` recomputes its metrics; --resume --epochs N (more than {config.epochs}) trains on"
        )
        return load_run(run_dir)
    config = record_data(config)
    task = get_task(config.task, config.task_options)
    if getattr(task, "learns_from_data", False):
        if config.data is None:
            raise OptionError(
                f"{task.name} learns from your data: give --data FILE (see `astrocnn tasks {task.name}`)"
            )
        if not (task.configured and task.std):
            task = configure_from_data(task, config)
    config = validate(with_task_defaults(config, task), "configuration")
    # impossible settings fail here, before anything is written
    check_model_fits(config, task)
    build_model(config, task)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    _make_trainer(config, run_dir, "cnn")
    L.seed_everything(config.seed, workers=True, verbose=False)
    source = f"reading {config.data}" if config.data else "generating the data with the task's simulation"
    stage_line(f"{task.name}: {source}")
    splits = build_splits(task, config)
    if config.data is not None:  # the sizes the file gave, not the generator's defaults
        config = dataclasses.replace(
            config, n_train=len(splits.train), n_val=len(splits.val), n_test=len(splits.test)
        )
    created = not run_dir.exists()
    if not _is_worker():
        run_dir.mkdir(parents=True, exist_ok=True)
        # reproducible from this file alone: it is the resolved configuration, minus where it ran
        save_yaml(dataclasses.replace(config, out=None, resume=False), run_dir / "config.yaml")
        os.environ[RUN_DIR_ENV] = str(run_dir.resolve())  # for the DDP workers Lightning starts
    methods = ("cnn", "mlp") if config.train_mlp else ("cnn",)
    try:
        members = {
            w: [_fit(config, run_dir, task, splits, w, k) for k in range(config.ensemble)] for w in methods
        }
    except BaseException:
        # a run that failed before its first checkpoint leaves no folder behind
        if created and not _is_worker() and not _holds_run(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    finally:
        if not _is_worker():
            os.environ.pop(RUN_DIR_ENV, None)
    if _is_worker():
        return None
    baseline = " and the classical baseline" if config.baseline else ""
    stage_line(f"{task.name}: evaluating {', '.join(methods)}{baseline} on the test split")
    finish(run_dir, config, task, splits, {w: [m.float() for m in ms] for w, ms in members.items()})
    return load_run(run_dir)


def train(task: str, *, config_file: str | Path | None = None, **options: Any) -> Run | None:
    """Python API of ``astrocnn train``: ``astrocnn.train("sky-shapes", epochs=3, out="runs/x")``."""
    return run_training(resolve(task, config_file=config_file, **options))
