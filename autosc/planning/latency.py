"""Planning for a latency budget: the human network timed, the width sized through a MACs stand-in measured as a
share of the reference, and the latency model measured and calibrated on the adapted network (docs/algorithm.md,
Latency budgets).

The other budget kinds read a :class:`~autosc.cost.shape_cost.Cost` the counters give for free; latency has to be
measured on this machine first, which is what this module does for :func:`autosc.planning.make_plan`.
"""

from __future__ import annotations

import copy
import dataclasses

import torch
from torch import nn

from ..cost.budget import Budget
from ..cost.budgeted import BudgetedNetwork
from ..cost.calibration import middle_round
from ..cost.latency_model import LatencyModel
from ..cost.latency_probe import ProbeSettings, calibrate, fit_latency_model, time_network
from ..cost.projection import check_reachable
from ..cost.shape_cost import ShapeCostModel
from ..cost.width import auto_width, human_network_cost
from ..errors import UnreachableBudget
from ..models import ModelSpec, scales_width

KEY = "latency_ms"


def time_spec(spec: ModelSpec, size: tuple[int, int], budget: Budget, timing: ProbeSettings) -> float:
    """Measured p50 (ms) of the human network ``spec`` (fresh weights: latency does not depend on them); with a
    device's timing table, its reference network's p50 there (the table is for one network and its reference)."""
    if timing.table is not None:
        return timing.table.reference_ms
    return time_network(reference_network(spec), size, spec.in_channels, threads=budget.latency_threads,
                        batch=budget.latency_batch, timing=timing, identity=spec.to_dict())  # fmt: skip


#: Measured corrections of ``--width auto``'s MACs stand-in under a latency budget, at most (each times one
#: candidate width with the reference); it stops early once the width it gives stays the same.
WIDTH_CORRECTIONS = 4


#: Interleaved rounds of one share measured while planning, read by the middle one as the end check reads its own
#: (autosc/run/measure.py): one round of a pruned resnet18 against its trained network ranged 0.34-0.42 (sd 0.026),
#: and the pruning step, which keeps the least pruned candidate measured within the cap, kept a low draw (0.335
#: where the end check measured 0.386); the middle of three narrows the draws (sd 0.019 -> 0.014 at the default
#: 60 runs a round; benchmarks/RESULTS.md, issue 30).
SHARE_ROUNDS = 3


def time_share(spec: ModelSpec, reference: ModelSpec, size: tuple[int, int], budget: Budget, timing: ProbeSettings) -> float:
    """The human network ``spec``'s p50 as a share of the ``reference`` network's, timed together now (interleaved,
    warm blocks) in :data:`SHARE_ROUNDS` rounds, the middle one's: the host's drift cancels out, as in the budget's
    own verdict; never cached (a ratio of p50s measured at two moments is not one)."""
    if spec == reference:
        return 1.0
    networks = {"candidate": reference_network(spec), "reference": reference_network(reference)}
    shares = [share_round(networks, size, spec.in_channels, budget, timing) for _ in range(SHARE_ROUNDS)]
    return shares[middle_round(shares)[0]]


def share_round(
    networks: dict[str, nn.Module], size: tuple[int, int], in_channels: int, budget: Budget, timing: ProbeSettings
) -> float:
    """One round of :func:`time_share`: ``networks["candidate"]``'s p50 over ``networks["reference"]``'s, timed
    together at the budget's threads and batch and ``timing``'s runs and blocks."""
    from ..latency import time_together

    timed = time_together(
        networks, size, in_channels, threads=budget.latency_threads, batch=budget.latency_batch, runs=timing.runs,
        warmup=min(10, timing.runs), block=timing.block, exporter=timing.exporter, opset=timing.opset,
        int8=timing.int8,
    )  # fmt: skip
    return timed["candidate"]["p50"] / timed["reference"]["p50"]


