"""The ``astrocnn`` command line."""

from __future__ import annotations

import shlex
import sys
import traceback
from pathlib import Path

import click
import torch
from rich.console import Console
from rich.table import Table

from astrocnn import __version__
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


CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 120}


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="astrocnn", message="%(prog)s %(version)s")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Convolutional networks for scientific images: train, evaluate, predict and export."""
    ctx.obj = {"debug": debug}


@cli.command("models", short_help="List the registered networks.")
def models_command() -> None:
    """List the registered networks, one line each: the zoo, then the task families' own."""
    for name in list_models():
        click.echo(f"{name:20s} {get_model_spec(name).description}")
    for name in sorted(set(list_models(families=True)) - set(list_models())):
        click.echo(f"{name:20s} {get_model_spec(name).description}")


@cli.command("summary", short_help="Print a network layer by layer: shapes and parameters.")
@click.argument("model")
@click.option("--input", "input_text", required=True, help="Input shape CxL, CxHxW or CxDxHxW, e.g. 1x64x64.")
@click.option(
    "--num-outputs", default=10, show_default=True, type=click.IntRange(min=1), help="Classes or values out."
)
@click.option("--small", is_flag=True, help="Small-image stem: no early stride-2 7x7 and max pooling.")
@click.option(
    "--width",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Scale every layer's channel count.",
)
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
    channels = f"{shape[0]} channel{'s' if shape[0] > 1 else ''}"
    table = Table(title=f"{model}, input {format_size(shape)}: {len(shape) - 1}-D, {channels}")
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
    click.echo(f"total parameters: {result.total_params:,}")


# ---- the engine ------------------------------------------------------------------------------


@cli.command("tasks", short_help="List the tasks, or show one task's data contract.")
@click.argument("name", required=False)
def tasks_command(name: str | None) -> None:
    """List the tasks; with NAME, show what that task reads: image shape and channels, classes
    and how labels are coded, the HDF5 datasets and CSV columns, an example."""
    from astrocnn.tasks import get_task, list_tasks

    if name is not None:
        import textwrap

        for line in get_task(name).data_contract().splitlines():
            click.echo(textwrap.fill(line, width=100, subsequent_indent=" " * 9, break_on_hyphens=False))
        return
    for task in list_tasks():
        click.echo(f"{task:20s} {get_task(task).description}")


