"""The ``astrocnn`` command line: summaries, and one clear line with exit code 2 on bad input."""

import subprocess
import sys

import pytest

from astrocnn.cli import main
from astrocnn.models.mlp import mlp_parameter_count


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_resnet50_summary_ends_with_the_reference_count(capsys):
    code, out, _ = run(capsys, "summary", "resnet50", "--input", "3x224x224", "--num-outputs", "1000")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[-1] == "total parameters: 25,557,032"
    assert any("layer4.2" in line and "2048x7x7" in line for line in lines)


def test_3d_small_resnet18_summary(capsys):
    code, out, _ = run(
        capsys, "summary", "resnet18", "--input", "1x32x32x32", "--num-outputs", "2", "--small"
    )
    assert code == 0
    assert "64x32x32x32" in out  # the small stem keeps the resolution
    assert "512x4x4x4" in out
    assert out.strip().splitlines()[-1].startswith("total parameters: ")


def test_lecture_network_with_fully_connected_comparison(capsys):
    code, out, _ = run(capsys, "summary", "simple_cnn", "--input", "3x32x32", "--compare-mlp")
    assert code == 0
    for shape in ("6x28x28", "10x24x24", "10x12x12"):
        assert shape in out
    cnn = (6 * 75 + 6) + (10 * 150 + 10) + (1440 * 64 + 64) + (64 * 10 + 10)
    dense = mlp_parameter_count([3 * 32 * 32, 6 * 28 * 28, 10 * 24 * 24, 64, 10])
    assert f"{dense:,} parameters" in out
    assert out.strip().splitlines()[-1] == f"total parameters: {cnn:,}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["summary", "vgg16", "--input", "1x8x8"],
            "input 1x8x8 is too small for vgg16: block4 would produce 0x0",
        ),
        (
            ["summary", "resnet19", "--input", "1x8x8"],
            "unknown model 'resnet19' (did you mean 'resnet18'?); valid models: alexnet,",
        ),
        (["summary", "resnet18", "--input", "3by32"], "--input '3by32' is not CxL, CxHxW or CxDxHxW"),
        (["summary", "resnet18", "--input", "3x0x32"], "is not CxL, CxHxW or CxDxHxW"),
        (["summary", "resnet18", "--input", "1x2x3x4x5"], "is not CxL, CxHxW or CxDxHxW"),
        (["summary", "unet", "--input", "1x32x32", "--small"], "unet has no small-input variant"),
        (["summary", "resnet18", "--input", "1x32x32", "--num-outputs", "0"], "--num-outputs"),
        (["summary", "resnet18"], "Missing option '--input'"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(capsys, args, message):
    code, out, err = run(capsys, *args)
    assert code == 2
    assert err.count("\n") == 1 and message in err
    assert "Traceback" not in err + out


def test_models_lists_every_registered_model(capsys):
    from astrocnn import list_models

    code, out, _ = run(capsys, "models")
    assert code == 0
    names = [line.split()[0] for line in out.strip().splitlines()]
    # the zoo first, then the task families' own networks (hexnet: hexagonal cameras only)
    assert names[: len(list_models())] == list_models()
    assert sorted(names[len(list_models()) :]) == sorted(set(list_models(families=True)) - set(list_models()))
    assert "hexnet" in names


def test_console_script_exit_code_and_stderr():
    """The installed entry point, as a user runs it."""
    result = subprocess.run(
        [sys.executable, "-m", "astrocnn", "summary", "vgg16", "--input", "1x8x8"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "astrocnn: error: input 1x8x8 is too small for vgg16: block4 would produce 0x0; "
        "the smallest input is 32x32\n"
    )
