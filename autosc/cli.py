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


BudgetOpt = Annotated[
    str | None, typer.Option("--budget", help="MACs budget: 300M, 1.2G, 95000000 or 60% of the human network.")
]
MemoryOpt = Annotated[str | None, typer.Option("--memory", help="Activation-memory budget: 4MiB, 512KB, ...")]
WidthAutoOpt = Annotated[
    str, typer.Option("--width", help="'auto' (widened human network ~1.25x the budget) or a multiplier.")
]
AdaptorsOpt = Annotated[
    int | None, typer.Option("--adaptors", help="Number of shape adaptors (default 3 under 64 px, else 4).")
]
AdaptorAtOpt = Annotated[
    list[str] | None, typer.Option("--adaptor-at", help="Place an adaptor after this cell (repeatable).")
]


def _adaptor_choice(adaptors: int | None, adaptor_at: list[str] | None) -> int | list[str] | None:
    if adaptors is not None and adaptor_at:
        raise AutoscError("give either --adaptors N or --adaptor-at NAME, not both")
    return list(adaptor_at) if adaptor_at else adaptors


@app.command()
def plan(
    model: ModelArg,
    budget: BudgetOpt = None,
    memory: MemoryOpt = None,
    input_size: InputSizeOpt = None,
    width: WidthAutoOpt = "auto",
    num_classes: ClassesOpt = None,
    in_channels: InChannelsOpt = 3,
    adaptors: AdaptorsOpt = None,
    adaptor_at: AdaptorAtOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show, without training, the width, the adaptor places and the MACs envelope for a budget."""
    result = api.plan(
        model,
        budget=budget,
        memory=memory,
        input_size=input_size,
        width=width,
        num_classes=num_classes,
        in_channels=in_channels,
        adaptors=_adaptor_choice(adaptors, adaptor_at),
    ).to_dict()
    if as_json:
        _print_json(result)
        return
    h, w = result["input_size"]
    out.print(f"[bold]{model}[/bold] at {h}x{w}, budget {_describe_budget(result['budget'])}")
    out.print(f"width {result['width']:g} ({result['width_mode']})")
    table = Table(title="shape adaptors (identity init, then projected under the budget)")
    for col in ("#", "after cell", "human size", "projected size", "factor s"):
        table.add_column(col, justify="left" if col == "after cell" else "right")
    for i, a in enumerate(result["adaptors"], start=1):
        table.add_row(
            str(i), a["name"], "x".join(map(str, a["human_size"])), "x".join(map(str, a["size"])), f"{a['s']:.4f}"
        )
    out.print(table)
    m = result["macs"]
    budget_macs = result["budget"]["macs"]
    projected_total = m["projected"] + m["projected_resize"]
    rows = [
        ("human network (width 1)", m["human"], ""),
        (
            f"widened (width {result['width']:g}, identity shape)",
            m["widened"],
            f" + {format_count(m['widened_resize'])} resize",
        ),
        (
            f"projected identity shape (P = {result['projection_scale']:.4f})",
            m["projected"],
            f" + {format_count(m['projected_resize'])} resize = {format_count(projected_total)}",
        ),
        ("smallest reachable (every adapted map at its floor)", m["floor"], ""),
    ]
    out.print("MACs (standard convention: conv + linear; bilinear resize counted apart and inside the budget)")
    for label, value, extra in rows:
        out.print(f"  {label:<55} {format_count(value):>10}{extra}")
    if budget_macs:
        out.print(f"  budget use of the projected shape: {100 * projected_total / budget_macs:.2f}%")
    a = result["activation_bytes"]
    out.print(
        f"activations: human {format_bytes(a['human'])}, widened {format_bytes(a['widened'])}, projected {format_bytes(a['projected'])}"
    )


def _describe_budget(budget: dict) -> str:
    parts = []
    if budget["macs"] is not None:
        parts.append(f"{format_count(budget['macs'])} MACs")
    if budget["memory_bytes"] is not None:
        parts.append(f"{format_bytes(budget['memory_bytes'])} activations")
    return " and ".join(parts)


@app.command()
def export(
    path: Annotated[str, typer.Argument(help="A frozen model (frozen.pt) or a training checkpoint (checkpoint.pt).")],
    output: Annotated[str, typer.Option("--output", "-o", help="Where to write the .onnx file.")] = "model.onnx",
    opset: Annotated[int, typer.Option(help="ONNX opset (>= 17).")] = 18,
    exporter: Annotated[str, typer.Option(help="dynamo (default) or torchscript.")] = "dynamo",
    static_batch: Annotated[
        bool, typer.Option("--static-batch", help="Fix the batch at 1 instead of leaving it dynamic.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Export a frozen network to ONNX, checked against PyTorch with onnxruntime (optimisation off and on)."""
    result = api.export_model(path, output, opset=opset, exporter=exporter, dynamic_batch=not static_batch).to_dict()
    if as_json:
        _print_json(result)
        return
    out.print(
        f"wrote {result['path']} ({result['exporter']} exporter, opset {result['opset']}, "
        f"{result['resize_nodes']} Resize nodes with constant sizes); onnxruntime vs PyTorch max abs diff "
        f"{result['max_abs_diff']:.2e}"
    )


def _int_list(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise AutoscError(f"{what} must be a comma-separated list of integers such as 1,2, got {text!r}") from None
    if not values:
        raise AutoscError(f"{what} is empty; give e.g. 1,2")
    return values


@app.command()
def bench(
    model: Annotated[str, typer.Argument(help="The ONNX file to time.")],
    vs: Annotated[
        list[str] | None, typer.Option("--vs", help="Another ONNX file timed interleaved with it (repeatable).")
    ] = None,
    threads: Annotated[
        str | None, typer.Option(help="Intra-op thread counts, e.g. 1,2 (default: 1 and all cores).")
    ] = None,
    batch: Annotated[str, typer.Option(help="Batch sizes, e.g. 1,32.")] = "1",
    runs: Annotated[int, typer.Option(help="Timed runs per model and setting (>= 200 for reported figures).")] = 200,
    warmup: Annotated[int, typer.Option(help="Untimed warm-up runs.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Time ONNX files with onnxruntime on the CPU: interleaved runs, p50/p90/p99, versions and CPU model."""
    from .latency import bench as run_bench
    from .latency import bench_table

    paths = [model, *(vs or [])]
    result = run_bench(
        paths,
        threads=_int_list(threads, "--threads") if threads else None,
        batches=_int_list(batch, "--batch"),
        runs=runs,
        warmup=warmup,
    )
    if as_json:
        _print_json(result)
        return
    out.print(bench_table(result))
    env = result["env"]
    out.print(
        f"CPU: {env.get('cpu_model')}; onnxruntime {env.get('onnxruntime')}, onnx {env.get('onnx')}, torch {env.get('torch')}"
    )


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
