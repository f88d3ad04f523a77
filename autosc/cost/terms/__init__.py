"""Budget kinds, one module each, registered on import (docs/architecture.md, To add a budget kind).

The import order is the order in which budgets are described, checked and reported: MACs, memory, latency.
"""

# isort: off
from . import macs, memory, latency  # noqa: F401  (registration, in this order)

# isort: on
from .base import TERMS, BudgetTerm, get_term, register_term, term_for_option, unregister_term

__all__ = ["TERMS", "BudgetTerm", "get_term", "register_term", "term_for_option", "unregister_term"]