@cli.command("train", short_help="Train a task's network, the fully connected one and the baseline.")
@click.argument("task", required=False)
@click.option("--model", help="Network; see `astrocnn models`.  [default: the task's, see `astrocnn tasks`]")
@click.option(
    "--data",
    type=click.Path(),
    help="Your data: HDF5 with images and labels, a CSV of image files, or what `astrocnn generate` "
    "wrote (see `astrocnn tasks TASK`).  [default: the task's built-in generator]",
)
@click.option(
    "--images-key", help="HDF5 dataset of the images in --data, groups included.  [default: images]"
)
@click.option(
    "--labels-key", help="HDF5 dataset or CSV column of the labels.  [default: labels, else targets]"
)
@click.option(
    "--nan-policy",
    type=click.Choice(["error", "median", "zero"]),
    help="NaN, infinite or masked pixels in --data: refuse the file, or fill them with the image's "
    "median or zero.  [default: error]",
)
@click.option("--epochs", type=int, help="Passes over the training data.  [default: the task's]")
@click.option("--batch-size", type=int, help="Global batch size, split over devices.  [default: the task's]")
@click.option("--lr", type=float, help="Peak learning rate (AdamW, cosine decay).  [default: the task's]")
@click.option("--seed", type=int, help="Seed of data, weights and batch order.  [default: 0]")
@click.option(
    "--config",
    "config_file",
    type=click.Path(),
    help="YAML file of options, e.g. a run's config.yaml (flags override it; it may name the task).",
)
@click.option("--out", type=click.Path(), help="Run folder.  [default: runs/TASK-YYYYMMDD-HHMMSS]")
@click.option("--devices", type=int, help="Devices (CPU processes or GPUs) per node.  [default: 1]")
@click.option("--num-nodes", type=int, help="Machines taking part.  [default: 1]")
@click.option("--strategy", help="auto, ddp, ddp_spawn, fsdp or deepspeed.  [default: auto]")
@click.option("--accelerator", help="auto, cpu, gpu, cuda or mps.  [default: auto]")
@click.option("--precision", help="32-true, 16-mixed, bf16-mixed, 64-true.  [default: 32-true]")
@click.option("--num-workers", type=int, help="Data-loading worker processes.  [default: 0]")
@click.option(
    "--compile",
    "compile_",
    type=click.Choice(["auto", "yes", "no"]),
    help="torch.compile the network: auto compiles on a GPU only.  [default: auto]",
)
@click.option(
    "--compile-mode",
    type=click.Choice(["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"]),
    help="torch.compile's mode.  [default: reduce-overhead under 5 M parameters on a GPU, else default]",
)
@click.option(
    "--data-on-device",
    type=click.Choice(["auto", "yes", "no"]),
    help="Move in-memory data to the accelerator once and draw batches there by index (auto: when "
    "they take at most half its free memory; no: per-sample loading).  [default: auto]",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Processes generating the built-in data (same data for any count).  [default: every core]",
)
@click.option(
    "--early-stopping",
    type=click.IntRange(min=0),
    help="Stop after this many epochs without a better validation loss; 0 switches it off.  "
    "[default: the task's]",
)
@click.option(
    "--ensemble",
    type=int,
    help="Networks per method, trained with seeds SEED, SEED+1, ... and scored on their mean "
    "prediction.  [default: the task's]",
)
@click.option(
    "--task-option",
    "task_option",
    multiple=True,
    metavar="KEY=VALUE",
    help="A task's own option, e.g. --task-option sizes=16,32,64 (repeatable; see `astrocnn tasks TASK`).",
)
@click.option(
    "--model-option",
    "model_option",
    multiple=True,
    metavar="KEY=VALUE",
    help="An option of the network, e.g. --model-option width=0.5 (repeatable; YAML values; see "
    "`astrocnn summary`).  [default: the task's for its own network]",
)
@click.option("--no-mlp", "no_mlp", is_flag=True, help="Skip the fully connected comparison network.")
@click.option("--no-baseline", "no_baseline", is_flag=True, help="Skip the classical baseline.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
def train_command(
    task: str | None,
    config_file,
    task_option: tuple[str, ...],
    model_option: tuple[str, ...],
    no_mlp: bool,
    no_baseline: bool,
    resume: bool,
    **flags,
) -> None:
    """Train TASK's network, compare it with a fully connected one and the classical baseline."""
    from astrocnn.engine.config import resolve
    from astrocnn.engine.train import run_training

    task = task_from_config(task, config_file, flags.get("out"), resume)
    get_task_checked(task)
    flags["compile"] = flags.pop("compile_")
    flags.update(
        train_mlp=False if no_mlp else None,
        baseline=False if no_baseline else None,
        resume=resume or None,
        task_options=parse_task_options(task_option) or None,
        model_options=parse_model_options(model_option) or None,
    )
    run = run_training(resolve(task, config_file=config_file, **flags))
    if run is not None:
        print_results(run.metrics, task=run.task)
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


def parse_model_options(items: tuple[str, ...]) -> dict[str, object]:
    """``("width=0.5", "small_input=true")`` -> ``{"width": 0.5, "small_input": True}``: each value
    read as YAML (numbers, booleans, lists); the network checks the names and values."""
    import yaml

    options: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise OptionError(f"--model-option {item!r} is not KEY=VALUE (e.g. width=0.5)")
        try:
            options[key.strip()] = yaml.safe_load(value) if value.strip() else value
        except yaml.YAMLError:
            raise OptionError(f"--model-option {item!r}: {value!r} is not a value") from None
    return options


@cli.command("evaluate", short_help="Recompute a run's metrics, on its test split or other data.")
@click.argument("run_dir", type=click.Path())
@click.option(
    "--data",
    type=click.Path(),
    help="Score every image of this labelled file instead of the run's test split.",
)
@click.option("--images-key", help="HDF5 dataset of the images in --data.  [default: the run's]")
@click.option("--labels-key", help="HDF5 dataset or CSV column of the labels.  [default: the run's]")
@click.option(
    "--compile", "compile_", is_flag=True, help="torch.compile the networks first (for large test sets)."
)
def evaluate_command(
    run_dir: str, data: str | None, images_key: str | None, labels_key: str | None, compile_: bool
) -> None:
    """Recompute a run's metrics."""
    from astrocnn.engine.evaluate import evaluate_run
    from astrocnn.engine.run import load_run

    run = load_run(run_dir)
    metrics = evaluate_run(run, data, images_key=images_key, labels_key=labels_key, compile=compile_)
    print_results(metrics, where=f"{data}" if data else "test split", task=run.task)


@cli.command("predict", short_help="Apply a trained network to FITS, HDF5, NPY/NPZ or PNG/JPEG files.")
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
@click.option(
    "--tile",
    is_flag=True,
    help="Classify every window of the training size in larger images: one row per window, with its "
    "pixel position and, for FITS with a WCS, its sky coordinates.",
)
@click.option(
    "--stride", type=click.IntRange(min=1), help="Pixels between windows with --tile.  [default: the window]"
)
@click.option(
    "--compile", "compile_", is_flag=True, help="torch.compile the network first (for many images)."
)
def predict_command(
    run_dir: str,
    inputs: tuple[str, ...],
    out: str,
    hdu: str | None,
    dataset: str | None,
    nan_policy: str,
    tile: bool,
    stride: int | None,
    compile_: bool,
) -> None:
    """Apply a trained network to FITS, HDF5, NPY/NPZ or PNG/JPEG files."""
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
        tile=tile,
        stride=stride,
        compile=compile_,
    )
    click.echo(f"wrote {path}")


