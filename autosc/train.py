"""Training weights and shapes together under the budget (SPEC §4).

Two optimisers split the parameters by role: weights (SGD with Nesterov
momentum, cosine schedule) and the adaptors' alphas (Adam by default, cosine).
Every ``alpha_step`` batches the alphas are updated. With ``alpha_pass =
"separate"`` (the reference) that takes one extra forward/backward on the same
batch after the weight step; with ``"shared"`` (the default) the alphas use the
gradient of the weight step's own backward, which costs nothing: on this
2-core CPU the extra pass made every alpha step cost ~1.7x a plain step, and a
run needs hundreds of alpha updates to learn a shape (SPEC §4's pitfall). The
budget projection runs inside every forward. The alphas see what their MACs
cost (``cost_term``, a Lagrangian on a smooth cost) and learn during the first
``shape_until`` of the steps; the weights then finish on the fixed shape,
with each adaptor collapsed to a plain resize to its size (``collapse``: the
half-resolution branch no longer blurs the map, and the exported network has
one resize per adaptor). benchmarks/RESULTS.md has the measurements behind each.

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
import signal
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from . import distributed
from .cost.budgeted import BudgetedNetwork
from .distributed import DistContext
from .errors import AutoscError

ALPHA_OPTIMIZERS = ("adam", "sgd")
ALPHA_PASSES = ("shared", "separate")
AMP_MODES = ("off", "bf16", "fp16")


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:i``; a clear error when absent."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise AutoscError(f"--device must be auto, cpu, cuda or cuda:N, got {name!r}") from exc
    if device.type not in ("cpu", "cuda"):
        raise AutoscError(f"--device must be auto, cpu, cuda or cuda:N, got {name!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise AutoscError(f"--device {name}: no CUDA device is visible here; use --device cpu (or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise AutoscError(
                f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) are visible (cuda:0 .. "
                f"cuda:{torch.cuda.device_count() - 1})"
            )
    return device


@dataclass
class TrainConfig:
    """Every hyper-parameter of a run; ``defaults_for`` gives the per-family starting point."""

    epochs: int = 200
    batch_size: int = 128
    lr: float = 0.1
    weight_decay: float = 5e-4
    momentum: float = 0.9
    alpha_optimizer: str = "adam"
    alpha_lr: float = 0.05
    alpha_step: int = 0  # 0: auto, about ALPHA_UPDATES alpha updates per run
    alpha_pass: str = "shared"  # "shared": alphas use the weight step's gradient; "separate": an extra pass (ref)
    cost_term: bool = True  # the alphas also see what their MACs cost (a dual-ascent Lagrangian; see _alpha_update)
    shape_until: float = 0.5  # fraction of the steps during which the alphas learn; then the shape is fixed
    collapse: bool = True  # when the shape is fixed, each adaptor becomes a plain resize; the weights fine-tune on it
    dual_lr: float = 0.05  # step of the budget's dual variable per alpha update, per unit of relative over-budget
    penalty: float = 0.0  # > 0: no dual ascent; the cost's weight is penalty x (relative over-budget), 0 under it
    seed: int = 0
    workers: int = 0
    channels_last: bool = True  # NHWC activations: 1.8x faster training on this project's CPU (benchmarks/RESULTS.md)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: str = "off"  # off | bf16 | fp16: autocast for the network; the alpha step and the projection stay float32

    def validate(self) -> None:
        if self.epochs < 1:
            raise AutoscError(f"--epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise AutoscError(f"--batch-size must be at least 1, got {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise AutoscError(f"--lr must be a positive number, got {self.lr}")
        if not 0 < self.shape_until <= 1:
            raise AutoscError(f"--shape-until must be in (0, 1], got {self.shape_until}")
        if not (self.dual_lr >= 0 and math.isfinite(self.dual_lr)):
            raise AutoscError(f"dual_lr must be >= 0, got {self.dual_lr}")
        if not (self.penalty >= 0 and math.isfinite(self.penalty)):
            raise AutoscError(f"penalty must be >= 0, got {self.penalty}")
        if not (self.alpha_lr >= 0 and math.isfinite(self.alpha_lr)):
            raise AutoscError(f"--alpha-lr must be >= 0, got {self.alpha_lr}")
        if self.weight_decay < 0:
            raise AutoscError(f"--weight-decay must be >= 0, got {self.weight_decay}")
        if self.alpha_step < 0:
            raise AutoscError(f"--alpha-step must be >= 0 (0 = auto), got {self.alpha_step}")
        if self.alpha_pass not in ALPHA_PASSES:
            raise AutoscError(f"--alpha-pass must be one of {', '.join(ALPHA_PASSES)}, got {self.alpha_pass!r}")
        if self.amp not in AMP_MODES:
            raise AutoscError(f"--amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        if self.alpha_optimizer not in ALPHA_OPTIMIZERS:
            raise AutoscError(
                f"--alpha-optimizer must be one of {', '.join(ALPHA_OPTIMIZERS)}, got {self.alpha_optimizer!r}"
            )

    def to_dict(self) -> dict:
        return asdict(self)


#: With ``alpha_step=0`` the alphas get about this many updates per run, however short the run: the
#: reference's "every 20 batches" gives a 6-epoch run only ~24 updates, and the alphas then do not move (SPEC §4).
ALPHA_UPDATES = 600


def defaults_for(model: str, input_size: tuple[int, int]) -> TrainConfig:
    """The seed paper's recipe (SPEC §4): CIFAR-size inputs batch 128, lr 0.1; larger ones batch 64, lr 0.05."""
    small = min(input_size) < 64
    mobilenet = model.startswith("mobilenet")
    return TrainConfig(
        epochs=200 if small else 100,
        batch_size=128 if small else 64,
        lr=0.1 if small else 0.05,
        weight_decay=4e-5 if mobilenet else 5e-4,
    )


