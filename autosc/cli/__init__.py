"""The ``autosc`` command line: a thin typer layer over the Python API."""

from __future__ import annotations

import inspect
import json
import os
import sys
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from . import api
from .config import RunConfig, default_of, field_types
from .cost.budget import Budget
from .cost.latency_probe import Timing
from .errors import AutoscError
from .run.progress import Display
from .units import format_bytes, format_count, format_ms

if TYPE_CHECKING:
    from .report import Report

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


PANELS = {
    "plan": "Model and budget",
    "dataset": "Data",
    "train": "Training",
    "export": "Export and timing",
    None: "Run",
}


def _config_options(groups: tuple[str | None, ...]) -> list[inspect.Parameter]:
    """Typer options for the :class:`RunConfig` fields of ``groups``, derived from the fields themselves.

    Every option defaults to None ("not given"), so a preset's value or the
    field's own default applies; ``--help`` shows that default beside the help.
    """
    hints = field_types()
    params = []
    for group, f in RunConfig.option_fields():
        if group not in groups or not f.metadata.get("cli", True):
            continue
        kind = f.metadata.get("cli_type") or _base_type(hints[f.name])
        flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
        if kind is bool and "/" not in flag and f.metadata.get("flag") is None:
            flag = f"{flag}/--no-{f.name.replace('_', '-')}"
        default = default_of(f)
        help_text = f.metadata.get("help", "") + (f" (default: {default})" if default not in (None, False) else "")
        info = typer.Option(flag, help=help_text, rich_help_panel=PANELS[group], show_default=False)
        annotation = Annotated[kind | None, info]
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation))
    return params


def _base_type(hint: object) -> type:
    """The one type an option reads from the command line: ``int | None`` -> int, ``list[str] | None`` -> list[str]."""
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    return args[0]


def _command(name: str, fn, params: list[inspect.Parameter], doc: str) -> None:
    """Register ``fn(**options)`` as a typer command whose options are ``params``."""
    fn.__signature__ = inspect.Signature(params)
    fn.__annotations__ = {p.name: p.annotation for p in params}
    fn.__doc__ = doc
    app.command(name)(fn)


def _plan(model: str, in_channels: int = 3, as_json: bool = False, **options) -> None:
    config = RunConfig.from_flat({**options, "model": model})
    timing = Timing(progress=Display(quiet=False).counter("measuring the latency model"))
    plan = api.plan(model, config, in_channels=in_channels, timing=timing)
    result = plan.to_dict()
    if plan.width_note:
        result["width_note"] = plan.width_note
    if as_json:
        _print_json(result)
        return
    _print_plan(model, result)