@cli.command("export", short_help="Export a trained network as ONNX or safetensors.")
@click.argument("run_dir", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["onnx", "safetensors"]), required=True)
@click.option("--out", type=click.Path(), help="Folder (default RUN/export).")
def export_command(run_dir: str, fmt: str, out: str | None) -> None:
    """Export the trained network as ONNX or safetensors (+ model.json)."""
    from astrocnn.engine.export import export_run
    from astrocnn.engine.run import load_run

    click.echo(f"wrote {export_run(load_run(run_dir), fmt, out=Path(out) if out else None)}")


@cli.command("clean", short_help="Clean a FITS frame with a sky-cleaning run (noise, cosmic rays, gaps).")
@click.argument("run_dir", type=click.Path())
@click.argument("source", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="FITS file to write (never the input).")
@click.option("--hdu", help="FITS HDU (index or EXTNAME).  [default: the first 2-D image]")
@click.option("--gain", type=float, help="Electrons per ADU.  [default: the header's GAIN, else 1]")
@click.option(
    "--which", type=click.Choice(["cnn", "mlp"]), default="cnn", show_default=True, help="Which network."
)
def clean_command(
    run_dir: str, source: str, out: str, hdu: str | None, gain: float | None, which: str
) -> None:
    """Denoise a frame, flag and replace its cosmic rays, or fill its missing pixels, as RUN's
    task does (sky-denoise, sky-cosmic-rays, sky-inpaint); frames of any size, in overlapping
    tiles. Writes the cleaned image under the input's header, with CRPROB and MASK extensions."""
    from astrocnn.engine.clean import clean_file
    from astrocnn.engine.run import load_run

    hdu_value = int(hdu) if hdu is not None and hdu.isdigit() else hdu
    path = clean_file(load_run(run_dir), Path(source), Path(out), hdu=hdu_value, which=which, gain=gain)
    click.echo(f"wrote {path}")


@cli.group("generate", short_help="Generate data with astrocnn's own simulations.")
def generate_group() -> None:
    """Generate data with astrocnn's own simulations."""


