"""Channel pruning as a stage of autosc, built on Torch-Pruning (docs/algorithm.md, Channel pruning).

A trained network's channels are ranked globally by a named importance criterion (:mod:`.importance`), pruned
in multiples of 8 with the classifier's outputs kept, to a pruning ratio or a MACs target (:mod:`.pruner`); what
was pruned is recorded as plain data (:mod:`.channels`), so a model spec rebuilds the pruned network from a file
without unpickling anything.
"""

from .channels import apply_channels, channel_record
from .importance import DEFAULT_IMPORTANCE, IMPORTANCES, importance_of, register_importance
from .pruner import ROUND_TO, classifier, prune_at_ratio, prune_to_macs

__all__ = [
    "DEFAULT_IMPORTANCE",
    "IMPORTANCES",
    "ROUND_TO",
    "apply_channels",
    "channel_record",
    "classifier",
    "importance_of",
    "prune_at_ratio",
    "prune_to_macs",
    "register_importance",
]
