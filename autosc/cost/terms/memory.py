"""The activation-memory budget (``--memory 4MiB``): float32 activation bytes at batch 1
(docs/algorithm.md, Cost conventions)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...units import format_bytes, parse_bytes
from .base import BudgetTerm, register_term

if TYPE_CHECKING:
    from ...report.schema import Report
    from ..budget import Budget
    from ..shape_cost import Cost


@register_term
class MemoryTerm(BudgetTerm):
    key = "memory_bytes"
    option = "memory"
    help = "Activation-memory budget: 4MiB, 512KB, ... (alone or with --budget)."
    example = "--memory (e.g. 4MiB)"
    noun = "memory"

    def parse_value(self, text: str) -> int:
        return parse_bytes(text)

    def read(self, cost: Cost, budget: Budget) -> int:
        return cost.activation_bytes

    def format(self, value: float) -> str:
        return format_bytes(value)

    def describe(self, limit: float, budget: Budget) -> str:
        return f"{format_bytes(limit)} activations"

    def shortfall(self, floor: Cost, limit: float, budget: Budget) -> str | None:
        value = floor.activation_bytes
        return None if value <= limit else f"{format_bytes(value)} of activations against {format_bytes(limit)}"

    def report_figures(self, report: Report) -> dict[str, float | None]:
        memory = report.activation_bytes
        return {"human": memory["human"], "final": memory["final"], "baseline": None}  # the baseline records none
