"""The width to compress at: ``--width auto`` sizes the widened human network by the budget; a trained network
is widened, never narrowed (docs/algorithm.md, Width and budget projection)."""

from __future__ import annotations

import math

from ..cost.budget import Budget
from ..cost.shape_cost import Cost
from ..cost.width import MAX_WIDTH, auto_width, human_network_cost
from ..errors import AutoscError
from ..models import ModelSpec, is_timm_name, scales_width
from ..models.trained import Start


def parse_width(value: float | str) -> float | None:
    """None for "auto", else a validated positive float."""
    if isinstance(value, str):
        if value.strip().lower() == "auto":
            return None
        try:
            value = float(value)
        except ValueError:
            raise AutoscError(f"--width must be 'auto' or a positive number, got {value!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise AutoscError(f"width must be a positive number, got {value!r}")
    if value > MAX_WIDTH:
        raise AutoscError(f"width {value:g} is above the widest network autosc builds ({MAX_WIDTH:g})")
    return float(value)


def refuse_unbinding(widest: ModelSpec, size: tuple[int, int], budget: Budget) -> None:
    """A budget the widest buildable network already fits leaves nothing to compress: refuse it, with the figures."""
    cost = human_network_cost(widest, size)
    if all(term.fits(cost, limit, budget) for term, limit in budget.terms() if term.read(cost, budget) is not None):
        figures = ", ".join(
            term.describe(v, budget) for term, _ in budget.terms() if (v := term.read(cost, budget)) is not None
        )
        raise AutoscError(
            f"budget {budget.describe()} is at or above the widest network autosc builds (width {widest.width:g}: "
            f"{figures}); nothing needs compressing, lower the budget"
        )


def choose_width(
    start: Start, fixed: float | None, size: tuple[int, int], budget: Budget, ratio: float
) -> tuple[float, str | None]:
    """The width to compress at, and a note when a trained network keeps its own width.

    A trained network is widened only where the copy rule applies (zoo families; autosc/models/widen.py)
    and is never narrowed: removing channels of a trained network is channel pruning, not shape learning.
    """
    human = start.spec
    if not budget.bounded:  # no budget to size a width by: the start's own (or the one asked for)
        return (fixed if fixed is not None else human.width), None
    if fixed is None and is_timm_name(human.name) and not scales_width(human.name):
        return human.width, f"--width auto keeps width {human.width:g}: {human.name} has no channel multiplier"
    if not start.trained:
        chosen = fixed if fixed is not None else auto_width(human, size, budget, ratio)
        if fixed is None and chosen >= MAX_WIDTH:
            refuse_unbinding(human.at_width(MAX_WIDTH), size, budget)
        return chosen, None
    if fixed is not None:
        return _fixed_trained_width(human, fixed), None
    trained = human.width
    if not scales_width(human.name):
        return trained, f"--width auto keeps the trained width {trained:g}: autosc widens only built-in families"
    chosen = auto_width(human.at_width(1.0), size, budget, ratio)
    if chosen <= trained:
        return trained, f"--width auto keeps the trained width {trained:g} (the budget asks for no wider network)"
    if chosen >= MAX_WIDTH:
        refuse_unbinding(human.at_width(MAX_WIDTH), size, budget)
    return chosen, None


def _fixed_trained_width(human: ModelSpec, fixed: float) -> float:
    """An explicit ``--width`` for a trained network: at or above its own, and above only where widening applies."""
    trained = human.width
    if fixed < trained:
        raise AutoscError(
            f"--width {fixed:g} is below the trained network's width {trained:g}: autosc widens a trained "
            f"network, it does not remove its channels; use --width {trained:g} or auto"
        )
    if fixed > trained and not scales_width(human.name):
        raise AutoscError(
            f"--width {fixed:g} would widen {human.name}, and autosc can widen a trained network keeping its "
            f"function only for the built-in families; use --width {trained:g} (or auto, which keeps it)"
        )
    return fixed


def refuse_unneeded(
    widened: Cost, budget: Budget, human: ModelSpec, spec: ModelSpec, size: tuple[int, int], ratio: float
) -> None:
    """A budget the widened network already fits leaves the adaptors nothing to remove: refuse it, saying why."""
    if not budget.bounded or not budget.fits(widened):
        return
    term, _ = next(iter(budget.terms()))
    have = term.format(term.read(widened, budget))
    if not term.exact:  # a measured kind: the figure is the latency model's prediction
        have += " predicted"
    if not scales_width(human.name):
        raise AutoscError(
            f"budget {budget.describe()} is at or above the trained network's cost ({have}), "
            "so there is nothing to compress; lower the budget"
        )
    if not term.exact:  # the width a latency budget needs is measured, not counted: there is no number to suggest
        raise AutoscError(
            f"budget {budget.describe()} is at or above the widened network's cost ({have} at width {spec.width:g}), "
            "so the adaptors have nothing to remove; lower the budget, or plan a wider network (--width; with "
            "--latency-table, probe at a wider --width)"
        )
    suggestion = max(auto_width(human.at_width(1.0), size, budget, ratio), human.width)
    raise AutoscError(
        f"budget {budget.describe()} is at or above the widened network's cost ({have} at width {spec.width:g}), "
        f"so the adaptors have nothing to remove; use --width auto (here {suggestion:g}) or a width above {suggestion:g}"
    )
