"""The per-run report and what feeds it: per-bin metrics as figures, n and standard errors in
metrics.json and on the page, the classical method named, which way is better and what each
metric means, readable figures, no empty plots or warnings for data without S/N, and a warning
when the test split is too small for the headline metric."""

import itertools
import json
import math
import re
import warnings
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from torch import nn

import astrocnn
from astrocnn.engine import results as results_module
from astrocnn.engine.config import RunConfig
from astrocnn.engine.report import metrics_table, small_test_warning, with_error
from astrocnn.tasks import get_task, plotting
from astrocnn.tasks.base import ArraySplit, Task, TaskDefaults, TaskKind, binned_mean
from astrocnn.tasks.ising import analysis
from astrocnn.tasks.ising import plots as ising_plots
from astrocnn.tasks.ising.tasks import DISORDERED_ABOVE, ORDERED_BELOW
from astrocnn.tasks.sky_shapes import SNR_BINS

TINY = {"n_train": 200, "n_val": 64, "n_test": 120, "epochs": 1, "batch_size": 32, "progress_bar": False}
MY_TASKS = ("sky-shapes", "ising-phase", "ising-temperature")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "tiny"
    return astrocnn.train("sky-shapes", out=str(out), seed=3, **TINY)


def labelled(y: np.ndarray, meta: dict) -> ArraySplit:
    """A test split of targets and metadata only (the metrics read no image)."""
    return ArraySplit(np.zeros((len(y), 1, 1, 1), np.float32), y, meta)


class Table(HTMLParser):
    """The rows of the page's tables: per row, its cells as (tag, attributes, text)."""

    def __init__(self, page: str):
        super().__init__()
        self.rows: list[list[tuple[str, dict, str]]] = []
        self._cell = None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = [tag, dict(attrs), ""]

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[2] += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(tuple(self._cell))
            self._cell = None

    def row(self, name: str) -> list[tuple[str, dict, str]]:
        (found,) = [r for r in self.rows if r and r[0][2] == name]
        return found

    def names(self) -> list[str]:
        return [r[0][2] for r in self.rows[1:]]


# ---- a toy regression task through the engine's finish(), without training -------------------

EDGES = [0.0, 2.5, 5.0, 7.5, 10.0]


class Toy(Task):
    """Regression with a per-bin metric the task plots itself (bias_vs_depth) and one it leaves
    to the engine (rmse_vs_depth)."""

    name = "toy"
    kind = TaskKind.REGRESSION
    description = "toy regression"
    spatial_dims, in_channels, input_size, num_outputs = 2, 1, (4, 4), 1
    defaults = TaskDefaults(model="mlp")
    headline = ("rmse", False)
    baseline_name = "the mean of the training targets"

    def generate(self, n, rng, split="test"):
        x = rng.normal(size=(n, 1, 4, 4)).astype(np.float32)
        depth = rng.uniform(0, 10, n)
        y = (x.mean(axis=(1, 2, 3)) + 0.1 * depth).astype(np.float32)[:, None]
        return ArraySplit(x, y, {"depth": depth})

    def metrics(self, prediction, test):
        error = prediction[:, 0] - test.y[:, 0]
        depth = test.meta["depth"]
        return {
            "rmse": float(np.sqrt(np.mean(error**2))),
            "bias": float(np.mean(error)),
            "rmse_vs_depth": np.sqrt(binned_mean(error**2, depth, EDGES)).tolist(),
            "rmse_vs_depth_bins": EDGES,
            "bias_vs_depth": binned_mean(error, depth, EDGES).tolist(),
            "bias_vs_depth_bins": EDGES,
        }

    def baseline(self, train, test):
        return np.full((len(test), 1), train.y.mean(), dtype=np.float32)

    def plots(self, results, test, predictions, out, networks):
        fig, ax = plotting.plt.subplots()
        ax.plot([0, 1], [0, 1])
        plotting.save(fig, out / "bias_vs_depth.png")


