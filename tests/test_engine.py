"""The engine end to end on the smoke task: run folder, metrics, reproducibility, evaluate,
predict, resume, DDP and the demo (export: test_export.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

import astrocnn
from astrocnn.cli import main
from astrocnn.engine.run import load_run

SMALL = {"n_train": 800, "n_val": 200, "n_test": 300, "epochs": 4, "batch_size": 32, "progress_bar": False}


def small_config(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text("n_train: 800\nn_val: 200\nn_test: 300\nbatch_size: 32\nprogress_bar: false\n")
    return path


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "smoke"
    return astrocnn.train("sky-shapes", out=str(out), seed=3, **SMALL)


def test_run_folder_holds_everything(smoke_run):
    p = smoke_run.path
    for name in ("config.yaml", "metrics.json", "report.html", "predictions.npz"):
        assert (p / name).is_file(), name
    for which in ("cnn", "mlp"):
        assert (p / "checkpoints" / which / "best.ckpt").is_file()
        assert (p / "checkpoints" / which / "last.ckpt").is_file()
        assert (p / "logs" / "csv" / which / "metrics.csv").is_file()
        assert list((p / "logs" / "tensorboard" / which).glob("events.out.tfevents.*"))
    plots = sorted(x.name for x in (p / "plots").glob("*.png"))
    assert plots == ["accuracy_vs_snr.png", "confusion.png", "examples.png", "training_curves.png"]
    report = (p / "report.html").read_text()
    assert report.count("data:image/png;base64,") == 4 and "accuracy" in report
    assert not list(p.rglob("*.tmp*"))  # nothing half-written left behind


def test_metrics_json_shape(smoke_run):
    metrics = json.loads((smoke_run.path / "metrics.json").read_text())
    assert metrics["task"] == "sky-shapes"
    assert set(metrics["results"]) == {"cnn", "mlp", "baseline"}
    assert metrics["results"]["cnn"]["model"] == "resnet18"
    for entry in metrics["results"].values():
        for key, value in entry.items():
            if isinstance(value, list) and not key.endswith("_bins"):
                assert len(entry[f"{key}_bins"]) == len(value) + 1
            elif not isinstance(value, list):
                assert isinstance(value, int | float | str)
        assert 0 <= entry["accuracy"] <= 1
    # the CNN learns something real in four short epochs: chance is 1/3
    assert metrics["results"]["cnn"]["accuracy"] > 0.6


def test_resolved_config_reproduces_the_run(smoke_run, tmp_path):
    """Training again from the saved config.yaml with the same seed gives the same metrics."""
    again = astrocnn.train(
        "sky-shapes", config_file=smoke_run.path / "config.yaml", out=str(tmp_path / "again")
    )
    assert again.metrics["results"] == smoke_run.metrics["results"]


def test_evaluate_recomputes_the_same_metrics(smoke_run, capsys):
    assert astrocnn.evaluate(load_run(smoke_run.path)) == smoke_run.metrics
    assert main(["evaluate", str(smoke_run.path)]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_predict_on_fits_npy_and_png(smoke_run, tmp_path):
    task = smoke_run.task
    test = task.generate(3, np.random.default_rng(7))
    fits_path = tmp_path / "a.fits"
    fits.PrimaryHDU(test.x[0, 0].astype(">f4")).writeto(fits_path)
    np.save(tmp_path / "stack.npy", test.x)  # (N, C, H, W): a stack
    png = np.clip(test.x[2, 0] / test.x[2, 0].max() * 65535, 0, 65535).astype(np.uint16)
    Image.fromarray(png).save(tmp_path / "c.png")
    out = tmp_path / "pred.csv"
    code = main(
        [
            "predict",
            str(smoke_run.path),
            str(fits_path),
            str(tmp_path / "stack.npy"),
            str(tmp_path / "c.png"),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    lines = out.read_text().strip().splitlines()
    assert lines[0] == "file,index,p_star,p_galaxy,p_ring,predicted"
    assert len(lines) == 1 + 1 + 3 + 1
    expected = smoke_run.predict(test.x)
    stack_rows = [line.split(",") for line in lines if "stack.npy" in line]
    got = np.array([[float(v) for v in row[2:5]] for row in stack_rows])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_predict_refuses_a_wrong_shape_without_writing(smoke_run, tmp_path, capsys):
    bad = tmp_path / "cube.npy"
    np.save(bad, np.zeros((2, 3, 16, 16, 16), dtype=np.float32))
    out = tmp_path / "pred.csv"
    assert main(["predict", str(smoke_run.path), str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cube.npy" in err
    assert not out.exists()


def test_resume_continues_from_the_last_checkpoint(tmp_path):
    out = tmp_path / "run"
    first = astrocnn.train(
        "sky-shapes",
        out=str(out),
        epochs=1,
        train_mlp=False,
        baseline=False,
        **{k: v for k, v in SMALL.items() if k != "epochs"},
    )
    assert first is not None
    resumed = astrocnn.train("sky-shapes", out=str(out), epochs=2, resume=True)
    logs = sorted((out / "logs" / "csv" / "cnn").glob("metrics*.csv"))
    assert [p.name for p in logs] == ["metrics.before-resume-001.csv", "metrics.csv"]
    epochs = [{row.split(",")[0] for row in p.read_text().splitlines()[1:]} for p in logs]
    assert epochs == [{"0"}, {"1"}]  # one epoch, then one more: not two again
    assert resumed.config.epochs == 2 and "mlp" not in resumed.metrics["results"]


def test_existing_run_folder_is_not_overwritten(smoke_run, capsys):
    before = (smoke_run.path / "metrics.json").read_text()
    assert main(["train", "sky-shapes", "--out", str(smoke_run.path), "--epochs", "1"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (smoke_run.path / "metrics.json").read_text() == before


def test_unknown_task_is_one_line(capsys):
    assert main(["train", "sky-shape"]) == 2
    err = capsys.readouterr().err
    valid = (
        "classify, digits, iact-energy, iact-gamma-hadron, iact-generate, ising-phase, ising-temperature, "
        "regress, restore, segment, sky-cosmic-rays, sky-denoise, sky-inpaint, sky-shapes, tracks-count, "
        "tracks-segment-2d, tracks-segment-3d"
    )
    assert (
        err
        == f"astrocnn: error: unknown task 'sky-shape' (did you mean 'sky-shapes'?); valid tasks: {valid}\n"
    )


def test_ddp_two_processes_reach_the_quality_of_one(tmp_path):
    """Two CPU processes (gloo) with the global batch split between them."""
    config = small_config(tmp_path)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    runs = {}
    for devices in (1, 2):
        out = tmp_path / f"d{devices}"
        cmd = [
            sys.executable,
            "-m",
            "astrocnn",
            "train",
            "sky-shapes",
            "--epochs",
            "6",
            "--config",
            str(config),
            "--seed",
            "5",
            "--out",
            str(out),
            "--devices",
            str(devices),
            "--accelerator",
            "cpu",
            "--no-mlp",
            "--no-baseline",
        ]
        if devices == 2:
            cmd += ["--strategy", "ddp"]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
        assert result.returncode == 0, result.stderr[-2000:]
        runs[devices] = json.loads((out / "metrics.json").read_text())["results"]["cnn"]
    assert runs[1]["accuracy"] > 0.65 and runs[2]["accuracy"] > 0.65  # chance is 1/3
    assert abs(runs[2]["accuracy"] - runs[1]["accuracy"]) < 0.08


def test_quick_demo(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "sky-shapes" in out and "classical baseline" in out
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    entry = summary["tasks"]["sky-shapes"]
    assert set(entry["values"]) == {"cnn", "mlp", "baseline"}
    assert (tmp_path / "demo" / entry["report"]).is_file()
    assert "sky-shapes/report.html" in (tmp_path / "demo" / "report.html").read_text()


def test_under_torchrun_every_rank_refuses_an_occupied_run_folder(tmp_path):
    """torchrun starts both ranks; rank 0 refuses an --out that holds a run, and rank 1 must exit
    with it rather than wait for rank 0 until the process group times out (30 minutes)."""
    out = tmp_path / "taken"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29517",
        "-m", "astrocnn", "train", "sky-shapes", "--out", str(out), "--devices", "2", "--strategy", "ddp",
        "--accelerator", "cpu", "--epochs", "1",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode != 0
    assert result.stderr.count("already holds a run") == 2, result.stderr[-2000:]
    assert (out / "metrics.json").read_text() == "{}"