@generate_group.command("ising")
@click.option("--sizes", default="16,32,64", show_default=True, help="Lattice sizes L, comma separated.")
@click.option("--temperatures", default="1.0:3.5:0.05", show_default=True, help="START:STOP:STEP or a list.")
@click.option(
    "--per-t", default=500, show_default=True, type=click.IntRange(min=1), help="Configurations per (L, T)."
)
@click.option(
    "--refine",
    default="0.16:0.02",
    show_default=True,
    help="HALF_WIDTH:STEP: add temperatures STEP apart within HALF_WIDTH of where this scan's "
    "magnetisation cumulants cross (what ising-phase's T_c estimate needs), or no.",
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Threads, one (L, T) pair each (same data for any count).  [default: every core]",
)
@click.option("--out", required=True, type=click.Path(), help="HDF5 file to write.")
def generate_ising(
    sizes: str, temperatures: str, per_t: int, refine: str, seed: int, workers, out: str
) -> None:
    """Equilibrium configurations of the 2-D Ising model (Metropolis away from T_c, Wolff near it)."""
    from rich.progress import Progress

    from astrocnn.data.writers import write_hdf5
    from astrocnn.engine.splits import available_cores
    from astrocnn.tasks.ising import analysis
    from astrocnn.tasks.ising import simulation as ising

    try:
        lattice_sizes = [int(v) for v in sizes.split(",")]
        temps = ising.parse_temperatures(temperatures)
        zoom = analysis.parse_refine(refine)
    except ValueError as error:
        raise OptionError(f"--sizes/--temperatures/--refine: {error}") from None
    if any(not 8 <= L <= 128 for L in lattice_sizes):
        raise OptionError(f"--sizes must be between 8 and 128, got {sizes}")
    with Progress(transient=True) as progress:
        bar = progress.add_task("Monte Carlo", total=len(lattice_sizes) * len(temps))

        def step(size: int, t: float) -> None:
            progress.update(bar, advance=1, description=f"L={size} T={t:.3f}")

        def more(extra) -> None:
            progress.update(bar, total=len(lattice_sizes) * (len(temps) + len(extra)))

        data = ising.generate_refined(
            lattice_sizes, temps, per_t, seed, zoom, progress=step, workers=workers or available_cores(),
            on_refine=more,
        )  # fmt: skip
    attrs = {
        "seed": seed,
        "sizes": lattice_sizes,
        "per_t": per_t,
        "refine": refine,
        "generator": "astrocnn.tasks.ising.simulation",
        "J": 1.0,
    }
    write_hdf5(out, ising.to_hdf5_datasets(data), attrs)
    n_temps = len(next(iter(data.values())))
    click.echo(f"wrote {out}: {len(lattice_sizes)} sizes x {n_temps} temperatures x {per_t} configurations")


@generate_group.command("sky")
@click.option("--n", "n_frames", default=2000, show_default=True, type=click.IntRange(min=1), help="Frames.")
@click.option("--size", default=64, show_default=True, type=click.IntRange(16, 1024), help="Pixels per side.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Processes (same frames for any count).  [default: every core]",
)
@click.option("--out", required=True, type=click.Path(), help="HDF5 file to write.")
def generate_sky(n_frames: int, size: int, seed: int, workers, out: str) -> None:
    """CCD frames in electrons: stars, galaxies, sky, noise, cosmic rays, missing pixels, with
    the clean frame, the cosmic-ray and missing-pixel masks and the star list as ground truth."""
    from dataclasses import asdict

    import numpy as np
    from rich.progress import Progress

    from astrocnn.data.writers import write_hdf5
    from astrocnn.engine.splits import available_cores
    from astrocnn.tasks.sky import simulation

    with Progress(transient=True) as progress:
        bar = progress.add_task("CCD frames", total=n_frames)
        frames = simulation.generate(
            n_frames, size, seed, workers=workers or available_cores(),
            progress=lambda k: progress.update(bar, advance=k),
        )  # fmt: skip
    frames = {k: v.astype(np.uint8) if v.dtype == bool else v for k, v in frames.items()}
    settings = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(simulation.Settings()).items()}
    attrs = {"generator": "astrocnn.tasks.sky.simulation", "seed": seed, "size": size, "units": "electrons"}
    write_hdf5(out, frames, {**attrs, **{f"settings_{k}": v for k, v in settings.items()}})
    click.echo(f"wrote {out}: {n_frames} frames of {size}x{size} pixels")


