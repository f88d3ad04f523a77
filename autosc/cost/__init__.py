"""Cost accounting (MACs, resize MACs, params, activation memory) and budgets."""

from .budget import Budget, parse_budget
from .counters import (
    CONVENTIONS,
    CostReport,
    count,
    count_params,
    example_input,
    fvcore_macs,
    infer_in_channels,
    thop_macs,
)

__all__ = [
    "CONVENTIONS",
    "Budget",
    "CostReport",
    "count",
    "count_params",
    "example_input",
    "fvcore_macs",
    "infer_in_channels",
    "parse_budget",
    "thop_macs",
]
