"""``report.html``: one self-contained page per run (configuration, metrics table, plots inline).

The page is for someone deciding how far to trust a number, so the table gives each value its
standard error and says how many test samples it comes from, which way is better and what the
metric measures (the task's ``metric_notes``, else the common ones in ``tasks.plotting``), and
names the classical method. Per-bin metrics are figures (drawn by ``results.per_bin_plots``), not
rows of fifty numbers, and every figure has a caption saying what it shows (:func:`plot_caption`).
The configuration is folded away; the run's files are linked, relative to the page. Everything
else, figures included, is inside the one file.
"""

from __future__ import annotations

import base64
import fnmatch
import html
import json
import math
from pathlib import Path
from typing import Any

from astrocnn.data.writers import atomic_output
from astrocnn.tasks import Task, plotting

#: Fewer test samples than this are too few for any metric (the warning of :func:`small_test_warning`).
SMALL_TEST = 50
#: A standard error above this share of the headline metric's scale (1 for a metric in [0, 1], the
#: value itself otherwise) means the test split cannot support the metric.
UNIT_TOLERANCE, RELATIVE_TOLERANCE = 0.03, 0.10
#: Lists longer than this (not per-bin metrics, e.g. each ensemble member's value) are left to
#: metrics.json.
LONG_LIST = 8

