"""The ``autosc`` command line: a thin typer layer over the Python API."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from . import api
from .errors import AutoscError
from .units import format_bytes, format_count

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="autosc: compress a CNN to a MACs or memory budget by learning where to shrink its feature maps.",
)
out = Console()

ModelArg = Annotated[
    str, typer.Argument(help="Zoo name (autosc count --list) or path/to/file.py:build or pkg.module:build.")
]
InputSizeOpt = Annotated[
    str | None, typer.Option("--input-size", help="224 or HxW such as 32x48 (default: the family's own).")
]
WidthOpt = Annotated[float, typer.Option("--width", help="Channel multiplier; channels are rounded to multiples of 8.")]
ClassesOpt = Annotated[int | None, typer.Option("--num-classes", help="Classifier outputs (default: the family's).")]
InChannelsOpt = Annotated[int, typer.Option("--in-channels", help="Input image channels.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]


@app.callback()
def _root() -> None:
    """autosc: compress a CNN to a MACs or memory budget by learning where to shrink its feature maps."""


def _print_json(data: dict) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


@app.command()
def count(
    model: ModelArg,
    input_size: InputSizeOpt = None,
    width: WidthOpt = 1.0,
    num_classes: ClassesOpt = None,
    in_channels: InChannelsOpt = 3,
    convention: Annotated[
        str, typer.Option(help="standard (FLOPs/2, BN folded) or paper (thop: + 4 per BN element).")
    ] = "standard",
    cross_check: Annotated[
        bool, typer.Option("--cross-check", help="Also count with fvcore and thop and show all three.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Count MACs, params and activation memory of a network, per cell and in total."""
    result = api.count_model(
        model,
        input_size=input_size,
        width=width,
        num_classes=num_classes,
        in_channels=in_channels,
        convention=convention,
        cross_check=cross_check,
    )
    if as_json:
        _print_json(result)
        return
    table = Table(title=f"{model} (width {width:g}) at {result['input_size'][0]}x{result['input_size'][1]}")
    for col, justify in (
        ("cell", "left"),
        ("type", "left"),
        ("output", "left"),
        ("MACs", "right"),
        ("share", "right"),
        ("params", "right"),
    ):
        table.add_column(col, justify=justify)
    total = max(result["macs"], 1)
    for cell in result["cells"]:
        shape = "x".join(str(d) for d in cell["out_shape"][1:])
        share = f"{100 * cell['macs'] / total:.1f}%" if result["convention"] == "standard" else ""
        table.add_row(
            cell["name"], cell["kind"], shape, format_count(cell["macs"]), share, format_count(cell["params"])
        )
    out.print(table)
    out.print(f"MACs          {result['macs']:>14,}  ({format_count(result['macs'])}; counter: {result['counter']})")
    if result["resize_macs"]:
        out.print(f"resize MACs   {result['resize_macs']:>14,}  (bilinear, 4 per output element)")
    out.print(f"params        {result['params']:>14,}  ({format_count(result['params'])})")
    out.print(
        f"activations   {result['activation_bytes']:>14,}  bytes ({format_bytes(result['activation_bytes'])}, float32, batch 1)"
    )
    for name, value in result.get("cross_check", {}).items():
        out.print(f"  {name:<34} {value:>14,}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: every user error becomes one line on stderr and exit code 2, never a traceback."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        result = app(args=argv, prog_name="autosc", standalone_mode=False)
    except AutoscError as exc:
        err.print(f"error: {exc}", markup=False)
        return 2
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        return 130
    except Exception as exc:
        # typer's usage errors (bad option, missing argument) carry format_message and exit_code;
        # typer vendors click in recent releases, so they are matched by shape, not by class.
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            ctx = getattr(exc, "ctx", None)
            where = (
                f"autosc {ctx.info_name} --help" if ctx is not None and ctx.info_name != "autosc" else "autosc --help"
            )
            err.print(f"error: {exc.format_message()} (see {where})", markup=False)
            return int(exc.exit_code)
        if type(exc).__name__ == "Abort":
            err.print("aborted", markup=False)
            return 1
        raise
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    raise SystemExit(main())