@dataclass
class EpochMetrics:
    epoch: int
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    lr: float
    seconds: float
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


class StopRequested(Exception):
    """Ctrl-C arrived; the state was saved at a batch boundary."""


@contextmanager
def _stop_on_sigint():
    """The first Ctrl-C asks the loop to stop at the next batch boundary; a second one interrupts at once."""
    flag = {"stop": False}
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):  # noqa: ARG001 - signal's signature
        if flag["stop"]:
            raise KeyboardInterrupt
        flag["stop"] = True

    with suppress(ValueError):  # not the main thread: no handler, Ctrl-C behaves as usual
        signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        with suppress(ValueError):
            signal.signal(signal.SIGINT, previous)


def _epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


def _seed_epoch(seed: int, epoch: int) -> torch.Generator:
    """Seed everything an epoch draws from, so any epoch can be replayed on its own."""
    s = _epoch_seed(seed, epoch)
    torch.manual_seed(s)
    random.seed(s)
    return torch.Generator().manual_seed(s)


def _layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x


def _autocast(device: torch.device, amp: str):
    if amp == "off":
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def evaluate(
    net: nn.Module,
    dataset: Dataset,
    batch_size: int = 256,
    workers: int = 0,
    channels_last: bool = False,
    *,
    device: torch.device | str | None = None,
    amp: str = "off",
) -> tuple[float, float]:
    """(mean cross-entropy, top-1 accuracy) on ``dataset`` in eval mode, on the network's device by default."""
    device = torch.device(device) if device is not None else next(net.parameters()).device
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=workers, pin_memory=device.type == "cuda"
    )
    was_training = net.training
    net.eval()
    total, correct, loss_sum = 0, 0.0, 0.0
    with torch.no_grad():
        for x, y in loader:
            x, y = _layout(x.to(device, non_blocking=True), channels_last), y.to(device, non_blocking=True)
            with _autocast(device, amp):
                out = net(x)
            loss_sum += F.cross_entropy(out.float(), y, reduction="sum")
            correct += (out.argmax(1) == y).sum()
            total += y.numel()
    net.train(was_training)
    return float(loss_sum) / max(total, 1), float(correct) / max(total, 1)


