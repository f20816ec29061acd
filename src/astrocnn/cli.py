"""The ``astrocnn`` command line."""

from __future__ import annotations

import sys
import traceback

import click
import torch
from rich.console import Console
from rich.table import Table

from astrocnn.errors import AstroCNNError, OptionError
from astrocnn.layers.shapes import format_size
from astrocnn.models import create_model, get_model_spec, list_models
from astrocnn.summary import summarize


def parse_shape(text: str) -> tuple[int, ...]:
    """``"3x224x224"`` -> ``(3, 224, 224)``: channels then 1 to 3 spatial sizes."""
    parts = text.lower().split("x")
    if not 2 <= len(parts) <= 4 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise OptionError(
            f"--input {text!r} is not CxL, CxHxW or CxDxHxW with positive integers (e.g. 1x64x64)"
        )
    return tuple(int(p) for p in parts)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Convolutional networks for scientific images."""
    ctx.obj = {"debug": debug}


@cli.command("models")
def models_command() -> None:
    """List the registered models."""
    for name in list_models():
        click.echo(f"{name:20s} {get_model_spec(name).description}")


@cli.command("summary")
@click.argument("model")
@click.option("--input", "input_text", required=True, help="Input shape CxL, CxHxW or CxDxHxW, e.g. 1x64x64.")
@click.option("--num-outputs", default=10, show_default=True, type=click.IntRange(min=1))
@click.option("--small", is_flag=True, help="Small-image stem: no early stride-2 7x7 and max pooling.")
@click.option("--width", default=1.0, show_default=True, type=click.FloatRange(min=0, min_open=True))
@click.option(
    "--compare-mlp", is_flag=True, help="Also count a fully connected network as wide as the feature maps."
)
def summary_command(
    model: str, input_text: str, num_outputs: int, small: bool, width: float, compare_mlp: bool
) -> None:
    """Print MODEL layer by layer: output shape and parameters."""
    shape = parse_shape(input_text)
    spec = get_model_spec(model)
    options = {}
    if width != 1.0:
        options["width"] = width
    if small:
        if "small_input" not in spec.options:
            raise OptionError(f"{model} has no small-input variant (--small)")
        options["small_input"] = True
    if spec.needs_input_size:
        options["input_size"] = shape[1:]
    with torch.device("meta"):  # shapes and counts only: no memory, no initialisation cost
        net = create_model(
            model, spatial_dims=len(shape) - 1, in_channels=shape[0], num_outputs=num_outputs, **options
        )
    result = summarize(net, shape)
    table = Table(title=f"{model}, input {format_size(shape)}")
    table.add_column("layer", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("output", justify="right", no_wrap=True)
    table.add_column("parameters", justify="right", no_wrap=True)
    for row in result.rows:
        out = format_size(row.output_shape) if row.output_shape is not None else "(training only)"
        table.add_row(row.name, row.kind, out, f"{row.params:,}")
    Console(width=max(100, Console().width), highlight=False).print(table)
    if compare_mlp:
        dense = result.mlp_equivalent_params()
        click.echo(
            f"fully connected network, same depth, layers as wide as the feature maps: {dense:,} parameters "
            f"({dense / result.total_params:,.0f} times as many)"
        )
    click.echo(f"total parameters: {result.total_params}")


# ---- the engine ------------------------------------------------------------------------------


@cli.command("tasks")
def tasks_command() -> None:
    """List the registered tasks."""
    from astrocnn.tasks import get_task, list_tasks

    for name in list_tasks():
        click.echo(f"{name:20s} {get_task(name).description}")


@cli.command("train")
@click.argument("task")
@click.option("--model", help="Network (default: the task's); see `astrocnn models`.")
@click.option(
    "--data", type=click.Path(), help="Labelled data: HDF5 with images and labels, or a CSV of files."
)
@click.option("--epochs", type=int)
@click.option("--batch-size", type=int, help="Global batch size (split over devices).")
@click.option("--lr", type=float, help="Learning rate.")
@click.option("--seed", type=int)
@click.option("--config", "config_file", type=click.Path(), help="YAML file of options (flags override it).")
@click.option("--out", type=click.Path(), help="Run folder (default runs/TASK-TIMESTAMP).")
@click.option("--devices", type=int, help="Devices (CPU processes or GPUs) per node.")
@click.option("--num-nodes", type=int)
@click.option("--strategy", help="auto, ddp, ...")
@click.option("--accelerator", help="auto, cpu, gpu, ...")
@click.option("--precision", help="32-true, 16-mixed, bf16-mixed, ...")
@click.option("--num-workers", type=int, help="Data-loading worker processes.")
@click.option(
    "--ensemble",
    type=int,
    help="Networks per method, trained with seeds SEED, SEED+1, ... (default: the task's).",
)
@click.option(
    "--task-option",
    "task_option",
    multiple=True,
    metavar="KEY=VALUE",
    help="A task's own option, e.g. --task-option sizes=16,32,64 (see the task's documentation).",
)
@click.option("--no-mlp", "no_mlp", is_flag=True, help="Skip the fully connected comparison network.")
@click.option("--no-baseline", "no_baseline", is_flag=True, help="Skip the classical baseline.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
def train_command(
    task: str,
    config_file,
    task_option: tuple[str, ...],
    no_mlp: bool,
    no_baseline: bool,
    resume: bool,
    **flags,
) -> None:
    """Train TASK's network, compare it with a fully connected one and the classical baseline."""
    from astrocnn.engine.config import resolve
    from astrocnn.engine.train import run_training

    get_task_checked(task)
    flags.update(
        train_mlp=False if no_mlp else None,
        baseline=False if no_baseline else None,
        resume=resume or None,
        task_options=parse_task_options(task_option) or None,
    )
    run = run_training(resolve(task, config_file=config_file, **flags))
    if run is not None:
        print_results(run.metrics)
        click.echo(f"run folder: {run.path}")


