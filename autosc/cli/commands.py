"""The commands, each a thin function over the Python API (autosc/api.py, autosc/run): parse, call, print.

Registered with the app in the order ``--help`` lists them: count, plan, export, bench, compress, transfer.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from .. import api
from ..config import RunConfig
from ..cost.budget import Budget
from ..cost.latency_probe import ProbeSettings
from ..errors import AutoscError
from ..prune.strategies import strategy_of
from ..run.progress import Display
from ..units import format_bytes, format_count
from .app import app, console, print_json
from .options import (
    RUN_MODEL_PARAM,
    RUN_OPTIONS,
    ClassesOpt,
    InChannelsOpt,
    InputSizeOpt,
    JsonOpt,
    ModelArg,
    WidthOpt,
    config_options,
    register,
)
from .plan_view import print_plan

if TYPE_CHECKING:
    from ..report import Report


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
        print_json(result)
        return
    _print_count(model, width, result)


def _print_count(model: str, width: float, result: dict) -> None:
    """The per-cell table, then the totals (and the other counters' totals with ``--cross-check``)."""
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


ProbeOutOpt = Annotated[str, typer.Option("--out", help="The folder to write the probes into (new, or without probes).")]


def _with_data(model: str, config: RunConfig, in_channels: int) -> tuple[RunConfig, int, tuple | None]:
    """``--data`` given to plan or probe: the data's classes and channels, and the labelled images a pruning
    criterion ranks on (``taylor``), read as compress reads them; else the options as given and no images."""
    if config.dataset.data is None:
        return config, in_channels, None
    from ..planning.make import plan_size
    from ..run.data import load_dataset, prune_batch

    bundle = load_dataset(config, plan_size(model, config.plan))
    if config.plan.num_classes is None:
        config = config.updated({"num_classes": bundle.num_classes})
    return config, bundle.channels, prune_batch(bundle, config.plan.importance)


def _plan(model: str, in_channels: int = 3, as_json: bool = False, **options) -> None:
    config = RunConfig.from_flat({**options, "model": model})
    config.export.validate()  # --quantize, before any data is read
    config, in_channels, batch = _with_data(model, config, in_channels)
    timing = ProbeSettings(progress=Display(quiet=False).counter("measuring the latency model"),
                           int8=config.export.int8)  # fmt: skip
    plan = api.plan(model, config, in_channels=in_channels, timing=timing, prune_batch=batch)
    result = plan.to_dict()
    result.update(plan.notes())
    if as_json:
        print_json(result)
        return
    print_plan(model, result)


register(
    "plan",
    _plan,
    [
        inspect.Parameter("model", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=ModelArg),
        *config_options(("plan", "dataset")),
        *config_options(("export",), only=("quantize",)),
        inspect.Parameter("in_channels", inspect.Parameter.KEYWORD_ONLY, default=3, annotation=InChannelsOpt),
        inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=JsonOpt),
    ],
    "Show, without training, the width, the adaptor places and the MACs envelope for a budget (--quantize int8: "
    "a latency budget on the INT8 network).",
)


def _probe(model: str, out: str, in_channels: int = 3, **options) -> None:
    config = RunConfig.from_flat({**options, "model": model})
    config.export.validate()  # --quantize, before any data is read
    config, in_channels, batch = _with_data(model, config, in_channels)
    console.print("exporting the probe networks ...")
    manifest = api.probe(model, out, config, in_channels=in_channels, prune_batch=batch)
    folder, plan = manifest.parent, config.plan
    same = "--latency"
    if strategy_of(plan.strategy).prune_share(plan.prune_share) > 0:  # the table describes the pruned network
        same = f"--latency {plan.latency}, --strategy {plan.strategy} and the same weights and data options"
    if config.export.int8:  # INT8 probes: the table is for a budget on the INT8 network
        same += " and --quantize int8"
    console.print(
        f"wrote the probe networks, {manifest} and {folder / 'time_probes.py'}. On the device you deploy on (Python "
        f">= 3.8 with numpy and onnxruntime): copy the folder, run `python time_probes.py` in it, bring table.json "
        f"back and give it to autosc plan or compress as --latency-table table.json (with {same}; threads "
        f"{plan.latency_threads}, batch {plan.latency_batch}, as probed)."
    )


register(
    "probe",
    _probe,
    [
        inspect.Parameter("model", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=ModelArg),
        inspect.Parameter("out", inspect.Parameter.KEYWORD_ONLY, annotation=ProbeOutOpt),
        *config_options(("plan", "dataset")),
        *config_options(("export",), only=("quantize",)),
        inspect.Parameter("in_channels", inspect.Parameter.KEYWORD_ONLY, default=3, annotation=InChannelsOpt),
    ],
    "Write the probe networks of a plan and a standalone timing script, to measure a latency table on the device "
    "you deploy on (then --latency-table; --quantize int8: INT8 probes, for a latency budget on the INT8 network).",
)


