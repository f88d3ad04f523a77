"""The importance criteria channel pruning ranks by: a registry, so a new criterion is one function and one
registration (docs/algorithm.md, Channel pruning)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import AutoscError


@dataclass(frozen=True)
class Importance:
    """A named criterion: what it ranks channels by, whether it needs a labelled batch, and its Torch-Pruning
    estimator's factory (called at pruning time: Torch-Pruning is imported only when something is pruned)."""

    name: str
    description: str
    needs_batch: bool
    make: Callable[[], object]


#: Every registered criterion by name, in registration order.
IMPORTANCES: dict[str, Importance] = {}

#: The criterion a run uses when none is named: chosen on the validation split, where it kept 1.4-2.1 points more
#: than ``l1`` after the fine-tune at 50% and 30% of the MACs on fresh seeds (benchmarks/RESULTS.md, issue 30).
DEFAULT_IMPORTANCE = "taylor"

#: The criterion of the pruning functions called without a labelled batch (the default needs one): data-free and
#: deterministic, the field's standard baseline.
DATA_FREE_IMPORTANCE = "l1"


def register_importance(name: str, description: str, *, needs_batch: bool = False):
    """Register the decorated factory (no arguments, returns a Torch-Pruning importance) under ``name``."""

    def wrap(make: Callable[[], object]) -> Callable[[], object]:
        IMPORTANCES[name] = Importance(name, description, needs_batch, make)
        return make

    return wrap


def importance_of(name: str) -> Importance:
    """The criterion ``name``; an unknown name is one line listing the known ones."""
    if name not in IMPORTANCES:
        raise AutoscError(f"unknown importance {name!r}; use one of {', '.join(IMPORTANCES)}")
    return IMPORTANCES[name]


@register_importance("l1", "L1 norm of each channel's weights over its whole dependency group (Li et al. 2017; data-free)")
def _l1():
    import torch_pruning as tp

    return tp.importance.MagnitudeImportance(p=1)


@register_importance("bn", "|gamma| of the group's batch norms (network slimming, Liu et al. 2017)")
def _bn():
    import torch_pruning as tp

    return tp.importance.BNScaleImportance()


@register_importance("taylor", "first-order Taylor |w * dL/dw| on one batch (Molchanov et al. 2019)", needs_batch=True)
def _taylor():
    import torch_pruning as tp

    return tp.importance.TaylorImportance()
