"""The latency budget (``--latency 1.5ms``): ONNX Runtime p50 on this machine at the budget's threads and batch,
as the latency model predicts it (docs/algorithm.md, Latency budgets)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...units import format_ms, parse_latency
from .base import BudgetTerm, register_term

if TYPE_CHECKING:
    from ...report.schema import Report
    from ..budget import Budget
    from ..shape_cost import Cost


@register_term
class LatencyTerm(BudgetTerm):
    key = "latency_ms"
    option = "latency"
    help = "Latency budget: 1.5ms, 800us, ... (ONNX Runtime p50 on this machine; alone or with the others)."
    example = "--latency (e.g. 1.5ms)"
    noun = "latency"
    exact = False  # measured after freezing: over within the noise is reported by the latency verdict, not warned

    def parse_value(self, text: str) -> float:
        return parse_latency(text)

    def read(self, cost: Cost, budget: Budget) -> float | None:
        return cost.latency_ms  # None without a latency model of the network

    def format(self, value: float) -> str:
        return f"{format_ms(value)}"

    def describe(self, limit: float, budget: Budget) -> str:
        threads = "1 thread" if budget.latency_threads == 1 else f"{budget.latency_threads} threads"
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
