"""Knowledge distillation from the trained network a run starts from (docs/algorithm.md, Compressing a trained network).

The compressed network learns from the labels and from the trained network's
soft predictions: ``(1 - lam) CE(y) + lam T^2 KL(softmax(t / T) || softmax(s / T))``
(Hinton, Vinyals and Dean, 2015). The ``T^2`` keeps the soft term's gradient
on the scale of the hard one whatever the temperature.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def distillation_loss(student: Tensor, teacher: Tensor, target: Tensor, *, temperature: float, weight: float) -> Tensor:
    """The blended loss of student logits against the labels and the (detached) teacher logits."""
    hard = F.cross_entropy(student.float(), target)
    if weight == 0:
        return hard
    t = temperature
    soft = F.kl_div(
        F.log_softmax(student.float() / t, dim=1),
        F.log_softmax(teacher.detach().float() / t, dim=1),
        log_target=True,
        reduction="batchmean",
    )
    return (1 - weight) * hard + weight * t * t * soft


def as_teacher(net: nn.Module) -> nn.Module:
    """The teacher as it must run: eval mode (BatchNorm statistics fixed) and no gradients to its weights."""
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


@torch.no_grad()
def teacher_logits(teacher: nn.Module, x: Tensor) -> Tensor:
    """The teacher's logits for a batch, without building a graph (it stays in eval mode even if set back)."""
    teacher.eval()
    return teacher(x)


__all__ = ["as_teacher", "distillation_loss", "teacher_logits"]
