"""The hard budget: from learned factors to integer sizes that fill it (docs/algorithm.md, Width and budget projection).

Before every forward pass every factor is multiplied by one common P, the
largest for which the cost fits. Cost is monotone in every size, so bisection
on P finds it. This generalises the reference's final-size rule from "last
feature size" to MACs and memory. P is not capped at 1: a learned shape that
is already under budget is scaled *up* (no map beyond its human size) until
the budget is used, so that what the alphas decide is the *allocation* of the
budget between maps, never whether to spend it (measured: with P <= 1 a run
whose shape undershot left 8% of the budget unused).

Integer sizes make that common P coarse: one more pixel on a 7x7 map can be
worth 25% of the tail's MACs. So the bisection is followed by a deterministic
fill: adaptors, earliest first, grow one pixel at a time (never past their
unprojected learned size when shrinking, nor past the human size when growing)
while the budget still holds. Measured on
mobilenet_v2@224 at 300M: 97.0% of the budget used by P alone, 99.x% after the
fill. The sizes stay a pure function of the alphas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import UnreachableBudget
from .budget import Budget
from .shape_cost import Cost, ShapeCostModel, Sizes

#: Bisection steps on P: 2^-40 is far below the step between two integer sizes.
BISECTION_STEPS = 40


def round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def sizes_from_factors(human_sizes: Sizes, factors: list[float], scale: float = 1.0) -> Sizes:
    """Global-type sizes: each adaptor's size is its human size times the product of all factors so far.

    ``scale`` multiplies every factor (the projection's P). Rounding, not
    flooring, so a factor near 1 keeps the human size.
    """
    sizes, product = [], 1.0
    for (h, w), s in zip(human_sizes, factors, strict=True):
        product *= scale * s
        sizes.append((round_half_up(h * product), round_half_up(w * product)))
    return sizes


def fits(cost: Cost, budget: Budget) -> bool:
    """Every cap of ``budget`` holds for ``cost`` (resize MACs count inside a MACs budget: the adaptors add them)."""
    return budget.fits(cost)


@dataclass(frozen=True)
class Projection:
    scale: float  # P: 1.0 when the learned shape already fits
    sizes: Sizes
    cost: Cost


def check_reachable(model: ShapeCostModel, budget: Budget) -> None:
    """Refuse a budget that even the smallest shape cannot meet, before any training."""
    floor = model.floor_cost()
    parts = [p for term, limit in budget.terms() if (p := term.shortfall(floor, limit, budget)) is not None]
    if parts:
        raise UnreachableBudget(
            f"budget {budget.describe()} is impossible: the smallest reachable cost at this width is "
            f"{' and '.join(parts)} (every adapted map at its floor); raise the budget or lower --width"
        )


def project(model: ShapeCostModel, factors: list[float], budget: Budget) -> Projection:
    """The largest common P such that the shape ``P * factors`` fits ``budget``, then the pixel fill.

    P < 1 shrinks an over-budget shape; P > 1 grows an under-budget one up to the human sizes (module docstring).
    A budget out of reach even at the floor gives the floor (P = 0): a network refuses such a budget when it is
    built (:func:`check_reachable`), so here it was measured out of reach during training, where stopping would
    lose the run (a re-time on a slow spell crashed a benchmark run, benchmarks/RESULTS.md).
    """

    def at(scale: float) -> tuple[Sizes, Cost]:
        sizes = model.clamp(sizes_from_factors(model.human_sizes, factors, scale))
        return sizes, model.cost(sizes)

    sizes, cost = at(1.0)
    if not budget.bounded:  # no budget: the learned shape as it is (autosc transfer)
        return Projection(1.0, sizes, cost)
    if fits(cost, budget):
        # Under budget: grow. At P = 1 / (smallest running product of factors) every map is at its human size.
        running, smallest = 1.0, 1.0
        for s in factors:
            running *= s
            smallest = min(smallest, running)
        lo, hi, best = 1.0, 1.0 / smallest, (sizes, cost)
        top = at(hi)
        if fits(top[1], budget):
            return Projection(hi, *top)
        caps = model.human_sizes
    else:
        lo, hi = 0.0, 1.0
        best = at(lo)
        if not fits(best[1], budget):  # out of reach now (a re-time timed a slower spell, a tighter end-check
            return Projection(0.0, *best)  # budget): the floor, for the caller to judge; the refusal is up front
        caps = sizes
    for _ in range(BISECTION_STEPS):
        mid = (lo + hi) / 2
        trial = at(mid)
        if fits(trial[1], budget):
            lo, best = mid, trial
        else:
            hi = mid
    return Projection(lo, *_fill(model, best[0], best[1], caps, budget))


def _fill(model: ShapeCostModel, sizes: Sizes, cost: Cost, caps: Sizes, budget: Budget) -> tuple[Sizes, Cost]:
    """Grow adaptors one pixel at a time, earliest first, up to ``caps``, while the budget holds."""
    sizes = list(sizes)
    grown = True
    while grown:
        grown = False
        for k, ((h, w), (ch, cw)) in enumerate(zip(sizes, caps, strict=True)):
            for candidate in ((min(h + 1, ch), min(w + 1, cw)), (min(h + 1, ch), w), (h, min(w + 1, cw))):
                if candidate == (h, w):
                    continue
                trial = sizes[:k] + [candidate] + sizes[k + 1 :]
                trial_cost = model.cost(trial)
                if fits(trial_cost, budget):
                    sizes, cost, grown = trial, trial_cost, True
                    break
    return sizes, cost
