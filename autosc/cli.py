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
console = Console()

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
    console.print(table)
    console.print(
        f"MACs          {result['macs']:>14,}  ({format_count(result['macs'])}; counter: {result['counter']})"
    )
    if result["resize_macs"]:
        console.print(f"resize MACs   {result['resize_macs']:>14,}  (bilinear, 4 per output element)")
    console.print(f"params        {result['params']:>14,}  ({format_count(result['params'])})")
    console.print(
        f"activations   {result['activation_bytes']:>14,}  bytes ({format_bytes(result['activation_bytes'])}, float32, batch 1)"
    )
    for name, value in result.get("cross_check", {}).items():
        console.print(f"  {name:<34} {value:>14,}")


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
ConventionOpt = Annotated[
    str, typer.Option("--macs-convention", help="How the budget counts MACs: standard, or paper (+ 4 per BN element).")
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
    macs_convention: ConventionOpt = "standard",
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
        macs_convention=macs_convention,
    ).to_dict()
    if as_json:
        _print_json(result)
        return
    h, w = result["input_size"]
    console.print(f"[bold]{model}[/bold] at {h}x{w}, budget {_describe_budget(result['budget'])}")
    console.print(f"width {result['width']:g} ({result['width_mode']})")
    table = Table(title="shape adaptors (identity init, then projected under the budget)")
    for col in ("#", "after cell", "human size", "projected size", "factor s"):
        table.add_column(col, justify="left" if col == "after cell" else "right")
    for i, a in enumerate(result["adaptors"], start=1):
        table.add_row(
            str(i), a["name"], "x".join(map(str, a["human_size"])), "x".join(map(str, a["size"])), f"{a['s']:.4f}"
        )
    console.print(table)
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
    console.print(f"MACs ({m['convention']} convention; bilinear resize counted apart and inside the budget)")
    for label, value, extra in rows:
        console.print(f"  {label:<55} {format_count(value):>10}{extra}")
    if budget_macs:
        console.print(f"  budget use of the projected shape: {100 * projected_total / budget_macs:.2f}%")
    a = result["activation_bytes"]
    console.print(
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
    console.print(
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
    console.print(bench_table(result))
    env = result["env"]
    console.print(
        f"CPU: {env.get('cpu_model')}; onnxruntime {env.get('onnxruntime')}, onnx {env.get('onnx')}, torch {env.get('torch')}"
    )


@app.command()
def compress(
    model: Annotated[
        str | None, typer.Argument(help="Zoo name or path/to/file.py:build (may come from --preset).")
    ] = None,
    budget: BudgetOpt = None,
    memory: MemoryOpt = None,
    macs_convention: Annotated[
        str | None, typer.Option("--macs-convention", help="standard (default) or paper (+ 4 per BN element).")
    ] = None,
    data: Annotated[
        str | None, typer.Option(help="fashion-mnist, cifar10, cifar100, svhn, imagefolder:PATH or synthetic.")
    ] = None,
    data_root: Annotated[str | None, typer.Option("--data-root", help="Folder holding the dataset files.")] = None,
    download: Annotated[
        bool, typer.Option("--download", help="Let torchvision download the dataset (needs internet).")
    ] = False,
    input_size: InputSizeOpt = None,
    width: Annotated[str | None, typer.Option("--width", help="'auto' (default) or a multiplier.")] = None,
    num_classes: ClassesOpt = None,
    adaptors: AdaptorsOpt = None,
    adaptor_at: AdaptorAtOpt = None,
    epochs: Annotated[
        int | None, typer.Option(help="Training epochs (default: 200 for small inputs, 100 else).")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Batch size (default 128 small inputs, 64 else).")
    ] = None,
    lr: Annotated[float | None, typer.Option(help="Weight learning rate (SGD Nesterov, cosine).")] = None,
    weight_decay: Annotated[
        float | None, typer.Option("--weight-decay", help="Weight decay (MobileNetV2 4e-5, else 5e-4).")
    ] = None,
    alpha_optimizer: Annotated[str | None, typer.Option("--alpha-optimizer", help="adam (default) or sgd.")] = None,
    alpha_lr: Annotated[float | None, typer.Option("--alpha-lr", help="Alpha learning rate.")] = None,
    alpha_step: Annotated[
        int | None, typer.Option("--alpha-step", help="Alpha update every N batches (0: auto, ~600 per run).")
    ] = None,
    alpha_pass: Annotated[
        str | None,
        typer.Option(
            "--alpha-pass", help="shared (alphas use the weight step's gradient) or separate (extra pass, ref)."
        ),
    ] = None,
    cost_term: Annotated[
        bool | None,
        typer.Option(
            "--cost-term/--no-cost-term",
            help="Alphas also see their MACs' cost (budget Lagrangian; default on). Off: loss only (ref).",
        ),
    ] = None,
    shape_until: Annotated[
        float | None,
        typer.Option(
            "--shape-until", help="Fraction of training during which the shape learns (default 0.5); then fixed."
        ),
    ] = None,
    collapse: Annotated[
        bool | None,
        typer.Option(
            "--collapse/--no-collapse",
            help="When the shape is fixed, keep one branch per adaptor; the weights fine-tune the plain resize.",
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for initialisation, data order and augmentation.")] = None,
    subset: Annotated[int | None, typer.Option(help="Train on a seeded random subset of N images.")] = None,
    test_subset: Annotated[int | None, typer.Option("--test-subset", help="Evaluate on N test images.")] = None,
    workers: Annotated[int | None, typer.Option(help="Data-loader worker processes.")] = None,
    channels_last: Annotated[
        bool | None,
        typer.Option(
            "--channels-last/--no-channels-last", help="NHWC activations while training (default on: faster on CPU)."
        ),
    ] = None,
    device: Annotated[
        str | None, typer.Option("--device", help="auto (CUDA when present), cpu, cuda or cuda:N.")
    ] = None,
    amp: Annotated[
        str | None,
        typer.Option("--amp", help="Mixed precision: off (default), bf16 or fp16; alphas and budget stay float32."),
    ] = None,
    baseline: Annotated[
        bool, typer.Option("--baseline", help="Also train the human network at the width that fits the budget.")
    ] = False,
    latency_runs: Annotated[
        int | None, typer.Option("--latency-runs", help="Timed ONNX Runtime runs per model.")
    ] = None,
    exporter: Annotated[
        str | None, typer.Option(help="ONNX exporter: dynamo (default) or torchscript (faster).")
    ] = None,
    opset: Annotated[int | None, typer.Option(help="ONNX opset (>= 17, default 18).")] = None,
    out: Annotated[str | None, typer.Option("--out", help="Run folder (default exports/<model>-<budget>/).")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out (or the default folder).")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing run folder.")] = False,
    preset: Annotated[
        str | None, typer.Option("--preset", help="A TOML preset (budgets/*.toml); flags override it.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar or log lines (for scripts).")] = False,
) -> None:
    """Compress a network under a budget: train weights and shapes, freeze, export to ONNX, measure, report."""
    from .compress import compress as run_compress

    result = run_compress(
        model,
        preset=preset,
        command=None,
        budget=budget,
        memory=memory,
        macs_convention=macs_convention,
        data=data,
        data_root=data_root,
        download=download or None,
        input_size=input_size,
        width=width,
        num_classes=num_classes,
        adaptors=_adaptor_choice(adaptors, adaptor_at),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        alpha_optimizer=alpha_optimizer,
        alpha_lr=alpha_lr,
        alpha_step=alpha_step,
        alpha_pass=alpha_pass,
        cost_term=cost_term,
        shape_until=shape_until,
        collapse=collapse,
        seed=seed,
        subset=subset,
        test_subset=test_subset,
        workers=workers,
        channels_last=channels_last,
        device=device,
        amp=amp,
        baseline=baseline or None,
        latency_runs=latency_runs,
        exporter=exporter,
        opset=opset,
        out=out,
        resume=resume,
        force=force,
        quiet=quiet,
    )
    if not result.completed:
        raise typer.Exit(130)
    if not quiet and result.report:  # under torchrun only rank 0 has a report; the other ranks print nothing
        r = result.report
        acc = r["accuracy"]["final"]
        console.print(
            f"done: {result.run_dir} | top-1 {100 * acc:.2f}% | MACs {format_count(r['macs']['final_total'])} "
            f"(budget {_describe_budget(r['budget'])}) | ONNX p50 {r['latency_ms']['compressed']['p50']:.2f} ms "
            f"vs human {r['latency_ms']['human']['p50']:.2f} ms | see {result.run_dir / 'report.md'}"
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
