"""The MACs budget (``--budget 25M`` or ``60%``): conv + linear + resize MACs in the budget's convention
(docs/algorithm.md, Cost conventions)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...units import format_count, parse_macs
from .base import BudgetTerm, register_term

if TYPE_CHECKING:
    from ...report.schema import Report
    from ..budget import Budget
    from ..shape_cost import Cost


@register_term
class MacsTerm(BudgetTerm):
    key = "macs"
    option = "budget"
    help = "MACs budget: 300M, 1.2G, 95000000 or 60% of the human network."
    example = "--budget (e.g. 300M or 60%)"
    noun = "MAC"
    relative = True
    option_type = str | int | None  # from Python, an int of MACs as well as text

    def parse_value(self, text: str) -> int:
        return parse_macs(text)[0]  # type: ignore[return-value]  (a percentage is read by parse_fraction)

    def parse_fraction(self, text: str) -> float:
        return parse_macs(text)[1]  # type: ignore[return-value]

    def read(self, cost: Cost, budget: Budget) -> int:
        return cost.budget_macs(budget.convention)  # the adaptors' resize MACs count inside the budget

    def format(self, value: float) -> str:
        return f"{format_count(value)} MACs"

    def describe(self, limit: float, budget: Budget) -> str:
        return self.format(limit) + (" (paper convention)" if budget.convention == "paper" else "")

    def shortfall(self, floor: Cost, limit: float, budget: Budget) -> str | None:
        value = self.read(floor, budget)
        return None if value <= limit else f"{format_count(value)} MACs ({value:,}) against {format_count(limit)}"

    def report_figures(self, report: Report) -> dict[str, float | None]:
        base = report.baseline
        return {"human": report.macs.human, "final": report.macs.final_total, "baseline": base.macs if base else None}
