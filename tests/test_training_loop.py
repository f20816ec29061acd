"""The training step of the engine's LightningModule: the learning-rate schedule (also across a
resume), equality with a plain PyTorch loop, and the NaN check without a per-step device sync."""

import math

import lightning as L
import pytest
import torch
from torch.utils.data import TensorDataset

from astrocnn.engine.module import DataModule, TaskModule, TrainingDiverged
from astrocnn.models.registry import create_model
from astrocnn.tasks import get_task

EPOCHS, LR, BATCH = 4, 1e-2, 16


def _data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 32, 32, generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    return TensorDataset(x, y)


def _module():
    torch.manual_seed(0)
    model = create_model("simple_cnn", in_channels=1, num_outputs=3, input_size=(32, 32))
    return TaskModule(model, get_task("sky-shapes"), lr=LR, weight_decay=0.01, epochs=EPOCHS)


class RecordLR(L.Callback):
    def __init__(self):
        self.lr = {}

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.lr.setdefault(trainer.current_epoch, module.optimizers().optimizer.param_groups[0]["lr"])


class StopAfter(L.Callback):
    def __init__(self, epochs):
        self.epochs = epochs

    def on_train_epoch_end(self, trainer, module):
        trainer.should_stop = trainer.current_epoch + 1 >= self.epochs


def _trainer(tmp_path, epochs, callbacks=()):
    return L.Trainer(
        max_epochs=epochs, accelerator="cpu", logger=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=tmp_path, num_sanity_val_steps=0,
        callbacks=list(callbacks), enable_checkpointing=False,
    )  # fmt: skip


def _fit(tmp_path, module, epochs, ckpt=None, callbacks=()):
    data = DataModule(_data(), _data(32, 1), batch_size=BATCH, num_workers=0, seed=0)
    trainer = _trainer(tmp_path, epochs, callbacks)
    trainer.fit(module, datamodule=data, ckpt_path=ckpt, weights_only=False)
    return trainer


def test_learning_rate_follows_the_cosine_schedule_epoch_by_epoch(tmp_path):
    record = RecordLR()
    _fit(tmp_path, _module(), EPOCHS, callbacks=[record])
    expected = {e: LR * 0.5 * (1 + math.cos(math.pi * e / EPOCHS)) for e in range(EPOCHS)}
    assert record.lr == pytest.approx(expected, rel=1e-12)


