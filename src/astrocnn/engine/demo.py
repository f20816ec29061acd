"""``astrocnn demo``: every registered task at a small scale, one table, one summary page.

The page (``report.html`` beside ``summary.json``) gives per task its headline metric for the CNN,
the fully connected network and the classical baseline, the best marked, a thumbnail of the task's
``key_plot`` and a link to the run's own report. Its links are relative, so the folder can move.
"""

from __future__ import annotations

import html
import json
import os
import platform
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rich.console import Console
from rich.table import Table

from astrocnn.data.writers import atomic_output
from astrocnn.engine.config import RunConfig
from astrocnn.engine.results import write_json
from astrocnn.engine.run import RunError
from astrocnn.engine.train import run_training
from astrocnn.tasks import get_task, list_tasks

#: Fractions of each task's default data and epochs that ``--quick`` uses, unless the task sets its
#: own quick settings; the full demo is each task's default run.
QUICK_SCALE = (0.6, 0.75)


def demo_config(task_name: str, out: Path, *, quick: bool, seed: int = 0) -> RunConfig:
    """The task's demo settings (its defaults, with its ``demo`` overrides); with ``quick``, a
    fraction of those data and epochs unless the task sets its own ``quick`` settings."""
    d = get_task(task_name).defaults
    sizes: dict[str, Any] = dict(d.demo)
    if quick:
        data_scale, epoch_scale = QUICK_SCALE
        base = {k: sizes.get(k, getattr(d, k)) for k in ("n_train", "n_val", "n_test", "epochs")}
        sizes.update(
            n_train=max(1, int(base["n_train"] * data_scale)),
            n_val=max(1, int(base["n_val"] * data_scale)),
            n_test=max(1, int(base["n_test"] * data_scale)),
            epochs=max(1, round(base["epochs"] * epoch_scale)),
        )
        sizes.update(d.quick)
    return RunConfig(task=task_name, out=str(out / task_name), seed=seed, progress_bar=False, **sizes)


def run_demo(out: Path, *, quick: bool = False, console: Console | None = None) -> dict[str, Any]:
    console = console or Console()
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"quick": quick, "environment": _environment(), "tasks": {}}
    for name in list_tasks():
        task = get_task(name)
        if getattr(task, "learns_from_data", False):  # a user's own data: nothing to generate
            continue
        start = time.perf_counter()
        console.print(f"[bold]{name}[/bold]: {task.description}")
        _clear_previous(out / name)
        run = run_training(demo_config(name, out, quick=quick))
        metric, higher = task.headline
        results = run.metrics["results"]
        summary["tasks"][name] = {
            "metric": metric,
            "higher_is_better": higher,
            "values": {m: r.get(metric) for m, r in results.items()},
            "model": results["cnn"]["model"],
            "report": f"{name}/report.html",
            "seconds": round(time.perf_counter() - start, 1),
        }
    console = Console(width=max(console.width, 110))
    table = Table(title="astrocnn demo: test-split results")
    for column in ("task", "metric", "CNN", "fully connected", "classical baseline"):
        table.add_column(column, justify="left" if column in ("task", "metric") else "right")
    for name, entry in summary["tasks"].items():
        cells = [entry["values"].get(m) for m in ("cnn", "mlp", "baseline")]
        table.add_row(name, entry["metric"], *(_cell(v) for v in cells))
    console.print(table)
    write_json(out / "summary.json", summary)
    _write_index(out, summary)
    console.print(f"summary: {out / 'summary.json'}  report: {out / 'report.html'}")
    return summary


def _clear_previous(run_dir: Path) -> None:
    """The demo's own run folders are rewritten; anything else in the way is left alone."""
    if run_dir.exists():
        if not (run_dir / "config.yaml").is_file():
            raise RunError(f"{run_dir}: exists and is not a demo run; choose another --out")
        shutil.rmtree(run_dir)


def _cell(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else "n/a"


def _environment() -> dict[str, Any]:
    """Where and when the demo ran (the page's header)."""
    import torch

    import astrocnn

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "date": datetime.now().astimezone().isoformat(timespec="minutes"),
        "astrocnn": astrocnn.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores"
        + (f", {gpu}" if gpu else ""),
    }


_METHODS = (("cnn", "CNN"), ("mlp", "fully connected"), ("baseline", "classical baseline"))

