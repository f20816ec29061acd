"""``report.html``: one self-contained page per run (configuration, metrics table, plots inline).

The page is for someone deciding how far to trust a number, so the table gives each value its
standard error and says how many test samples it comes from, which way is better and what the
metric measures (the task's ``metric_notes``, else the common ones in ``tasks.plotting``), and
names the classical method. Per-bin metrics are figures (drawn by ``results.per_bin_plots``), not
rows of fifty numbers. Everything, figures included, is inside the one file.
"""

from __future__ import annotations

import base64
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
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; } img { max-width: 100%; margin: .5em 0; }
"""


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


def write_report(run_dir: Path, task: Task | None = None) -> Path:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    config = (run_dir / "config.yaml").read_text()
    task = task if task is not None else _task_of(metrics, run_dir)
    results = metrics["results"]
    notes = task.metric_notes if task is not None else {}
    binned = set(plotting.per_bin_metrics(results))

    def caption(stem: str) -> str:
        description = plotting.metric_note(stem, notes)[0] if stem in binned else ""
        return f"<p class='note'>{html.escape(description)}</p>" if description else ""

    figures = "".join(
        f"<h3>{html.escape(p.stem.replace('_', ' '))}</h3>{caption(p.stem)}"
        f'<img alt="{html.escape(p.stem)}" src="data:image/png;base64,{_b64(p)}">'
        for p in sorted((run_dir / "plots").glob("*.png"))
    )
    warning = small_test_warning(task, results) if task is not None else None
    name = html.escape(metrics["task"])
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>astrocnn: {name}</title><style>{_STYLE}</style></head><body><h1>{name}</h1>"
        + (f"<p>{html.escape(task.description)}</p>" if task is not None else "")
        + "<h2>Metrics (test split)</h2>"
        + _size_line(results)
        + (f"<p class='warn'>Warning: {html.escape(warning)}</p>" if warning else "")
        + metrics_table(results, task)
        + _NOTE
        + f"<h2>Plots</h2>{figures}<h2>Configuration</h2><pre>{html.escape(config)}</pre></body></html>"
    )
    path = run_dir / "report.html"
    with atomic_output(path) as tmp:
        tmp.write_text(page)
    return path