@generate_group.command("iact")
@click.option(
    "--camera",
    "camera_name",
    default="taiga",
    show_default=True,
    type=click.Choice(["taiga", "lst", "square"]),
)
@click.option("--n", "n_events", default=1000, show_default=True, type=click.IntRange(min=1), help="Events.")
@click.option(
    "--particles",
    default="gamma,proton",
    show_default=True,
    help="gamma, proton or both (taken in turn).",
)
@click.option(
    "--energy", default="0.3:100", show_default=True, help="Energy range in TeV, LOW:HIGH (power law E^-2)."
)
@click.option(
    "--proton-energy-factor",
    default=3.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Protons are drawn over --energy times this: a proton gives 0.35-0.5 of a gamma ray's light.",
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Processes (same events for any count).  [default: every core]",
)
@click.option("--out", required=True, type=click.Path(), help="HDF5 file to write.")
def generate_iact(
    camera_name: str,
    n_events: int,
    particles: str,
    energy: str,
    proton_energy_factor: float,
    seed: int,
    workers,
    out: str,
) -> None:
    """Cherenkov-telescope images of gamma-ray and proton showers (astrocnn's own Monte Carlo)."""
    from rich.progress import Progress

    from astrocnn.data.writers import write_hdf5
    from astrocnn.engine.splits import available_cores
    from astrocnn.tasks.iact import simulation
    from astrocnn.tasks.iact.camera import get_camera

    kinds = [k.strip() for k in particles.split(",") if k.strip()]
    if not kinds or any(k not in simulation.PARTICLES for k in kinds):
        raise OptionError(f"--particles must be gamma, proton or both, got {particles!r}")
    try:
        low, high = (float(v) for v in energy.split(":"))
    except ValueError:
        raise OptionError(f"--energy must be LOW:HIGH in TeV (e.g. 0.3:100), got {energy!r}") from None
    if not 0 < low <= high:
        raise OptionError(f"--energy needs 0 < LOW <= HIGH, got {energy!r}")
    camera = get_camera(camera_name)
    codes = tuple(simulation.PARTICLES.index(k) for k in kinds)
    with Progress(transient=True) as progress:
        bar = progress.add_task(f"showers on {camera_name}", total=n_events)
        ranges = {
            simulation.GAMMA: (low, high),
            simulation.PROTON: (low * proton_energy_factor, high * proton_energy_factor),
        }
        events = simulation.generate(
            camera, n_events, seed, particles=codes, energy_range=ranges,
            workers=workers or available_cores(), progress=lambda k: progress.update(bar, advance=k),
        )  # fmt: skip
    attrs = {
        "generator": "astrocnn.tasks.iact.simulation",
        "seed": seed,
        "camera": camera.name,
        "pixel_shape": camera.pixel_shape,
        "pitch": camera.pitch,
        "focal_length": camera.focal_length,
        "particles": ",".join(kinds),
        "energy_range": [low, high],
        "proton_energy_range": [low * proton_energy_factor, high * proton_energy_factor],
    }
    write_hdf5(out, simulation.to_hdf5_datasets(events, camera), attrs)
    click.echo(f"wrote {out}: {n_events} events on the {camera_name} camera ({camera.n_pixels} pixels)")


@generate_group.command("surrogate")
@click.argument("run_dir", metavar="RUN", type=click.Path())
@click.option("--n", "n_events", default=1000, show_default=True, type=click.IntRange(min=1), help="Events.")
@click.option(
    "--type", "particle", default="gamma", show_default=True,
    help="gamma, proton, or gamma,proton (in turn; protons over 3 times --energy, as generate iact).",
)  # fmt: skip
@click.option("--energy", default="1:10", show_default=True, help="Energy range in TeV, LOW:HIGH (E^-2).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", required=True, type=click.Path(), help="HDF5 file to write.")
def generate_surrogate(run_dir: str, n_events: int, particle: str, energy: str, seed: int, out: str) -> None:
    """Cherenkov-telescope events from a trained iact-generate RUN, in the format of generate iact."""
    from astrocnn.engine.run import load_run
    from astrocnn.engine.surrogate import write_surrogate

    n = write_surrogate(load_run(run_dir), out, n=n_events, particle=particle, energy=energy, seed=seed)
    click.echo(f"wrote {out}: {n} generated {particle} events from {run_dir}")


