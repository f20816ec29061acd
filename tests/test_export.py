"""Export: one self-contained ONNX file that takes raw images and gives what ``astrocnn predict``
gives; safetensors weights with the umask's file mode; a model.json that states the contract;
load errors that name the file."""

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

import astrocnn
from astrocnn.cli import main
from astrocnn.engine.export import (
    export_run,
    load_exported,
    load_safetensors_model,
    postprocessing_text,
    preprocessing_text,
)
from astrocnn.engine.run import RunError
from astrocnn.tasks import get_task
from astrocnn.tasks.base import IDENTITY
from astrocnn.tasks.sky_shapes import ROBUST_STANDARDISATION

TINY = {
    "n_train": 200, "n_val": 50, "n_test": 50, "epochs": 1, "batch_size": 32,
    "progress_bar": False, "train_mlp": False, "baseline": False,
}  # fmt: skip


@pytest.fixture(scope="module")
def sky_run(tmp_path_factory):
    return astrocnn.train("sky-shapes", out=str(tmp_path_factory.mktemp("runs") / "sky"), seed=3, **TINY)


@pytest.fixture(scope="module")
def ising_run(tmp_path_factory):
    """A regression task with two lattice sizes: the export takes the largest (input_size)."""
    options = {"sizes": "8,12", "temperatures": "1.5,3.0"}
    out = tmp_path_factory.mktemp("runs") / "ising"
    return astrocnn.train("ising-temperature", out=str(out), seed=3, task_options=options, **TINY)


def _with_umask(mask: int, fn):
    old = os.umask(mask)
    try:
        return fn()
    finally:
        os.umask(old)


@pytest.fixture(scope="module")
def onnx_copy(sky_run, tmp_path_factory):
    """``astrocnn export RUN --format onnx`` twice, under umask 022, then model.onnx and
    model.json copied to a folder of their own, the export folder removed after the listing."""
    folder = tmp_path_factory.mktemp("export") / "export"

    def export():
        for _ in range(2):
            assert main(["export", str(sky_run.path), "--format", "onnx", "--out", str(folder)]) == 0

    _with_umask(0o022, export)
    listing = {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()}
    copy = tmp_path_factory.mktemp("elsewhere")
    for name in ("model.onnx", "model.json"):
        shutil.copy(folder / name, copy / name)
    shutil.rmtree(folder)
    return listing, copy


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_onnx_export_is_one_file_each_time(onnx_copy):
    listing, _ = onnx_copy
    assert listing == {"model.onnx": 0o644, "model.json": 0o644}  # no external data, no orphans


