"""The trainer: one resumable training run of a network (budgeted or plain), weights and shape together.

Two optimisers split the parameters by role: weights (SGD with Nesterov
momentum, cosine schedule) and the adaptors' alphas (Adam by default, cosine).
Every ``alpha_step`` batches the alphas are updated (autosc/train/alpha.py).
With ``alpha_pass = "separate"`` (the reference) that takes one extra
forward/backward on the same batch after the weight step; with ``"shared"``
(the default) the alphas use the gradient of the weight step's own backward,
which costs nothing: on this 2-core CPU the extra pass made every alpha step
cost ~1.7x a plain step, and a run needs hundreds of alpha updates to learn a
shape. The budget projection runs inside every forward. The alphas learn during
the first ``shape_until`` of the steps; the weights then finish on the fixed
shape, with each adaptor collapsed to a plain resize to its size
(``collapse``). docs/algorithm.md ("Training") and benchmarks/RESULTS.md have the
measurements behind each choice.

Under ``torchrun`` the training forward runs through DistributedDataParallel
and each rank reads its share of one per-epoch permutation, so N processes of
batch B see the same global batches as one process of batch N x B.

Runs are deterministic for a seed and resumable to the same result: the data
order and augmentation randomness are re-seeded per epoch, and a stop
(Ctrl-C) at a batch boundary saves the exact mid-epoch state.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import asdict

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset

from .. import distributed
from ..cost.budgeted import BudgetedNetwork
from ..data.device import DeviceImages, resident
from ..distributed import DistContext
from ..errors import AutoscError
from .alpha import DualRule, alpha_step
from .batches import epoch_batches
from .config import RECIPE_FIELDS, TrainConfig
from .distill import as_teacher, distillation_loss, teacher_logits
from .evaluate import evaluate, precise_batchnorm
from .metrics import FINITE_CHECK, EpochMetrics, FiniteWatch, RunningSums
from .optim import alpha_every, alpha_optimizer, shape_steps, weight_optimizer
from .runtime import autocast, layout, resolve_device
from .state import load_trainer_state, trainer_state


class StopRequested(Exception):
    """Ctrl-C arrived; the state was saved at a batch boundary."""


class Trainer:
    """One training run of a network (budgeted or plain) with resumable state.

    ``state_dict()`` holds everything a resume needs, as plain tensors and
    numbers (loadable with ``weights_only=True``; autosc/train/state.py).
    """

    def __init__(
        self,
        net: nn.Module,
        train_set: Dataset,
        test_set: Dataset,
        config: TrainConfig,
        dist: DistContext | None = None,
        *,
        teacher: nn.Module | None = None,
        val_set: Dataset | None = None,
    ) -> None:
        config.validate()
        if not config.resolved:
            missing = ", ".join(k for k in RECIPE_FIELDS if getattr(config, k) is None)
            raise AutoscError(f"the training config does not set {missing}; use TrainConfig.resolve(model, input_size)")
        self.net, self.train_set, self.test_set, self.config = net, train_set, test_set, config
        self.val_set = val_set
        self.dist = dist or DistContext()
        self.device = resolve_device(distributed.device_name(self.dist, config.device))
        # The training images on the device, augmented by whole batches there (autosc/data/device.py); None: the
        # per-image data loader. Evaluation splits are put there when first evaluated.
        self.data = resident(train_set, config.device_data, self.device)
        self._resident: dict[int, DeviceImages | None] = {}
        self._place(net, teacher)
        # fp16 needs loss scaling (bf16 has float32's range and does not); a disabled scaler is a no-op.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.amp == "fp16")
        self.budgeted = isinstance(net, BudgetedNetwork)
        # Per process: a DistributedSampler hands each rank ceil(N / world) images; the global batch is
        # batch_size x world_size.
        self.batches_per_epoch = math.ceil(math.ceil(len(train_set) / self.dist.world_size) / config.batch_size)
        self.total_steps = self.batches_per_epoch * config.epochs
        self._make_optimizers()
        self.alpha_start = [float(p.detach()) for p in self.alpha_params]
        self.dual = 1.0  # the budget's Lagrange multiplier, in units of the normalised loss gradient
        self.epoch = 0  # finished epochs
        self.batch = 0  # finished batches of the current epoch
        self.step = 0  # finished batches overall
        self.history: list[dict] = []
        self.sums = RunningSums(self.device)  # the epoch's running training figures, read when asked
        self.finite = FiniteWatch(self.device)
        self.resume_rng: dict | None = None  # RNG state to restore when resuming mid-epoch
        self.stop_signal: int | None = None  # the signal that stopped training early (autosc/train/loop.py)
        self._compile_if_due()  # a plain network compiles from the start; an adapted one once its shape is fixed

    def _place(self, net: nn.Module, teacher: nn.Module | None) -> None:
        """Move the network (and the teacher) to the device and layout; wrap the training forward for DDP."""
        net.to(self.device)
        if self.config.channels_last:
            net.to(memory_format=torch.channels_last)
        # The network the run started from, when distilling from it (autosc/train/distill.py).
        self.teacher = as_teacher(teacher.to(self.device)) if teacher is not None else None
        if self.teacher is not None and self.config.channels_last:
            self.teacher.to(memory_format=torch.channels_last)
        # With torchrun, the training forward goes through DDP (which also makes every rank start from rank 0's
        # weights); evaluation and the alpha pass use the plain module.
        self.model = self._wrap(net)
        self._compiled = False

    @property
    def running(self) -> dict:
        """The current epoch's loss sum, correct and seen counts so far (reading them waits for the device)."""
        return self.sums.read()

    def _make_optimizers(self) -> None:
        """The two optimisers and their schedules, and the shape phase's length and cadence (autosc/train/optim.py)."""
        config, net = self.config, self.net
        weights = list(net.weight_parameters()) if self.budgeted else list(net.parameters())
        self.alpha_params = list(net.alpha_parameters()) if self.budgeted else []
        self.weight_opt, self.weight_sched = weight_optimizer(weights, config, self.total_steps)
        self.shape_steps = shape_steps(config, self.total_steps)
        self.alpha_step = alpha_every(config, self.shape_steps)
        updates = max(1, self.shape_steps // self.alpha_step)
        self.alpha_opt, self.alpha_sched = alpha_optimizer(self.alpha_params, config, updates)

    def _loss(self, out: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy, or with a teacher the distillation blend (its logits computed without gradients)."""
        if self.teacher is None:
            return F.cross_entropy(out.float(), y)
        with autocast(self.device, self.config.amp):
            target = teacher_logits(self.teacher, x)
        c = self.config
        return distillation_loss(out, target, y, temperature=c.distill_temperature, weight=c.distill_weight)

    def _wrap(self, net: nn.Module) -> nn.Module:
        if not self.dist.enabled:
            return net
        return DistributedDataParallel(net, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def _collapse_if_due(self) -> None:
        """Once the shape phase is over, reduce the adaptors to one branch (``collapse``); idempotent.

        Only in runs whose shape phase ends before the last step (``shape_until`` < 1): collapsing
        changes the function, so the weights must fine-tune after it. A run resumed past that point
        (even a finished one) collapses again on load, as the network it trained was collapsed.
        """
        if not (self.config.collapse and self.budgeted):
            return
        if self.shape_steps >= self.total_steps or self.step < self.shape_steps or self.net.collapsed:
            return
        self.net.collapse()
        # The alphas no longer take part in the forward; DDP must not wait for their gradients.
        self.model = self._wrap(self.net)

    def _compile_if_due(self) -> None:
        """With ``compile``, compile the training forward once the shape can no longer change; idempotent.

        Before that the sizes move with the alphas and every new size would compile again; a plain network
        compiles from the start.
        """
        if not self.config.compile or self._compiled:
            return
        if self.budgeted and (self.step < self.shape_steps or self.shape_steps >= self.total_steps):
            return
        self.model = torch.compile(self.model)
        self._compiled = True

    def _fix_shape_if_due(self) -> None:
        self._collapse_if_due()
        self._compile_if_due()

    # -- state ----------------------------------------------------------------------
    def state_dict(self) -> dict:
        return trainer_state(self)

    def load_state_dict(self, state: dict) -> None:
        load_trainer_state(self, state)
        self._fix_shape_if_due()  # a run stopped after the shape phase resumes collapsed (and compiled)

    @property
    def finished(self) -> bool:
        return self.epoch >= self.config.epochs

    # -- one batch ------------------------------------------------------------------
    def check_finite(self) -> None:
        """Raise if any loss so far was not finite: before anything is saved, and every ``FINITE_CHECK`` steps.

        The state after a non-finite step is never saved, so the last good checkpoint is what stays.
        """
        self.finite.check(self.batches_per_epoch, self.config.lr)

    def _train_batch(self, x: torch.Tensor, y: torch.Tensor) -> None:
        x = layout(x.to(self.device, non_blocking=True), self.config.channels_last)
        y = y.to(self.device, non_blocking=True)
        alpha_now = (  # a network collapsed from the start (--strategy prune) holds its shape: no alpha step
            self.alpha_opt is not None and (self.step + 1) % self.alpha_step == 0 and self.step < self.shape_steps
            and not self.net.collapsed
        )  # fmt: skip
        shared = alpha_now and self.config.alpha_pass == "shared"
        with autocast(self.device, self.config.amp):
            out = self.model(x)
        loss = self._loss(out, x, y)
        self.finite.record(loss, self.step)
        self.weight_opt.zero_grad(set_to_none=True)
        for p in self.alpha_params:
            p.grad = None
        self.scaler.scale(loss).backward()
        if shared:
            self._alpha_update()
        for p in self.alpha_params:  # the alphas keep no gradient between steps
            p.grad = None
        self.scaler.step(self.weight_opt)
        self.scaler.update()
        self.weight_sched.step()
        self.sums.add(loss, out, y)
        if alpha_now and not shared:
            self._separate_alpha_pass(x, y)

    def _separate_alpha_pass(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """``alpha_pass = "separate"``: one more forward/backward on the batch, for the alphas' gradient only."""
        with autocast(self.device, self.config.amp):
            alpha_out = self.net(x)
        alpha_loss = self._loss(alpha_out, x, y)
        self.finite.record(alpha_loss, self.step)
        grads = torch.autograd.grad(alpha_loss, self.alpha_params)  # alphas only: no weight gradients computed
        for p, g in zip(self.alpha_params, grads, strict=True):
            p.grad = g
        distributed.average_grads(self.dist, self.alpha_params)  # outside DDP's backward: average by hand
        self._alpha_update()
        for p in self.alpha_params:
            p.grad = None

    def _alpha_update(self) -> None:
        """One alpha step (autosc/train/alpha.py): on the budget Lagrangian with ``cost_term``, else the loss.

        The shape is projected again here, the only place the alphas change, not in every forward.
        """
        self.dual = alpha_step(
            self.alpha_params,
            self.alpha_opt,
            self.alpha_sched,
            relaxed_cost=self.net.relaxed_cost if self.config.cost_term and self.net.budget.bounded else None,
            dual=self.dual,
            rule=DualRule(self.config.dual_lr, self.config.penalty),
        )
        projection = self.net.update_shape()
        if self.dist.enabled:
            # Sizes are a pure function of the alphas; check that every rank really holds the same shape.
            sizes = [float(v) for size in projection.sizes for v in size]
            alphas = [float(p.detach()) for p in self.alpha_params]
            distributed.check_identical(self.dist, alphas + sizes, self.device, "the alphas and sizes")

    # -- epochs ---------------------------------------------------------------------
    def run_epoch(self, stop: dict, on_batch: Callable[[Trainer], None] | None = None) -> dict:
        """Train (the rest of) one epoch and evaluate; raises :class:`StopRequested` on a stop mid-epoch."""
        start = time.perf_counter()
        with self._shape_held():
            self._train_batches(stop, on_batch)
            self.check_finite()
            row = asdict(self._epoch_metrics(time.perf_counter() - start))
        self.history.append(row)
        self.epoch += 1
        self.batch = 0
        self.sums.reset()
        return row

    def _shape_held(self):
        """While training, the shape is projected when the alphas change (``_alpha_update``), not per forward."""
        return self.net.shape_held() if self.budgeted else nullcontext()

    def epoch_batches(self, skip: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This epoch's training batches from batch ``skip`` on (autosc/train/batches.py); seeds the epoch now."""
        return epoch_batches(self.train_set, self.data, self.config, self.dist, self.device, self.epoch, skip)

    def _train_batches(self, stop: dict, on_batch: Callable[[Trainer], None] | None) -> None:
        batches = self.epoch_batches(self.batch)
        if self.resume_rng is not None:  # resuming mid-epoch: replay the order, restore the RNG where we stopped
            torch.set_rng_state(self.resume_rng["torch"])
            random.setstate(self.resume_rng["python"])
            self.resume_rng = None
        self.net.train()
        for x, y in batches:
            self._train_batch(x, y)
            self.batch += 1
            self.step += 1
            self._fix_shape_if_due()
            if on_batch is not None:
                on_batch(self)
            if self.batch % FINITE_CHECK == 0:
                self.check_finite()
            if distributed.any_rank(self.dist, stop["stop"], self.device) and self.batch < self.batches_per_epoch:
                self.check_finite()  # a stop saves the state: never one after a non-finite step
                raise StopRequested

    def _evaluate(self, dataset: Dataset) -> tuple[float, float]:
        """(loss, top-1) of the network on ``dataset`` with this run's device, layout and precision."""
        c = self.config
        if id(dataset) not in self._resident:
            self._resident[id(dataset)] = resident(dataset, c.device_data, self.device)
        data = self._resident[id(dataset)] or dataset
        return evaluate(self.net, data, workers=c.workers, channels_last=c.channels_last, device=self.device, amp=c.amp)

    def _precise_bn(self) -> None:
        """Re-estimate BatchNorm on training images before the epoch's evaluations (autosc/train/evaluate.py)."""
        c = self.config
        data = self.train_set if self.data is None else self.data
        precise_batchnorm(self.net, data, images=c.precise_bn, batch_size=c.batch_size, workers=c.workers,
                          device=self.device)  # fmt: skip

    def _epoch_metrics(self, seconds: float) -> EpochMetrics:
        """Test accuracy and the epoch's training figures (summed over ranks), plus the shape now in use."""
        self._precise_bn()
        test_loss, test_acc = self._evaluate(self.test_set)
        running = self.running
        loss_sum, correct, seen = distributed.sum_all(
            self.dist, [running["loss"], running["correct"], running["seen"]], self.device
        )
        seen = max(seen, 1)
        metrics = EpochMetrics(
            epoch=self.epoch + 1,
            train_loss=loss_sum / seen,
            train_acc=correct / seen,
            test_loss=test_loss,
            test_acc=test_acc,
            lr=self.weight_opt.param_groups[0]["lr"],
            seconds=seconds,
        )
        if self.val_set is not None and len(self.val_set):
            metrics.val_loss, metrics.val_acc = self._evaluate(self.val_set)
        if self.budgeted:
            metrics.record_shape(self.net, self.alpha_params, self.alpha_start, self.dual)
        return metrics


__all__ = ["FINITE_CHECK", "EpochMetrics", "StopRequested", "Trainer"]
