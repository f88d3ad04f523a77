"""What a run records: the per-epoch record (``EpochMetrics``, a row of the history and of ``metrics.jsonl``),
and the figures its steps keep on the device, read only when asked (``RunningSums``, ``FiniteWatch``): a read
per step would wait for the device every step (docs/algorithm.md, "Throughput")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ..cost.budgeted import BudgetedNetwork
from ..errors import AutoscError


@dataclass
class EpochMetrics:
    epoch: int
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    lr: float
    seconds: float
    val_loss: float | None = None  # on the held-out part of the training data (--val-split), for decisions
    val_acc: float | None = None
    macs: int | None = None
    resize_macs: int | None = None
    activation_bytes: int | None = None
    sizes: list[list[int]] = field(default_factory=list)
    factors: list[float] = field(default_factory=list)
    alphas: list[float] = field(default_factory=list)
    alpha_moved: float | None = None  # largest |alpha - alpha at start| so far
    learned_cost: float | None = None  # the learned (unprojected) shape's smooth cost over budget
    dual: float | None = None  # the budget's dual variable (cost_term)
    scale: float | None = None  # the projection's common P (1.0: the learned shape fits as it is)

    def record_shape(
        self, net: BudgetedNetwork, alpha_params: Sequence[nn.Parameter], alpha_start: Sequence[float], dual: float
    ) -> None:
        """Fill in the shape now in use: its projected cost and sizes, the alphas, the learned cost, the dual."""
        projection = net.update_shape()
        alphas = [float(p.detach()) for p in alpha_params]
        self.macs = projection.cost.macs
        self.resize_macs = projection.cost.resize_macs
        self.activation_bytes = projection.cost.activation_bytes
        self.sizes = [list(s) for s in projection.sizes]
        self.factors = net.factors()
        self.alphas = alphas
        self.alpha_moved = max(abs(a - b) for a, b in zip(alphas, alpha_start, strict=True))
        with torch.no_grad():
            self.learned_cost = net.relaxed_cost().item()
        self.dual = dual
        self.scale = projection.scale


class RunningSums:
    """The current epoch's training loss sum, correct and seen counts, summed on the device."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.reset()

    def reset(self, values: dict | None = None) -> None:
        """Start again from zero, or from ``values`` (a resumed epoch's, as :meth:`read` gave them)."""
        v = values or {"loss": 0.0, "correct": 0, "seen": 0}
        self._sums = torch.tensor([v["loss"], v["correct"], v["seen"]], dtype=torch.float64, device=self.device)

    def add(self, loss: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
        """Add one batch: its mean ``loss`` over the labels ``y``, and the top-1 hits of the logits ``out``."""
        with torch.no_grad():
            self._sums[0] += loss.detach().double() * y.numel()
            self._sums[1] += (out.argmax(1) == y).sum()
            self._sums[2] += y.numel()

    def read(self) -> dict:
        """The sums so far (reading them waits for the device)."""
        loss, correct, seen = self._sums.tolist()
        return {"loss": loss, "correct": int(correct), "seen": int(seen)}


#: Steps between host reads of the non-finite flag: one device wait per this many steps, and a diverged run
#: stops within this many steps of the first bad loss.
FINITE_CHECK = 50


class FiniteWatch:
    """The first step whose loss was not finite (-1: none yet) and that loss, recorded without a host read."""

    def __init__(self, device: torch.device) -> None:
        self.step = torch.full((), -1, dtype=torch.long, device=device)
        self.loss = torch.zeros((), device=device)

    def record(self, loss: torch.Tensor, step: int) -> None:
        """Remember ``loss`` if it is the first one that is not finite, on the device."""
        first = ~torch.isfinite(loss.detach()) & (self.step < 0)
        self.step = torch.where(first, step, self.step)
        self.loss = torch.where(first, loss.detach().float(), self.loss)

    def check(self, batches_per_epoch: int, lr: float) -> None:
        """Raise if a loss so far was not finite, naming its epoch and batch (this reads the flag: a device wait)."""
        bad = int(self.step)
        if bad >= 0:
            epoch, batch = divmod(bad, batches_per_epoch)
            raise AutoscError(
                f"the loss became {float(self.loss)} in epoch {epoch + 1}, batch {batch + 1}; training stopped and "
                f"the last good checkpoint is kept; lower --lr (now {lr:g}) or --alpha-lr and --resume"
            )