def _print_plan(model: str, result: dict) -> None:
    h, w = result["input_size"]
    console.print(f"[bold]{model}[/bold] at {h}x{w}, budget {Budget.from_dict(result['budget']).describe()}")
    console.print(f"width {result['width']:g} ({result['width_mode']})")
    if result.get("trained_width") is not None:
        console.print(f"trained network: {result['weights']} at width {result['trained_width']:g}")
    if result.get("width_note"):
        console.print(result["width_note"])
    standard = result.get("mode", "autosc") != "autosc"
    if standard:
        count = sum(a.get("kind") == "standard" for a in result["adaptors"])
        console.print(
            f"mode {result['mode']}: {count} adaptors replace the human resizes (their cells run at stride 1)"
        )
    table = Table(title="shape adaptors (identity init, then projected under the budget)")
    columns = ("#", "after cell", *(("replaces", "map at stride 1") if standard else ()), "human size",
               "projected size", "factor s")  # fmt: skip
    for col in columns:
        table.add_column(col, justify="left" if col in ("after cell", "replaces") else "right")
    for i, a in enumerate(result["adaptors"], start=1):
        kind = (
            "human resize" if a.get("kind") == "standard" else "-",
            "x".join(map(str, a.get("stride1_size", a["human_size"]))),
        )
        table.add_row(
            str(i), a["name"], *(kind if standard else ()), "x".join(map(str, a["human_size"])),
            "x".join(map(str, a["size"])), f"{a['s']:.4f}",
        )  # fmt: skip
    console.print(table)
    m = result["macs"]
    budget_macs = result["budget"]["macs"]
    projected_total = m["projected"] + m["projected_resize"]
    rows = [
        (
            f"{'trained' if result.get('trained_width') else 'human'} network (width {result.get('trained_width') or 1:g})",
            m["human"],
            "",
        ),
        (
            f"widened (width {result['width']:g}, identity shape)"
            if not standard
            else f"widened (width {result['width']:g}, every adapted map at stride 1)",
            m["widened"],
            f" + {format_count(m['widened_resize'])} resize",
        ),
        *(
            [
                (
                    f"identity start (the human shape, width {result['width']:g})",
                    m["start"],
                    f" + {format_count(m['start_resize'])} resize",
                )
            ]
            if standard
            else []
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
    if "latency_ms" in result:
        _print_latency(result["latency_ms"], result["budget"]["latency_ms"])


def _print_latency(lat: dict, budget_ms: float) -> None:
    """The latency envelope: the human network measured, the rest predicted by the latency model."""
    threads = "1 thread" if lat["threads"] == 1 else f"{lat['threads']} threads"
    console.print(f"latency (ONNX Runtime p50, {threads}, batch {lat['batch']}; budget {format_ms(budget_ms)})")
    rows = [
        ("human network (measured)", lat["human_measured"]),
        ("widened, identity shape (predicted)", lat["widened"]),
        ("projected identity shape (predicted)", lat["projected"]),
        ("smallest reachable (predicted)", lat["floor"]),
    ]
    for label, value in rows:
        if value is not None:
            console.print(f"  {label:<55} {format_ms(value):>10}")
    fit = lat["model_fit"]
    console.print(
        f"  latency model: worst in-sample error {100 * fit['max_abs_error']:.1f}% over {fit['probes']} probe shapes"
    )


_command(
    "plan",
    _plan,
    [
        inspect.Parameter("model", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=ModelArg),
        *_config_options(("plan",)),
        inspect.Parameter("in_channels", inspect.Parameter.KEYWORD_ONLY, default=3, annotation=InChannelsOpt),
        inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=JsonOpt),
    ],
    "Show, without training, the width, the adaptor places and the MACs envelope for a budget.",
)


@app.command()
def export(
    path: Annotated[str, typer.Argument(help="A frozen model (frozen.pt) or a training checkpoint (checkpoint.pt).")],
    output: Annotated[str, typer.Option("--output", "-o", help="Where to write the .onnx file.")] = "model.onnx",
    opset: Annotated[int, typer.Option(help="ONNX opset (>= 17).")] = 18,
    exporter: Annotated[str, typer.Option(help="dynamo (default) or torchscript.")] = "dynamo",
    static_batch: Annotated[
        bool, typer.Option("--static-batch", help="Fix the batch at 1 instead of leaving it dynamic.")
    ] = False,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", help="The builder (file.py:build) of a network that is not a zoo one; never read from the file."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Export a frozen network to ONNX, checked against PyTorch with onnxruntime (optimisation off and on)."""
    result = api.export_model(
        path, output, opset=opset, exporter=exporter, dynamic_batch=not static_batch, model=model
    ).to_dict()
    if as_json:
        _print_json(result)
        return
    console.print(
        f"wrote {result['path']} ({result['exporter']} exporter, opset {result['opset']}, "
        f"{result['resize_nodes']} Resize nodes with constant sizes, {result['pooled_resizes']} exact halves as "
        f"average pools); onnxruntime vs PyTorch max abs diff "
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


_RUN_OPTIONS = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
    for name, default, annotation in (
        ("preset", None, Annotated[str | None, typer.Option("--preset", help="A TOML preset (budgets/*.toml); flags override it.", rich_help_panel=PANELS[None])]),
        ("out", None, Annotated[str | None, typer.Option("--out", help="Run folder (default exports/<model>-<budget>/).", rich_help_panel=PANELS[None])]),
        ("resume", False, Annotated[bool, typer.Option("--resume", help="Continue the run in --out (or the default folder).", rich_help_panel=PANELS[None])]),
        ("force", False, Annotated[bool, typer.Option("--force", help="Replace an existing run folder.", rich_help_panel=PANELS[None])]),
        ("quiet", False, Annotated[bool, typer.Option("--quiet", help="No progress bar or log lines (for scripts).", rich_help_panel=PANELS[None])]),
    )
]  # fmt: skip
_MODEL_PARAM = inspect.Parameter(
    "model",
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    default=None,
    annotation=Annotated[
        str | None, typer.Argument(help="Zoo name or path/to/file.py:build (may come from --preset).")
    ],
)


def _finish(result, quiet: bool, against: Callable[[Report], str]) -> None:
    """Exit with a stopped run's code, else print the one-line summary; ``against``: what the MACs are set beside."""
    if not result.completed:
        raise typer.Exit(result.exit_code)
    if not quiet and result.report is not None:  # under torchrun only rank 0 has a report
        r = result.report
        console.print(
            f"done: {result.run_dir} | top-1 {100 * r.accuracy.final:.2f}% | MACs {format_count(r.macs.final_total)} "
            f"({against(r)}) | ONNX p50 {r.latency_ms.compressed.p50:.2f} ms "
            f"vs human {r.latency_ms.human.p50:.2f} ms | see {result.run_dir / 'report.md'}"
        )


def _compress(model: str | None = None, **options) -> None:
    from .run import compress as run_compress

    _finish(run_compress(model, **options), options.get("quiet"), lambda r: f"budget {Budget.from_dict(r.budget).describe()}")


_command(
    "compress",
    _compress,
    [_MODEL_PARAM, *_config_options(("plan", "dataset", "train", "export", None)), *_RUN_OPTIONS],
    "Compress a network under a budget: train weights and shapes, freeze, export to ONNX, measure, report.",
)


def _transfer(model: str | None = None, **options) -> None:
    from .run import transfer as run_transfer

    _finish(run_transfer(model, **options), options.get("quiet"), lambda r: f"human {format_count(r.macs.human)}")


_command(
    "transfer",
    _transfer,
    [_MODEL_PARAM, *_config_options(("plan", "dataset", "train", "export", None)), *_RUN_OPTIONS],
    "Fine-tune a trained network (--weights) on new data with its resizes learned (AutoTL): standard shape "
    "adaptors at s=0.55, a new classifier, no budget unless one is given; writes a run folder like compress.",
)


def main(argv: list[str] | None = None) -> int:
    """Entry point, and the one error boundary: a user's error is one line and exit code 2, never a traceback.

    Usage errors, bad input (:class:`AutoscError`), a full disk or an unwritable path, and running out of
    memory are the user's to fix; anything else is a bug in autosc, reported in one line that points to the
    full traceback in a log file.
    """
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        result = app(args=argv, prog_name="autosc", standalone_mode=False)
    except AutoscError as exc:
        err.print(f"error: {exc}", markup=False)
        return 2
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        return 130
    except MemoryError:
        err.print("error: out of memory; lower --batch-size, --input-size or --width", markup=False)
        return 2
    except OSError as exc:  # a full disk, a permission, a path that is a folder: the user's to fix
        where = f": {exc.filename}" if exc.filename else ""
        err.print(f"error: {exc.strerror or exc}{where}", markup=False)
        return 2
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
        log = _write_traceback(exc)
        err.print(
            f"error: internal error in autosc (a bug, please report it): {type(exc).__name__}: "
            f"{(str(exc).splitlines() or [''])[0][:200]}; full traceback in {log}",
            markup=False,
        )
        return 1
    return result if isinstance(result, int) else 0


def _write_traceback(exc: BaseException) -> str:
    """The full traceback of an internal error, in a temporary log file whose path the error line names."""
    import tempfile
    import traceback

    fd, path = tempfile.mkstemp(prefix="autosc-error-", suffix=".log")
    with os.fdopen(fd, "w") as handle:
        handle.write("".join(traceback.format_exception(exc)))
    return path


if __name__ == "__main__":
    raise SystemExit(main())
