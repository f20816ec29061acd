"""The table and figures of ``astrocnn compare``, made from its saved results (``compare.json``)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from astrocnn.data.writers import atomic_output
from astrocnn.tasks import plotting

FIGURES = ("robustness.png", "cost.png")


def _shifted(results: dict[str, Any]) -> list[int]:
    return [s for s in results["shifts"] if s != 0]


def rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per network, then the classical baseline: the numbers of the table."""
    out = []
    for name, entry in results["models"].items():
        row = {
            "model": name,
            "parameters": entry["parameters"],
            "metric_mean": entry["metric_mean"]["0"],
            "metric_std": entry["metric_std"]["0"],
            "train_seconds": entry["train_seconds_mean"],
        }
        for s in _shifted(results):
            row[f"shift{s}_mean"] = entry["metric_mean"][str(s)]
            row[f"shift{s}_std"] = entry["metric_std"][str(s)]
        out.append(row)
    if "baseline" in results:
        b = results["baseline"]
        row = {"model": f"classical: {b['name']}", "parameters": None, "metric_mean": b["metric"]["0"],
               "metric_std": 0.0, "train_seconds": b["seconds"]}  # fmt: skip
        for s in _shifted(results):
            row[f"shift{s}_mean"], row[f"shift{s}_std"] = b["metric"][str(s)], 0.0
        out.append(row)
    return out


def _pm(mean: float, std: float, seeds: int) -> str:
    return f"{mean:.4f} ± {std:.4f}" if seeds > 1 and std > 0 else f"{mean:.4f}"


def markdown(results: dict[str, Any]) -> str:
    """The table in Markdown: parameters, the metric (mean ± standard deviation over the seeds),
    training time, and the metric of the shifted test images."""
    metric, seeds = results["metric"], results["seeds"]
    shifted = _shifted(results)
    how = "rolled cyclically" if results["shift_mode"] == "cyclic" else "zeros brought in"
    head = ["model", "parameters", f"{metric}", "training (s)", *(f"shifted {s} px" for s in shifted)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows(results):
        n = seeds if row["parameters"] is not None else 1
        params = f"{row['parameters']:,}" if row["parameters"] is not None else "-"
        cells = [
            row["model"],
            params,
            _pm(row["metric_mean"], row["metric_std"], n),
            f"{row['train_seconds']:.1f}",
        ]
        cells += [_pm(row[f"shift{s}_mean"], row[f"shift{s}_std"], n) for s in shifted]
        lines.append("| " + " | ".join(cells) + " |")
    better = "higher" if results["higher_is_better"] else "lower"
    lines.append("")
    lines.append(
        f"{results['task']}, test split of {results['n_test']} images ({results['n_train']} training); "
        f"{metric} ({better} is better), mean ± standard deviation over {seeds} seed(s) from "
        f"{results['first_seed']}; shifted: each test image moved by that many pixels along each axis, "
        f"both ways ({how}), the {metric} averaged over the copies; training: seconds per seed, wall clock "
        "(checkpoints included; the classical method's fit and prediction)."
    )
    return "\n".join(lines) + "\n"


def csv_text(results: dict[str, Any]) -> str:
    table = rows(results)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(table[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    return buffer.getvalue()


def robustness_figure(results: dict[str, Any], path: Path) -> None:
    """The metric against the shift, one line per network (bars: standard deviation over seeds)."""
    plt = plotting.plt
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    shifts = results["shifts"]
    for name, entry in results["models"].items():
        mean = [entry["metric_mean"][str(s)] for s in shifts]
        std = [entry["metric_std"][str(s)] for s in shifts]
        ax.errorbar(shifts, mean, yerr=std, marker="o", capsize=3, label=f"{name} ({entry['parameters']:,})")
    if "baseline" in results:
        ax.plot(shifts, [results["baseline"]["metric"][str(s)] for s in shifts], "k--", marker="s",
                label="classical")  # fmt: skip
    how = "cyclic" if results["shift_mode"] == "cyclic" else "zero-padded"
    ax.set_xlabel(f"shift of every test image (pixels, {how})")
    ax.set_ylabel(f"test {results['metric']}")
    ax.set_xticks(shifts)
    ax.set_title(f"{results['task']}: {results['metric']} of shifted test images", fontsize=10)
    plotting.legend(ax, fontsize=8, title="network (parameters)", title_fontsize=8)
    plotting.save(fig, path)


def cost_figure(results: dict[str, Any], path: Path) -> None:
    """The metric against the number of parameters and against the training time per seed."""
    plt = plotting.plt
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.6), sharey=True, layout="constrained")
    for name, entry in results["models"].items():
        y, err = entry["metric_mean"]["0"], entry["metric_std"]["0"]
        for ax, x in zip(axes, (entry["parameters"], entry["train_seconds_mean"]), strict=True):
            ax.errorbar([x], [y], yerr=[err], marker="o", capsize=3, label=name)
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    for ax, label in zip(axes, ("parameters", "training time per seed (s)"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel(label)
    axes[0].set_ylabel(f"test {results['metric']}")
    if "baseline" in results:
        for ax in axes:
            ax.axhline(results["baseline"]["metric"]["0"], color="k", ls="--", lw=1, label="classical")
    plotting.legend(axes[1], fontsize=8)
    fig.suptitle(f"{results['task']}: {results['metric']} against size and training time", fontsize=10)
    plotting.save(fig, path)


def write_report(results: dict[str, Any], out: Path) -> None:
    """``compare.md``, ``compare.csv`` and the figures in ``out``."""
    table = markdown(results)
    command = results.get("command")
    text = f"# {results['task']}: networks compared\n\n" + (f"```\n{command}\n```\n\n" if command else "")
    text += table + "\n" + "".join(f"![{name}]({name})\n" for name in FIGURES)
    with atomic_output(out / "compare.md") as tmp:
        tmp.write_text(text)
    with atomic_output(out / "compare.csv") as tmp:
        tmp.write_text(csv_text(results))
    robustness_figure(results, out / "robustness.png")
    cost_figure(results, out / "cost.png")
