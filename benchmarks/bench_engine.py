"""Engine benchmarks on the smoke task's default network (resnet18, small stem, width 0.25).

1. Data pipeline: images/s of the built-in generator (with preprocessing) and of the DataLoader,
   against images/s of the training step: the data must never starve the model.
2. Engine overhead: the astrocnn engine (Lightning, with its logging, checkpoints and
   validation) against a plain PyTorch loop doing the same work (same model, data, batch size,
   optimiser, schedule and per-epoch validation), run alternately; the ratio of throughputs.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from astrocnn.engine.config import RunConfig
from astrocnn.engine.module import DataModule, TaskModule
from astrocnn.engine.run import build_model
from astrocnn.engine.splits import build_splits
from astrocnn.engine.train import _trainer, with_task_defaults
from astrocnn.tasks import get_task
from report import write_section


def plain_loop(model, task, splits, config) -> None:
    """What a careful user would write by hand."""
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs)
    g = torch.Generator().manual_seed(config.seed)
    train = DataLoader(splits.train, batch_size=config.batch_size, shuffle=True, generator=g, drop_last=True)
    val = DataLoader(splits.val, batch_size=config.batch_size)
    for _ in range(config.epochs):
        model.train()
        for x, y in train:
            opt.zero_grad(set_to_none=True)
            loss = task.loss(model(x), y)
            loss.backward()
            opt.step()
        sched.step()
        model.eval()
        with torch.no_grad():
            for x, y in val:
                task.loss(model(x), y)


def engine_fit(model, task, splits, config, run_dir: Path) -> None:
    module = TaskModule(model, task, lr=config.lr, weight_decay=config.weight_decay, epochs=config.epochs)
    data = DataModule(splits.train, splits.val, batch_size=config.batch_size, num_workers=0, seed=config.seed)
    trainer, _ = _trainer(config, run_dir, "cnn")
    trainer.fit(module, datamodule=data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task", default="sky-shapes")
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args()
    task = get_task(args.task)
    config = with_task_defaults(
        RunConfig(
            task=args.task,
            n_train=args.n_train,
            n_val=500,
            n_test=100,
            epochs=args.epochs,
            progress_bar=False,
        ),
        task,
    )
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)

    # 1. data pipeline
    t0 = time.perf_counter()
    raw = task.generate(args.n_train, np.random.default_rng(0))
    x = task.preprocess(raw.x)
    gen_rate = args.n_train / (time.perf_counter() - t0)
    splits = build_splits(task, config)
    loader = DataLoader(splits.train, batch_size=config.batch_size, shuffle=True)
    t0 = time.perf_counter()
    for _ in loader:
        pass
    load_rate = len(splits.train) / (time.perf_counter() - t0)
    model = build_model(config, task)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr)
    xb, yb = torch.from_numpy(x[: config.batch_size]), task.target_tensor(raw.y[: config.batch_size])
    times = []
    for _ in range(10):
        t0 = time.perf_counter()
        opt.zero_grad()
        task.loss(model(xb), yb).backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    step_rate = config.batch_size / statistics.median(times[2:])

    # 2. engine against a plain loop, alternately, same initial weights
    plain_t, engine_t = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            torch.manual_seed(r)
            m = build_model(config, task)
            t0 = time.perf_counter()
            plain_loop(m, task, splits, config)
            plain_t.append(time.perf_counter() - t0)
            torch.manual_seed(r)
            m = build_model(config, task)
            t0 = time.perf_counter()
            engine_fit(m, task, splits, dataclasses.replace(config), Path(tmp) / f"run{r}")
            engine_t.append(time.perf_counter() - t0)
    images = config.epochs * (len(splits.train) // config.batch_size) * config.batch_size
    plain_rate, engine_rate = images / statistics.median(plain_t), images / statistics.median(engine_t)
    body = f"""Task `{args.task}`, model `{config.model}` {config.model_options}, batch {config.batch_size}.

| stage | images/s |
|---|---:|
| generator + preprocessing | {gen_rate:,.0f} |
| DataLoader over the prepared split | {load_rate:,.0f} |
| training step (forward, backward, AdamW) | {step_rate:,.0f} |

The generator produces {gen_rate / step_rate:.1f}x and the loader serves {load_rate / step_rate:,.0f}x the
images the training step consumes.

| training loop ({config.epochs} epochs of {len(splits.train)} images, validation each epoch) | images/s |
|---|---:|
| plain PyTorch loop | {plain_rate:,.0f} |
| astrocnn engine (Lightning, logs, checkpoints) | {engine_rate:,.0f} |

**Engine / plain throughput ratio: {engine_rate / plain_rate:.3f}** (median of {args.repeats} alternating runs
each; the goal is at least 0.95)."""
    write_section(args.out, "engine", "Engine: data pipeline and training-loop overhead", body)
    print(body)


if __name__ == "__main__":
    L.seed_everything(0, verbose=False)
    main()