def parse_task_options(items: tuple[str, ...]) -> dict[str, str]:
    """``("sizes=16,32",)`` -> ``{"sizes": "16,32"}``; the task parses the values."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise OptionError(f"--task-option {item!r} is not KEY=VALUE (e.g. sizes=16,32,64)")
        options[key.strip()] = value.strip()
    return options


@cli.command("evaluate")
@click.argument("run_dir", type=click.Path())
@click.option(
    "--data", type=click.Path(), help="Evaluate on this labelled data instead of the run's test split."
)
def evaluate_command(run_dir: str, data: str | None) -> None:
    """Recompute a run's metrics."""
    from astrocnn.engine.evaluate import evaluate_run
    from astrocnn.engine.run import load_run

    print_results(evaluate_run(load_run(run_dir), data))


@cli.command("predict")
@click.argument("run_dir", type=click.Path())
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="CSV for values, FITS or HDF5 for images.")
@click.option("--hdu", help="FITS HDU (index or EXTNAME).")
@click.option("--dataset", help="HDF5 dataset or NPZ key.")
@click.option(
    "--nan-policy",
    type=click.Choice(["error", "median", "zero"]),
    default="error",
    show_default=True,
    help="NaN, infinite or masked pixels: refuse the file, or fill them with the median or zero.",
)
def predict_command(
    run_dir: str, inputs: tuple[str, ...], out: str, hdu: str | None, dataset: str | None, nan_policy: str
) -> None:
    """Apply a trained network to FITS, HDF5, NPY/NPZ or PNG/JPEG files."""
    from pathlib import Path

    from astrocnn.engine.predict import predict_files
    from astrocnn.engine.run import load_run

    hdu_value = int(hdu) if hdu is not None and hdu.lstrip("-").isdigit() else hdu
    path = predict_files(
        load_run(run_dir),
        [Path(p) for p in inputs],
        Path(out),
        hdu=hdu_value,
        dataset=dataset,
        nan_policy=nan_policy,
    )
    click.echo(f"wrote {path}")


