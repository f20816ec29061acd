"""Batches drawn by index from tensors in memory (the path data take on a GPU once moved there,
with the CPU standing in for the device), and compiled networks: same batches as the per-sample
path, outputs equal to eager ones, and checkpoints, resume and export as without compiling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

import astrocnn
from astrocnn.engine.module import DataModule, IndexBatches


def batches(loader, epochs: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    out = []
    for epoch in range(epochs):
        for holder in (loader.sampler, getattr(loader, "batch_sampler", None)):
            if holder is not None and hasattr(holder, "set_epoch"):
                holder.set_epoch(epoch)  # what Lightning does every epoch
        out += [(x.clone(), y.clone()) for x, y in loader]
    return out


@pytest.mark.parametrize("n", [640, 650])  # a whole number of batches, and a short last one
def test_index_batches_are_the_per_sample_batches(n):
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(n, 1, 8, 8, generator=g), torch.arange(n))
    by_index = DataModule(data, data, batch_size=64, num_workers=0, seed=7, data_on_device="auto")
    per_sample = DataModule(data, data, batch_size=64, num_workers=0, seed=7, data_on_device="no")
    fast, slow = by_index.train_dataloader(), per_sample.train_dataloader()
    assert isinstance(fast.sampler, IndexBatches) and fast.batch_size is None
    assert not isinstance(slow.sampler, IndexBatches)
    a, b = batches(fast), batches(slow)
    assert len(a) == len(b) == 2 * (n // 64)  # drop_last as before
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(a[0][1], a[len(a) // 2][1])  # each epoch its own order
    va, vb = batches(by_index.val_dataloader(), 1), batches(per_sample.val_dataloader(), 1)
    assert all(torch.equal(x, y) for (x, _), (y, _) in zip(va, vb, strict=True))
    assert sum(len(y) for _, y in va) == n  # validation keeps every sample


def test_several_processes_keep_the_per_sample_path():
    data = TensorDataset(torch.randn(100, 1, 4, 4), torch.arange(100))
    module = DataModule(data, data, batch_size=10, num_workers=0, seed=0, processes=2)
    assert not isinstance(module.train_dataloader().sampler, IndexBatches)


@pytest.fixture(scope="module")
def compiled_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("compiled") / "run"
    return astrocnn.train(
        "sky-shapes", out=str(out), model="simple_cnn", epochs=1, n_train=128, n_val=64, n_test=64,
        batch_size=32, compile="yes", train_mlp=False, baseline=False, progress_bar=False,
    )  # fmt: skip


def test_compiled_network_gives_the_eager_outputs():
    from astrocnn.models import create_model

    torch.manual_seed(0)
    model = create_model("simple_cnn", in_channels=1, num_outputs=3, input_size=(32, 32)).eval()
    x = torch.randn(8, 1, 32, 32)
    with torch.no_grad():
        eager = model(x)
        compiled = torch.compile(model)(x)
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-5)


def test_checkpoint_of_a_compiled_run_has_the_plain_keys_and_resumes(compiled_run, tmp_path):
    checkpoint = torch.load(compiled_run.checkpoint("cnn"), map_location="cpu", weights_only=True)
    keys = list(checkpoint["state_dict"])
    assert keys and all(k.startswith("model.") and "_orig_mod" not in k for k in keys)
    eager = compiled_run.model("cnn")  # loads into a plain network
    assert compiled_run.config.compile == "yes"
    resumed = astrocnn.train("sky-shapes", out=str(compiled_run.path), epochs=2, resume=True)
    assert resumed.config.epochs == 2
    torch.load(resumed.checkpoint("cnn", "last"), map_location="cpu", weights_only=True)
    assert sum(p.numel() for p in eager.parameters()) == compiled_run.metrics["results"]["cnn"]["parameters"]


def test_export_of_a_compiled_run(compiled_run, tmp_path):
    import onnxruntime as ort

    from astrocnn.engine.export import export_run

    path = export_run(compiled_run, "onnx", out=tmp_path / "export")
    raw = compiled_run.task.generate(4, np.random.default_rng(2)).x
    out = ort.InferenceSession(str(path)).run(["output"], {"image": raw.astype(np.float32)})[0]
    np.testing.assert_allclose(out, compiled_run.predict(raw), atol=1e-4)


def test_evaluate_and_predict_with_compile_agree_with_eager(compiled_run, tmp_path, capsys):
    from astrocnn.cli import main
    from astrocnn.engine.evaluate import evaluate_run

    eager = evaluate_run(compiled_run)["results"]["cnn"]
    compiled = evaluate_run(compiled_run, compile=True)["results"]["cnn"]
    assert compiled["accuracy"] == eager["accuracy"]
    assert compiled["log_loss"] == pytest.approx(eager["log_loss"], rel=1e-4)
    raw = compiled_run.task.generate(3, np.random.default_rng(5)).x
    np.save(tmp_path / "raw.npy", raw)
    for flag, name in (([], "eager.csv"), (["--compile"], "compiled.csv")):
        assert (
            main(
                [
                    "predict",
                    str(compiled_run.path),
                    str(tmp_path / "raw.npy"),
                    "--out",
                    str(tmp_path / name),
                    *flag,
                ]
            )
            == 0
        )
    rows = [
        np.loadtxt(tmp_path / n, delimiter=",", skiprows=1, usecols=(2, 3, 4))
        for n in ("eager.csv", "compiled.csv")
    ]
    np.testing.assert_allclose(rows[0], rows[1], atol=1e-5)


@pytest.mark.parametrize("drop_last", [True, False])
def test_index_batches_are_the_batch_samplers_lists_on_any_device(drop_last):
    from torch.utils.data import BatchSampler, SequentialSampler

    from astrocnn.engine.sampling import EpochSeededSampler

    data = TensorDataset(torch.arange(650))
    for sampler in (EpochSeededSampler(data, 3), SequentialSampler(data)):
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(2)
        lists = list(BatchSampler(sampler, 64, drop_last))
        for device in (None, torch.device("cpu")):  # the CPU stands in for the accelerator
            cut = list(IndexBatches(sampler, 64, drop_last, device))
            assert [b.tolist() for b in cut] == lists
            assert all(b.dtype == torch.long for b in cut)
