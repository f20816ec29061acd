"""``astrocnn demo``: every registered task at a small scale, one table, one summary page."""

from __future__ import annotations

import html
import json
import shutil
import time
from pathlib import Path
from typing import Any

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
    summary: dict[str, Any] = {"quick": quick, "tasks": {}}
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


def _write_index(out: Path, summary: dict[str, Any]) -> None:
    rows = "".join(
        f"<tr><td><a href='{html.escape(e['report'])}'>{html.escape(name)}</a></td>"
        f"<td>{html.escape(e['metric'])}</td>"
        + "".join(f"<td>{_cell(e['values'].get(m))}</td>" for m in ("cnn", "mlp", "baseline"))
        + f"<td>{html.escape(e['model'])}</td><td>{e['seconds']}</td></tr>"
        for name, e in summary["tasks"].items()
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>astrocnn demo</title></head><body>"
        "<h1>astrocnn demo</h1><table border='1' cellpadding='4'><tr><th>task</th><th>metric</th>"
        "<th>CNN</th><th>fully connected</th><th>classical baseline</th><th>model</th><th>seconds</th></tr>"
        f"{rows}</table>"
        f"<pre>{html.escape(json.dumps(summary, indent=2))}</pre></body></html>"
    )
    with atomic_output(out / "report.html") as tmp:
        tmp.write_text(page)
