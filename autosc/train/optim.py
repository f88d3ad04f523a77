"""The run's two optimisers, split by role, and their schedules.

The weights: SGD with Nesterov momentum, a linear warm-up over ``warmup`` of the steps, then cosine. The
adaptors' alphas: Adam (or SGD), cosine over the shape phase, one update every ``alpha_step`` batches during the
first ``shape_until`` of the steps; the weights then train on the fixed shape (docs/algorithm.md, "Training").
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .config import ALPHA_UPDATES, TrainConfig


class WarmupCosine:
    """The weight learning rate's factor per step: linear warm-up over ``warmup`` of the steps, then cosine.

    Given to ``LambdaLR`` as the bound method ``factor``, whose state is empty, so the schedule's state dict
    (``lr_lambdas``) is what checkpoints have always held.
    """

    def __init__(self, warmup: float, total_steps: int) -> None:
        self.warmup, self.total_steps = warmup, total_steps

    def factor(self, step: int) -> float:
        warm = round(self.warmup * self.total_steps)
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, self.total_steps - warm)))


def weight_optimizer(
    params: Sequence[nn.Parameter], config: TrainConfig, total_steps: int
) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.LambdaLR]:
    """SGD (Nesterov) for the weights and its warm-up then cosine schedule over ``total_steps``."""
    opt = torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, nesterov=True, weight_decay=config.weight_decay
    )
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, WarmupCosine(config.warmup, total_steps).factor)


def shape_steps(config: TrainConfig, total_steps: int) -> int:
    """The steps of the shape phase: the first ``shape_until`` of them, at least one."""
    return max(1, round(config.shape_until * total_steps))


def alpha_every(config: TrainConfig, phase_steps: int) -> int:
    """Batches between alpha updates: ``alpha_step``, or the shape phase's steps over ``ALPHA_UPDATES``."""
    return config.alpha_step or max(1, round(phase_steps / ALPHA_UPDATES))


def alpha_optimizer(
    params: Sequence[nn.Parameter], config: TrainConfig, updates: int
) -> tuple[torch.optim.Optimizer | None, torch.optim.lr_scheduler.LRScheduler | None]:
    """Adam or SGD for the alphas, cosine over the ``updates`` of the shape phase; (None, None) without alphas."""
    if not params:
        return None, None
    if config.alpha_optimizer == "adam":
        opt = torch.optim.Adam(params, lr=config.alpha_lr)
    else:
        opt = torch.optim.SGD(params, lr=config.alpha_lr, momentum=0.9, nesterov=True)
    return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=updates)