@generate_group.command("tracks")
@click.option(
    "--dims", default="2", show_default=True, type=click.Choice(["2", "3"]), help="2-D plane or 3-D volume."
)
@click.option("--size", type=click.IntRange(8, 512), help="Cells per axis.  [default: 64 in 2-D, 32 in 3-D]")
@click.option("--n", "n_events", default=1000, show_default=True, type=click.IntRange(min=1), help="Events.")
@click.option(
    "--field", default=1.0, show_default=True, type=float, help="Magnetic field in tesla (along axis 0)."
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Processes (same events for any count).  [default: every core]",
)
@click.option("--out", required=True, type=click.Path(), help="HDF5 file to write.")
def generate_tracks(dims: str, size, n_events: int, field: float, seed: int, workers, out: str) -> None:
    """Charged tracks and electromagnetic showers in a liquid-argon detector (astrocnn's own Monte Carlo)."""
    from rich.progress import Progress

    from astrocnn.data.writers import write_hdf5
    from astrocnn.engine.splits import available_cores
    from astrocnn.tasks.tracks import simulation

    spatial = int(dims)
    size = size or (64 if spatial == 2 else 32)
    if size % 8:
        raise OptionError(f"--size must be a multiple of 8 (the networks halve it three times), got {size}")
    settings = simulation.Settings(dims=spatial, size=size, b_field=field)
    with Progress(transient=True) as progress:
        bar = progress.add_task(f"{spatial}-D events", total=n_events)
        events = simulation.generate(
            settings, n_events, seed, workers=workers or available_cores(),
            progress=lambda k: progress.update(bar, advance=k),
        )  # fmt: skip
    attrs = {"generator": "astrocnn.tasks.tracks.simulation", "seed": seed, **settings.as_attrs()}
    attrs["class_names"] = list(simulation.CLASSES)
    write_hdf5(out, simulation.to_hdf5_datasets(events), attrs)
    shape = "x".join([str(size)] * spatial)
    click.echo(f"wrote {out}: {n_events} events of {shape} cells, {int(events.n_tracks.sum())} tracks")


@cli.command("compare", short_help="Train several networks on one task: size, metric, time, shifted images.")
@click.argument("task")
@click.option(
    "--models", default="mlp,simple_cnn,vgg11,googlenet,resnet18", show_default=True,
    help="Networks, comma separated (see `astrocnn models`); mlp is the task's fully connected one.",
)  # fmt: skip
@click.option(
    "--seeds", default=5, show_default=True, type=click.IntRange(min=1),
    help="Trainings per network, seeds SEED, SEED+1, ... (weights and batch order; the data stay).",
)  # fmt: skip
@click.option(
    "--shifts", default="0,1,2,4", show_default=True, help="Pixels by which the test images are shifted."
)
@click.option(
    "--shift-mode", type=click.Choice(["auto", "cyclic", "zero"]), default="auto", show_default=True,
    help="cyclic: roll the images; zero: bring in zeros; auto: cyclic where the task says its images are "
    "periodic (Task.periodic).",
)  # fmt: skip
@click.option(
    "--width", default=0.125, show_default=True, type=click.FloatRange(min=0, min_open=True),
    help="Channel scale of the classic networks (those with a small-input mode, which they use).",
)  # fmt: skip
@click.option(
    "--model-option", "model_option", multiple=True, metavar="MODEL:KEY=VALUE",
    help="An option of one network, e.g. vgg11:width=0.5 (repeatable).",
)  # fmt: skip
@click.option("--task-option", "task_option", multiple=True, metavar="KEY=VALUE", help="A task's own option.")
@click.option("--epochs", type=int, help="Passes over the training data.  [default: the task's]")
@click.option("--batch-size", type=int, help="Batch size.  [default: the task's]")
@click.option("--lr", type=float, help="Peak learning rate.  [default: the task's]")
@click.option("--n-train", type=int, help="Training images.  [default: the task's]")
@click.option("--n-val", type=int, help="Validation images.  [default: the task's]")
@click.option("--n-test", type=int, help="Test images.  [default: the task's]")
@click.option("--seed", type=int, help="The data's seed and the first network seed.  [default: 0]")
@click.option("--accelerator", help="auto, cpu, gpu, cuda or mps.  [default: auto]")
@click.option("--no-baseline", "no_baseline", is_flag=True, help="Skip the classical baseline.")
@click.option(
    "--out", type=click.Path(), help="Folder for the table, figures and runs.  [default: compare-TASK]"
)
def compare_command(
    task: str, models: str, seeds: int, shifts: str, shift_mode: str, width: float,
    model_option: tuple[str, ...], task_option: tuple[str, ...], no_baseline: bool, out: str | None, **flags,
) -> None:  # fmt: skip
    """Train each network of --models on TASK's data --seeds times and write a table (Markdown,
    CSV, JSON) and figures: parameters, the task's headline metric (mean and spread over the
    seeds), training time, and the metric when every test image is shifted by --shifts pixels."""
    from astrocnn.engine.compare import compare
    from astrocnn.engine.compare_report import markdown

    # the command as resolved, recorded with the results: every value that shapes them
    given = [f"--{k.replace('_', '-')}={v}" for k, v in flags.items() if v is not None]
    given += [f"--model-option={o}" for o in model_option] + [f"--task-option={o}" for o in task_option]
    command = ["astrocnn", "compare", task, f"--models={models}", f"--seeds={seeds}", f"--shifts={shifts}"]
    command += [f"--shift-mode={shift_mode}"] if shift_mode != "auto" else []
    command += [f"--width={width:g}"] if width != 0.125 else []
    command += [*given, *(["--no-baseline"] if no_baseline else []), *([f"--out={out}"] if out else [])]

    options: dict[str, dict[str, object]] = {}
    for item in model_option:
        model, sep, rest = item.partition(":")
        if not sep or not model.strip():
            raise OptionError(f"--model-option {item!r} is not MODEL:KEY=VALUE (e.g. vgg11:width=0.5)")
        options.setdefault(model.strip(), {}).update(parse_model_options((rest,)))
    results = compare(
        task, models=models, seeds=seeds, shifts=shifts, out=out, shift_mode=shift_mode, width=width,
        options=options, baseline=not no_baseline, task_options=parse_task_options(task_option) or None,
        command=shlex.join(command), **flags,
    )  # fmt: skip
    click.echo(markdown(results), nl=False)
    click.echo(f"wrote {Path(out or f'compare-{task}') / 'compare.md'} (and .csv, .json, figures)")