def finish_toy(run_dir: Path, n_test: int, monkeypatch=None) -> tuple[dict, dict]:
    """finish() on the toy task with untrained linear networks; the figures it draws, by file name."""
    figures = {}
    if monkeypatch is not None:
        original = plotting.save

        def keep(fig, path):
            figures[Path(path).name] = fig
            original(fig, path)

        monkeypatch.setattr(plotting, "save", keep)
    task = Toy()
    rng = np.random.default_rng(0)
    splits = SimpleNamespace(test=task.generate(n_test, rng), baseline_train=task.generate(200, rng))
    members = {w: [nn.Sequential(nn.Flatten(), nn.Linear(16, 1))] for w in ("cnn", "mlp")}
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("task: toy\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics = results_module.finish(run_dir, RunConfig(task="toy", model="mlp"), task, splits, members)
    assert not caught, [str(w.message) for w in caught]
    return metrics, figures


# ---- 1. per-bin metrics are figures -------------------------------------------------------------


def test_per_bin_metrics_are_plotted_not_listed_in_the_table(tiny_run):
    results = tiny_run.metrics["results"]
    assert len(results["cnn"]["accuracy_vs_snr"]) == len(SNR_BINS) - 1
    page = (tiny_run.path / "report.html").read_text()
    table = Table(page)
    assert "accuracy_vs_snr" not in table.names() and "accuracy_vs_snr_bins" not in table.names()
    # no cell is a list of numbers
    assert not [c for r in table.rows for c in r if re.fullmatch(r"[-\d.e]+(, [-\d.e]+)+", c[2])]
    assert 'alt="accuracy_vs_snr" src="data:image/png;base64,' in page


def test_every_task_gets_a_figure_per_per_bin_metric(tmp_path, monkeypatch):
    _, figures = finish_toy(tmp_path / "run", 400, monkeypatch)
    plots = tmp_path / "run" / "plots"
    assert (plots / "rmse_vs_depth.png").is_file()
    ax = figures["rmse_vs_depth.png"].axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["CNN", "fully connected", Toy.baseline_name]
    centres = (np.array(EDGES[:-1]) + np.array(EDGES[1:])) / 2
    for line in ax.get_lines():
        if len(line.get_xdata()) == len(centres):
            np.testing.assert_allclose(line.get_xdata(), centres)
    # the task drew bias_vs_depth.png itself: not drawn again
    assert "bias_vs_depth.png" in figures
    assert len(figures["bias_vs_depth.png"].axes[0].get_lines()) == 1
    page = (tmp_path / "run" / "report.html").read_text()
    assert "rmse_vs_depth" not in Table(page).names()
    assert page.count("data:image/png;base64,") == len(list(plots.glob("*.png")))


# ---- 2. n and standard errors -------------------------------------------------------------------


def test_metrics_json_gains_n_and_errors_and_keeps_its_keys(tiny_run):
    stored = tiny_run.metrics["results"]
    predictions = np.load(tiny_run.path / "predictions.npz")
    test = labelled(predictions["y"], {"snr": predictions["meta_snr"]})
    task = tiny_run.task
    n = TINY["n_test"]
    for method, entry in stored.items():
        assert entry["n_test"] == n
        # strict JSON as written: NaN (an empty bin) is null
        recomputed = json.loads(
            json.dumps(results_module._clean(task.metrics(predictions[f"pred_{method}"], test)))
        )
        original = {k: v for k, v in entry.items() if k != "n_test" and not k.endswith("_err")}
        original = {k: v for k, v in original.items() if k not in ("model", "parameters", "ensemble")}
        assert original == recomputed  # the same keys, the same values
        for name in ("accuracy", "f1_macro", "log_loss"):
            assert entry[f"{name}_err"] > 0
        p = entry["accuracy"]
        # the bootstrap error of a fraction is the binomial one (200 resamples: within 20 %)
        assert entry["accuracy_err"] == pytest.approx(math.sqrt(p * (1 - p) / n), rel=0.2)


def test_report_shows_n_and_plus_minus(tiny_run):
    page = (tiny_run.path / "report.html").read_text()
    assert f"n = {TINY['n_test']} test samples" in page
    entry = tiny_run.metrics["results"]["cnn"]
    cells = Table(page).row("accuracy")
    expected = with_error(entry["accuracy"], entry["accuracy_err"])
    assert expected in [c[2] for c in cells]
    assert re.fullmatch(r"0\.\d+ ± 0\.0\d\d", expected)


def test_errors_are_seeded_and_binomial_where_resampling_is_too_slow(monkeypatch):
    task = get_task("sky-shapes")
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 3, 500)
    test = labelled(labels, {"snr": rng.uniform(3, 40, 500)})
    probs = rng.dirichlet([1, 1, 1], 500)
    probs[np.arange(300), labels[:300]] += 2  # 60 % and more right
    probs /= probs.sum(axis=1, keepdims=True)
    values = task.metrics(probs, test)
    first = results_module.standard_errors(task, probs, test, values)
    assert first == results_module.standard_errors(task, probs, test, values)
    assert set(first[0]) == {"accuracy", "f1_macro", "log_loss"}
    assert len(first[1]["accuracy_vs_snr"]) == len(SNR_BINS) - 1
    monkeypatch.setattr(type(task), "resample_metrics", False)  # a task too costly to resample
    errors, per_bin = results_module.standard_errors(task, probs, test, values)
    p = values["accuracy"]
    assert errors == {"accuracy": pytest.approx(math.sqrt(p * (1 - p) / 500))} and per_bin == {}


