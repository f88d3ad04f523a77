"""autosc: compress a human-designed CNN to a budget by learning where to shrink its feature maps.

The pipeline, one module each: ``models`` (zoo, widening) -> ``adaptor`` (module,
placement) -> ``cost`` (counting, budget) -> ``train`` -> ``freeze`` ->
``export``/``latency`` -> ``report``; ``cli`` is a thin layer over these.
"""

from .api import count_model, export_model, plan
from .compress import Result, compress
from .cost import Budget, count, parse_budget
from .errors import AutoscError
from .models import ModelSpec, build_model, list_models

__version__ = "0.1.0"

__all__ = [
    "AutoscError",
    "Budget",
    "ModelSpec",
    "Result",
    "build_model",
    "compress",
    "count",
    "count_model",
    "export_model",
    "list_models",
    "parse_budget",
    "plan",
]