def test_onnx_copy_takes_raw_images_like_predict(sky_run, onnx_copy):
    """The acceptance criterion: raw images through the copied model.onnx under onnxruntime give
    what ``astrocnn predict`` gives."""
    session = _session(onnx_copy[1] / "model.onnx")
    raw = sky_run.task.generate(16, np.random.default_rng(1)).x
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert [o.name for o in session.get_outputs()] == ["output", "logits"]
    output, logits = session.run(None, {"image": raw})
    expected = sky_run.predict(raw)
    assert np.isfinite(output).all()
    np.testing.assert_allclose(output, expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(output, torch.from_numpy(logits).softmax(dim=1).numpy(), atol=1e-6, rtol=0)
    # the batch axis is free
    np.testing.assert_allclose(session.run(None, {"image": raw[:1]})[0], expected[:1], atol=1e-4, rtol=0)


def test_model_json_states_input_output_and_steps(onnx_copy):
    description = json.loads((onnx_copy[1] / "model.json").read_text())
    assert description["format"] == "astrocnn-model/2"
    assert description["input"]["shape"] == ["N", 1, 32, 32]
    assert description["input"]["dtype"] == "float32"
    assert "raw images" in description["input"]["is"] and "counts" in description["input"]["is"]
    assert description["output"]["shape"] == ["N", 3]
    assert "probabilities" in description["output"]["is"] and "class_names" in description["output"]["is"]
    assert description["class_names"] == ["star", "galaxy", "ring"]
    assert description["preprocessing"] == ROBUST_STANDARDISATION
    assert description["postprocessing"] == "softmax over axis 1 (the class axis)"
    assert set(description["model.onnx"]["outputs"]) == {"output", "logits"}


def test_preprocessing_text_is_what_the_task_does():
    """model.json's words for sky-shapes, implemented from the words alone, give the network input."""
    task = get_task("sky-shapes")
    raw = task.generate(6, np.random.default_rng(2)).x
    raw[0] = 100.0  # a flat image: no spread, the floor applies

    def by_the_words(image):
        m = np.median(image)
        return (image - m) / max(1.4826 * np.median(np.abs(image - m)), 1e-6)

    expected = np.stack([by_the_words(image) for image in raw]).astype(np.float32)
    np.testing.assert_allclose(task.preprocess(raw), expected, rtol=1e-6, atol=1e-6)
    for name in ("ising-phase", "ising-temperature"):
        task = get_task(name)
        assert preprocessing_text(task) == IDENTITY
        x = np.array([[[[1, -1], [-1, 1]]]], dtype=np.float32)
        np.testing.assert_array_equal(task.preprocess(x), x)
    task = get_task("ising-temperature")
    z = torch.tensor([[-1.0], [0.0], [2.0]])
    assert postprocessing_text(task) == "output * 0.75 + 2.25 (the network learns T standardised)"
    torch.testing.assert_close(task.postprocess(z), z * 0.75 + 2.25)


def test_onnx_regression_task_matches_predict(ising_run, tmp_path):
    path = export_run(ising_run, "onnx", out=tmp_path)
    description = json.loads(path.with_suffix(".json").read_text())
    assert description["input"]["shape"] == ["N", 1, 12, 12]
    assert description["output"]["shape"] == ["N", 1]
    assert "temperature" in description["output"]["is"]
    session = _session(path)
    assert [o.name for o in session.get_outputs()] == ["output"]
    raw = np.stack([x for x in ising_run.task.generate(3, np.random.default_rng(1)).x if x.shape[-1] == 12])
    (output,) = session.run(None, {"image": raw})
    np.testing.assert_allclose(output, ising_run.predict(raw), atol=1e-4, rtol=0)


def test_safetensors_export_loads_without_pickle(sky_run, capsys):
    assert main(["export", str(sky_run.path), "--format", "safetensors"]) == 0
    path = sky_run.path / "export" / "model.safetensors"
    raw = path.read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    json.loads(raw[8 : 8 + header_len])  # a JSON header and raw tensors: nothing to unpickle
    description = json.loads(path.with_suffix(".json").read_text())
    assert description["model"] == "resnet18" and description["class_names"] == ["star", "galaxy", "ring"]
    x = torch.randn(2, 1, 32, 32)
    for given in (path, path.parent):  # the file or its folder
        model = load_safetensors_model(given)
        with torch.no_grad():
            torch.testing.assert_close(model(x), sky_run.model()(x))
    images = sky_run.task.generate(5, np.random.default_rng(1)).x
    np.testing.assert_allclose(load_exported(path.parent)(images), sky_run.predict(images), atol=1e-6, rtol=0)


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_safetensors_export_gets_the_umask_mode(sky_run, tmp_path, mask):
    path = _with_umask(mask, lambda: export_run(sky_run, "safetensors", out=tmp_path))
    for p in (path, path.with_suffix(".json")):
        assert oct(p.stat().st_mode & 0o777) == oct(0o666 & ~mask), p.name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.safetensors"]


@pytest.fixture(scope="module")
def safetensors_folder(sky_run, tmp_path_factory):
    return export_run(sky_run, "safetensors", out=tmp_path_factory.mktemp("st")).parent


def _broken(folder: Path, tmp_path: Path, name: str, content: bytes | None) -> Path:
    """A copy of export ``folder`` with ``name`` removed (None), made a folder (b""), or replaced."""
    copy = tmp_path / "export"
    shutil.copytree(folder, copy)
    (copy / name).unlink()
    if content == b"":
        (copy / name).mkdir()
    elif content is not None:
        (copy / name).write_bytes(content)
    return copy


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("model.json", None, "does not exist"),
        ("model.safetensors", None, "does not exist"),
        ("model.json", b"", "cannot be read (Is a directory)"),
        ("model.json", b"{not json", "not valid JSON"),
        ("model.json", b"{}", "no model, spatial_dims, in_channels, num_outputs in it"),
        ("model.safetensors", b"garbage", "not a safetensors file"),
    ],
)
def test_load_errors_name_the_file(safetensors_folder, tmp_path, name, content, problem):
    folder = _broken(safetensors_folder, tmp_path, name, content)
    for given in (folder, folder / "model.safetensors"):
        with pytest.raises(RunError) as caught:
            load_safetensors_model(given)
        message = str(caught.value)
        assert message.startswith(f"{folder / name}: {problem}"), message
        assert "\n" not in message


def test_load_error_for_a_missing_folder(tmp_path):
    with pytest.raises(RunError, match=f"^{re.escape(str(tmp_path / 'nowhere'))}: does not exist$"):
        load_safetensors_model(tmp_path / "nowhere")


def test_an_ensemble_is_predicted_and_exported_as_the_mean_it_was_scored_on(tmp_path):
    """predict, the ONNX file and the safetensors export of a run trained as an ensemble give the
    mean of the members' class probabilities (what train and evaluate scored), not its first
    network's; the ONNX logits are the log of that mean."""
    run = astrocnn.train("sky-shapes", out=str(tmp_path / "run"), seed=4, ensemble=2, **TINY)
    members = run.members()
    assert len(members) == 2
    raw = run.task.generate(6, np.random.default_rng(2)).x
    alone = [
        run.task.postprocess(net(torch.from_numpy(run.task.preprocess(raw)))).detach().numpy()
        for net in members
    ]
    assert np.abs(alone[0] - alone[1]).max() > 1e-3  # the members differ
    mean = (alone[0] + alone[1]) / 2
    np.testing.assert_allclose(run.predict(raw), mean, atol=1e-6)
    onnx_path = export_run(run, "onnx", out=tmp_path / "onnx")
    assert json.loads(onnx_path.with_suffix(".json").read_text())["members"] == 2
    output, logits = _session(onnx_path).run(None, {"image": raw.astype(np.float32)})
    np.testing.assert_allclose(output, mean, atol=1e-5)
    np.testing.assert_allclose(torch.from_numpy(logits).softmax(dim=1).numpy(), mean, atol=1e-5)
    folder = export_run(run, "safetensors", out=tmp_path / "st").parent
    loaded = load_safetensors_model(folder)
    assert isinstance(loaded, torch.nn.ModuleList) and len(loaded) == 2
    np.testing.assert_allclose(load_exported(folder)(raw), mean, atol=1e-6)
    # the CLI's predict writes the same mean
    out = tmp_path / "pred.csv"
    np.save(tmp_path / "images.npy", raw)
    assert main(["predict", str(run.path), str(tmp_path / "images.npy"), "--out", str(out)]) == 0
    rows = [line.split(",") for line in out.read_text().splitlines()[1:]]
    written = np.array([[float(v) for v in row[2 : 2 + mean.shape[1]]] for row in rows])
    np.testing.assert_allclose(written, mean, atol=1e-5)
