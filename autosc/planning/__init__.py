"""From a model and a plan configuration to a widened, adapted, budget-projected network (no training).

``make_plan`` is what ``autosc plan`` prints and what ``compress`` trains;
``network_from_config`` rebuilds the same network from the plain-data config
stored in checkpoints, so opening a checkpoint never unpickles code.
"""

from .adapt import adapt_network, network_from_config
from .make import make_plan
from .plan import Plan
from .width import choose_width, parse_width

__all__ = ["Plan", "adapt_network", "choose_width", "make_plan", "network_from_config", "parse_width"]
