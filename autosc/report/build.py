"""The one place a run's :class:`~autosc.report.schema.Report` is assembled, from the figures the stages measured
(docs/architecture.md, The pipeline): MACs counted on the networks themselves, the learned shape, accuracy, the
export, the latency, and the start it came from."""

from __future__ import annotations

import platform
from dataclasses import dataclass

import torch
from torch import nn

from ..adaptor import alpha_to_factor
from ..cost import count
from ..cost.budgeted import BudgetedNetwork
from ..export import ExportResult
from ..latency import environment
from ..models.cells import model_cells
from ..train import Trainer
from . import schema


@dataclass(frozen=True)
class Measured:
    """What happened after training: the frozen network as kept, its export and its timing; ``accuracy`` (test,
    validation) when it is not the last epoch's (a network shrunk after training is evaluated again); the INT8
    files' measurements when asked for."""

    frozen: nn.Module
    shape: dict
    exported: ExportResult
    latency: schema.Latency
    accuracy: tuple[float, float | None] | None = None
    quantized: schema.Quantized | None = None  # --quantize int8: the INT8 files measured (autosc/run/quantized.py)


@dataclass(frozen=True)
class Context:
    """Who ran what on which data: the model as named, the data set, the input size and channels, the command."""

    model: str
    data: str
    size: tuple[int, int]
    in_channels: int
    command: str


def build_report(
    context: Context,
    network: BudgetedNetwork,
    trainer: Trainer,
    human: nn.Module,
    measured: Measured,
    *,
    baseline: schema.Baseline | None = None,
    start: dict | None = None,
    start_accuracy: tuple[float | None, float | None] = (None, None),
    seconds: float | None = None,
    strategy: dict | None = None,
) -> schema.Report:
    """The run's report. ``human`` is the network the run started from (trained or fresh); ``start`` describes a
    trained start (weights, widths, distilled, fine-tuned) and ``start_accuracy`` its own (test, validation);
    ``strategy`` how the budget was split between channels and shape (autosc/prune/strategies.py)."""
    size, history = context.size, trainer.history
    final, val = measured.accuracy or (history[-1]["test_acc"], history[-1].get("val_acc"))
    human_cost, frozen_cost = count(human, size, cells=False), count(measured.frozen, size, cells=False)
    return schema.Report(
        model=context.model,
        data=context.data,
        input_size=list(size),
        command=context.command,
        budget=network.budget.to_dict(),
        width=network.spec.width,
        macs=_macs(network, human_cost, frozen_cost),
        params={"human": human_cost.params, "final": frozen_cost.params},
        activation_bytes={"human": human_cost.activation_bytes, "final": frozen_cost.activation_bytes},
        adaptors=_adaptors(measured.shape, trainer),
        accuracy=schema.Accuracy(
            final=final, best=max(r["test_acc"] for r in history), val=val, human=start_accuracy[0],
            human_val=start_accuracy[1],
        ),  # fmt: skip
        onnx=_onnx(measured.exported),
        latency_ms=measured.latency,
        baseline=baseline,
        layers={
            "human": cell_sizes(network.spec.build(), size, context.in_channels),
            "learned": cell_sizes(measured.frozen, size, context.in_channels),
        },
        epochs=trainer.epoch,
        train=trainer.config.to_dict(),
        alpha_step=trainer.alpha_step,
        env=environment_info(),
        seconds=seconds,
        start=start,
        strategy=strategy,
        quantized=measured.quantized,
    )


def _macs(network: BudgetedNetwork, human, final) -> schema.Macs:
    """MACs by the counters on the networks themselves, in the budget's convention; "widened" from the cost model."""
    conv = network.budget.convention
    widened = network.cost_model.human_cost()
    return schema.Macs(
        convention=conv,
        counter=final.counter if conv == "standard" else "FlopCounterMode MACs + 4 x BatchNorm elements (= thop)",
        human=human.macs_in(conv),
        widened=widened.budget_macs(conv) - widened.resize_macs,
        final=final.macs_in(conv),
        final_resize=final.resize_macs,
    )


def _onnx(exported: ExportResult) -> schema.Onnx:
    return schema.Onnx(
        path="model.onnx",
        opset=exported.opset,
        exporter=exported.exporter,
        max_abs_diff=exported.max_abs_diff,
        pooled_resizes=exported.pooled_resizes,
    )


def _adaptors(shape: dict, trainer: Trainer) -> list[schema.Adaptor]:
    alpha_end = list(trainer.history[-1].get("alphas", [])) if trainer.history else []
    return [
        schema.Adaptor(
            **entry, alpha_start=start, alpha_end=alpha_end[i] if i < len(alpha_end) else None,
            s_start=alpha_to_factor(start),
        )  # fmt: skip
        for i, (entry, start) in enumerate(zip(shape["adaptors"], trainer.alpha_start, strict=True))
    ]


def cell_sizes(net: nn.Module, size: tuple[int, int], in_channels: int) -> list[dict]:
    """Spatial size of every cell's output, in execution order (the data of the shape picture)."""
    rows: list[dict] = []
    hooks = [
        module.register_forward_hook(
            lambda m, i, o, name=name: rows.append({"name": name, "size": list(o.shape[-2:])}) if o.dim() == 4 else None
        )
        for name, module in model_cells(net)
    ]
    try:
        with torch.no_grad():
            net.eval()(torch.zeros(1, in_channels, *size))
    finally:
        for h in hooks:
            h.remove()
    return rows


def environment_info() -> dict:
    """Versions, CPU and Python of this machine, for the report."""
    return {**environment(), "autosc": __import__("autosc").__version__, "python": platform.python_version()}