_INDEX_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 80em; color: #222; padding: 0 1em; }
h1 { margin-bottom: .2em; } p.lead { font-size: 1.08em; max-width: 60em; }
p.run, p.note { color: #444; font-size: .92em; max-width: 60em; }
table { border-collapse: collapse; margin: 1.5em 0; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: .6em .7em; vertical-align: top; text-align: left; }
th { background: #f3f3f3; border-bottom: 2px solid #bbb; }
td.num { text-align: right; font-variant-numeric: tabular-nums; font-size: 1.05em; min-width: 6em; }
td.num[data-method="baseline"] { max-width: 13em; } td.task { min-width: 14em; max-width: 22em; }
td.metric { max-width: 18em; }
td.best { background: #e3f4e1; font-weight: bold; }
td.best .value::before { content: "\\2605  "; color: #2e7d32; } span.value { white-space: nowrap; }
td.time { text-align: right; white-space: nowrap; color: #444; }
td.figure img { width: 220px; max-height: 170px; object-fit: contain; border: 1px solid #ddd;
  background: #fff; display: block; }
.small { display: block; font-size: .8em; color: #666; font-weight: normal; margin-top: .2em; }
a.task { font-size: 1.1em; font-weight: bold; } code { font-size: .95em; }
"""


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def _best(values: dict[str, Any], higher: bool) -> set[str]:
    """The methods with the best headline value (several on a tie); none where none has one."""
    numbers = {m: v for m, v in values.items() if isinstance(v, int | float) and v == v}
    if not numbers:
        return set()
    target = max(numbers.values()) if higher else min(numbers.values())
    return {m for m, v in numbers.items() if v == target}


def _link(path: str) -> str:
    """A relative link to ``path`` (a POSIX path inside the demo folder), quoted for an attribute."""
    return html.escape(quote(path), quote=True)


def _task_row(out: Path, name: str, entry: dict[str, Any]) -> str:
    from astrocnn.engine.report import key_plot, plot_caption
    from astrocnn.tasks import plotting

    try:
        task = get_task(name)
    except Exception:  # a summary from another version: the row without the task's notes
        task = None
    metric, higher = entry["metric"], bool(entry.get("higher_is_better", True))
    run_dir = out / name
    plot = key_plot(run_dir, task)
    if plot is not None:
        source = _link(plot.relative_to(out).as_posix())
        try:
            results = json.loads((run_dir / "metrics.json").read_text())["results"]
        except (OSError, ValueError, KeyError):
            results = {}
        alt = html.escape(plot_caption(plot.stem, task, results) or plot.stem.replace("_", " "), quote=True)
        figure = f'<a href="{source}" title="the figure at full size"><img src="{source}" alt="{alt}"></a>'
    else:
        figure = "<span class='small'>no figure</span>"
    report = _link(entry.get("report", f"{name}/report.html"))
    description = f"<span class='small'>{html.escape(task.description)}</span>" if task else ""
    notes = task.metric_notes if task is not None else {}
    meaning = plotting.metric_note(metric, notes)[0]
    arrow = "↑ higher is better" if higher else "↓ lower is better"
    best = _best(entry["values"], higher)
    extra = {
        "cnn": entry.get("model", ""),
        "mlp": "",
        "baseline": task.baseline_name if task is not None else "",
    }
    cells = "".join(
        f'<td class="num{" best" if m in best else ""}" data-method="{m}"'
        + (' title="best of the three"' if m in best else "")
        + f"><span class='value'>{_cell(entry['values'].get(m))}</span>"
        + (f"<span class='small'>{html.escape(extra[m])}</span>" if extra[m] else "")
        + "</td>"
        for m, _ in _METHODS
    )
    return (
        f'<tr id="{html.escape(name, quote=True)}"><td class="figure">{figure}</td>'
        f'<td class="task"><a class="task" href="{report}">{html.escape(name)}</a>{description}'
        f'<span class="small"><a href="{report}">full report →</a></span></td>'
        f"<td class='metric'><code>{html.escape(metric)}</code><span class='small'>{arrow}"
        + (f"; {html.escape(meaning)}" if meaning else "")
        + f"</span></td>{cells}<td class='time'>{_duration(float(entry.get('seconds', 0)))}</td></tr>"
    )


def _write_index(out: Path, summary: dict[str, Any]) -> None:
    tasks = summary["tasks"]
    env = summary.get("environment") or {}
    total = sum(float(e.get("seconds", 0)) for e in tasks.values())
    wins = {m: 0 for m, _ in _METHODS}
    for entry in tasks.values():
        for m in _best(entry["values"], bool(entry.get("higher_is_better", True))):
            wins[m] += 1
    command = "astrocnn demo --quick" if summary.get("quick") else "astrocnn demo"
    how = (
        f"Run as <code>{command} --out DIR</code>"
        + (
            " (a fraction of each task's demo data and epochs)"
            if summary.get("quick")
            else " (each task's demo settings)"
        )
        + f", seed 0: {len(tasks)} tasks in {_duration(total)}"
        + (f" on {html.escape(env['date'][:10])}" if env.get("date") else "")
        + (f", {html.escape(env['machine'])}" if env.get("machine") else "")
        + (
            f"; astrocnn {html.escape(env['astrocnn'])}, torch {html.escape(env['torch'])}"
            if env.get("astrocnn") and env.get("torch")
            else ""
        )
        + ". Each task's data sizes, epochs and network are in its report's configuration."
    )
    scores = ", ".join(f"{label} on {wins[m]}" for m, label in _METHODS)
    header = (
        "<h1>astrocnn demo</h1>"
        "<p class='lead'>Every built-in task of astrocnn, trained at a small scale. For each, a "
        "convolutional network (CNN), a fully connected network and the field's classical method "
        "are scored on the same held-out test split; the data come from each task's own simulation "
        "(the digits are real scans).</p>"
        f"<p class='run'>{how}</p>"
        f"<p class='note'>★ marks the best of the three on the task's headline metric: {scores} of "
        f"{len(tasks)} tasks. These are single small runs: each task's full report gives the "
        "standard errors that say whether a difference is real, and every other metric.</p>"
    )
    head = "".join(f"<th>{label}</th>" for _, label in _METHODS)
    rows = "".join(_task_row(out, name, entry) for name, entry in tasks.items())
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>astrocnn demo</title><style>{_INDEX_STYLE}</style></head><body>{header}"
        f"<table><tr><th>key figure</th><th>task</th><th>headline metric</th>{head}"
        f"<th>time</th></tr>{rows}</table></body></html>"
    )
    with atomic_output(out / "report.html") as tmp:
        tmp.write_text(page)