def width_budget(human: ModelSpec, size: tuple[int, int], budget: Budget, ratio: float, timing: ProbeSettings) -> Budget:
    """The budget ``--width auto`` sizes the network by when latency is budgeted: the latency as MACs.

    The allowed share of the reference (``human``, the start network) is turned into MACs at a candidate width's
    measured share (timed with the reference: :func:`time_share`), starting at width 1, and measured again at
    the width that gives until it stays (at most ``WIDTH_CORRECTIONS`` timings): latency is not proportional to
    MACs across widths (resnet18@224 at 60% was once sized to a width whose full-size network ran at 51%). The
    other caps also set still bind.
    """
    if not scales_width(human.name):
        return budget
    base, limit = human.at_width(1.0), budget.limit(KEY)
    reference_ms = budget.latency_reference_ms or time_spec(human, size, budget, timing)
    allowed = limit / reference_ms

    def macs_at(spec: ModelSpec) -> int:
        return human_network_cost(spec, size).budget_macs(budget.convention)

    spec = base
    for _ in range(WIDTH_CORRECTIONS):
        target = macs_at(spec) * allowed / time_share(spec, human, size, budget, timing)
        width = auto_width(base, size, Budget.of(macs=max(1, int(target)), convention=budget.convention), ratio)
        if width == spec.width:
            break
        spec = base.at_width(width)
    macs = budget.limit("macs")
    stand_in = int(min(target, macs)) if macs is not None else max(1, int(target))
    return budget.with_limits(**{KEY: None, "macs": stand_in})


def slower(budget: Budget, ratio: float) -> Budget:
    """The budget in the milliseconds of a host running ``ratio`` times slower than when it was measured."""
    return budget.with_limits(**{KEY: budget.limit(KEY) / ratio})


def latency_model(
    net: nn.Module, names: list[str], spec: ModelSpec, size: tuple[int, int], budget: Budget,
    timing: ProbeSettings | None, calibration: float | None,
) -> tuple[ShapeCostModel, LatencyModel]:  # fmt: skip
    """Measure (or read back from the cache) the adapted network's latency model; ``calibration``: a ratio
    already measured (a resumed run's), applied instead of measuring one."""
    cost_model = ShapeCostModel(net, names, size, spec.in_channels)
    latency = fit_latency_model(
        net, names, input_size=size, in_channels=spec.in_channels, identity=spec.to_dict(),
        threads=budget.latency_threads, batch=budget.latency_batch, timing=timing, cost_model=cost_model,
    )  # fmt: skip
    if calibration is not None:
        latency = dataclasses.replace(latency, calibration=calibration)
    return cost_model, latency


def reference_network(spec: ModelSpec) -> nn.Module:
    """The network a latency share is of, to time (fresh weights: latency does not depend on them)."""
    with torch.random.fork_rng():  # building draws initial weights; leave the caller's RNG as it was
        return spec.build() if spec.module is None else copy.deepcopy(spec.module)  # the user's module stays as is


def calibrate_start(
    network: BudgetedNetwork, spec: ModelSpec, timing: ProbeSettings | None, reference: ModelSpec | None = None
) -> None:
    """Time the projected start shape now, with the ``reference`` network interleaved, and rescale the latency
    model to it (the host's drift since the model was measured); the budget is retimed against the reference
    (a share's milliseconds follow it). Then check the budget is still reachable: an :class:`UnreachableBudget`
    carries the ratio and the reference's p50 so that ``--width auto`` may choose again.

    A model measured in a slow spell of the host may not reach the budget at all before it is calibrated (the
    network is built unchecked for that, :func:`autosc.planning.adapt.adapt_network`): it is calibrated on the
    smallest shape first, then on the start shape that projects."""
    cost_model = network.cost_model
    try:
        check_reachable(cost_model, network.budget)
    except UnreachableBudget:
        _calibrate_on(network, cost_model.min_sizes, spec, timing, reference)
    start = network.update_shape().sizes
    _calibrate_on(network, start, spec, timing, reference)
    network.update_shape()


def _calibrate_on(
    network: BudgetedNetwork, sizes: list[tuple[int, int]], spec: ModelSpec, timing: ProbeSettings | None,
    reference: ModelSpec | None,
) -> None:  # fmt: skip
    """:func:`calibrate_start` at ``sizes``, then the reachability check."""
    budget, cost_model = network.budget, network.cost_model
    model, reference_ms = calibrate(
        network.net, network.adaptor_names, sizes, cost_model.latency, input_size=network.input_size,
        in_channels=spec.in_channels, threads=budget.latency_threads, batch=budget.latency_batch, timing=timing,
        reference=reference_network(reference) if reference is not None else None,
    )  # fmt: skip
    cost_model.with_latency(model)
    if reference_ms is not None:
        network.budget = budget = budget.retimed(reference_ms)
    try:
        check_reachable(cost_model, budget)
    except UnreachableBudget as exc:  # the host is slower now: make_plan may choose a narrower width
        exc.calibration = cost_model.latency.calibration
        exc.reference_ms = reference_ms
        raise