def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path):
    whole = _module()
    _fit(tmp_path / "a", whole, EPOCHS)
    part = _module()
    trainer = _fit(tmp_path / "b", part, EPOCHS, callbacks=[StopAfter(2)])  # as if interrupted
    assert trainer.current_epoch == 2
    trainer.save_checkpoint(tmp_path / "half.ckpt")
    resumed, record = _module(), RecordLR()
    _fit(tmp_path / "c", resumed, EPOCHS, ckpt=tmp_path / "half.ckpt", callbacks=[record])
    assert sorted(record.lr) == [2, 3]  # only the missing epochs ran, at their own rates
    assert record.lr[2] == pytest.approx(LR * 0.5 * (1 + math.cos(math.pi * 2 / EPOCHS)), rel=1e-12)
    for p, q in zip(whole.parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_the_step_is_a_plain_adamw_step(tmp_path):
    """One epoch of the engine and one of a hand-written loop over the same batches: the same
    weights (what the manual optimisation must preserve)."""
    module = _module()
    plain = _module().model
    data = DataModule(_data(), _data(32, 1), batch_size=BATCH, num_workers=0, seed=0)
    data.setup("fit")
    batches = list(data.train_dataloader())
    _fit(tmp_path, module, 1)
    opt = torch.optim.AdamW(plain.parameters(), lr=LR, weight_decay=0.01)
    plain.train()
    for x, y in batches:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(plain(x), y).backward()
        opt.step()
    for p, q in zip(module.model.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_without_a_per_step_check_a_nan_still_stops_the_run_within_the_logging_interval(tmp_path):
    """On an accelerator the loss is not read every step (that would stall the device); the
    epoch's running sum is checked at each logging step. The CPU stands in for the device."""
    module = _module()
    module.check_each_step = False
    real = module.task.loss
    calls = {"n": 0}

    def loss(output, target):
        calls["n"] += 1
        value = real(output, target)
        return value * float("nan") if calls["n"] == 3 else value

    module.task.loss = loss
    data = DataModule(_data(256), _data(32, 1), batch_size=BATCH, num_workers=0, seed=0)
    trainer = L.Trainer(
        max_epochs=2, accelerator="cpu", logger=False, enable_progress_bar=False, log_every_n_steps=5,
        enable_model_summary=False, default_root_dir=tmp_path, num_sanity_val_steps=0,
        enable_checkpointing=False,
    )  # fmt: skip
    with pytest.raises(TrainingDiverged, match=r"became nan by epoch 0, step 5 "):
        trainer.fit(module, datamodule=data)
    assert calls["n"] == 6  # steps 0..5: stopped at the first logging step after the NaN


def test_lightnings_own_step_path_gives_the_same_weights(tmp_path, monkeypatch):
    """Where the plain step does not serve (DDP, a gradient scaler) the step goes through
    Lightning's optimiser and backward wrappers; both paths train the same weights."""
    import astrocnn.engine.module as engine_module

    direct = _module()
    _fit(tmp_path / "a", direct, 2)
    assert direct._plain_step
    monkeypatch.setattr(engine_module, "plain_step_serves", lambda trainer: False)
    wrapped = _module()
    trainer = _fit(tmp_path / "b", wrapped, 2)
    assert not wrapped._plain_step
    assert trainer.global_step == 2 * (64 // BATCH)  # the loop's step counter, on both paths
    for p, q in zip(direct.parameters(), wrapped.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


def test_the_plain_step_serves_one_device_without_a_gradient_scaler():
    from types import SimpleNamespace

    from lightning.pytorch.plugins.precision import DoublePrecision, MixedPrecision, Precision
    from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy

    from astrocnn.engine.module import plain_step_serves

    one = SingleDeviceStrategy(torch.device("cpu"))
    scaled = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))

    def serves(strategy, precision):
        return plain_step_serves(SimpleNamespace(strategy=strategy, precision_plugin=precision))

    assert serves(one, Precision())
    assert serves(one, MixedPrecision("bf16-mixed", "cpu"))
    assert not serves(one, scaled)  # the scaler scales the loss and unscales the step
    assert not serves(one, DoublePrecision())  # its own hooks
    assert not serves(DDPStrategy(), Precision())  # DDP's backward prepares the reduction


def test_bookkeeping_attributes_skip_the_module_checks_but_modules_still_register():
    module = _module()
    module._current_fx_name = "training_step"  # Lightning's bookkeeping: a plain attribute
    assert module._current_fx_name == "training_step" and "_current_fx_name" not in module._modules
    module.extra = torch.nn.Linear(2, 2)
    module.scale = torch.nn.Parameter(torch.ones(1))
    assert "extra" in module._modules and "scale" in module._parameters
    module.scale = None  # a registered parameter set to None stays a parameter slot
    assert "scale" in module._parameters and module._parameters["scale"] is None


def test_loggers_save_every_few_seconds_and_at_the_end(tmp_path, monkeypatch):
    from astrocnn.engine.train import CSVLogs

    logger = CSVLogs(tmp_path, name="csv", version="x")
    writes = []
    monkeypatch.setattr(type(logger.experiment), "save", lambda self: writes.append(len(self.metrics)))
    for step in range(20):
        logger.log_metrics({"loss": float(step)}, step=step)
        logger.save()  # what Lightning calls after every logging call
    assert writes == [1]  # the first save; the next ones fall within the interval
    logger.finalize("success")
    assert writes[-1] == 20  # the end always writes every row


def test_the_step_loss_is_logged_at_its_own_step(tmp_path):
    import csv

    import astrocnn

    run = astrocnn.train(
        "sky-shapes", out=str(tmp_path / "run"), model="simple_cnn", epochs=2, n_train=320, n_val=64,
        n_test=64, batch_size=16, train_mlp=False, baseline=False, progress_bar=False,
    )  # fmt: skip
    with open(run.path / "logs" / "csv" / "cnn" / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    steps = [(int(r["epoch"]), int(r["step"])) for r in rows if r["train_loss_step"]]
    assert steps == [(0, 0), (0, 10), (1, 20), (1, 30)]  # every 10 steps, 20 steps an epoch
    assert sum(1 for r in rows if r["val_loss"]) == sum(1 for r in rows if r["train_loss_epoch"]) == 2
