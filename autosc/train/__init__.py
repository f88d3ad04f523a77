"""Training weights and shapes together under the budget (docs/algorithm.md, Training).

``config`` (hyper-parameters and the per-family recipe), ``alpha`` (the
Lagrangian shape update, the method's core), ``trainer`` (one resumable run:
a batch, an epoch), ``optim`` (the two optimisers and their schedules),
``batches`` (an epoch's seeded order), ``metrics`` (the per-epoch record and
the on-device running figures), ``state`` (the resumable state's format),
``loop`` (epochs, saving, stopping), ``evaluate`` and ``runtime`` (device,
precision, layout, signals, seeding).
"""

from .alpha import DualRule, alpha_step, lagrangian_grads
from .config import ALPHA_UPDATES, RECIPES, TrainConfig, recipe
from .evaluate import evaluate
from .loop import train
from .runtime import resolve_device
from .trainer import EpochMetrics, StopRequested, Trainer

__all__ = [
    "ALPHA_UPDATES",
    "RECIPES",
    "DualRule",
    "EpochMetrics",
    "StopRequested",
    "TrainConfig",
    "Trainer",
    "alpha_step",
    "evaluate",
    "lagrangian_grads",
    "recipe",
    "resolve_device",
    "train",
]
