"""A scientist's own data and the surfaces around it: the generic tasks (classify, regress, segment,
restore), class names as labels, named HDF5 datasets, run records, and the command line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from astrocnn.cli import main
from astrocnn.engine.run import load_run

CLASSES = ("comet", "galaxy", "nebula", "planet", "star")


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def five_class_file(path: Path, n: int = 60, size: int = 64, *, text: bool = True) -> np.ndarray:
    """``n`` single-channel ``size`` x ``size`` images of five classes: a blob whose width grows with
    the class. Labels are class names (text) or indices; returns the indices."""
    rng = np.random.default_rng(1)
    y = np.arange(n) % 5
    yy, xx = np.mgrid[:size, :size]
    x = rng.normal(0, 1, (n, size, size)).astype(np.float32)
    for i, k in enumerate(y):
        cy, cx = rng.uniform(size / 4, 3 * size / 4, 2)
        x[i] += 4 * np.exp(-0.5 * (np.hypot(yy - cy, xx - cx) / (1.5 + 1.5 * k)) ** 2)
    with h5py.File(path, "w") as f:
        f["images"] = x
        f["labels"] = np.array(CLASSES)[y].astype("S") if text else y
        group = f.create_group("obs/night1")
        group["frames"] = x
        group["kind"] = y
        f["width"] = (1.5 + 1.5 * y + rng.normal(0, 0.1, n)).astype(np.float32)
        f["mask"] = (x > 2).astype(np.int64)
        f["clean"] = (x - rng.normal(0, 0.5, x.shape)).astype(np.float32)
    return y


@pytest.fixture(scope="module")
def own_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("own") / "five.h5"
    five_class_file(path)
    return path


@pytest.fixture(scope="module")
def classify_run(own_file, tmp_path_factory):
    """The acceptance run: a user's 64 x 64, five-class HDF5 file (class names as labels)."""
    out = tmp_path_factory.mktemp("runs") / "own"
    code = main(["train", "classify", "--data", str(own_file), "--epochs", "1", "--out", str(out)])
    assert code == 0
    return load_run(out)