def _export(path: str, output: str = "model.onnx", static_batch: bool = False, model: str | None = None,
            as_json: bool = False, **options) -> None:  # fmt: skip
    config = RunConfig.from_flat(options, where="export options")
    config.export.validate()  # a bad --quantize is refused before anything is written
    e = config.export
    result = api.export_model(path, output, opset=e.opset, exporter=e.exporter, dynamic_batch=not static_batch,
                              model=model, pool_halves=e.pool_halves).to_dict()  # fmt: skip
    int8 = None
    if e.quantize != "none":
        int8 = api.quantize_export(path, output, config=config, seed=options.get("seed")).to_dict()
        result["quantized"] = int8
    if as_json:
        print_json(result)
        return
    console.print(
        f"wrote {result['path']} ({result['exporter']} exporter, opset {result['opset']}, "
        f"{result['resize_nodes']} Resize nodes with constant sizes, {result['pooled_resizes']} exact halves as "
        f"average pools); onnxruntime vs PyTorch max abs diff {result['max_abs_diff']:.2e}"
    )
    if int8 is not None:
        console.print(_int8_line(int8))


def _int8_line(int8: dict) -> str:
    """The INT8 file, what calibrated it and its test top-1 next to the float file's."""
    a = int8["accuracy"]
    floats = ", ".join(f"{n} {op}" for op, n in int8["float_ops"].items()) or "none"
    return (
        f"wrote {int8['path']} (INT8 QDQ, calibrated on {int8['calibration_images']} {int8['data']} training images, "
        f"seed {int8['seed']}); test top-1 {100 * a['float']:.2f}% float, {100 * a['int8']:.2f}% INT8; largest logit "
        f"difference {int8['logit_diff']:.3g}; nodes left in float: {floats}"
    )


register(
    "export",
    _export,
    [
        inspect.Parameter("path", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Annotated[str, typer.Argument(
            help="A frozen model (frozen.pt) or a training checkpoint (checkpoint.pt).")]),
        inspect.Parameter("output", inspect.Parameter.KEYWORD_ONLY, default="model.onnx", annotation=Annotated[
            str, typer.Option("--output", "-o", help="Where to write the .onnx file (INT8: beside it, .int8.onnx).")]),
        inspect.Parameter("static_batch", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[
            bool, typer.Option("--static-batch", help="Fix the batch at 1 instead of leaving it dynamic.")]),
        inspect.Parameter("model", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
            str | None, typer.Option("--model", help="The builder (file.py:build) of a network that is not a zoo "
                                     "one; never read from the file.")]),
        *config_options(("export",), only=("exporter", "opset", "pool_halves", "quantize", "calibration_images")),
        *config_options(("dataset",)),
        *config_options(("train",), only=("seed",)),
        inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=JsonOpt),
    ],
    "Export a frozen network to ONNX, checked against PyTorch with onnxruntime (optimisation off and on); with "
    "--quantize int8 also an INT8 file, calibrated on the run's training images (or --data's) and measured.",
)  # fmt: skip


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
    from ..latency import bench as run_bench
    from ..latency import bench_table

    paths = [model, *(vs or [])]
    result = run_bench(
        paths,
        threads=_int_list(threads, "--threads") if threads else None,
        batches=_int_list(batch, "--batch"),
        runs=runs,
        warmup=warmup,
    )
    if as_json:
        print_json(result)
        return
    console.print(bench_table(result))
    env = result["env"]
    console.print(
        f"CPU: {env.get('cpu_model')}; onnxruntime {env.get('onnxruntime')}, onnx {env.get('onnx')}, torch {env.get('torch')}"
    )


def _finish(result, quiet: bool, against: Callable[[Report], str]) -> None:
    """Exit with a stopped run's code, else print the one-line summary; ``against``: what the MACs are set beside."""
    if not result.completed:
        raise typer.Exit(result.exit_code)
    if not quiet and result.report is not None:  # under torchrun only rank 0 has a report
        r, q = result.report, result.report.quantized
        int8 = (f" | INT8 top-1 {100 * q.accuracy['compressed']['int8']:.2f}%, p50 "
                f"{q.latency['compressed_int8'].p50:.2f} ms" if q is not None else "")  # fmt: skip
        console.print(
            f"done: {result.run_dir} | top-1 {100 * r.accuracy.final:.2f}% | MACs {format_count(r.macs.final_total)} "
            f"({against(r)}) | ONNX p50 {r.latency_ms.compressed.p50:.2f} ms "
            f"vs human {r.latency_ms.human.p50:.2f} ms{int8} | see {result.run_dir / 'report.md'}"
        )


def _compress(model: str | None = None, **options) -> None:
    from ..run import compress as run_compress

    _finish(
        run_compress(model, **options),
        options.get("quiet"),
        lambda r: f"budget {Budget.from_dict(r.budget).describe()}",
    )


register(
    "compress",
    _compress,
    [RUN_MODEL_PARAM, *config_options(("plan", "dataset", "train", "export", None)), *RUN_OPTIONS],
    "Compress a network under a budget: train weights and shapes, freeze, export to ONNX, measure, report.",
)


def _transfer(model: str | None = None, **options) -> None:
    from ..run import transfer as run_transfer

    _finish(run_transfer(model, **options), options.get("quiet"), lambda r: f"human {format_count(r.macs.human)}")


register(
    "transfer",
    _transfer,
    [RUN_MODEL_PARAM, *config_options(("plan", "dataset", "train", "export", None)), *RUN_OPTIONS],
    "Fine-tune a trained network (--weights) on new data with its resizes learned (AutoTL): standard shape "
    "adaptors at s=0.55, a new classifier, no budget unless one is given; writes a run folder like compress.",
)
