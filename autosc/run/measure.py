"""Freeze, export and time: the trained network made plain, written as checked ONNX, and timed against the human
network (and against a latency budget) in ONNX Runtime (docs/algorithm.md, Freeze, export, measure)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from torch import nn

from ..config import ExportConfig
from ..cost.budget import Budget
from ..cost.budgeted import BudgetedNetwork
from ..cost.calibration import middle_round
from ..cost.latency_probe import BLOCK
from ..export import ExportResult, export_onnx
from ..freeze import freeze, save_frozen, shape_spec
from ..latency import time_together
from ..report import schema
from .folder import RunFolder
from .progress import Display
from .shrink import Shrinker, shrink_shape

#: Which exported networks are checked against PyTorch (onnx.checker + ONNX Runtime parity); the human
#: network is exported only to be timed.
CHECKED = {"compressed": True, "human": False, "baseline": True}
#: Interleaved timing rounds of one measurement at the end of a latency-budgeted run: half the range of their
#: shares (compressed p50 over the reference's) is the noise the measurement is judged with.
LATENCY_ROUNDS = 3
#: Seconds between the measurement that finds a network over its budget and the one that must confirm it: a slow
#: spell of a shared host lasts seconds, and one measurement inside it shrank trained networks for nothing.
CONFIRM_PAUSE_S = 5.0
#: How far over its allowed share (as a fraction of it) a network must measure, beyond the rounds' noise, before it
#: is shrunk. Two measurements of one network a few seconds apart differ by 1-3% here while each one's rounds
#: agree within 0.1-0.5%, and a network projected to its budget lands within that of it; shrinking it for 0.5%
#: cut maps by 10-15% in area at 32 px, where latency hardly follows the sizes, and cost 8 points on a short
#: run. Such a network is reported as over (``budget_met`` false), with the tolerance named, and kept.
LATENCY_TOLERANCE = 0.02
#: Times a frozen network confirmed over its latency budget is shrunk and measured again before it is kept.
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


def time_onnx(paths: dict[str, Path], runs: int, *, threads: int = 1, batch: int = 1, int8: bool = False
              ) -> schema.Latency:  # fmt: skip
    """ONNX Runtime p50/p90/p99 of every exported file (labels: compressed, human, ...), timed together
    (:func:`autosc.latency.time_together`) in warm blocks as the latency model is: each network as warm as when
    deployed; ``int8``: each file's INT8 twin, for a latency budget on the INT8 network."""
    timed = time_together(paths, threads=threads, batch=batch, runs=runs, warmup=min(20, runs), block=min(BLOCK, runs),
                          int8=int8)  # fmt: skip
    found = {label: schema.Timing(**{k: t[k] for k in ("p50", "p90", "p99")}) for label, t in timed.items()}
    return schema.Latency(**found, threads=threads, batch=batch, runs=runs, int8=int8 or None)


@dataclass
class LatencyCheck:
    """The end of a latency-budgeted run: the measured latency, the network it measured (maybe shrunk), the budget
    that network was projected under (the user's, or a tighter one after a shrink) and the ONNX exports."""

    latency: schema.Latency
    frozen: nn.Module
    shape: dict | None  # None: not shrunk, the network frozen after training was kept
    exported: dict
    budget: Budget


@dataclass(frozen=True)
class Verdict:
    """One measurement against a latency budget: ``LATENCY_ROUNDS`` interleaved rounds of the compressed and the
    reference ("human") network, judged by the share of the reference's p50 (the host's drift hits both)."""

    middle: schema.Latency  # the middle round by share
    share: float  # its compressed p50 over its reference p50
    spread: float  # half the range of the rounds' shares: the noise
    allowed: float  # the budget as a share of the reference's p50

    @property
    def over(self) -> bool:
        """Over by more than the tolerance and the noise: a miss to shrink for, once confirmed."""
        return self.share > self.allowed * (1 + LATENCY_TOLERANCE) + self.spread


def table_verdict(network: BudgetedNetwork, latency: schema.Latency) -> schema.Latency:
    """The verdict of a network planned on a deployment device's timing table: the table's prediction there, as a
    share of the reference's p50 there (this machine cannot time that device; ``latency`` is this machine's timing,
    kept as information). ``python time_probes.py --bench model.onnx --vs human.onnx`` on the device measures it."""
    budget, key = network.budget, network.cost_model.latency.key
    predicted = network.update_shape().cost.latency_ms
    return replace(
        latency, predicted=predicted, budget_met=predicted <= budget.latency_ms, shrinks=0,
        share=predicted / budget.latency_reference_ms, allowed_share=budget.latency_allowed_share,
        table={"path": key["table"], "device": key["device"]},
    )  # fmt: skip


