"""Distilled fine-tuning of a network the latency check shrank after training (docs/algorithm.md, Latency budgets).

A shrunk network computes at sizes it was not trained at: re-estimating BatchNorm is not enough (RESULTS,
"Latency budgets": 77.2% -> 35.5% once). A bounded number of SGD steps at a small learning rate, distilled from
the network as trained (its logits at the old sizes are the targets), adapts the weights to the new sizes; the
count is the run's ``--shrink-steps`` and the report states it.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn
from torch.utils.data import Dataset

from ..data.device import DeviceImages
from ..distributed import DistContext
from .batches import epoch_batches
from .config import TrainConfig
from .distill import as_teacher, distillation_loss, teacher_logits

#: The fine-tune's peak learning rate as a share of the run's: the weights are trained, only the sizes moved; 5%
#: won back too little in the steps it has (benchmarks/RESULTS.md, "The fine-tune after a shrink", chosen on
#: validation images).
LR_SHARE = 0.2


def _batches(train_set: Dataset, data: DeviceImages | None, config: TrainConfig, device: torch.device,
             ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:  # fmt: skip
    """Training batches as the trainer draws them, in epochs seeded after the run's own (a reproducible order)."""
    epoch = config.epochs
    while True:
        yield from epoch_batches(train_set, data, config, DistContext(), device, epoch)
        epoch += 1


def fine_tune(
    student: nn.Module,
    teacher: nn.Module,
    train_set: Dataset,
    data: DeviceImages | None,
    config: TrainConfig,
    *,
    steps: int,
    device: torch.device,
    lr_share: float = LR_SHARE,
) -> int:
    """Train ``student`` for ``steps`` batches against ``teacher``'s logits and the labels; returns the steps taken.

    SGD with the run's momentum and weight decay, the learning rate ``lr_share`` of the run's decaying to 0 on a
    cosine, the run's distillation temperature and weight (the soft term at least half: the teacher is the point).
    Both networks end on ``device``, the student in eval mode.
    """
    student.to(device).train()
    teacher = as_teacher(teacher.to(device))
    params = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=lr_share * config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay or 0.0)  # fmt: skip
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, steps))
    taken = 0
    for _, (x, y) in zip(range(steps), _batches(train_set, data, config, device), strict=False):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = distillation_loss(student(x), teacher_logits(teacher, x), y, temperature=config.distill_temperature,
                                 weight=max(0.5, config.distill_weight))  # fmt: skip
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        taken += 1
    student.eval()
    return taken


__all__ = ["LR_SHARE", "fine_tune"]
