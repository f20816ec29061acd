"""``report.html``: one self-contained page per run (configuration, metrics table, plots inline)."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from astrocnn.data.writers import atomic_output

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc; padding: .3em .7em; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; } img { max-width: 100%; margin: .5em 0; }
"""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value)
    return html.escape(str(value)) if value is not None else "n/a"


def metrics_table(results: dict[str, dict[str, Any]]) -> str:
    methods = list(results)
    names: list[str] = []
    for entry in results.values():
        names += [k for k in entry if k not in names]
    rows = "".join(
        f"<tr><th>{html.escape(n)}</th>"
        + "".join(f'<td class="num">{_fmt(results[m].get(n))}</td>' for m in methods)
        + "</tr>"
        for n in names
    )
    head = "".join(f"<th>{html.escape(m)}</th>" for m in methods)
    return f"<table><tr><th>metric</th>{head}</tr>{rows}</table>"


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_report(run_dir: Path) -> Path:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    config = (run_dir / "config.yaml").read_text()
    figures = "".join(
        f"<h3>{html.escape(p.stem.replace('_', ' '))}</h3>"
        f'<img alt="{html.escape(p.stem)}" src="data:image/png;base64,{_b64(p)}">'
        for p in sorted((run_dir / "plots").glob("*.png"))
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>astrocnn: {html.escape(metrics['task'])}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(metrics['task'])}</h1>"
        f"<h2>Metrics (test split)</h2>{metrics_table(metrics['results'])}"
        f"<h2>Plots</h2>{figures}<h2>Configuration</h2><pre>{html.escape(config)}</pre></body></html>"
    )
    path = run_dir / "report.html"
    with atomic_output(path) as tmp:
        tmp.write_text(page)
    return path