def test_classify_trains_end_to_end_on_own_five_class_images(classify_run, own_file):
    metrics = classify_run.metrics["results"]
    assert set(metrics) == {"cnn", "mlp", "baseline"}
    for method in metrics.values():
        assert 0.0 <= method["accuracy"] <= 1.0
    options = classify_run.config.task_options
    assert options["classes"] == list(CLASSES)  # text labels, sorted names
    assert options["input_size"] == [64, 64] and options["in_channels"] == 1
    assert classify_run.task.num_outputs == 5
    probs = classify_run.predict(h5py.File(own_file)["images"][:3][:, None])
    assert probs.shape == (3, 5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_run_records_real_sizes_absolute_data_and_checksum(classify_run, own_file):
    config = yaml.safe_load((classify_run.path / "config.yaml").read_text())
    assert (config["n_train"], config["n_val"], config["n_test"]) == (42, 9, 9)  # 60 images: 70/15/15 %
    assert config["data"] == str(own_file.resolve()) and Path(config["data"]).is_absolute()
    import hashlib

    assert config["data_sha256"] == hashlib.sha256(own_file.read_bytes()).hexdigest()


def test_evaluate_from_another_folder_and_on_a_file(classify_run, own_file, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the run stores an absolute path, so it works from anywhere
    code, out, _ = run_cli(capsys, "evaluate", str(classify_run.path))
    assert code == 0 and "classify: test split (n = 9)" in out
    code, out, _ = run_cli(capsys, "evaluate", str(classify_run.path), "--data", str(own_file))
    assert code == 0
    assert f"classify: {own_file} (n = 60)" in out and "test split" not in out


def test_a_changed_data_file_is_said(classify_run, own_file, tmp_path, capsys):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(classify_run.path, copy)
    moved = tmp_path / "five.h5"
    shutil.copy(own_file, moved)
    with h5py.File(moved, "a") as f:
        f.attrs["touched"] = 1
    config = yaml.safe_load((copy / "config.yaml").read_text())
    config["data"] = str(moved)
    (copy / "config.yaml").write_text(yaml.safe_dump(config))
    code, _, err = run_cli(capsys, "evaluate", str(copy))
    assert code == 0 and f"{moved} has changed since the run recorded it" in err


def test_resume_of_a_finished_run_says_so_and_recomputes_nothing(classify_run, capsys):
    metrics = classify_run.path / "metrics.json"
    before = metrics.stat().st_mtime_ns
    code, _, err = run_cli(capsys, "train", "classify", "--out", str(classify_run.path), "--resume")
    assert code == 0
    assert "is finished (it has metrics.json): nothing to resume" in err
    assert metrics.stat().st_mtime_ns == before


def test_train_with_a_run_config_needs_no_task(classify_run, tmp_path, capsys):
    config = classify_run.path / "config.yaml"
    code, _, err = run_cli(capsys, "train", "--config", str(config), "--out", str(tmp_path / "again"))
    assert code == 0, err
    again = load_run(tmp_path / "again")
    assert again.config.task == "classify"
    assert again.config.task_options == classify_run.config.task_options
    assert again.metrics["results"]["cnn"]["accuracy"] == classify_run.metrics["results"]["cnn"]["accuracy"]


def test_train_without_task_or_config_is_one_line(capsys):
    code, _, err = run_cli(capsys, "train", "--epochs", "1")
    assert code == 2 and err.count("\n") == 1 and "missing TASK" in err


def test_named_datasets_and_groups(own_file, tmp_path, capsys):
    out = tmp_path / "grouped"
    code, _, err = run_cli(
        capsys, "train", "classify", "--data", str(own_file), "--images-key", "obs/night1/frames",
        "--labels-key", "obs/night1/kind", "--epochs", "1", "--no-mlp", "--no-baseline", "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    assert load_run(out).config.task_options["classes"] == ["0", "1", "2", "3", "4"]


def test_a_missing_dataset_lists_what_the_file_holds(own_file, capsys):
    code, _, err = run_cli(
        capsys, "train", "classify", "--data", str(own_file), "--images-key", "obs/frames", "--epochs", "1"
    )
    assert code == 2 and err.count("\n") == 1
    assert "dataset 'obs/frames' does not exist" in err
    assert "images" in err and "obs/night1/frames" in err


def test_class_names_as_labels_in_hdf5_and_csv_map_to_the_tasks_classes(tmp_path):
    from astrocnn.data.datasets import load_labelled
    from astrocnn.tasks import get_task

    names = get_task("sky-shapes").class_names  # star, galaxy, ring
    labels = ["ring", "star", "galaxy", "star"]
    with h5py.File(tmp_path / "shapes.h5", "w") as f:
        f["images"] = np.zeros((4, 32, 32), dtype=np.float32)
        f["labels"] = np.array(labels, dtype=h5py.string_dtype())  # variable-length UTF-8
    data = load_labelled(tmp_path / "shapes.h5", in_channels=1, spatial_dims=2, class_names=names)
    assert data.targets.tolist() == [2, 0, 1, 0]
    assert int(data[0][1]) == 2

    for i in range(4):
        np.save(tmp_path / f"{i}.npy", np.zeros((32, 32), dtype=np.float32))
    rows = "".join(f"{i}.npy,{label}\n" for i, label in enumerate(labels))
    (tmp_path / "index.csv").write_text("file,label\n" + rows)
    data = load_labelled(tmp_path / "index.csv", in_channels=1, spatial_dims=2, class_names=names)
    assert data.targets.tolist() == [2, 0, 1, 0]

    from astrocnn.data.readers import DataError

    (tmp_path / "index.csv").write_text("file,label\n0.npy,star\n1.npy,quasar\n")
    with pytest.raises(DataError, match="line 3: label 'quasar' is not a class of this task"):
        load_labelled(tmp_path / "index.csv", in_channels=1, spatial_dims=2, class_names=names)


def test_an_image_model_on_a_classification_task_is_refused_in_one_line(own_file, capsys):
    code, _, err = run_cli(capsys, "train", "classify", "--data", str(own_file), "--model", "unet")
    assert code == 2 and err.count("\n") == 1
    assert "model unet outputs an image per input" in err
    code, _, err = run_cli(capsys, "train", "sky-shapes", "--model", "unet", "--epochs", "1")
    assert code == 2 and err.count("\n") == 1 and "unet" in err


def test_generic_task_without_data_is_one_line(capsys):
    code, _, err = run_cli(capsys, "train", "segment", "--epochs", "1")
    assert code == 2 and err.count("\n") == 1 and "give --data FILE" in err


@pytest.mark.parametrize(
    ("task", "labels", "metric"),
    [("regress", "width", "rmse"), ("segment", "mask", "mean_iou"), ("restore", "clean", "psnr")],
)
def test_regress_segment_and_restore_train_from_the_file(task, labels, metric, tmp_path, capsys):
    path = tmp_path / "small.h5"
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (30, 16, 16)).astype(np.float32)
    with h5py.File(path, "w") as f:
        f["images"] = x
        f["width"] = rng.uniform(1, 5, 30).astype(np.float32)
        f["mask"] = (x > 1).astype(np.int64)
        f["clean"] = x * 0.5
    out = tmp_path / "run"
    code, _, err = run_cli(
        capsys, "train", task, "--data", str(path), "--labels-key", labels, "--epochs", "1", "--out", str(out)
    )
    assert code == 0, err
    results = load_run(out).metrics["results"]
    assert set(results) == {"cnn", "mlp", "baseline"}
    assert all(np.isfinite(results[m][metric]) for m in results)
    prediction = load_run(out).predict(x[:2, None])
    expected = {"regress": (2, 1), "segment": (2, 2, 16, 16), "restore": (2, 1, 16, 16)}[task]
    assert prediction.shape == expected


def test_regress_reports_values_in_their_own_units(tmp_path):
    """Targets are standardised for the loss only: the baseline on a file whose targets are far
    from zero still scores in the file's units (an error of the scale would show as a huge RMSE)."""
    from astrocnn.engine.config import resolve
    from astrocnn.engine.train import run_training

    path = tmp_path / "offset.h5"
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (40, 8, 8)).astype(np.float32)
    y = 1000.0 + 10 * x.mean(axis=(1, 2))
    with h5py.File(path, "w") as f:
        f["images"], f["targets"] = x, y.astype(np.float32)
    run = run_training(resolve("regress", data=str(path), epochs=1, out=str(tmp_path / "r"), train_mlp=False))
    results = run.metrics["results"]
    assert results["baseline"]["rmse"] < 1.0  # the mean is linear in the pixels: ridge finds it
    assert abs(results["cnn"]["bias"]) < 200  # in the units of the targets, not standardised


def test_tasks_name_shows_the_data_contract(capsys):
    code, out, _ = run_cli(capsys, "tasks", "sky-shapes")
    out = " ".join(out.split())  # wrapped at 100 columns
    assert code == 0
    assert "32x32" in out and "0 = star, 1 = galaxy, 2 = ring" in out and "'images'" in out
    code, out, _ = run_cli(capsys, "tasks", "classify")
    out = " ".join(out.split())
    assert code == 0 and "class_names" in out and "--labels-key" in out and "example" in out
    code, _, err = run_cli(capsys, "tasks", "clasify")
    assert code == 2 and "did you mean 'classify'?" in err


def test_did_you_mean_for_models_and_config_keys(tmp_path, capsys):
    code, _, err = run_cli(capsys, "summary", "resnt18", "--input", "1x32x32")
    assert code == 2 and "did you mean 'resnet18'?" in err
    (tmp_path / "c.yaml").write_text("task: sky-shapes\nepoch: 3\n")
    code, _, err = run_cli(capsys, "train", "--config", str(tmp_path / "c.yaml"))
    assert code == 2 and "unknown option(s) 'epoch' (did you mean 'epochs'?)" in err


def test_summary_says_what_it_built_and_formats_counts(capsys):
    code, out, _ = run_cli(capsys, "summary", "resnet18", "--input", "32x32")
    assert code == 0 and "1-D, 32 channels" in out
    code, out, _ = run_cli(capsys, "summary", "resnet18", "--input", "1x32x32")
    assert code == 0 and "2-D, 1 channel" in out
    assert out.strip().splitlines()[-1].startswith("total parameters: ") and "," in out.splitlines()[-1]


def test_version_help_and_accelerator(capsys):
    import astrocnn

    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.strip() == f"astrocnn {astrocnn.__version__}"
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0 and "..." not in out.split("Commands:")[1]  # no description cut off
    code, out, _ = run_cli(capsys, "train", "--help")
    assert code == 0
    for option in ("--epochs", "--batch-size", "--lr", "--seed", "--images-key", "--labels-key"):
        assert option in out
    assert out.count("[default:") >= 12
    code, _, err = run_cli(capsys, "train", "sky-shapes", "--accelerator", "gpu", "--epochs", "1")
    assert code == 2 and "--accelerator cpu" in err and err.count("\n") == 1


def test_errors_name_cli_options_and_folders(tmp_path, capsys, classify_run):
    np.save(tmp_path / "x.npy", np.zeros((64, 64), dtype=np.float32))
    code, _, err = run_cli(
        capsys, "predict", str(classify_run.path), str(tmp_path / "x.npy"), "--hdu", "1", "--out", "p.csv"
    )
    assert code == 2 and "--hdu applies only to FITS files" in err
    folder = tmp_path / "frames"
    folder.mkdir()
    code, _, err = run_cli(capsys, "predict", str(classify_run.path), str(folder), "--out", "p.csv")
    assert code == 2 and f"{folder}: is a folder, not a file" in err
    bad = np.zeros((64, 64), dtype=np.float32)
    bad[0, 0] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    code, _, err = run_cli(
        capsys, "predict", str(classify_run.path), str(tmp_path / "nan.npy"), "--out", str(tmp_path / "p.csv")
    )
    assert code == 2 and "--nan-policy" in err and "nan_policy" not in err


def test_a_log_says_what_long_work_is_doing(own_file, tmp_path, capsys):
    """stderr is not a terminal under pytest: no progress bar, but one line per stage and epoch."""
    out = tmp_path / "logged"
    code, _, err = run_cli(
        capsys,
        "train",
        "classify",
        "--data",
        str(own_file),
        "--epochs",
        "2",
        "--no-baseline",
        "--out",
        str(out),
    )
    assert code == 0
    assert "classify: training cnn (resnet18) for 2 epochs" in err
    assert "classify: cnn epoch 2/2: train_loss_epoch" in err
    assert "classify: training mlp (mlp)" in err
    assert "classify: evaluating cnn, mlp" in err


def test_metrics_json_is_plain_json(classify_run):
    json.loads((classify_run.path / "metrics.json").read_text())
    assert os.access(classify_run.path / "report.html", os.R_OK)


# ---- what an adversarial review of the above found ------------------------------------------------


def test_resume_accepts_the_same_file_typed_another_way(classify_run, own_file, capsys, monkeypatch):
    monkeypatch.chdir(own_file.parent)
    code, _, err = run_cli(
        capsys, "train", "classify", "--data", own_file.name, "--out", str(classify_run.path), "--resume"
    )
    assert code == 0 and "nothing to resume" in err
    code, _, err = run_cli(capsys, "train", "--out", str(classify_run.path), "--resume")  # no TASK
    assert code == 0 and "nothing to resume" in err


def test_classes_without_images_are_said_and_do_not_lower_f1(tmp_path, capsys):
    from astrocnn.data.datasets import describe_labelled
    from astrocnn.tasks import get_task
    from astrocnn.tasks.base import ArraySplit
    from astrocnn.tasks.generic import Classify

    path = tmp_path / "skip.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((6, 8, 8), np.float32)
        f["labels"] = np.array([0, 2, 4, 0, 2, 4])
    options = Classify.options_from_data(describe_labelled(path), {})
    assert options["classes"] == ["0", "1", "2", "3", "4"]
    assert "no image has class 1, 3" in capsys.readouterr().err
    task = get_task("classify", options)
    y = np.array([0, 2, 4, 0, 2, 4])
    perfect = np.eye(5)[y]
    metrics = task.metrics(perfect, ArraySplit(np.zeros((6, 1, 8, 8)), y))
    assert metrics["accuracy"] == 1.0 and metrics["f1_macro"] == 1.0


def test_several_values_per_image_are_scored_and_named_one_by_one(tmp_path, capsys):
    from astrocnn.tasks import get_task
    from astrocnn.tasks.base import ArraySplit

    task = get_task("regress", {"outputs": 2, "names": "flux,size"})
    truth = np.array([[100.0, 0.01], [200.0, 0.02], [300.0, 0.03], [400.0, 0.05]])
    pred = truth + np.array([[10.0, 0.0], [-10.0, 0.0], [10.0, 0.001], [-10.0, -0.001]])
    metrics = task.metrics(pred, ArraySplit(np.zeros((4, 1, 4, 4)), truth))
    assert metrics["rmse_flux"] == pytest.approx(10.0) and metrics["bias_flux"] == pytest.approx(0.0)
    assert metrics["rmse_size"] == pytest.approx(np.sqrt(0.5e-6))
    assert "rmse" not in metrics  # an error pooled over flux and size would mix their units

    path = tmp_path / "two.h5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f["images"] = rng.normal(size=(30, 16, 16)).astype(np.float32)
        f["targets"] = rng.normal(size=(30, 2)).astype(np.float32)
        f["targets"].attrs["names"] = ["flux", "size"]
    out = tmp_path / "run"
    code, _, err = run_cli(
        capsys, "train", "regress", "--data", str(path), "--epochs", "1", "--no-mlp", "--out", str(out)
    )
    assert code == 0, err
    assert {"rmse_flux", "rmse_size", "r2"} <= set(load_run(out).metrics["results"]["cnn"])
    assert (out / "plots" / "predicted_vs_true_size.png").is_file()
    code, _, err = run_cli(capsys, "predict", str(out), str(path), "--out", str(tmp_path / "p.csv"))
    assert code == 0, err
    assert (tmp_path / "p.csv").read_text().splitlines()[0] == "file,index,flux,size"


def test_evaluate_on_other_data_when_the_training_file_is_gone(classify_run, own_file, tmp_path, capsys):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(classify_run.path, copy)
    config = yaml.safe_load((copy / "config.yaml").read_text())
    config["data"] = str(tmp_path / "moved-away.h5")
    (copy / "config.yaml").write_text(yaml.safe_dump(config))
    code, out, err = run_cli(capsys, "evaluate", str(copy), "--data", str(own_file))
    assert code == 0, err
    assert "classical baseline, which is fitted on them, is left out" in err
    assert "cnn" in out and "classical" not in out


def test_one_dimensional_signals_without_a_channel_axis():
    from astrocnn.tasks.generic import layout_of

    assert layout_of((64,), None) == (1, 1, (64,))
    assert layout_of((64, 64), None) == (2, 1, (64, 64))
    assert layout_of((3, 64, 64), None) == (2, 3, (64, 64))
    assert layout_of((64, 64, 3), None) == (2, 3, (64, 64))
    assert layout_of((40, 40, 40), None) == (3, 1, (40, 40, 40))
    assert layout_of((2, 64), 1) == (1, 2, (64,))


def test_nan_pixels_in_training_data_are_refused_unless_a_policy_fills_them(tmp_path, capsys):
    path = tmp_path / "nan.h5"
    five_class_file(path, n=40, size=16)
    with h5py.File(path, "a") as f:
        images = f["images"][()]
        images[3, 2, 2] = np.nan
        del f["images"]
        f["images"] = images
    code, _, err = run_cli(
        capsys, "train", "classify", "--data", str(path), "--epochs", "1", "--out", str(tmp_path / "a")
    )
    assert code == 2 and "NaN" in err and "--nan-policy" in err
    code, _, err = run_cli(
        capsys, "train", "classify", "--data", str(path), "--epochs", "1", "--nan-policy", "median",
        "--no-mlp", "--no-baseline", "--out", str(tmp_path / "b"),
    )  # fmt: skip
    assert code == 0, err


def test_a_file_without_labels_lists_what_it_holds(tmp_path, capsys):
    path = tmp_path / "nolabels.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((10, 8, 8), np.float32)
        f["obs/kind"] = np.zeros(10, int)
    code, _, err = run_cli(capsys, "train", "classify", "--data", str(path), "--epochs", "1")
    assert code == 2 and "--labels-key" in err and "images, obs/kind" in err


def test_predict_reads_the_images_dataset_of_a_labelled_file(classify_run, own_file, tmp_path, capsys):
    out = tmp_path / "p.csv"
    assert main(["predict", str(classify_run.path), str(own_file), "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 1 + 60


def test_the_checksum_of_a_csv_covers_its_images(tmp_path):
    from astrocnn.engine.splits import csv_sha256

    for i in range(2):
        np.save(tmp_path / f"{i}.npy", np.zeros((4, 4), np.float32))
    (tmp_path / "index.csv").write_text("file,label\n0.npy,0\n1.npy,1\n")
    before = csv_sha256(tmp_path / "index.csv")
    np.save(tmp_path / "1.npy", np.ones((4, 4), np.float32))
    assert csv_sha256(tmp_path / "index.csv") != before


def test_exported_generic_model_runs_elsewhere_on_raw_images_like_cli_predict(
    classify_run, own_file, tmp_path, capsys
):
    """The per-channel standardisation learned from the user's file is inside the graph."""
    import shutil

    import onnxruntime as ort

    assert (
        main(["export", str(classify_run.path), "--format", "onnx", "--out", str(tmp_path / "export")]) == 0
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(tmp_path / "export" / "model.onnx", elsewhere / "model.onnx")
    shutil.rmtree(tmp_path / "export")
    raw = h5py.File(own_file)["images"][:8][:, None].astype(np.float32)
    np.save(tmp_path / "raw.npy", raw)
    assert (
        main(["predict", str(classify_run.path), str(tmp_path / "raw.npy"), "--out", str(tmp_path / "p.csv")])
        == 0
    )
    with open(tmp_path / "p.csv") as handle:
        import csv as csv_module

        rows = list(csv_module.DictReader(handle))
    from_cli = np.array([[float(r[f"p_{name}"]) for name in CLASSES] for r in rows])
    session = ort.InferenceSession(str(elsewhere / "model.onnx"))
    from_onnx = session.run(["output"], {"image": raw})[0]
    np.testing.assert_allclose(from_onnx, from_cli, atol=1e-5)  # the CSV holds 6 significant digits
    np.testing.assert_allclose(from_onnx, classify_run.predict(raw), atol=1e-4)
