"""The method's core: one update of the shape (the adaptors' alphas) on the Lagrangian of loss and budget.

The loss alone always prefers more detail, so every sigma rises and the hard
projection undoes it uniformly: the shape is never learned (docs/algorithm.md,
Training). Here the loss gradient and the gradient of the smooth cost
(``relaxed_cost``, the shape's cost over the budget) are each normalised, so the
dual variable is a plain exchange rate, and mixed as ``loss + dual * cost``; the
dual rises while the learned shape is over budget and falls while it is under.
The alphas then move towards an allocation in which detail is bought where the
loss values it most per MAC; once the learned shape is under budget the dual
falls to zero and the two-sided projection scales the shape up to use the budget
(measured: benchmarks/RESULTS.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class DualRule:
    """How the budget's multiplier moves: dual ascent at ``dual_lr``, or a memoryless ``penalty`` when > 0."""

    dual_lr: float = 0.05
    penalty: float = 0.0

    def next(self, dual: float, over: float) -> float:
        """The multiplier after an update at relative over-budget ``over`` (cost / budget - 1)."""
        if self.penalty > 0:  # proportional: no memory, so no wind-up below the budget
            return self.penalty * max(0.0, over)
        return max(0.0, dual + self.dual_lr * over)


def lagrangian_grads(
    params: Sequence[nn.Parameter],
    relaxed_cost: Callable[[], torch.Tensor],
    dual: float,
    rule: DualRule,
) -> tuple[list[torch.Tensor], float] | None:
    """The mixed alpha gradients and the dual for the next update; None if the loss gradient is not finite.

    ``params`` hold the loss gradient in ``.grad`` (None counts as zero).
    With a penalty the weight of this update's cost term is already the
    penalty's; with dual ascent the multiplier moves after the mix.
    """
    g_loss = torch.stack(
        [p.grad.float() if p.grad is not None else p.new_zeros((), dtype=torch.float32) for p in params]
    )
    if not torch.isfinite(g_loss).all():
        return None  # an fp16 overflow step: the loss scaler skips it for the weights, and so do the alphas
    ratio = relaxed_cost()
    g_cost = torch.stack([g.float() for g in torch.autograd.grad(ratio, list(params))])
    over = ratio.detach().item() - 1.0
    weight = rule.next(dual, over) if rule.penalty > 0 else dual
    mixed = g_loss / g_loss.norm().clamp_min(1e-12) + weight * g_cost / g_cost.norm().clamp_min(1e-12)
    return [g.to(p.dtype) for p, g in zip(params, mixed, strict=True)], rule.next(dual, over)


def alpha_step(
    params: Sequence[nn.Parameter],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    *,
    relaxed_cost: Callable[[], torch.Tensor] | None,
    dual: float,
    rule: DualRule,
) -> float:
    """One optimiser step of the alphas; returns the budget's multiplier afterwards.

    ``relaxed_cost=None`` is the reference's update on the loss alone.
    """
    if relaxed_cost is not None:
        out = lagrangian_grads(params, relaxed_cost, dual, rule)
        if out is None:
            return dual
        grads, dual = out
        for p, g in zip(params, grads, strict=True):
            p.grad = g
    elif not all(p.grad is None or torch.isfinite(p.grad).all() for p in params):
        return dual
    optimizer.step()
    scheduler.step()
    return dual