_ARROWS = {True: ("↑", "higher is better"), False: ("↓", "lower is better"), None: ("", "")}

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 76em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc; padding: .3em .7em; }
th { background: #f3f3f3; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.none { text-align: center; color: #888; } td.better { text-align: center; font-weight: bold; }
td.note { font-size: .9em; color: #444; max-width: 32em; } p.note { font-size: .9em; color: #444; }
p.warn { background: #fff4e0; border-left: 4px solid #e69500; padding: .5em 1em; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; } img { max-width: 100%; }
figure { margin: 1.5em 0 2.5em; } figure h3 { margin: 0 0 .4em; }
figcaption { font-size: .92em; color: #333; max-width: 60em; margin-top: .3em; }
details { margin: 1em 0; } summary { cursor: pointer; font-weight: bold; }
p.run { color: #444; }
"""

#: What each figure shows, by ``task/stem`` pattern (first match wins). Per-bin figures drawn by
#: the engine are described from the metric's note instead (:func:`plot_caption`).
PLOT_CAPTIONS: tuple[tuple[str, str], ...] = (
    ("*/training_curves", "Loss on the training split (filled circles) and the validation split "
     "(open squares) after each epoch, for every network trained. A validation loss that rises while "
     "the training loss still falls is over-fitting."),
    ("*/confusion", "One confusion matrix per method on the test split: rows the true class, columns "
     "the predicted one, each cell a count of images. Everything off the diagonal is a mistake."),
    ("digits/examples", "The first test digits as scanned, each titled true -> the CNN's reading "
     "(its probability); misread ones in red."),
    ("segment/examples", "Three test images: the input, the true mask and every method's mask."),
    ("restore/examples", "Three test images: the input, the truth and every method's output, on the "
     "truth's colour scale."),
    ("*/examples", "Test images, up to four per true class (one row each), titled true -> the CNN's "
     "class (its probability); wrong ones in red."),
    ("iact-generate/events", "The four brightest events the network generated (top row) and the four "
     "brightest simulated test events (bottom row), each titled with its particle, energy and impact "
     "distance."),
    ("iact-*/events", "Two test events of each particle kind (gamma ray, proton), the brightest of the "
     "first few, on the camera's own pixels."),
    ("iact-*/activations", "The brightest gamma-ray test event and what the CNN's first two "
     "convolutions make of it: the first eight feature maps of each layer, a row per layer."),
    ("iact-gamma-hadron/roc", "Proton efficiency (the share of protons kept, log scale) against "
     "gamma-ray efficiency, for every method: lower is better at any gamma-ray efficiency."),
    ("iact-energy/migration", "Reconstructed against true log10 energy, for every method, as 2-D "
     "histograms of the test events: a good method keeps them on the diagonal."),
    ("iact-generate/hillas", "Histograms of each Hillas parameter of generated events against "
     "simulated ones; dashed, a second simulated sample: the spread two simulations already show."),
    ("iact-generate/correlations", "The correlation matrices of the Hillas parameters, simulated "
     "(left) and generated (right): a faithful generator reproduces the pattern."),
    ("iact-generate/energy_conditioning", "Median reconstructed over requested energy of generated "
     "gamma rays (over true energy for simulated ones) against that energy, reconstructed by the "
     "Hillas analysis trained on simulated events: at 1 the generator honours the energy asked for."),
    ("ising-phase/ordered_output_vs_T", "The networks' mean 'ordered' output against temperature T, "
     "for each lattice size L: solid CNN, dashed fully connected. Shaded: the temperatures the "
     "networks were trained on (nothing in between); the vertical line is the exact T_c."),
    ("ising-phase/output_crossing_vs_L", "Where each network's mean 'ordered' output crosses 1/2, "
     "against 1/L: this fixed-threshold crossing drifts with L, which is why it is not the T_c "
     "estimator."),
    ("ising-phase/binder_cumulant_cnn", "Binder cumulants of the CNN's learned order parameter "
     "against T, for each lattice size L, in place of the magnetisation; shaded: the training ranges."),
    ("ising-phase/binder_cumulant", "Binder cumulants of the magnetisation against T, for each "
     "lattice size L: the curves cross near T_c (the classical baseline); shaded: the networks' "
     "training ranges."),
    ("ising-phase/tc_estimates", "Every method's T_c with its uncertainty (and each ensemble "
     "member's), against the exact value."),
    ("ising-*/configurations", "One spin configuration of the largest lattice below, at and above T_c."),
    ("ising-*/first_layer_filters", "The weights of the CNN's first convolution, one square per filter "
     "(red positive, blue negative): what the first layer looks for."),
    ("ising-temperature/predicted_temperature", "Mean predicted temperature (and its spread) against "
     "the true temperature, for every method: unbiased on the diagonal."),
    ("sky-cosmic-rays/roc", "Pixel ROC curves: the share of cosmic-ray pixels found against the share "
     "of other pixels flagged (log scale), for every method, with the rates the metrics quote marked."),
    ("sky-cosmic-rays/before_after", "Test frames, one per row: the frame, the true cosmic-ray mask, "
     "then each method's cosmic-ray probability (0 to 1) and that minus the truth."),
    ("sky-inpaint/before_after", "Test frames, one per row: the input, the noise-free frame (cyan: the "
     "missing pixels), then each method's output and its residual (output minus truth, electrons). "
     "Frames share one asinh stretch."),
    ("sky-*/before_after", "Test frames, one per row: the input, the noise-free frame, then each "
     "method's output and its residual (output minus truth, electrons). Frames share one asinh stretch."),
    ("tracks-*/events", "Test events, one per row: the deposited energy (asinh), the true class of "
     "every hit and the class each method gives it (background, track, shower); each row names its "
     "number of tracks and noise level."),
    ("tracks-*/event_*", "One test event: the true class of every hit and the class each method gives "
     "it, a row each, in three projections and in 3-D."),
    ("tracks-count/count_matrix", "Predicted against true number of tracks, for every method, as "
     "fractions of each true count: a good counter keeps to the diagonal."),
    ("*/predicted_vs_true*", "Each method's prediction against the true value on the test split; the "
     "diagonal is a perfect prediction."),
)  # fmt: skip


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def own_uncertainty(entry: dict[str, Any], name: str) -> float | None:
    """The uncertainty a task reports itself for ``name``: ``<p>_uncertainty`` for
    ``<p>_estimate``, and that divided by the estimate for ``<p>_relative_error``."""
    for suffix in ("_estimate", "_relative_error"):
        if name.endswith(suffix):
            stem = name.removesuffix(suffix)
            error, estimate = entry.get(f"{stem}_uncertainty"), entry.get(f"{stem}_estimate")
            if not _number(error):
                return None
            if suffix == "_estimate":
                return float(error)
            return float(error) / abs(estimate) if _number(estimate) and estimate != 0 else None
    return None


def has_own_uncertainty(name: str, entry: dict[str, Any]) -> bool:
    """Whether the task quantifies the uncertainty of ``name`` itself (or ``name`` is one)."""
    if "uncertainty" in name:
        return True
    return any(
        name.endswith(suffix) and f"{name.removesuffix(suffix)}_uncertainty" in entry
        for suffix in ("_estimate", "_relative_error")
    )


def standard_error(entry: dict[str, Any], name: str) -> float | None:
    """The standard error of metric ``name`` in a method's entry of metrics.json, or None."""
    error = entry.get(f"{name}_err")
    return float(error) if _number(error) else own_uncertainty(entry, name)


def small_test_warning(task: Task, results: dict[str, dict[str, Any]]) -> str | None:
    """Why the test split is too small for the task's headline metric (as scored for the CNN), or
    None: fewer than :data:`SMALL_TEST` samples, or a standard error above the tolerance."""
    if not results:
        return None
    name = task.headline[0]
    entry = results.get("cnn") or next(iter(results.values()))
    n, value, error = entry.get("n_test"), entry.get(name), standard_error(entry, name)
    reasons = []
    if isinstance(n, int) and n < SMALL_TEST:
        reasons.append(f"fewer than {SMALL_TEST} test samples")
    if _number(value) and error is not None:
        unit = plotting.on_unit_scale(name)
        limit = UNIT_TOLERANCE if unit else RELATIVE_TOLERANCE * abs(value)
        if error > limit:
            reasons.append(
                f"its standard error exceeds {UNIT_TOLERANCE:.0%} of its range 0 to 1"
                if unit
                else f"its standard error exceeds {RELATIVE_TOLERANCE:.0%} of its value"
            )
    if not reasons:
        return None
    measured = with_error(value, error) if _number(value) and error is not None else f"{value}"
    return (
        f"the test split is too small to support {name}: {name} = {measured} from n = {n} test "
        f"samples ({'; '.join(reasons)}); use a larger test split (n_test, or more images in --data)"
    )


def _fmt(value: Any) -> str:
    """The one number format of tables: counts with thousands separators, others to 4 figures."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        if len(value) > LONG_LIST:
            return f"{len(value)} values (in metrics.json)"
        return ", ".join(_fmt(v) for v in value)
    return html.escape(str(value))


def with_error(value: float, error: float) -> str:
    """``value ± error``, the error to two significant digits and the value to the same decimals."""
    if not error > 0:  # e.g. every resample scored the same: the value to 3 decimals, like its peers
        return f"{value:.3f} ± 0" if abs(value) < 1e4 else f"{value:.4g} ± 0"
    decimals = 1 - math.floor(math.log10(error))
    if decimals > 8:
        return f"{value:.4g} ± {error:.2g}"
    decimals = max(decimals, 0)
    return f"{value:.{decimals}f} ± {error:.{decimals}f}"


def _attr(text: str) -> str:
    return html.escape(text, quote=True)


def _cell(entry: dict[str, Any], name: str, label: str) -> str:
    if name not in entry:
        return f'<td class="none" title="{_attr(f"{label} does not report {name}")}">—</td>'
    value = entry[name]
    if value is None:  # NaN or infinite when computed: metrics.json holds strict JSON
        title = "not a number on this test split (e.g. no crossing found, or a division by zero)"
        return f'<td class="none" title="{_attr(title)}">undefined</td>'
    error = standard_error(entry, name) if _number(value) and not isinstance(value, int) else None
    if error is not None:
        how = "the task's own uncertainty" if f"{name}_err" not in entry else "standard error"
        return f'<td class="num" title="{_attr(how)}">{with_error(value, error)}</td>'
    return f'<td class="num">{_fmt(value)}</td>'


def _rows(results: dict[str, dict[str, Any]]) -> list[str]:
    """The table's metrics: every key of every method, in order, less what shows otherwise
    (``n_test`` above the table, ``_err`` after the ±, per-bin metrics and their edges as figures)."""
    binned = set(plotting.per_bin_metrics(results))
    names: list[str] = []
    for entry in results.values():
        for key in entry:
            hidden = (
                key == "n_test"
                or key in binned
                or (key.endswith("_bins") and key.removesuffix("_bins") in binned)
                or (key.endswith("_err") and key.removesuffix("_err") in entry)
            )
            if not hidden and key not in names:
                names.append(key)
    return names


def metrics_table(results: dict[str, dict[str, Any]], task: Task | None = None) -> str:
    """Metric by method, with a column saying which way is better and one saying what it measures."""
    notes = task.metric_notes if task is not None else {}
    baseline_name = task.baseline_name if task is not None else ""
    methods = list(results)
    labels = {m: plotting.method_label(m, baseline_name) for m in methods}
    whose = {m: f"the classical baseline ({labels[m]})" if m == "baseline" else labels[m] for m in methods}
    head = "".join(
        f'<th title="classical baseline">classical baseline:<br>{html.escape(labels[m])}</th>'
        if m == "baseline"
        else f"<th>{html.escape(labels[m])}</th>"
        for m in methods
    )
    rows = []
    for name in _rows(results):
        description, higher = plotting.metric_note(name, notes)
        arrow, which = _ARROWS[higher]
        rows.append(
            f'<tr><th title="{_attr(description)}">{html.escape(name)}</th>'
            f'<td class="better" title="{_attr(which)}">{arrow}</td>'
            + "".join(_cell(results[m], name, whose[m]) for m in methods)
            + f'<td class="note">{html.escape(description)}</td></tr>'
        )
    return (
        f"<table><tr><th>metric</th><th>better</th>{head}<th>what it measures</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _size_line(results: dict[str, dict[str, Any]]) -> str:
    sizes = {m: r.get("n_test") for m, r in results.items() if r.get("n_test") is not None}
    if not sizes:
        return ""
    if len(set(sizes.values())) == 1:
        return f"<p>n = {next(iter(sizes.values()))} test samples, the same for every method.</p>"
    return "<p>" + ", ".join(f"{html.escape(m)}: n = {n}" for m, n in sizes.items()) + " test samples.</p>"


_NOTE = (
    "<p class='note'>↑ higher is better, ↓ lower is better. ± is the standard error over the test "
    "samples: the spread of the metric over 200 bootstrap resamples of the test set (whole Markov "
    "chains, within each lattice size and temperature, where the data come in chains), or for "
    "accuracy the binomial sqrt(p (1 - p) / n) where resampling was too slow; a metric with its "
    "own uncertainty (T<sub>c</sub>) shows that. — : the method does not report the metric. "
    "Per-bin metrics are plotted below; their values are in metrics.json.</p>"
)


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _task_of(metrics: dict[str, Any], run_dir: Path) -> Task | None:
    """The run's task, rebuilt from its saved options; None where that fails (the report is then
    written without the task's notes rather than not at all)."""
    from astrocnn.engine.config import load_yaml
    from astrocnn.tasks import get_task

    try:
        options = load_yaml(run_dir / "config.yaml").get("task_options") or {}
        return get_task(metrics["task"], options)
    except Exception:
        return None


def key_plot(run_dir: Path, task: Task | None = None) -> Path | None:
    """The run's figure that tells most (the task's ``key_plot``), else its first figure other
    than the training curves, else the training curves; None where the run drew none."""
    plots = sorted((run_dir / "plots").glob("*.png"))
    wanted = getattr(task, "key_plot", "") if task is not None else ""
    for path in plots:
        if wanted and path.name == wanted:
            return path
    others = [p for p in plots if p.stem != "training_curves"]
    return (others or plots or [None])[0]


def plot_caption(stem: str, task: Task | None, results: dict[str, dict[str, Any]]) -> str:
    """What the figure ``plots/<stem>.png`` shows: for a per-bin metric, the metric's note read per
    bin; else the first :data:`PLOT_CAPTIONS` pattern matching ``task/stem``; else ""."""
    notes = task.metric_notes if task is not None else {}
    if stem in plotting.per_bin_metrics(results):
        quantity, _, axis = stem.partition("_vs_")
        axes = task.bin_axes if task is not None else {}
        label = axes.get(stem) or plotting.AXIS_NAMES.get(axis or "bin", axis or "bin")
        description = plotting.metric_note(stem, notes)[0]
        if description.startswith(f"{quantity} in bins of"):  # derived: the quantity's own note
            description = plotting.metric_note(quantity, notes)[0]
        arrow = {True: " (higher is better)", False: " (lower is better)", None: ""}
        higher = plotting.metric_note(quantity, notes)[1]
        text = f"{quantity} per bin of {label}, for every method{arrow[higher]}"
        return f"{text}: {description}." if description else f"{text}."
    key = f"{task.name if task is not None else ''}/{stem}"
    return next((text for pattern, text in PLOT_CAPTIONS if fnmatch.fnmatchcase(key, pattern)), "")


def _figures(run_dir: Path, task: Task | None, results: dict[str, dict[str, Any]]) -> str:
    """Each figure of the run with a title and a caption: the key plot first, the training curves
    last, the others in between by name."""
    plots = sorted((run_dir / "plots").glob("*.png"))
    first = key_plot(run_dir, task)
    plots.sort(key=lambda p: (p != first, p.stem == "training_curves"))
    parts = []
    for p in plots:
        title = html.escape(p.stem.replace("_", " "))
        text = plot_caption(p.stem, task, results)
        parts.append(
            f'<figure id="plot-{_attr(p.stem)}"><h3>{title}</h3>'
            f'<img alt="{_attr(p.stem)}" src="data:image/png;base64,{_b64(p)}">'
            + (f"<figcaption>{html.escape(text)}</figcaption>" if text else "")
            + "</figure>"
        )
    return "".join(parts)


def _run_line(run_dir: Path) -> str:
    """The settings a reader asks for first (the full configuration is folded below)."""
    from astrocnn.engine.config import load_yaml

    try:
        config = load_yaml(run_dir / "config.yaml") or {}
    except Exception:
        return ""
    parts = []
    if config.get("model"):
        parts.append(f"CNN: {config['model']}")
    if config.get("epochs") is not None:
        parts.append(f"{config['epochs']} epochs")
    sizes = [config.get(k) for k in ("n_train", "n_val", "n_test")]
    if config.get("data"):
        parts.append(f"data: {config['data']}")
    elif all(isinstance(n, int) for n in sizes):
        parts.append("{:,} training, {:,} validation and {:,} test samples".format(*sizes))
    if config.get("seed") is not None:
        parts.append(f"seed {config['seed']}")
    return f"<p class='run'>{html.escape('; '.join(parts))}.</p>" if parts else ""


#: Files of a run folder the page links, with what each holds.
RUN_FILES = (
    ("metrics.json", "every metric of every method, per-bin values and standard errors included"),
    ("config.yaml", "every setting of the run: astrocnn train TASK --config config.yaml reproduces it"),
    ("predictions.npz", "the test split's targets and every method's predictions"),
)


def _files(run_dir: Path) -> str:
    items = "".join(
        f'<li><a href="{_attr(name)}">{html.escape(name)}</a>: {html.escape(what)}</li>'
        for name, what in RUN_FILES
        if (run_dir / name).is_file()
    )
    return f"<h2>Files</h2><ul class='files'>{items}</ul>" if items else ""


def write_report(run_dir: Path, task: Task | None = None) -> Path:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    config = (run_dir / "config.yaml").read_text()
    task = task if task is not None else _task_of(metrics, run_dir)
    results = metrics["results"]
    warning = small_test_warning(task, results) if task is not None else None
    name = html.escape(metrics["task"])
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>astrocnn: {name}</title><style>{_STYLE}</style></head><body><h1>{name}</h1>"
        + (f"<p>{html.escape(task.description)}</p>" if task is not None else "")
        + _run_line(run_dir)
        + "<h2>Metrics (test split)</h2>"
        + _size_line(results)
        + (f"<p class='warn'>Warning: {html.escape(warning)}</p>" if warning else "")
        + metrics_table(results, task)
        + _NOTE
        + f"<h2>Plots</h2>{_figures(run_dir, task, results)}"
        + "<h2>Configuration</h2><details><summary>config.yaml: every setting of this run</summary>"
        + f"<pre>{html.escape(config)}</pre></details>"
        + _files(run_dir)
        + "</body></html>"
    )
    path = run_dir / "report.html"
    with atomic_output(path) as tmp:
        tmp.write_text(page)
    return path
