"""autosc: compress a human-designed CNN to a budget by learning where to shrink its feature maps.

The pipeline, one package each: ``models`` (zoo, widening) -> ``adaptor`` (module,
placement) -> ``cost`` (counting, budget) -> ``train`` -> ``freeze`` ->
``export``/``latency`` -> ``report``; ``run`` holds the stages that chain them
and ``compress``; ``config`` the one run configuration; ``cli`` is a thin layer
over these (docs/architecture.md, The pipeline).
"""

from .api import count_model, export_model, load_frozen, plan, probe, quantize_export
from .config import DataConfig, ExportConfig, PlanConfig, RunConfig
from .cost import Budget, count, parse_budget
from .errors import AutoscError
from .models import ModelSpec, build_model, list_models
from .report import Report
from .run import Result, compress, transfer
from .train import TrainConfig

__version__ = "0.1.0"

__all__ = [
    "AutoscError",
    "Budget",
    "DataConfig",
    "ExportConfig",
    "ModelSpec",
    "PlanConfig",
    "Report",
    "Result",
    "RunConfig",
    "TrainConfig",
    "build_model",
    "compress",
    "transfer",
    "count",
    "count_model",
    "export_model",
    "list_models",
    "load_frozen",
    "parse_budget",
    "plan",
    "quantize_export",
    "probe",
]
