"""autosc: compress a human-designed CNN to a budget by learning where to shrink its feature maps."""

from .api import count_model
from .cost import Budget, count, parse_budget
from .errors import AutoscError
from .models import ModelSpec, build_model, list_models

__version__ = "0.1.0"

__all__ = ["AutoscError", "Budget", "ModelSpec", "build_model", "count", "count_model", "list_models", "parse_budget"]
