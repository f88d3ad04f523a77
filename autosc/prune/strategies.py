"""How one budget is split between the two knobs, channels and feature-map sizes: the ``--strategy`` registry
(docs/algorithm.md, Strategies).

A strategy says which share of the budget's cut (from the start network's cost down to the limit, in the budget's
own kind) channel pruning makes before the shape adaptors make the rest, and whether the shape then learns. A new
strategy is one :func:`register_strategy` call.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import AutoscError


@dataclass(frozen=True)
class Strategy:
    """``share``: the part of the cut pruning makes (None: the configuration's ``prune_share``); ``shape_learns``:
    False holds every adaptor at the identity (the pruned network is trained as it is); ``searched``: the split is
    chosen on the data among candidates (autosc/run/auto.py), so planning alone cannot make it."""

    name: str
    description: str
    share: float | None
    shape_learns: bool
    searched: bool = False

    def prune_share(self, configured: float) -> float:
        return configured if self.share is None else self.share


#: Every registered strategy by name, in registration order (the order ``--help`` lists them).
STRATEGIES: dict[str, Strategy] = {}

#: The strategy used when none is named.
DEFAULT_STRATEGY = "shape"


def register_strategy(strategy: Strategy) -> Strategy:
    STRATEGIES[strategy.name] = strategy
    return strategy


def strategy_of(name: str) -> Strategy:
    """The strategy ``name``; an unknown name is one line listing the known ones."""
    if name not in STRATEGIES:
        raise AutoscError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    return STRATEGIES[name]


def check_share(share: object) -> float:
    """``--prune-share`` must be a number in [0, 1]."""
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
        raise AutoscError(f"--prune-share must be a number from 0 to 1 (the share of the cut pruning makes), got {share!r}")
    return float(share)


register_strategy(Strategy("shape", "the learned feature-map sizes alone (the paper's AutoSC)", 0.0, True))
register_strategy(Strategy("prune", "Torch-Pruning's channels alone; the shape is held at the identity", 1.0, False))
register_strategy(
    Strategy("compound", "channels pruned for --prune-share of the cut, the learned shape for the rest", None, True)
)
register_strategy(
    Strategy("auto", "shape, compound (half) and prune each briefly fine-tuned and scored on validation; the best "
             "continues", None, True, searched=True)  # fmt: skip
)
