"""The latency budget (``--latency 60%`` or ``1.5ms``): ONNX Runtime p50 on this machine at the budget's threads and
batch, as the latency model predicts it; a share is of the reference network's p50, timed alongside
(docs/algorithm.md, Latency budgets)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...units import format_ms, is_latency_share, parse_latency, parse_latency_share
from .base import BudgetTerm, register_term

if TYPE_CHECKING:
    from ...report.schema import Report
    from ..budget import Budget
    from ..shape_cost import Cost

#: A shape is projected this far under a latency limit (a fraction of it): a shape projected exactly to its limit
#: measured within 1-3% of it either way here, so it met the limit about half the time (benchmarks/RESULTS.md, "(c)
#: again with --width auto sized by shares"). The end check's tolerance (autosc/run/measure.py) is the same 2%.
AIM_UNDER = 0.02


@register_term
class LatencyTerm(BudgetTerm):
    key = "latency_ms"
    option = "latency"
    help = (
        "Latency budget: 60% (or 0.6x) of the start network's ONNX Runtime p50 on this machine, timed alongside it "
        "(drift cancels), or absolute: 1.5ms, 800us; alone or with the others."
    )
    example = "--latency (e.g. 60% or 1.5ms)"
    noun = "latency"
    relative = True  # a share of the reference network's p50 (the trained start, else the human network)
    exact = False  # measured after freezing: over within the noise is reported by the latency verdict, not warned

    def parse_value(self, text: str) -> float:
        return parse_latency(text)

    def is_share(self, text: str) -> bool:
        return is_latency_share(text)

    def parse_fraction(self, text: str) -> float:
        return parse_latency_share(text)

    def settings(self, text: str, human: float | None) -> dict[str, Any]:
        share = parse_latency_share(text) if self.is_share(text) else None
        return {"latency_share": share, "latency_reference_ms": human}

    def read(self, cost: Cost, budget: Budget) -> float | None:
        return cost.latency_ms  # None without a latency model of the network

    def fits(self, cost: Cost, limit: float, budget: Budget) -> bool:
        """Predicted at most ``1 - AIM_UNDER`` of the limit: what the projection aims at, so that the exported
        network measures within the limit although one measurement varies by a few percent (the end check judges
        the limit itself, measured)."""
        value = self.read(cost, budget)
        return value is not None and value <= limit * (1 - AIM_UNDER)

    def format(self, value: float) -> str:
        return f"{format_ms(value)}"

    def describe(self, limit: float, budget: Budget) -> str:
        threads = "1 thread" if budget.latency_threads == 1 else f"{budget.latency_threads} threads"
        if budget.latency_share is not None:
            return (
                f"{budget.latency_share:.0%} of the start network's latency ({format_ms(limit)} at its speed when "
                f"timed; {threads}, batch {budget.latency_batch})"
            )
        return f"{format_ms(limit)} latency ({threads}, batch {budget.latency_batch})"

    def shortfall(self, floor: Cost, limit: float, budget: Budget) -> str | None:
        if floor.latency_ms is None:  # a budget met by a guess would not be a budget
            from ...errors import AutoscError

            raise AutoscError("a latency budget needs a latency model of the network (autosc.cost.fit_latency_model)")
        if floor.latency_ms <= limit:
            return None
        return f"{format_ms(floor.latency_ms)} predicted latency against {format_ms(limit)}"

    def report_figures(self, report: Report) -> dict[str, float | None]:
        lat = report.latency_ms
        return {
            "human": lat.human.p50 if lat.human else None,
            "final": lat.compressed.p50 if lat.compressed else None,
            "baseline": lat.baseline.p50 if lat.baseline else None,
        }