@cli.command("demo", short_help="Train every task at a small scale and print one table.")
@click.option("--out", type=click.Path(), default="demo-out", show_default=True)
@click.option("--quick", is_flag=True, help="Smaller data and fewer epochs (about 3 minutes).")
def demo_command(out: str, quick: bool) -> None:
    """Run every task at a small scale and print one comparison table."""
    from astrocnn.engine.demo import run_demo

    run_demo(Path(out), quick=quick)


def task_from_config(
    task: str | None, config_file: str | None, out: str | None = None, resume: bool = False
) -> str:
    """TASK from the command line, else the one the --config file names, else (with --resume) the
    one the run folder's configuration names."""
    if task is not None:
        return task
    if resume and out is not None and config_file is None and (Path(out) / "config.yaml").is_file():
        config_file = str(Path(out) / "config.yaml")
    if config_file is not None:
        from astrocnn.engine.config import load_yaml

        named = load_yaml(config_file).get("task")
        if isinstance(named, str) and named:
            return named
        raise OptionError(
            f"{config_file}: names no task; give it: astrocnn train TASK --config {config_file}"
        )
    raise OptionError(
        "missing TASK: astrocnn train TASK (see `astrocnn tasks`), --config FILE naming it, or "
        "--out RUN --resume"
    )


def get_task_checked(name: str) -> None:
    from astrocnn.tasks import get_task

    get_task(name)


def _cell(value) -> str:
    """One number format everywhere: counts with thousands separators, others to 4 figures."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() and abs(value) >= 1e4 else f"{value:.4g}"
    return str(value)


def print_results(metrics: dict, *, where: str = "test split", task=None) -> None:
    """The metrics of every method side by side, with their standard errors where the run has
    them (``<metric>_err``); per-bin lists are left to metrics.json and the report's plots."""
    results = metrics["results"]
    methods = list(results)
    first = results[methods[0]]
    n = first.get("n_test")
    title = f"{metrics['task']}: {where}" + (f" (n = {n:,})" if isinstance(n, int) else "")
    table = Table(title=title)
    table.add_column("metric")
    for m in methods:
        table.add_column("classical" if m == "baseline" else m, justify="right")
    names: list[str] = []
    for entry in results.values():
        names += [k for k, v in entry.items() if k not in names and not isinstance(v, list | dict)]
    skip = {f"{k}_err" for k in names} | {"n_test"} | {f"{k}_bins" for k in names}
    from astrocnn.engine.report import standard_error, with_error
    from astrocnn.tasks.plotting import metric_note

    own = getattr(task, "metric_notes", {}) if task is not None else {}
    for name in (k for k in names if k not in skip):
        cells = []
        for m in methods:
            value = results[m].get(name)
            err = standard_error(results[m], name) if isinstance(value, float) else None
            cells.append(with_error(value, err) if err is not None else _cell(value))
        note = metric_note(name, own)
        higher = note[1] if note else None
        arrow = " ↑" if higher is True else " ↓" if higher is False else ""
        table.add_row(name + arrow, *cells)
    Console(highlight=False).print(table)
    base = getattr(task, "baseline_name", "") if task is not None else ""
    if "baseline" in results and base:
        click.echo(f"classical: {base}")


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