def measure_verdict(paths: dict[str, Path], config: ExportConfig, budget: Budget, int8: bool = False) -> Verdict:
    """Time the exported networks in ``LATENCY_ROUNDS`` interleaved rounds and judge the compressed one's share.

    The allowed share is the budget's limit over the reference p50 it was set against
    (:attr:`Budget.latency_allowed_share`): a share budget is its share, an absolute one is converted at the
    reference's speed when it was planned. A budget with no reference timing (a run planned before there was one)
    is converted at the reference's speed now, which is the old judgement in milliseconds.
    """
    rounds = [
        time_onnx(paths, config.latency_runs, threads=budget.latency_threads, batch=budget.latency_batch, int8=int8)
        for _ in range(LATENCY_ROUNDS)
    ]
    k, spread = middle_round([r.compressed.p50 / r.human.p50 for r in rounds])
    allowed = budget.latency_allowed_share
    if allowed is None:
        allowed = budget.limit("latency_ms") / rounds[k].human.p50
    return Verdict(rounds[k], rounds[k].compressed.p50 / rounds[k].human.p50, spread, allowed)


def _say_shrinking(display: Display | None, verdict: Verdict) -> None:
    if display is not None:
        display.log(
            f"measured twice at {verdict.share:.3f} of the reference's p50, over the allowed {verdict.allowed:.3f} "
            f"by more than the noise ({verdict.spread:.3f}): shrinking by {verdict.allowed / verdict.share:.3f} "
            "and measuring again"
        )


def default_shrinker(network: BudgetedNetwork) -> Shrinker | None:
    """The shape projected lower; None for a held shape, which never moves (the pipeline gives ``--strategy prune``
    :func:`autosc.run.shrink.prune_further`, which needs the run's importance and data)."""
    return None if network.identity_held else shrink_shape(network)


def check_latency_budget(
    network: BudgetedNetwork,
    networks: dict[str, nn.Module],
    exported: dict,
    size: tuple[int, int],
    in_channels: int,
    folder: RunFolder,
    config: ExportConfig,
    display: Display | None = None,
    retrain: Callable[[nn.Module, nn.Module], dict] | None = None,
    shrink: Shrinker | None = None,
) -> LatencyCheck:
    """Time the frozen network against its latency budget; shrink it only while a second measurement confirms it
    is over by more than ``LATENCY_TOLERANCE`` and the noise.

    A latency budget is never reported as met without a measurement (docs/algorithm.md, Latency budgets): each
    measurement (:func:`measure_verdict`) judges the compressed network's share of the reference timed with it. One
    over the budget is measured again ``CONFIRM_PAUSE_S`` later, and only a confirmed miss (both over; the share
    taken is the smaller) shrinks: the projection aims that much lower on predicted latency, the network is frozen,
    ``retrain(shrunk, trained)`` adapts it (BatchNorm and a distilled fine-tune from the network as trained,
    :func:`autosc.run.training.retrain_after_shrink`; its record goes into the report), and it is saved, exported
    and measured again (at most ``LATENCY_SHRINKS`` times). ``shrink`` makes it smaller (autosc/run/shrink.py; default:
    the shape projected lower, none for a held shape). The budget the kept network meets is returned, not set.
    """
    asked = budget = network.budget  # verdicts are on the budget asked; shrinks project under a tighter one
    frozen, shape, shrinks, record = networks["compressed"], None, 0, None
    trained = frozen  # the teacher of every fine-tune after a shrink
    confirmed: list[float] = []  # the share measured twice over the budget before each shrink (the report's why)
    pruned: list[dict] = []  # what each channel cut did (a held shape's shrinks)
    paths = {label: folder.onnx(label) for label in networks}
    int8 = bool(network.cost_model.latency.key.get("int8"))  # a budget on the INT8 network: its files timed
    shrink = shrink or default_shrinker(network)
    predicted = network.update_shape(budget).cost.latency_ms
    while True:
        verdict = measure_verdict(paths, config, asked, int8)
        can_shrink = shrinks < LATENCY_SHRINKS and shrink is not None
        if verdict.over and can_shrink:
            time.sleep(CONFIRM_PAUSE_S)
            verdict = min(verdict, measure_verdict(paths, config, asked, int8), key=lambda v: v.share)
        if not verdict.over or not can_shrink:
            break
        shrinks += 1
        confirmed.append(verdict.share)
        _say_shrinking(display, verdict)
        shrunk = shrink(frozen, shape or shape_spec(network), budget, verdict.allowed / verdict.share)
        frozen, shape, budget, predicted = shrunk.frozen, shrunk.shape, shrunk.budget, shrunk.predicted
        pruned += [shrunk.pruned] if shrunk.pruned is not None else []
        if retrain is not None:  # the teacher is the network as trained every time: one record says it all
            record = {**retrain(frozen, trained), "confirmed_shares": list(confirmed)}
            record.update({"pruned": list(pruned)} if pruned else {})
        save_frozen(frozen, shape, folder.frozen)
        networks["compressed"] = frozen
        exported = {**exported, **export_networks({"compressed": frozen}, size, in_channels, folder, config)}
    latency = replace(
        verdict.middle, predicted=predicted, rounds=LATENCY_ROUNDS,
        spread=verdict.spread * verdict.middle.human.p50, budget_met=verdict.share <= verdict.allowed,
        shrinks=shrinks, shrink=record, share=verdict.share, share_spread=verdict.spread, allowed_share=verdict.allowed,
        tolerance=LATENCY_TOLERANCE,
    )  # fmt: skip
    return LatencyCheck(latency, frozen, shape, exported, budget)
