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
        return 2
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