class Trainer:
    """One training run of a network (budgeted or plain) with resumable state.

    ``state_dict()`` holds everything a resume needs, as plain tensors and
    numbers (loadable with ``weights_only=True``).
    """

    def __init__(
        self,
        net: nn.Module,
        train_set: Dataset,
        test_set: Dataset,
        config: TrainConfig,
        dist: DistContext | None = None,
    ) -> None:
        config.validate()
        self.net, self.train_set, self.test_set, self.config = net, train_set, test_set, config
        self.dist = dist or DistContext()
        self.device = resolve_device(distributed.device_name(self.dist, config.device))
        net.to(self.device)
        if config.channels_last:
            net.to(memory_format=torch.channels_last)
        # With torchrun, the training forward goes through DDP (which also makes every rank start from rank 0's
        # weights); evaluation and the alpha pass use the plain module.
        self.model = self._wrap(net)
        # fp16 needs loss scaling (bf16 has float32's range and does not); a disabled scaler is a no-op.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.amp == "fp16")
        self.budgeted = isinstance(net, BudgetedNetwork)
        # Per process: a DistributedSampler hands each rank ceil(N / world) images; the global batch is
        # batch_size x world_size.
        self.batches_per_epoch = math.ceil(math.ceil(len(train_set) / self.dist.world_size) / config.batch_size)
        self.total_steps = self.batches_per_epoch * config.epochs
        weights = list(net.weight_parameters()) if self.budgeted else list(net.parameters())
        self.alpha_params = list(net.alpha_parameters()) if self.budgeted else []
        self.weight_opt = torch.optim.SGD(
            weights, lr=config.lr, momentum=config.momentum, nesterov=True, weight_decay=config.weight_decay
        )
        self.weight_sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.weight_opt, T_max=self.total_steps)
        # The alphas learn during the first ``shape_until`` of the steps; the weights then train on the fixed shape.
        self.shape_steps = max(1, round(config.shape_until * self.total_steps))
        self.alpha_step = config.alpha_step or max(1, round(self.shape_steps / ALPHA_UPDATES))
        self.alpha_opt = self.alpha_sched = None
        if self.alpha_params:
            if config.alpha_optimizer == "adam":
                self.alpha_opt = torch.optim.Adam(self.alpha_params, lr=config.alpha_lr)
            else:
                self.alpha_opt = torch.optim.SGD(self.alpha_params, lr=config.alpha_lr, momentum=0.9, nesterov=True)
            alpha_updates = max(1, self.shape_steps // self.alpha_step)
            self.alpha_sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.alpha_opt, T_max=alpha_updates)
        self.alpha_start = [float(p.detach()) for p in self.alpha_params]
        self.dual = 1.0  # the budget's Lagrange multiplier, in units of the normalised loss gradient
        self.epoch = 0  # finished epochs
        self.batch = 0  # finished batches of the current epoch
        self.step = 0  # finished batches overall
        self.history: list[dict] = []
        self._running = {"loss": 0.0, "correct": 0, "seen": 0}
        self._rng: dict | None = None  # RNG state to restore when resuming mid-epoch

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

    # -- state ----------------------------------------------------------------------
    def state_dict(self) -> dict:
        state = {
            "epoch": self.epoch,
            "batch": self.batch,
            "step": self.step,
            "weight_opt": self.weight_opt.state_dict(),
            "weight_sched": self.weight_sched.state_dict(),
            "history": self.history,
            "running": dict(self._running),
            "alpha_start": self.alpha_start,
            "dual": self.dual,
            "scaler": self.scaler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate(),
            "config": self.config.to_dict(),
        }
        if self.alpha_opt is not None:
            state["alpha_opt"] = self.alpha_opt.state_dict()
            state["alpha_sched"] = self.alpha_sched.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.batch, self.step = state["epoch"], state["batch"], state["step"]
        self.weight_opt.load_state_dict(state["weight_opt"])
        self.weight_sched.load_state_dict(state["weight_sched"])
        if self.alpha_opt is not None and "alpha_opt" in state:
            self.alpha_opt.load_state_dict(state["alpha_opt"])
            self.alpha_sched.load_state_dict(state["alpha_sched"])
        self.history = list(state["history"])
        self._running = dict(state["running"])
        self.alpha_start = list(state["alpha_start"])
        self.dual = float(state.get("dual", 1.0))
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if self.batch:
            self._rng = {"torch": state["torch_rng"], "python": state["python_rng"]}
        self._collapse_if_due()  # a run stopped after the shape phase resumes collapsed

    @property
    def finished(self) -> bool:
        return self.epoch >= self.config.epochs

    # -- one batch ------------------------------------------------------------------
    def _check_finite(self, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss):
            raise AutoscError(
                f"the loss became {loss.item()} in epoch {self.epoch + 1}, batch {self.batch + 1}; training stopped and "
                f"the last good checkpoint is kept; lower --lr (now {self.config.lr:g}) or --alpha-lr and --resume"
            )

    def _train_batch(self, x: torch.Tensor, y: torch.Tensor) -> None:
        x = _layout(x.to(self.device, non_blocking=True), self.config.channels_last)
        y = y.to(self.device, non_blocking=True)
        alpha_now = (
            self.alpha_opt is not None and (self.step + 1) % self.alpha_step == 0 and self.step < self.shape_steps
        )
        shared = alpha_now and self.config.alpha_pass == "shared"
        with _autocast(self.device, self.config.amp):
            out = self.model(x)
        loss = F.cross_entropy(out.float(), y)
        self._check_finite(loss)
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
        self._running["loss"] += loss.item() * y.numel()
        self._running["correct"] += (out.argmax(1) == y).sum().item()
        self._running["seen"] += y.numel()
        if self.dist.enabled and self.budgeted:
            # Sizes are a pure function of the alphas; check that every rank really holds the same shape.
            sizes = [float(v) for size in self.net.last_projection.sizes for v in size]
            alphas = [float(p.detach()) for p in self.alpha_params]
            distributed.check_identical(self.dist, alphas + sizes, self.device, "the alphas and sizes")
        if alpha_now and not shared:
            with _autocast(self.device, self.config.amp):
                alpha_out = self.net(x)
            alpha_loss = F.cross_entropy(alpha_out.float(), y)
            self._check_finite(alpha_loss)
            grads = torch.autograd.grad(alpha_loss, self.alpha_params)  # alphas only: no weight gradients computed
            for p, g in zip(self.alpha_params, grads, strict=True):
                p.grad = g
            distributed.average_grads(self.dist, self.alpha_params)  # outside DDP's backward: average by hand
            self._alpha_update()
            for p in self.alpha_params:
                p.grad = None

    def _alpha_update(self) -> None:
        """One alpha step; with ``cost_term``, on the Lagrangian of the loss and the budget.

        The loss alone always prefers more detail, so every sigma rises and the
        hard projection undoes it uniformly: the shape is never learned (SPEC
        §4). Here the loss gradient and the gradient of the smooth cost
        (``relaxed_cost``) are each normalised, so the dual variable is a plain
        exchange rate, and mixed as ``loss + dual * cost``; the dual rises while
        the learned shape is over budget and falls while it is under. The
        alphas then move towards an allocation in which detail is bought where
        the loss values it most per MAC; once the learned shape is under budget
        the dual falls to zero and the two-sided projection scales the shape up
        to use the budget (measured: benchmarks/RESULTS.md).
        """
        g_loss = torch.stack(
            [p.grad.float() if p.grad is not None else p.new_zeros((), dtype=torch.float32) for p in self.alpha_params]
        )
        if not torch.isfinite(g_loss).all():
            return  # an fp16 overflow step: the loss scaler skips it for the weights, and so do the alphas
        if self.config.cost_term:
            ratio = self.net.relaxed_cost()
            cost_grads = torch.autograd.grad(ratio, self.alpha_params)
            g_cost = torch.stack([g.float() for g in cost_grads])
            over = ratio.detach().item() - 1.0
            if self.config.penalty > 0:  # proportional: no memory, so no wind-up below the budget
                self.dual = self.config.penalty * max(0.0, over)
            mixed = g_loss / g_loss.norm().clamp_min(1e-12) + self.dual * g_cost / g_cost.norm().clamp_min(1e-12)
            for p, g in zip(self.alpha_params, mixed, strict=True):
                p.grad = g.to(p.dtype)
            if self.config.penalty == 0:
                self.dual = max(0.0, self.dual + self.config.dual_lr * over)
        self.alpha_opt.step()
        self.alpha_sched.step()

    # -- epochs ---------------------------------------------------------------------
    def _loader(self) -> DataLoader:
        _seed_epoch(self.config.seed, self.epoch)
        # One order per epoch, split over ranks (with one process: the whole permutation), so that N processes
        # of batch B see the same global batches as one process of batch N x B.
        sampler = DistributedSampler(
            self.train_set,
            num_replicas=self.dist.world_size,
            rank=self.dist.rank,
            shuffle=True,
            seed=_epoch_seed(self.config.seed, 0),
        )
        sampler.set_epoch(self.epoch)
        return DataLoader(
            self.train_set,
            batch_size=self.config.batch_size,
            sampler=sampler,
            num_workers=self.config.workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )

    def run_epoch(self, stop: dict, on_batch: Callable[[Trainer], None] | None = None) -> dict | None:
        """Train (the rest of) one epoch and evaluate; None if a stop was requested mid-epoch."""
        start = time.perf_counter()
        loader = self._loader()
        skip = self.batch
        if self._rng is not None:  # resuming mid-epoch: replay the order, restore the RNG where we stopped
            torch.set_rng_state(self._rng["torch"])
            random.setstate(self._rng["python"])
            self._rng = None
        self.net.train()
        # When resuming, skip the batches already trained without loading them (the sampler's order is fixed by the
        # epoch seed) and without creating a loader iterator, which would draw from the restored RNG.
        batches = _skip_batches(loader, skip) if skip else iter(loader)
        for x, y in batches:
            self._train_batch(x, y)
            self.batch += 1
            self.step += 1
            self._collapse_if_due()
            if on_batch is not None:
                on_batch(self)
            if distributed.any_rank(self.dist, stop["stop"], self.device) and self.batch < self.batches_per_epoch:
                raise StopRequested
        test_loss, test_acc = evaluate(
            self.net,
            self.test_set,
            workers=self.config.workers,
            channels_last=self.config.channels_last,
            device=self.device,
            amp=self.config.amp,
        )
        loss_sum, correct, seen = distributed.sum_all(
            self.dist, [self._running["loss"], self._running["correct"], self._running["seen"]], self.device
        )
        seen = max(seen, 1)
        metrics = EpochMetrics(
            epoch=self.epoch + 1,
            train_loss=loss_sum / seen,
            train_acc=correct / seen,
            test_loss=test_loss,
            test_acc=test_acc,
            lr=self.weight_opt.param_groups[0]["lr"],
            seconds=time.perf_counter() - start,
        )
        if self.budgeted:
            projection = self.net.update_shape()
            alphas = [float(p.detach()) for p in self.alpha_params]
            metrics.macs = projection.cost.macs
            metrics.resize_macs = projection.cost.resize_macs
            metrics.activation_bytes = projection.cost.activation_bytes
            metrics.sizes = [list(s) for s in projection.sizes]
            metrics.factors = self.net.factors()
            metrics.alphas = alphas
            metrics.alpha_moved = max(abs(a - b) for a, b in zip(alphas, self.alpha_start, strict=True))
            with torch.no_grad():
                metrics.learned_cost = self.net.relaxed_cost().item()
            metrics.dual = self.dual
            metrics.scale = projection.scale
        row = asdict(metrics)
        self.history.append(row)
        self.epoch += 1
        self.batch = 0
        self._running = {"loss": 0.0, "correct": 0, "seen": 0}
        return row


def _skip_batches(loader: DataLoader, skip: int):
    """Iterate ``loader`` from batch ``skip`` on, drawing the sampler's order but loading no skipped item."""
    indices = list(loader.sampler)
    size = loader.batch_size
    dataset = loader.dataset
    collate = loader.collate_fn
    for start in range(skip * size, len(indices), size):
        yield collate([dataset[i] for i in indices[start : start + size]])


def train(
    trainer: Trainer,
    *,
    save: Callable[[Trainer], None],
    on_batch: Callable[[Trainer], None] | None = None,
    on_epoch: Callable[[Trainer, dict], None] | None = None,
) -> bool:
    """Run the remaining epochs, saving after each; returns False if stopped by Ctrl-C (state saved)."""
    with _stop_on_sigint() as stop:
        while not trainer.finished:
            try:
                row = trainer.run_epoch(stop, on_batch)
            except StopRequested:
                save(trainer)
                return False
            save(trainer)
            if on_epoch is not None:
                on_epoch(trainer, row)
    return True


__all__ = ["TrainConfig", "Trainer", "defaults_for", "evaluate", "train"]
