"""Freeze, export and time: the trained network made plain, written as checked ONNX, and timed against the human
network (and against a latency budget) in ONNX Runtime (docs/algorithm.md, Freeze, export, measure)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from torch import nn

from ..config import ExportConfig
from ..cost.budget import Budget
from ..cost.budgeted import BudgetedNetwork
from ..cost.latency_probe import BLOCK
from ..export import ExportResult, export_onnx
from ..freeze import freeze, save_frozen
from ..latency import time_together
from ..report import schema
from .folder import RunFolder
from .progress import Display

#: Which exported networks are checked against PyTorch (onnx.checker + ONNX Runtime parity); the human
#: network is exported only to be timed.
CHECKED = {"compressed": True, "human": False, "baseline": True}
#: Interleaved timing rounds at the end of a latency-budgeted run: half their range is the noise it is judged by.
LATENCY_ROUNDS = 3
#: Times a frozen network measured over its latency budget is shrunk and measured again before it is kept.
LATENCY_SHRINKS = 3


def freeze_and_save(
    network: BudgetedNetwork, folder: RunFolder | None = None, budget: Budget | None = None
) -> tuple[nn.Module, dict]:
    """The frozen network (CPU, eval) and its shape spec, projected under ``budget`` (default: the network's);
    written to ``frozen.pt`` when a folder is given."""
    network.cpu().eval()  # export and latency are CPU work, whichever device trained it
    frozen, shape = freeze(network, budget)
    if folder is not None:
        save_frozen(frozen, shape, folder.frozen)
    return frozen, shape


def export_networks(
    networks: dict[str, nn.Module],
    size: tuple[int, int],
    in_channels: int,
    folder: RunFolder,
    options: ExportConfig,
) -> dict[str, ExportResult]:
    """Each network (label -> module, on the CPU) to ``folder.onnx(label)``; autosc's own ones checked."""
    return {
        label: export_onnx(
            net.cpu().eval(),
            size,
            folder.onnx(label),
            in_channels=in_channels,
            check=CHECKED.get(label, True),
            opset=options.opset,
            exporter=options.exporter,
            pool_halves=options.pool_halves,
        )
        for label, net in networks.items()
    }


def time_onnx(paths: dict[str, Path], runs: int, *, threads: int = 1, batch: int = 1) -> schema.Latency:
    """ONNX Runtime p50/p90/p99 of every exported file (labels: compressed, human, ...), timed together
    (:func:`autosc.latency.time_together`) in warm blocks as the latency model is: each network as warm as when
    deployed."""
    timed = time_together(paths, threads=threads, batch=batch, runs=runs, warmup=min(20, runs), block=min(BLOCK, runs))
    found = {label: schema.Timing(**{k: t[k] for k in ("p50", "p90", "p99")}) for label, t in timed.items()}
    return schema.Latency(**found, threads=threads, batch=batch, runs=runs)


@dataclass
class LatencyCheck:
    """The end of a latency-budgeted run: the measured latency, the network it measured (maybe shrunk), the budget
    that network was projected under (the user's, or a tighter one after a shrink) and the ONNX exports."""

    latency: schema.Latency
    frozen: nn.Module
    shape: dict | None  # None: not shrunk, the network frozen after training was kept
    exported: dict
    budget: Budget


def check_latency_budget(
    network: BudgetedNetwork,
    networks: dict[str, nn.Module],
    exported: dict,
    size: tuple[int, int],
    in_channels: int,
    folder: RunFolder,
    config: ExportConfig,
    display: Display | None = None,
    recalibrate: Callable[[nn.Module], object] | None = None,
) -> LatencyCheck:
    """Time the frozen network against its latency budget; shrink it while it is over by more than the noise.

    A latency budget is never reported as met without a measurement (docs/algorithm.md, Latency budgets): the
    networks are timed in ``LATENCY_ROUNDS`` interleaved rounds; if the middle round's compressed p50 exceeds the
    budget by more than half the rounds' range, the projection aims that much lower on predicted latency, the
    network is frozen and exported again, and timed again (at most ``LATENCY_SHRINKS`` times). A shrunk network
    was not trained at its new sizes: ``recalibrate`` (given the frozen network; see
    :func:`autosc.train.evaluate.recalibrate_batchnorm`) re-estimates its BatchNorm statistics before it is
    saved and exported. The network's own budget is left as it is; the one the kept network meets is returned.
    """
    limit, budget = network.budget.limit("latency_ms"), network.budget
    frozen, shape, shrinks = networks["compressed"], None, 0
    while True:
        middle, spread = _timed_rounds({label: folder.onnx(label) for label in networks}, config, budget)
        measured = middle.compressed.p50
        if measured <= limit + spread or shrinks == LATENCY_SHRINKS:
            break
        shrinks += 1
        budget = budget.with_limits(latency_ms=budget.limit("latency_ms") * limit / measured)
        if display is not None:
            display.log(
                f"measured p50 {measured:.3f} ms is over the {limit:.3f} ms budget by more than the noise "
                f"({spread:.3f} ms): shrinking to a predicted {budget.limit('latency_ms'):.3f} ms and measuring again"
            )
        frozen, shape = freeze_and_save(network, budget=budget)
        if recalibrate is not None:
            recalibrate(frozen)
        save_frozen(frozen, shape, folder.frozen)
        networks["compressed"] = frozen
        exported = {**exported, **export_networks({"compressed": frozen}, size, in_channels, folder, config)}
    latency = replace(
        middle, predicted=network.update_shape(budget).cost.latency_ms, rounds=LATENCY_ROUNDS, spread=spread,
        budget_met=measured <= limit, shrinks=shrinks,
    )  # fmt: skip
    return LatencyCheck(latency, frozen, shape, exported, budget)


def _timed_rounds(paths: dict[str, Path], config: ExportConfig, budget: Budget) -> tuple[schema.Latency, float]:
    """The middle of ``LATENCY_ROUNDS`` interleaved timings (by the compressed p50) and half their range."""
    rounds = [
        time_onnx(paths, config.latency_runs, threads=budget.latency_threads, batch=budget.latency_batch)
        for _ in range(LATENCY_ROUNDS)
    ]
    rounds.sort(key=lambda r: r.compressed.p50)
    return rounds[len(rounds) // 2], (rounds[-1].compressed.p50 - rounds[0].compressed.p50) / 2
