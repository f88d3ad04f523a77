"""The pruning step of a plan: the start network's channels pruned by Torch-Pruning for its strategy's share of the
budget's cut, before the shape adaptors are placed on what is left (docs/algorithm.md, Strategies).

The cut is measured in the budget's own kinds: a share ``s`` moves each cap from the start network's figure ``s``
of the way to the limit. Counted kinds (MACs, memory) are checked on each pruned candidate exactly; a latency cap
is reached through MACs, corrected by timing the pruned network with the start network interleaved (the share
drift cannot move), as ``--width auto`` does (autosc/planning/latency.py). A latency measured on a deployment
device (a timing table, or ``autosc probe`` writing the probes for one) cannot be timed from here: the cap is then
reached through MACs alone, a pure function of the budget's share, so the probe and the plan on its table prune
the same channels (docs/algorithm.md, Timing tables from the deployment device).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from torch import Tensor, nn

from ..cost import count
from ..cost.budget import Budget
from ..cost.latency_probe import ProbeSettings
from ..cost.shape_cost import Cost
from ..cost.terms.latency import AIM_UNDER
from ..errors import AutoscError
from ..models import ModelSpec
from ..models.trained import Start
from ..prune import channel_record
from ..prune.pruner import macs, prune_to_fit
from ..prune.strategies import Strategy
from . import latency as latency_planning

#: Timings of a pruned candidate against the start network, at most, when a latency cap is pruned to.
LATENCY_CORRECTIONS = latency_planning.WIDTH_CORRECTIONS

#: Bisections of the pruning ratio after the grid: 0.1 / 2**7, finer than one 8-channel step of most layers.
RATIO_STEPS = 7

#: A measured share within this relative distance of the one aimed at ends the corrections.
SHARE_TOLERANCE = 0.02


@dataclass(frozen=True)
class Pruning:
    """What the pruning step did, for ``plan``, ``run.json`` and the report."""

    strategy: str
    importance: str
    share: float  # of the budget's cut made by pruning
    ratio: float  # Torch-Pruning's global pruning ratio that reached the target
    target: dict  # the caps pruning aimed at, by kind
    macs_before: int
    macs_after: int
    params_before: int
    params_after: int
    latency_share: float | None  # the pruned network's measured p50 over the start network's (latency caps only)
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def split_budget(budget: Budget, human: Cost, share: float) -> Budget:
    """The budget pruning aims at: each cap moved ``share`` of the way from the start network's figure (``human``,
    carrying its measured p50 under a latency cap) down to the limit."""
    limits = {}
    for term, limit in budget.terms():
        have = term.read(human, budget)
        if have is None:
            raise AutoscError(f"the start network's {term.noun} is not known here, so pruning cannot aim at a share of it")
        moved = have - share * (have - limit)
        limits[term.key] = int(moved) if isinstance(have, int) else moved
    return budget.with_limits(**limits)


def prune_start(
    start: Start, strategy: Strategy, *, share: float, importance: str, budget: Budget, human: Cost,
    size: tuple[int, int], timing: ProbeSettings | None, batch: tuple[Tensor, Tensor] | None = None,
) -> tuple[Start, Pruning | None]:  # fmt: skip
    """``start`` with its channels pruned for ``share`` of the cut to ``budget`` (as a new :class:`Start`: its spec
    records the channel counts, its weights are the pruned ones), and what was done; ``start`` itself when the
    share is 0. ``batch``: labelled images for a criterion that takes gradients (``taylor``). ``timing`` None: the
    latency is a deployment device's, and a latency cap is reached through MACs alone."""
    if share <= 0 or not budget.bounded:
        return start, None
    began = time.perf_counter()
    target = split_budget(budget, human, share)
    net = start.build().eval()
    spec = start.spec
    in_channels = spec.in_channels

    def exact_fits(pruned: nn.Module) -> bool:
        cost = _cost(pruned, size)
        return all(term.fits(cost, limit, target) for term, limit in target.terms() if term.exact)

    def prune(fits, what: str) -> tuple[nn.Module, float]:
        return prune_to_fit(net, size, in_channels, fits, importance=importance, batch=batch, target=what,
                            steps=RATIO_STEPS)  # fmt: skip

    measured = None
    if target.limit(latency_planning.KEY) is None:
        pruned, ratio = prune(exact_fits, target.describe())
    else:
        pruned, ratio, measured = _prune_to_latency(net, spec, target, size, timing, exact_fits, prune)
    pruned_spec = spec.pruned(channel_record(pruned, net))
    weights = None
    if start.trained:
        weights = {k: v.detach().clone() for k, v in pruned.state_dict().items()}
    source = f"{start.source or spec.name}, channel-pruned ({importance})"
    before, after = count(net, size, cells=False), count(pruned, size, cells=False)
    record = Pruning(
        strategy=strategy.name, importance=importance, share=share, ratio=ratio,
        target={term.key: limit for term, limit in target.terms()}, macs_before=before.total_macs,
        macs_after=after.total_macs, params_before=before.params, params_after=after.params,
        latency_share=measured, seconds=time.perf_counter() - began,
    )  # fmt: skip
    return replace(start, spec=pruned_spec, weights=weights, source=source), record


def _cost(net: nn.Module, size: tuple[int, int]) -> Cost:
    report = count(net, size, cells=False)
    return Cost(report.macs, report.resize_macs, report.activation_bytes, report.norm_elements)


def _prune_to_latency(
    net: nn.Module, spec: ModelSpec, target: Budget, size: tuple[int, int], timing: ProbeSettings | None,
    exact_fits: Callable[[nn.Module], bool], prune: Callable[..., tuple[nn.Module, float]],
) -> tuple[nn.Module, float, float | None]:  # fmt: skip
    """Pruned to a MACs stand-in for the latency cap, corrected by the measured share of each candidate (at most
    :data:`LATENCY_CORRECTIONS` timings); the candidate kept is the least pruned one measured within the cap, else
    the last. ``timing`` None: the latency is a device's, so the stand-in is not corrected and nothing is timed.
    Returns (network, ratio, its measured share or None)."""
    allowed = target.limit(latency_planning.KEY) * (1 - AIM_UNDER) / target.latency_reference_ms
    stand_in = macs(net, size) * allowed
    if timing is None:
        pruned, ratio = prune(lambda p: exact_fits(p) and macs(p, size) <= stand_in, f"{int(stand_in)} MACs")
        return pruned, ratio, None
    best = last = None
    for _ in range(LATENCY_CORRECTIONS):
        bound = stand_in
        pruned, ratio = prune(lambda p, bound=bound: exact_fits(p) and macs(p, size) <= bound, f"{int(bound)} MACs")
        share = latency_planning.time_share(spec.pruned(channel_record(pruned, net)), spec, size, target, timing)
        last = (pruned, ratio, share)
        if share <= allowed and (best is None or share > best[2]):
            best = last
        if abs(share / allowed - 1) <= SHARE_TOLERANCE:
            break
        stand_in = macs(pruned, size) * allowed / share
    return best or last
