"""Bad input gets one clear line; runs survive interruption; untrusted files run no code.

Every case of the corpus in tests/corpus (rebuilt by tests/corpus/make_corpus.py) goes through
the command line (``astrocnn.cli.main``, the console script's function, and one real
subprocess) and through the Python API."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import astrocnn
from astrocnn.cli import main
from astrocnn.data.datasets import load_labelled
from astrocnn.data.readers import DataError, read_image
from astrocnn.engine.config import RunConfig, merge, resolve
from astrocnn.engine.module import TrainingDiverged
from astrocnn.engine.run import RunError, load_checkpoint_weights, load_run
from astrocnn.errors import AstroCNNError, OptionError

CORPUS = Path(__file__).parent / "corpus"
SMALL = {"n_train": 256, "n_val": 64, "n_test": 64, "batch_size": 32, "progress_bar": False}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("rel") / "run"
    return astrocnn.train("sky-shapes", out=str(out), epochs=1, train_mlp=False, baseline=False, **SMALL)


def one_line_error(capsys, code: int, expected: int = 2) -> str:
    """The error is the last line on stderr, and the only one; lines before it can only be the
    progress lines a log gets (``astrocnn: TASK: ...``, never a warning or a traceback)."""
    out, err = capsys.readouterr()
    assert code == expected
    lines = err.splitlines()
    assert err.endswith("\n") and lines and lines[-1].startswith("astrocnn: error: ")
    assert [line for line in lines if "error" in line.split(":")[1]] == lines[-1:]
    assert all(PROGRESS.match(line) for line in lines[:-1]), lines[:-1]
    assert "Traceback" not in out + err
    return lines[-1] + "\n"


#: The progress lines of a run in a log: the task, then what it is doing.
PROGRESS = re.compile(r"astrocnn: [a-z-]+: (reading|generating|training|evaluating|\w+ epoch) ")


# ---- bad image files: predict refuses them, names the file, writes nothing --------------------

BAD_IMAGES = [
    ("truncated.fits", "the file is truncated"),
    ("corrupt.h5", "not a readable HDF5 file"),
    ("empty.fits", "file is empty"),
    ("no_image.fits", "no HDU holds an image"),
    ("huge_header.fits", "claims shape (1000000, 1000000)"),
    ("nan_pixels.fits", "2 of 1024 pixels are NaN, infinite or masked"),
    ("inf_pixels.npy", "pixels are NaN, infinite or masked"),
    ("wrong_rank.npy", "does not fit the model"),
    ("rgb.png", "image of shape (32, 32, 3) does not fit the model"),
]


@pytest.mark.parametrize(("name", "message"), BAD_IMAGES)
def test_bad_image_through_the_cli(run, tmp_path, capsys, name, message):
    out = tmp_path / "pred.csv"
    good = CORPUS / "int16.fits"  # a good file first: nothing may be written for it either
    err = one_line_error(
        capsys, main(["predict", str(run.path), str(good), str(CORPUS / name), "--out", str(out)])
    )
    assert name in err and message in err
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("name", "message"), [c for c in BAD_IMAGES if c[0] not in ("wrong_rank.npy", "rgb.png")]
)
def test_bad_image_through_the_api(name, message):
    with pytest.raises(DataError) as info:
        read_image(CORPUS / name, nan_policy="error")
    assert name in str(info.value) and message in str(info.value)


def test_bad_pixels_can_be_filled_on_request(run, tmp_path, capsys):
    out = tmp_path / "pred.csv"
    assert (
        main(
            [
                "predict",
                str(run.path),
                str(CORPUS / "nan_pixels.fits"),
                "--out",
                str(out),
                "--nan-policy",
                "median",
            ]
        )
        == 0
    )
    assert len(out.read_text().splitlines()) == 2


@pytest.mark.parametrize("name", ["int16.fits", "big_endian.fits", "boolean.npy", "uint8_stack.h5"])
def test_unusual_pixel_types_give_results(run, tmp_path, name):
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run.path), str(CORPUS / name), "--out", str(out)]) == 0
    rows = out.read_text().splitlines()[1:]
    assert len(rows) == (2 if name == "uint8_stack.h5" else 1)
    probs = np.array([[float(v) for v in r.split(",")[2:5]] for r in rows])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_the_console_script_itself(run, tmp_path):
    out = tmp_path / "pred.csv"
    bad = str(CORPUS / "truncated.fits")
    result = subprocess.run(
        [sys.executable, "-m", "astrocnn", "predict", str(run.path), bad, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "truncated.fits: the file is truncated" in result.stderr
    debug = subprocess.run(
        [sys.executable, "-m", "astrocnn", "--debug", "predict", str(run.path), bad, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert debug.returncode == 2 and "Traceback" in debug.stderr
    assert not out.exists()


# ---- bad labelled data, configuration and names ---------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("labels_missing_file.csv", "nope.npy"),
        (
            "labels_not_a_class.csv",
            "line 3: label 'quasar' is not a class of this task (the classes are star, galaxy, ring)",
        ),
    ],
)
def test_bad_labels(tmp_path, capsys, name, message):
    out = tmp_path / "run"
    err = one_line_error(
        capsys, main(["train", "sky-shapes", "--data", str(CORPUS / name), "--out", str(out)])
    )
    assert name in err and message in err
    assert not out.exists()
    with pytest.raises(DataError, match=re.escape(message)):
        load_labelled(CORPUS / name, in_channels=1, spatial_dims=2, class_names=("star", "galaxy", "ring"))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("config_unknown_key.yaml", "unknown option(s) 'batchsize'"),
        ("config_wrong_type.yaml", "epochs must be an integer or null, got 'two'"),
        ("config_negative_batch.yaml", "batch_size must be at least 1, got -8"),
        ("config_zero_epochs.yaml", "epochs must be at least 1, got 0"),
        ("config_not_yaml.yaml", "not valid YAML at line"),
    ],
)
def test_bad_configuration(tmp_path, capsys, name, message):
    out = tmp_path / "run"
    err = one_line_error(
        capsys, main(["train", "sky-shapes", "--config", str(CORPUS / name), "--out", str(out)])
    )
    assert name in err and message in err
    assert not out.exists()
    with pytest.raises(OptionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve("sky-shapes", config_file=CORPUS / name)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "no-such-task"], "unknown task 'no-such-task'"),
        (["train", "sky-shapes", "--model", "resnet19"], "unknown model 'resnet19'"),
        (["train", "sky-shapes", "--epochs", "-1"], "epochs must be at least 1"),
        (["summary", "vgg99", "--input", "1x32x32"], "unknown model 'vgg99'"),
        (["evaluate", "/no/such/run"], "/no/such/run: not a run folder"),
    ],
)
def test_bad_names_and_options(tmp_path, capsys, argv, message):
    assert message in one_line_error(
        capsys, main([*argv, *(["--out", str(tmp_path / "r")] if argv[0] == "train" else [])])
    )
    assert not (tmp_path / "r").exists()


def test_labels_and_sizes_of_user_data_are_checked_before_training(tmp_path, capsys):
    import h5py

    for name, images, labels, message in [
        (
            "classes.h5",
            np.zeros((20, 1, 32, 32)),
            np.full(20, 3),
            "label 3 is not a class of sky-shapes (0 to 2)",
        ),
        (
            "size.h5",
            np.zeros((20, 1, 64, 64)),
            np.zeros(20, int),
            "images are 64x64; sky-shapes expects 32x32",
        ),
    ]:
        path = tmp_path / name
        with h5py.File(path, "w") as f:
            f["images"], f["labels"] = images, labels
        out = tmp_path / "run"
        err = one_line_error(capsys, main(["train", "sky-shapes", "--data", str(path), "--out", str(out)]))
        assert f"{name}: {message}" in err and not out.exists()


def test_impossible_trainer_settings_write_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    err = one_line_error(capsys, main(["train", "sky-shapes", "--accelerator", "gpu", "--out", str(out)]))
    assert "--accelerator gpu: no such device is available here; use --accelerator cpu" in err
    assert not out.exists()


# ---- fuzzing the configuration parser (the readers are fuzzed in test_data.py) ---------------

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
keys = st.sampled_from(list(RunConfig.__dataclass_fields__)) | st.text(max_size=10)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, values, max_size=6))
def test_config_values_give_a_config_or_one_clear_error(mapping):
    try:
        config = merge(RunConfig(task="sky-shapes"), mapping, "fuzz.yaml")
    except OptionError as error:
        assert str(error).startswith("fuzz.yaml: ") and "\n" not in str(error)
    else:
        assert isinstance(config, RunConfig)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=80) | st.binary(max_size=80).map(lambda b: b.decode("latin-1")))
def test_config_files_give_a_config_or_one_clear_error(tmp_path, text):
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    try:
        resolve("sky-shapes", config_file=path)
    except OptionError as error:
        assert str(path) in str(error) and "\n" not in str(error)


# ---- untrusted checkpoints -------------------------------------------------------------------


class Payload:
    """Unpickling this would run a shell command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_carrying_code_is_refused(run, tmp_path, capsys):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": Payload(marker)}, evil)
    model = astrocnn.create_model("resnet18", in_channels=1, num_outputs=3, small_input=True, width=0.25)
    with pytest.raises(RunError, match=r"evil\.ckpt: not a usable checkpoint"):
        load_checkpoint_weights(model, evil)
    # planted in a run folder, in place of both checkpoints: evaluate refuses it too
    copy = tmp_path / "run"
    shutil.copytree(run.path, copy)
    for kind in ("best", "last"):
        shutil.copy(evil, copy / "checkpoints" / "cnn" / f"{kind}.ckpt")
    one_line_error(capsys, main(["evaluate", str(copy)]))
    assert not marker.exists()


