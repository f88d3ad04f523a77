"""The Python API the CLI calls: the same functions, usable from a notebook."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from .config import PlanConfig, RunConfig
from .cost import Budget, count, fvcore_macs, thop_macs
from .cost.counters import check_convention, example_input
from .cost.terms import TERMS
from .errors import AutoscError
from .export import ExportResult, export_onnx
from .models import ModelSpec, default_input_size
from .planning import Plan, make_plan
from .resources import check_batch
from .units import input_size_text, parse_input_size

if TYPE_CHECKING:
    from .run.quantized import Int8File


def count_model(
    model: str,
    *,
    input_size: str | int | tuple[int, int] | None = None,
    width: float = 1.0,
    num_classes: int | None = None,
    in_channels: int = 3,
    convention: str = "standard",
    cross_check: bool = False,
) -> dict:
    """Build a network by name and count it; the dict is what ``autosc count --json`` prints."""
    check_convention(convention, "--convention")
    size = parse_input_size(input_size if input_size is not None else default_input_size(model))
    check_batch("--input-size", 1, (in_channels, *size))  # counting runs one image through the network
    spec = ModelSpec(model, width=width, num_classes=num_classes, in_channels=in_channels)
    net = spec.build()
    report = count(net, size, convention=convention)
    result = {
        "model": model,
        "width": width,
        "num_classes": num_classes,
        "in_channels": in_channels,
        **report.to_dict(),
    }
    if cross_check:
        x = example_input(net, size)
        standard = report.macs if convention == "standard" else count(net, size, cells=False).macs
        result["cross_check"] = {
            "flop_counter (FLOPs/2)": standard,
            "fvcore (conv/linear handles)": fvcore_macs(net, x),
            "thop (paper convention)": thop_macs(net, x),
        }
    return result


#: Keywords of :func:`plan` that are facts of the data and the run, not options of the plan configuration.
PLAN_FACTS = ("in_channels", "start", "timing", "width_ratio", "prune_batch")


def plan(model: str | nn.Module, config: PlanConfig | RunConfig | None = None, **options: Any) -> Plan:
    """``autosc plan``: width, adaptor places and the cost envelope for a budget, without training.

    ``config`` is a :class:`PlanConfig` or :class:`RunConfig` (default: all defaults); ``options`` override it by
    flat name (``budget="60%"``, an int of MACs or a whole :class:`Budget`, ``memory``, ``latency``,
    ``input_size`` (an int, ``"32x48"`` or a tuple), ``width``, ``adaptors``, ``adaptor_at``, ``mode``, ``seed``,
    ...), plus the facts ``in_channels``, ``start``, ``timing``, ``width_ratio`` and ``prune_batch`` (the labelled
    images and labels the default importance, ``taylor``, ranks channels on; :func:`autosc.planning.make_plan`).
    """
    facts = {k: options.pop(k) for k in PLAN_FACTS if k in options}
    if isinstance(options.get("budget"), Budget):  # any registered kind, already made (autosc/cost/terms/)
        facts["budget"] = options.pop("budget")
    run = _run_config(model, config, options, "plan options")
    run.plan.validate(budget_given="budget" in facts)
    if "timing" not in facts and run.export.int8:  # a latency budget on the INT8 network
        from .cost.latency_probe import ProbeSettings

        facts["timing"] = ProbeSettings(int8=True)
    return make_plan(model, run.plan, seed=run.train.seed, **facts)


def _run_config(model: str | nn.Module, config: PlanConfig | RunConfig | None, options: dict, where: str) -> RunConfig:
    """``config`` (a plan or run configuration, default all defaults) with the flat ``options`` and a named
    ``model`` over it; an ``input_size`` tuple is read as ``"HxW"``."""
    run = config if isinstance(config, RunConfig) else RunConfig(plan=config or PlanConfig())
    named = {"model": model} if isinstance(model, str) else {}
    return run.updated({**input_size_text(options), **named}, where=where)


def probe(model: str | nn.Module, out: str | os.PathLike, config: PlanConfig | RunConfig | None = None,
          **options: Any) -> Path:  # fmt: skip
    """``autosc probe``: the probe networks of a plan, for timing on the deployment device; returns the manifest.

    The network is adapted as ``plan`` adapts it (``options`` as there), at its width (``--width``, default the
    start's own), and its probe shapes, the start network (the reference a share is of) and ``time_probes.py`` go
    into ``out`` (docs/algorithm.md, Timing tables from the deployment device). A budget given is not needed: the
    table serves any latency budget at the same ``latency_threads`` and ``latency_batch``; except for a strategy
    that prunes, whose probes are of the network pruned to the latency share given (``prune_batch``: the labelled
    images ``taylor`` ranks on, as compress reads them from its data).
    """
    from .cost.device_table import write_probes
    from .cost.latency_probe import ProbeSettings
    from .planning.latency import reference_network
    from .planning.make import probed_start
    from .prune.strategies import DEFAULT_STRATEGY

    timing = options.pop("timing", None)
    in_channels = options.pop("in_channels", 3)
    batch = options.pop("prune_batch", None)
    run = _run_config(model, config, options, "probe options")
    run.export.validate()
    timing = timing or ProbeSettings(int8=run.export.int8)  # INT8 probes: a table for an INT8 budget
    pruned = probed_start(model, run.plan, in_channels=in_channels, seed=run.train.seed, prune_batch=batch)
    cleared = {t.option: None for t in TERMS.values()}
    free = replace(run.plan, **cleared, latency_table=None, no_budget=True, strategy=DEFAULT_STRATEGY)
    free.validate()
    made = make_plan(model, free, seed=run.train.seed, in_channels=in_channels, start=pruned)
    network = made.network
    reference = replace(made.start.spec, channels=None)  # a share is of the start network as the user gave it
    return write_probes(
        network.net, network.adaptor_names, reference_network(reference), out, input_size=network.input_size,
        in_channels=network.in_channels, identity=network.spec.to_dict(), threads=free.latency_threads,
        batch=free.latency_batch, timing=timing,
    )  # fmt: skip


def export_model(
    path: str | os.PathLike,
    output: str | os.PathLike,
    *,
    opset: int = 18,
    exporter: str = "dynamo",
    dynamic_batch: bool = True,
    model: str | None = None,
    pool_halves: bool = True,
) -> ExportResult:
    """``autosc export``: a frozen model or a training checkpoint to a checked ONNX file.

    ``model`` names the builder of a network that is not a zoo one: a file never makes autosc import code.
    """
    from .checkpoint import load_frozen_or_checkpoint

    source, target = Path(path), Path(output)
    if target.is_dir():
        raise AutoscError(f"-o {output} is a folder; give the path of the .onnx file to write")
    if target.exists() and source.exists() and target.resolve() == source.resolve():
        raise AutoscError(f"-o {output} is the file being exported; write the ONNX file somewhere else")
    frozen, spec = load_frozen_or_checkpoint(path, model=model)
    size = tuple(spec["input_size"])
    return export_onnx(
        frozen,
        size,
        output,
        in_channels=spec["model"].get("in_channels", 3),
        opset=opset,
        exporter=exporter,
        dynamic_batch=dynamic_batch,
        pool_halves=pool_halves,
    )


def quantize_export(
    path: str | os.PathLike,
    float_onnx: str | os.PathLike,
    *,
    config: RunConfig | None = None,
    seed: int | None = None,
) -> Int8File:
    """``autosc export --quantize int8``: the INT8 file beside ``float_onnx`` (``model.onnx`` -> ``model.int8.onnx``),
    calibrated on ``config.export.calibration_images`` training images and measured on the test and validation splits.

    The images are those of ``config.dataset`` when it names data; else those of the run ``path`` (a ``frozen.pt``
    or checkpoint) belongs to, read from its ``run.json`` with its seed, as compress read them.
    """
    from .export.graph import onnx_input_size
    from .run.data import load_dataset
    from .run.folder import RunFolder
    from .run.quantized import quantize_file

    config = config or RunConfig()
    config.export.validate()
    if config.dataset.data is None:
        folder = RunFolder(Path(path).parent)
        if not folder.run_file.is_file():
            raise AutoscError(
                "--quantize int8 calibrates on training images: give --data (and the data options the network was "
                f"trained with), or export the frozen.pt of a run folder (no run.json beside {path})"
            )
        run = RunConfig.from_dict(folder.read_run()["config"])
        seed = run.train.seed if seed is None else seed  # another seed draws other images, from the same splits:
        dataset = replace(run.dataset, data_seed=run.dataset.seed(run.train.seed))
        config = replace(run, dataset=dataset, export=config.export, train=replace(run.train, seed=seed))
    elif seed is not None:
        config = replace(config, train=replace(config.train, seed=seed))
    float_onnx = Path(float_onnx)
    bundle = load_dataset(config, onnx_input_size(float_onnx))
    return quantize_file(float_onnx, float_onnx.with_suffix(".int8.onnx"), bundle,
                         count=config.export.calibration_images, seed=config.train.seed)  # fmt: skip


def load_frozen(path: str | os.PathLike, model: str | nn.Module | None = None) -> nn.Module:
    """The frozen network of a compress run (its ``frozen.pt``, or the run folder), in eval mode.

    ``model``: for a network made from your own module instance, a fresh instance of that class (the
    learned shape is applied to it and the trained weights loaded; an instance given for a zoo network is
    used the same way); for a builder reference, its name. A zoo network needs nothing: the file holds data
    only (``weights_only=True``). An instance that is not the stored network is refused, naming what differs.
    """
    from .freeze import load_frozen as load
    from .run.folder import RunFolder

    path = Path(path)
    if path.is_dir():
        path = RunFolder(path).frozen
    net, _ = load(path, model=model)
    return net

