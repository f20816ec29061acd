"""``astrocnn compare``: shifts checked by hand, the table's shape, its numbers against the saved
networks, and one-line errors."""

import csv
import io
import json

import numpy as np
import pytest
import torch

from astrocnn.cli import main
from astrocnn.engine.compare import parse_shifts, shift_images, shifted_copies
from astrocnn.engine.run import load_run, predict_array
from astrocnn.tasks import get_task
from astrocnn.tasks.base import Task

GRID = torch.arange(1, 17, dtype=torch.float32).reshape(1, 1, 4, 4)
# 1  2  3  4
# 5  6  7  8
# 9 10 11 12
# 13 14 15 16


def test_shift_right_by_one_with_zeros_and_cyclically():
    padded = shift_images(GRID, 1, 1, periodic=False)[0, 0]
    rolled = shift_images(GRID, 1, 1, periodic=True)[0, 0]
    assert padded.tolist() == [[0, 1, 2, 3], [0, 5, 6, 7], [0, 9, 10, 11], [0, 13, 14, 15]]
    assert rolled.tolist() == [[4, 1, 2, 3], [8, 5, 6, 7], [12, 9, 10, 11], [16, 13, 14, 15]]


def test_shift_up_by_two_and_beyond_the_frame():
    up = shift_images(GRID, -2, 0, periodic=False)[0, 0]
    assert up.tolist() == [[9, 10, 11, 12], [13, 14, 15, 16], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert not shift_images(GRID, 4, 0, periodic=False).any()  # the image has left
    assert torch.equal(shift_images(GRID, 4, 0, periodic=True), GRID)  # a full turn
    assert torch.equal(shift_images(GRID, 0, 1, periodic=False), GRID)
    assert torch.equal(GRID[0, 0, 0], torch.arange(1.0, 5.0))  # the input is left alone


def test_shifted_copies_go_both_ways_along_every_axis():
    copies = shifted_copies(GRID.numpy(), 1, 2, periodic=False)
    assert len(copies) == 4 and len(shifted_copies(GRID.numpy(), 0, 2, periodic=False)) == 1
    assert [c[0, 0, 0, 0] for c in copies] == [0, 5, 0, 2]  # down, up, right, left
    lattices = [np.ones((1, 4, 4), np.float32), np.ones((1, 6, 6), np.float32)]  # several sizes
    listed = shifted_copies(lattices, 1, 2, periodic=False)
    assert [im.shape for im in listed[0]] == [(1, 4, 4), (1, 6, 6)]
    assert listed[0][1][0, 0].sum() == 0 and listed[0][1].sum() == 30


def test_the_digits_margin_makes_padded_and_cyclic_shifts_agree_up_to_four_pixels():
    assert get_task("digits").periodic is False and Task.periodic is False
    x = get_task("digits").generate(547, np.random.default_rng(0), "test").x
    for s in (1, 2, 4):
        for padded, rolled in zip(
            shifted_copies(x, s, 2, periodic=False), shifted_copies(x, s, 2, periodic=True), strict=True
        ):
            np.testing.assert_array_equal(padded, rolled)
    far = zip(shifted_copies(x, 7, 2, periodic=False), shifted_copies(x, 7, 2, periodic=True), strict=True)
    assert any(not np.array_equal(p, r) for p, r in far)  # the digit wraps round


def test_parse_shifts():
    assert parse_shifts("4,1,2") == (0, 1, 2, 4)
    assert parse_shifts([2, 2]) == (0, 2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["compare", "digits", "--models", "mlp,resnet19"],
            "unknown model 'resnet19' (did you mean 'resnet18'?)",
        ),
        (["compare", "digit"], "unknown task 'digit' (did you mean 'digits'?)"),
        (["compare", "digits", "--shifts", "1,two"], "--shifts must be whole pixel counts"),
        (["compare", "digits", "--models", "mlp,mlp"], "--models names mlp more than once"),
        (["compare", "digits", "--models", "unet"], "model unet outputs an image per input"),
        (
            ["compare", "digits", "--models", "mlp", "--model-option", "mlp:hidden=[8]"],
            "--model-option for mlp",
        ),
        (
            ["compare", "digits", "--models", "mlp", "--model-option", "vgg11:width=0.5"],
            "--model-option for vgg11, which --models does not name",
        ),
        (
            [
                "compare",
                "digits",
                "--models",
                "vgg11",
                "--width",
                "1",
                "--model-option",
                "vgg11:small_input=false",
            ],
            "is too small for vgg11",
        ),
    ],
)
def test_bad_requests_are_one_line_before_any_training(tmp_path, capsys, args, message):
    assert main([*args, "--out", str(tmp_path / "c")]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("astrocnn: error: ") and message in err
    assert err.count("\n") == 1 and out == ""
    assert not (tmp_path / "c").exists()


@pytest.fixture(scope="module")
def small_comparison(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "digits"
    sizes = ["--epochs", "2", "--n-train", "200", "--n-val", "50", "--n-test", "100"]
    args = ["compare", "digits", "--models", "mlp,simple_cnn", "--seeds", "2", "--shifts", "0,2", *sizes]
    assert main([*args, "--out", str(out)]) == 0
    return out


def test_table_rows_and_columns(small_comparison):
    results = json.loads((small_comparison / "compare.json").read_text())
    assert list(results["models"]) == ["mlp", "simple_cnn"]
    assert results["shifts"] == [0, 2] and results["shift_mode"] == "zero" and results["n_test"] == 100
    assert results["command"].startswith("astrocnn compare digits --models=mlp,simple_cnn --seeds=2")
    for entry in results["models"].values():
        assert [r["seed"] for r in entry["runs"]] == [0, 1]
        values = [r["metric"]["0"] for r in entry["runs"]]
        assert entry["metric_mean"]["0"] == pytest.approx(np.mean(values))
        assert entry["metric_std"]["0"] == pytest.approx(np.std(values, ddof=1))
    assert results["models"]["mlp"]["parameters"] == 256 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    rows = list(csv.DictReader(io.StringIO((small_comparison / "compare.csv").read_text())))
    assert [r["model"] for r in rows] == ["mlp", "simple_cnn", f"classical: {results['baseline']['name']}"]
    assert list(rows[0]) == [
        "model", "parameters", "metric_mean", "metric_std", "train_seconds", "shift2_mean", "shift2_std",
    ]  # fmt: skip
    table = (small_comparison / "compare.md").read_text()
    assert "| model | parameters | accuracy | training (s) | shifted 2 px |" in table
    assert "| mlp | 99,978 |" in table
    for figure in ("robustness.png", "cost.png"):
        assert (small_comparison / figure).read_bytes().startswith(b"\x89PNG")


def test_the_table_numbers_are_those_of_the_saved_networks(small_comparison):
    """Each seed's network is kept as a run that loads; its accuracy on the test split, shifted
    by 2 pixels down (one of the four copies averaged), reproduces what compare.json says."""
    results = json.loads((small_comparison / "compare.json").read_text())
    run = load_run(small_comparison / "runs" / "simple_cnn")
    task = run.task
    test = task.generate(100, np.random.default_rng(0), "test")
    for k, name in enumerate(("cnn", "cnn-seed+1")):
        net = run.model(name)
        accuracy = task.metrics(predict_array(net, task, test.x), test)["accuracy"]
        assert accuracy == pytest.approx(results["models"]["simple_cnn"]["runs"][k]["metric"]["0"])
        copies = shifted_copies(test.x, 2, 2, periodic=False)
        mean = np.mean([task.metrics(predict_array(net, task, c), test)["accuracy"] for c in copies])
        assert mean == pytest.approx(results["models"]["simple_cnn"]["runs"][k]["metric"]["2"])
    first, second = run.model("cnn").state_dict(), run.model("cnn-seed+1").state_dict()
    assert any(not torch.equal(first[key], second[key]) for key in first)  # seeds vary the weights


def test_a_folder_holding_a_comparison_is_refused(small_comparison, capsys):
    assert main(["compare", "digits", "--models", "mlp", "--out", str(small_comparison)]) == 2
    assert "already holds a comparison" in capsys.readouterr().err


def test_seed_zero_is_the_network_astrocnn_train_gives(small_comparison, tmp_path):
    """compare trains with the engine itself: its first seed reproduces `astrocnn train` with the
    same settings, network for network (CPU training is bit-reproducible)."""
    import astrocnn

    results = json.loads((small_comparison / "compare.json").read_text())
    run = astrocnn.train(
        "digits", epochs=2, n_train=200, n_val=50, n_test=100, out=str(tmp_path / "run"),
        baseline=False, progress_bar=False,
    )  # fmt: skip
    trained = run.metrics["results"]
    assert trained["cnn"]["accuracy"] == results["models"]["simple_cnn"]["runs"][0]["metric"]["0"]
    assert trained["mlp"]["accuracy"] == results["models"]["mlp"]["runs"][0]["metric"]["0"]