# ---- interruptions ---------------------------------------------------------------------------


def test_damaged_checkpoint_is_reported_and_the_other_one_used(run, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(run.path, copy)
    best = copy / "checkpoints" / "cnn" / "best.ckpt"
    best.write_bytes(best.read_bytes()[:1000])  # truncated
    model = load_run(copy).model()
    assert "best.ckpt is damaged; using" in capsys.readouterr().err
    x = torch.randn(2, 1, 32, 32)
    torch.testing.assert_close(model(x), run.model("cnn", "last")(x))


def test_resume_skips_a_damaged_last_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    astrocnn.train("sky-shapes", out=str(out), epochs=2, train_mlp=False, baseline=False, **SMALL)
    last = out / "checkpoints" / "cnn" / "last.ckpt"
    last.write_bytes(b"PK\x03\x04 not really a checkpoint")
    resumed = astrocnn.train("sky-shapes", out=str(out), epochs=3, resume=True)
    assert "last.ckpt is damaged" in capsys.readouterr().err
    assert resumed.metrics["results"]["cnn"]["accuracy"] > 0


def test_a_loss_that_is_not_finite_stops_the_run_naming_the_step(tmp_path, monkeypatch, capsys):
    from astrocnn.tasks.sky_shapes import SkyShapes

    calls = {"n": 0}
    real_loss = SkyShapes.loss

    def failing_loss(self, output, target):
        calls["n"] += 1
        loss = real_loss(self, output, target)
        return loss * float("nan") if calls["n"] > 12 else loss  # 8 training steps an epoch, + val

    monkeypatch.setattr(SkyShapes, "loss", failing_loss)
    out = tmp_path / "run"
    code = main(["train", "sky-shapes", "--out", str(out), "--epochs", "3", "--no-mlp", "--no-baseline",
                 "--config", str(write_config(tmp_path))])  # fmt: skip
    err = one_line_error(capsys, code)
    # 8 training + 2 validation batches in epoch 0, then two good steps: the 11th step is NaN
    assert "the training loss became nan at epoch 1, step 10 " in err and "last good checkpoint" in err
    last = out / "checkpoints" / "cnn" / "last.ckpt"
    assert torch.load(last, weights_only=True)["epoch"] == 0  # the good epoch is kept
    with pytest.raises(TrainingDiverged):
        astrocnn.train(
            "sky-shapes", out=str(tmp_path / "api"), epochs=3, train_mlp=False, baseline=False, **SMALL
        )


def write_config(tmp_path: Path, **extra) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump({**SMALL, **extra}))
    return path