@cli.command("export")
@click.argument("run_dir", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["onnx", "safetensors"]), required=True)
@click.option("--out", type=click.Path(), help="Folder (default RUN/export).")
def export_command(run_dir: str, fmt: str, out: str | None) -> None:
    """Export the trained network as ONNX or safetensors (+ model.json)."""
    from pathlib import Path

    from astrocnn.engine.export import export_run
    from astrocnn.engine.run import load_run

    click.echo(f"wrote {export_run(load_run(run_dir), fmt, out=Path(out) if out else None)}")


@cli.group("generate")
def generate_group() -> None:
    """Generate data with astrocnn's own simulations."""


@generate_group.command("ising")
@click.option("--sizes", default="16,32,64", show_default=True, help="Lattice sizes L, comma separated.")
@click.option("--temperatures", default="1.0:3.5:0.05", show_default=True, help="START:STOP:STEP or a list.")
@click.option(
    "--per-t", default=500, show_default=True, type=click.IntRange(min=1), help="Configurations per (L, T)."
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", required=True, type=click.Path(), help="HDF5 file to write.")
def generate_ising(sizes: str, temperatures: str, per_t: int, seed: int, out: str) -> None:
    """Equilibrium configurations of the 2-D Ising model (Metropolis away from T_c, Wolff near it)."""
    from rich.progress import Progress

    from astrocnn.data.writers import write_hdf5
    from astrocnn.tasks.ising import simulation as ising

    try:
        lattice_sizes = [int(v) for v in sizes.split(",")]
        temps = ising.parse_temperatures(temperatures)
    except ValueError as error:
        raise OptionError(f"--sizes/--temperatures: {error}") from None
    if any(not 8 <= L <= 128 for L in lattice_sizes):
        raise OptionError(f"--sizes must be between 8 and 128, got {sizes}")
    with Progress(transient=True) as progress:
        bar = progress.add_task("Monte Carlo", total=len(lattice_sizes) * len(temps))

        def step(size: int, t: float) -> None:
            progress.update(bar, advance=1, description=f"L={size} T={t:.3f}")

        data = ising.generate(lattice_sizes, temps, per_t, seed, progress=step)
    attrs = {
        "seed": seed,
        "sizes": lattice_sizes,
        "per_t": per_t,
        "generator": "astrocnn.tasks.ising.simulation",
        "J": 1.0,
    }
    write_hdf5(out, ising.to_hdf5_datasets(data), attrs)
    click.echo(
        f"wrote {out}: {len(lattice_sizes)} sizes x {len(temps)} temperatures x {per_t} configurations"
    )


@cli.command("demo")
@click.option("--out", type=click.Path(), default="demo-out", show_default=True)
@click.option("--quick", is_flag=True, help="Smaller data and fewer epochs (about 3 minutes).")
def demo_command(out: str, quick: bool) -> None:
    """Run every task at a small scale and print one comparison table."""
    from pathlib import Path

    from astrocnn.engine.demo import run_demo

    run_demo(Path(out), quick=quick)


def get_task_checked(name: str) -> None:
    from astrocnn.tasks import get_task

    get_task(name)


def print_results(metrics: dict) -> None:
    """The metrics of every method side by side (per-bin lists left to metrics.json)."""
    results = metrics["results"]
    methods = list(results)
    table = Table(title=f"{metrics['task']}: test split")
    table.add_column("metric")
    for m in methods:
        table.add_column(m, justify="right")
    names = [k for k in results[methods[0]] if not isinstance(results[methods[0]][k], list)]
    for name in names:
        cells = [results[m].get(name) for m in methods]
        table.add_row(
            name, *(f"{v:.4g}" if isinstance(v, float) else str(v) if v is not None else "" for v in cells)
        )
    Console(highlight=False).print(table)


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors become one line on stderr and exit code 2."""
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        cli.main(args=argv, prog_name="astrocnn", standalone_mode=False)
    except click.exceptions.Exit as stop:
        return stop.exit_code
    except click.exceptions.Abort:
        click.echo("astrocnn: interrupted", err=True)
        return 130
    except click.ClickException as error:
        click.echo(f"astrocnn: error: {error.format_message()}", err=True)
        return 2
    except AstroCNNError as error:
        if debug:
            traceback.print_exc()
        click.echo(f"astrocnn: error: {error}", err=True)
        return getattr(error, "exit_code", 2)
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
