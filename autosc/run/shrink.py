"""How a frozen network confirmed over its latency budget is made smaller before it is measured again
(docs/algorithm.md, Latency budgets): the learned shape projected under a tighter budget, or, where the shape is
held at the identity (``--strategy prune``), the channels pruned further by Torch-Pruning.

A held shape cannot move, so before this the end check kept such a network over its budget (benchmarks/RESULTS.md,
issue 30: a pruned resnet18 measured 0.386 of the trained network at a 35% budget, confirmed, and was kept).
Channels are the knob that strategy chose, so a miss is cut there, by the measured overshoot in MACs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor, nn

from ..adaptor import AdaptedCell
from ..cost.budget import Budget
from ..cost.budgeted import BudgetedNetwork
from ..cost.terms.latency import AIM_UNDER
from ..freeze import freeze
from ..prune import channel_record
from ..prune.pruner import macs, prune_to_fit

#: Bisections of the pruning ratio when a frozen network is pruned further (as the plan's pruning step does).
RATIO_STEPS = 7


@dataclass
class Shrunk:
    """One shrink: the smaller frozen network (CPU, eval) and its shape spec, the budget it was made under, the
    latency model's prediction for it (None when channels were cut: the model is fitted on shapes at the planned
    channels) and, for a channel cut, what it pruned."""

    frozen: nn.Module
    shape: dict
    budget: Budget
    predicted: float | None
    pruned: dict | None = None


#: ``shrink(frozen, shape, budget, factor)``: the network made smaller by ``factor`` (< 1: the allowed share over
#: the confirmed one), from the kept ``frozen`` network and its ``shape`` under ``budget``.
Shrinker = Callable[[nn.Module, dict, Budget, float], Shrunk]


def shrink_shape(network: BudgetedNetwork) -> Shrinker:
    """The learned shape projected under a latency limit ``factor`` times the last one, frozen again."""

    def shrink(frozen: nn.Module, shape: dict, budget: Budget, factor: float) -> Shrunk:
        budget = budget.with_limits(latency_ms=budget.limit("latency_ms") * factor)
        network.cpu().eval()
        smaller, spec = freeze(network, budget)
        return Shrunk(smaller, spec, budget, network.update_shape(budget).cost.latency_ms)

    return shrink


def prune_further(
    size: tuple[int, int], in_channels: int, *, importance: str, batch: tuple[Tensor, Tensor] | None = None
) -> Shrinker:
    """The frozen network's channels pruned (global, ``importance``) to ``factor`` of its MACs less the projection's
    margin (``AIM_UNDER``), the shape spec's channel record updated so the file rebuilds it. ``batch``: labelled
    images for a criterion that takes gradients."""

    def shrink(frozen: nn.Module, shape: dict, budget: Budget, factor: float) -> Shrunk:
        before = macs(frozen, size)
        target = int(before * factor * (1 - AIM_UNDER))
        pruned, ratio = prune_to_fit(
            frozen, size, in_channels, lambda p: macs(p, size) <= target, importance=importance, batch=batch,
            target=f"{target} MACs", steps=RATIO_STEPS,
        )  # fmt: skip
        cut = {_spec_name(name, frozen): entry for name, entry in channel_record(pruned, frozen).items()}
        model = shape["model"]
        spec = {**shape, "model": {**model, "channels": {**(model.get("channels") or {}), **cut}}}
        record = {"importance": importance, "ratio": ratio, "macs_before": before, "macs_after": macs(pruned, size)}
        limit = budget.limit("latency_ms")
        budget = budget if limit is None else budget.with_limits(latency_ms=limit * factor)
        return Shrunk(pruned.eval(), spec, budget, None, record)

    return shrink


def _spec_name(name: str, frozen: nn.Module) -> str:
    """A frozen network's module name as the model spec names it: without the ``.cell`` each adapted cell wraps
    its original module in (autosc/adaptor/module.py, AdaptedCell)."""
    parts, kept, prefix = name.split("."), [], []
    skip = False
    for part in parts:
        if skip and part == "cell":
            prefix.append(part)
            skip = False
            continue
        prefix.append(part)
        kept.append(part)
        skip = isinstance(frozen.get_submodule(".".join(prefix)), AdaptedCell)
    return ".".join(kept)