def _start(tmp_path: Path, out: Path, epochs: int) -> subprocess.Popen:
    config = write_config(tmp_path, n_train=1600, batch_size=32)
    cmd = [
        sys.executable,
        "-m",
        "astrocnn",
        "train",
        "sky-shapes",
        "--out",
        str(out),
        "--epochs",
        str(epochs),
    ]
    cmd += ["--config", str(config), "--no-mlp", "--no-baseline", "--seed", "11"]
    # a suite started in the background by a non-interactive shell inherits SIGINT ignored, and
    # Python then installs no KeyboardInterrupt handler: give the run the default, as a terminal would
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


def _wait_for_first_epoch(proc: subprocess.Popen, out: Path) -> None:
    last = out / "checkpoints" / "cnn" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not last.exists():
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "no checkpoint within 4 minutes"
        time.sleep(0.2)
    time.sleep(1.0)  # well into the next epoch


def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(tmp_path):
    reference = _start(tmp_path, tmp_path / "reference", 3)
    assert reference.wait(timeout=600) == 0, reference.stderr.read()[-2000:]
    killed = _start(tmp_path, tmp_path / "killed", 3)
    _wait_for_first_epoch(killed, tmp_path / "killed")
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    assert not (tmp_path / "killed" / "metrics.json").exists()
    resume = [sys.executable, "-m", "astrocnn", "train", "sky-shapes", "--out", str(tmp_path / "killed")]
    resumed = subprocess.run([*resume, "--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = load_run(tmp_path / "reference").metrics["results"]["cnn"]
    b = load_run(tmp_path / "killed").metrics["results"]["cnn"]
    # the same weights, optimiser state and per-epoch data order: the same numbers (to float noise)
    assert a.keys() == b.keys()
    for key, value in a.items():
        expected = pytest.approx(value, rel=1e-5, abs=1e-6) if not isinstance(value, str) else value
        assert b[key] == expected, key


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    out = tmp_path / "run"
    proc = _start(tmp_path, out, 4)
    _wait_for_first_epoch(proc, out)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    lines = [line for line in err.splitlines() if line.startswith("astrocnn: error")]
    assert len(lines) == 1 and "interrupted at epoch 1" in lines[0] and "--resume" in lines[0]
    assert err.splitlines()[-1] == lines[0]
    assert "Traceback" not in err
    checkpoint = torch.load(out / "checkpoints" / "cnn" / "last.ckpt", weights_only=True)
    assert checkpoint["epoch"] == 1 and checkpoint["global_step"] > 50  # saved mid-epoch 1
    resumed = subprocess.run(
        [sys.executable, "-m", "astrocnn", "train", "sky-shapes", "--out", str(out), "--resume"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (out / "metrics.json").exists()


def test_every_error_is_an_astrocnn_error():
    for cls in (DataError, OptionError, RunError, TrainingDiverged):
        assert issubclass(cls, AstroCNNError)