def test_resamples_keep_every_cell_and_whole_chains():
    size = np.repeat([8, 16], 60)
    temperature = np.tile(np.repeat([2.0, 2.5, 3.0], 20), 2)
    chain = np.tile(np.arange(20) % 4, 6)  # 4 chains of 5 samples in each (L, T) cell
    test = labelled(np.zeros(120), {"size": size, "temperature": temperature, "chain": chain})
    plan = results_module.resample_plan(test)
    rng = np.random.default_rng(1)
    for _ in range(20):
        idx = results_module.resample(plan, 120, rng)
        for L, T in itertools.product([8, 16], [2.0, 2.5, 3.0]):
            cell = idx[(size[idx] == L) & (temperature[idx] == T)]
            assert len(cell) == 20
            # each drawn chain comes whole: its 5 samples, as often as it was drawn
            for c in np.unique(chain[cell]):
                drawn = cell[chain[cell] == c]
                assert len(drawn) % 5 == 0
                assert np.all(np.bincount(drawn, minlength=120)[drawn] == len(drawn) // 5)
    assert results_module.resample_plan(labelled(np.zeros(5), {"snr": np.ones(5)})) is None


def test_a_task_s_own_uncertainty_is_kept():
    class Own(Toy):
        def metrics(self, prediction, test):
            return {
                "x_estimate": float(prediction.mean()),
                "x_uncertainty": 0.1,
                "rmse": 1.0 + prediction.std(),
            }

    rng = np.random.default_rng(0)
    test = labelled(np.zeros(50), {})
    prediction = rng.normal(size=(50, 1))
    errors, _ = results_module.standard_errors(Own(), prediction, test, Own().metrics(prediction, test))
    assert set(errors) == {"rmse"}
    task = get_task("ising-phase")
    estimate = analysis.TcEstimate(2.30, 0.02, {(16, 32): 2.30}, statistical=0.02).as_metrics()
    table = Table(metrics_table({"cnn": {"n_test": 900, **estimate}}, task))
    assert "2.300 ± 0.020" in [c[2] for c in table.row("tc_estimate")]
    relative = abs(2.30 - analysis.TC) / analysis.TC
    assert with_error(relative, 0.02 / 2.30) in [c[2] for c in table.row("tc_relative_error")]


def test_a_resample_the_metrics_refuse_does_not_end_the_run():
    class Fussy(Toy):
        def metrics(self, prediction, test):
            if not test.meta["rare"].any():  # as sklearn refuses a split without some class
                raise ValueError("no rare sample")
            return {"rmse": float(np.sqrt(np.mean((prediction[:, 0] - test.y) ** 2)))}

    rng = np.random.default_rng(0)
    rare = np.zeros(50, bool)
    rare[:3] = True  # absent from about 5 % of the resamples
    test = labelled(rng.normal(size=50), {"rare": rare})
    prediction = rng.normal(size=(50, 1))
    errors, _ = results_module.standard_errors(Fussy(), prediction, test, Fussy().metrics(prediction, test))
    assert 0 < errors["rmse"] < 1


def test_no_error_is_null_in_metrics_json(tmp_path):
    finish_toy(tmp_path / "run", 3)  # three samples: resamples often degenerate
    results = json.loads((tmp_path / "run" / "metrics.json").read_text())["results"]
    for entry in results.values():
        assert entry["n_test"] == 3
        assert all(isinstance(v, float) for k, v in entry.items() if k.endswith("_err"))


# ---- 3. to 5. the classical method named; which way is better; what a metric means ------------


def test_baseline_column_names_the_method_and_missing_metrics_are_dashes(tiny_run):
    page = (tiny_run.path / "report.html").read_text()
    assert "n/a" not in page
    table = Table(page)
    header = [c[2] for c in table.rows[0]]
    assert any(tiny_run.task.baseline_name in h for h in header)
    # the baseline is no network: it has no parameters
    column = header.index(next(h for h in header if tiny_run.task.baseline_name in h))
    _, attrs, text = table.row("parameters")[column]
    assert text == "—" and "does not report parameters" in attrs["title"]


def test_each_metric_says_which_way_is_better_and_what_it_measures(tiny_run):
    table = Table((tiny_run.path / "report.html").read_text())
    header = [c[2] for c in table.rows[0]]
    assert header[1] == "better" and header[-1] == "what it measures"
    assert table.row("accuracy")[1][2] == "↑" and table.row("accuracy")[1][1]["title"] == "higher is better"
    assert table.row("log_loss")[1][2] == "↓"
    for row in table.rows[1:]:
        assert row[-1][2], f"{row[0][2]} is not described"


def _all_metric_names(name: str) -> set[str]:
    """Every key the task's metrics, network metrics and baseline put in metrics.json."""
    task = get_task(name, {"sizes": "8,16"} if name.startswith("ising") else None)
    rng = np.random.default_rng(0)
    if name == "sky-shapes":
        test = labelled(rng.integers(0, 3, 90), {"snr": rng.uniform(3, 40, 90)})
        return set(task.metrics(rng.dirichlet([1, 1, 1], 90), test))
    t = np.repeat(np.tile(task.grid, 2), 4)
    size = np.repeat([8, 16], len(task.grid) * 4)
    test = labelled(task.targets(t), {"temperature": t, "size": size})
    if name == "ising-temperature":
        return set(task.metrics(t[:, None] + rng.normal(0, 0.1, (len(t), 1)), test))
    p = 1 / (1 + np.exp(4 * (t - 2.27)))
    members = analysis.TcEstimate(2.3, 0.02, {(8, 16): 2.3}, statistical=0.02, training=0.01, members=[2.3])
    return set(task.metrics(np.stack([1 - p, p], axis=1), test)) | set(members.as_metrics())


@pytest.mark.parametrize("name", MY_TASKS)
def test_every_metric_of_the_task_is_described(name):
    task = get_task(name)
    assert task.baseline_name
    names = _all_metric_names(name)
    assert len(names) >= 4
    for metric in sorted(n for n in names if not n.endswith("_bins")):
        description, _ = plotting.metric_note(metric, task.metric_notes)
        assert description, f"{name}: {metric} has no description"


def test_directions_and_the_pull_are_explained():
    phase, temperature = get_task("ising-phase"), get_task("ising-temperature")
    description, higher = plotting.metric_note("tc_pull", phase.metric_notes)
    assert higher is None and "uncertainty" in description and "<= 2" in description
    assert plotting.metric_note("tc_relative_error", phase.metric_notes)[1] is False
    assert plotting.metric_note("accuracy_L16", phase.metric_notes)[1] is True
    assert plotting.metric_note("tc_binder_L16_L32", phase.metric_notes)[0]
    assert plotting.metric_note("bias", temperature.metric_notes)[1] is None
    assert plotting.metric_note("rmse_vs_T", temperature.metric_notes)[1] is False
    # the common names, for tasks without notes of their own
    for name, higher in (("accuracy", True), ("rmse", False), ("mae", False), ("bias", None), ("r2", True),
                         ("iou_galaxy", True), ("psnr", True), ("log_loss", False)):  # fmt: skip
        assert plotting.metric_note(name)[1] is higher and plotting.metric_note(name)[0]


# ---- 6. to 8. figures ---------------------------------------------------------------------------


def _capture(monkeypatch, module) -> dict[str, object]:
    figures = {}
    monkeypatch.setattr(module, "save", lambda fig, path: figures.__setitem__(Path(path).name, fig))
    return figures


def _texts(ax):
    items = [*ax.get_xticklabels(), *ax.get_yticklabels(), ax.xaxis.label, ax.yaxis.label, ax.title]
    return [t for t in items if t.get_visible() and t.get_text()]


@pytest.mark.parametrize(
    "names", [("star", "galaxy", "ring"), ("elliptical", "spiral", "irregular", "merger", "point source")]
)
def test_confusion_matrix_labels_do_not_overlap(monkeypatch, tmp_path, names):
    figures = _capture(monkeypatch, plotting)
    rng = np.random.default_rng(0)
    k = len(names)
    labels = rng.integers(0, k, 200)
    predictions = {m: rng.dirichlet(np.ones(k), 200) for m in ("cnn", "mlp", "baseline")}
    plotting.confusion_matrices(labels, predictions, names, tmp_path / "confusion.png")
    fig = figures["confusion.png"]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for a, b in itertools.permutations(fig.axes, 2):
        for text in _texts(a):
            box = text.get_window_extent(renderer)
            assert not box.overlaps(b.get_window_extent(renderer)), text.get_text()
            assert not any(box.overlaps(u.get_window_extent(renderer)) for u in _texts(b)), text.get_text()
    for ax in fig.axes:
        ticks = [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_visible()]
        assert not any(p.overlaps(q) for p, q in itertools.combinations(ticks, 2))


def test_confusion_panels_name_the_methods(monkeypatch, tmp_path):
    figures = _capture(monkeypatch, plotting)
    predictions = {m: np.eye(3)[[0, 1, 2, 2]] for m in ("cnn", "mlp", "baseline")}
    plotting.confusion_matrices(np.array([0, 1, 2, 1]), predictions, ("a", "b", "c"), tmp_path / "c.png",
                                baseline_name="gradient-boosted trees")  # fmt: skip
    assert [ax.get_title() for ax in figures["c.png"].axes] == [
        "CNN",
        "fully connected",
        "gradient-boosted trees",
    ]


def test_sky_shapes_without_snr_draws_no_empty_plot_and_warns_nothing(tmp_path):
    """A user's file (--data) has no S/N: no accuracy-vs-S/N figure, and nothing on stderr."""
    task = get_task("sky-shapes")
    data = task.generate(30, np.random.default_rng(0))
    test = ArraySplit(data.x, data.y, {})
    predictions = {m: np.random.default_rng(1).dirichlet([1, 1, 1], 30) for m in ("cnn", "baseline")}
    results = {m: task.metrics(p, test) for m, p in predictions.items()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        task.plots(results, test, predictions, tmp_path, {})
    assert not caught, [str(w.message) for w in caught]
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["confusion.png", "examples.png"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert results_module.per_bin_plots(task, results, tmp_path) == []  # no per-bin metric
    assert not caught


def test_one_epoch_training_curves_are_visible(monkeypatch, tmp_path):
    figures = _capture(monkeypatch, plotting)
    history = {"cnn": {"train": [1.0], "val": [1.2]}, "mlp": {"train": [0.9], "val": [0.7]}}
    plotting.training_curves(history, tmp_path / "training_curves.png")
    ax = figures["training_curves.png"].axes[0]
    lines = [line for line in ax.get_lines() if len(line.get_xdata())]
    assert len(lines) == 4
    for line in lines:
        assert line.get_marker() not in ("", "None", " ", None, ".", ",") and line.get_markersize() >= 4
    low, high = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if low <= t <= high]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_no_history_draws_no_warning(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plotting.training_curves({"cnn": {"train": [], "val": []}}, tmp_path / "curves.png")
    assert not caught and (tmp_path / "curves.png").is_file()


# ---- 9. ising-phase: the training windows ------------------------------------------------------


def _spans(ax) -> list[tuple[float, float]]:
    out = []
    for patch in ax.patches:
        x = patch.get_patch_transform().transform(patch.get_path().vertices)[:, 0]
        out.append((float(x.min()), float(x.max())))
    return out


def test_ising_phase_plots_shade_the_training_windows(monkeypatch, tmp_path):
    figures = _capture(monkeypatch, ising_plots)
    task = get_task("ising-phase", {"sizes": "8,16"})
    rng = np.random.default_rng(0)
    t = np.repeat(np.tile(task.grid, 2), 6)
    size = np.repeat([8, 16], len(task.grid) * 6)
    x = [rng.choice([-1.0, 1.0], size=(1, L, L)).astype(np.float32) for L in size]
    m = np.tanh(3 * (2.27 - t)) + rng.normal(0, 0.1, len(t))
    test = ArraySplit(x, task.targets(t), {"temperature": t, "size": size, "magnetisation": m})
    p = 1 / (1 + np.exp(4 * (t - 2.27)))
    task.plots({}, test, {"cnn": np.stack([1 - p, p], axis=1)}, tmp_path, {})
    for name in ("ordered_output_vs_T.png", "binder_cumulant.png"):
        spans = _spans(figures[name].axes[0])
        assert any(lo <= t.min() and hi == pytest.approx(ORDERED_BELOW) for lo, hi in spans), name
        assert any(lo == pytest.approx(DISORDERED_ABOVE) and hi >= t.max() for lo, hi in spans), name


# ---- 10. too small a test split ------------------------------------------------------------------


def test_small_test_split_warns_once_with_n_and_error(tmp_path, capsys):
    finish_toy(tmp_path / "run", 30)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("astrocnn: warning: ")
    assert "n = 30" in lines[0] and "rmse = " in lines[0] and " ± " in lines[0]
    assert "too small" in (tmp_path / "run" / "report.html").read_text()


def test_the_warning_follows_n_and_the_error():
    task = get_task("sky-shapes")

    def entry(n, p):
        return {"cnn": {"n_test": n, "accuracy": p, "accuracy_err": math.sqrt(p * (1 - p) / n)}}

    assert small_test_warning(task, entry(1000, 0.9)) is None  # 0.009: fine
    assert "n = 40" in small_test_warning(task, entry(40, 0.9))  # too few samples
    assert "± 0.041" in small_test_warning(task, entry(150, 0.5))  # 0.041 > 3 % of the range
    phase = get_task("ising-phase")
    tc = analysis.TcEstimate(2.30, 0.15, {}).as_metrics()  # 6.5 % of T_c
    assert "tc_relative_error" in small_test_warning(phase, {"cnn": {"n_test": 5000, **tc}})
    tc = analysis.TcEstimate(2.275, 0.01, {}).as_metrics()
    assert small_test_warning(phase, {"cnn": {"n_test": 5000, **tc}}) is None


def test_counts_have_thousands_separators(tiny_run):
    """One number format everywhere: the report writes parameter counts as the CLI does."""
    table = Table((tiny_run.path / "report.html").read_text())
    header = [c[2] for c in table.rows[0]]
    count = tiny_run.metrics["results"]["cnn"]["parameters"]
    assert count >= 1000
    cells = [c[2] for c in table.row("parameters")]
    assert f"{count:,}" in cells, (header, cells)
