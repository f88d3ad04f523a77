"""Training stages: the start network's own accuracy, the adapted network trained (resumable, in a run folder),
and the human network narrowed to the budget as the baseline to beat (docs/algorithm.md, Training)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from .. import io
from ..checkpoint import save_checkpoint
from ..config import RunConfig
from ..cost import count
from ..cost.budget import Budget
from ..cost.budgeted import BudgetedNetwork
from ..cost.width import auto_width
from ..data import DataBundle
from ..data.device import DeviceImages, resident
from ..distributed import DistContext
from ..errors import AutoscError, one_line
from ..formats import migrate_plan
from ..report import schema
from ..train import TrainConfig, Trainer, train
from ..train.config import SHRINK_SHARE
from ..train.evaluate import evaluate, recalibrate_batchnorm
from ..train.fine_tune import fine_tune
from ..train.runtime import resolve_device
from .data import human_spec
from .folder import RunFolder
from .progress import Display
from .retime import Retimer

BASELINE_FORMAT = "autosc-baseline/1"


def shrink_steps(config: TrainConfig, train_images: int) -> int:
    """``--shrink-steps``, by default ``SHRINK_SHARE`` of the run's training steps (at least one)."""
    if config.shrink_steps is not None:
        return config.shrink_steps
    return max(1, round(SHRINK_SHARE * config.epochs * math.ceil(train_images / config.batch_size)))


def retrain_after_shrink(bundle: DataBundle, config: TrainConfig) -> Callable[[nn.Module, nn.Module], dict]:
    """What a network the latency check shrank after training goes through before it is saved and exported
    (docs/algorithm.md, Latency budgets), on the training device (both networks go back to the CPU for export).

    Its BatchNorm statistics are re-estimated on the training images as the trainer fed them (device-resident
    under ``--device-data``, else the per-image loader); then ``config.shrink_steps`` steps of fine-tuning distilled
    from the network as trained (:func:`autosc.train.fine_tune.fine_tune`; default as many as the run's steps,
    :func:`shrink_steps`) and BatchNorm again. Returns the steps
    and the test accuracy as trained, shrunk and fine-tuned, for the report. ``config`` is the run's resolved one.
    """

    def run(student: nn.Module, teacher: nn.Module) -> dict:
        device = resolve_device(config.device)
        data = resident(bundle.train, config.device_data, device)

        try:
            trained = evaluate(teacher.to(device), bundle.test, workers=config.workers, device=device,
                               amp=config.amp)[1]  # fmt: skip
            shrunk = recalibrated_accuracy(student, bundle, bundle.test, config, device, data)
            steps = shrink_steps(config, len(bundle.train))
            steps = fine_tune(student, teacher, bundle.train, data, config, steps=steps, device=device)
            fine_tuned = recalibrated_accuracy(student, bundle, bundle.test, config, device, data) if steps else None
        finally:
            student.cpu()
            teacher.cpu()
        return {"steps": steps, "trained": trained, "shrunk": shrunk, "fine_tuned": fine_tuned}

    return run


def recalibrated_accuracy(
    net: nn.Module, bundle: DataBundle, split: Dataset, config: TrainConfig, device: torch.device,
    data: DeviceImages | None = None,
) -> float:  # fmt: skip
    """Accuracy on ``split`` after every BatchNorm is re-estimated on the training images as the trainer feeds them
    (``data``: device-resident under ``--device-data``): how a network resized, pruned or fine-tuned outside the
    trainer is scored, since its statistics were measured on other feature maps (docs/algorithm.md, Latency
    budgets; the shrink, ``auto``'s candidates and ``--shape-search`` all score this way)."""
    recalibrate_batchnorm(net.to(device), data or bundle.train, batch_size=config.batch_size, workers=config.workers,
                          device=device)  # fmt: skip
    return evaluate(net, split, workers=config.workers, device=device, amp=config.amp)[1]


def start_accuracy(net: nn.Module, bundle: DataBundle, config: TrainConfig) -> tuple[float, float | None]:
    """(test, validation) accuracy of the start network before any step: the trained network's own figures."""
    device = resolve_device(config.device)
    net.to(device)
    _, test = evaluate(net, bundle.test, workers=config.workers, device=device, amp=config.amp)
    val = None
    if bundle.val is not None:
        _, val = evaluate(net, bundle.val, workers=config.workers, device=device, amp=config.amp)
    net.cpu()  # the trainer moves it back if it becomes the teacher
    return test, val


def planned_accuracy(net: nn.Module, bundle: DataBundle, config: TrainConfig) -> dict[str, float | None]:
    """{"test", "val"} top-1 of the planned network before any step, BatchNorm re-estimated as before every
    evaluation (so it reads like the epochs' figures): what the cut itself costs. ``net``'s own statistics are
    restored after, so the run trains from exactly the state it would without this."""
    device = resolve_device(config.device)
    kept = {k: v.clone() for k, v in net.state_dict().items()}
    test = recalibrated_accuracy(net, bundle, bundle.test, config, device)
    val = evaluate(net, bundle.val, workers=config.workers, device=device, amp=config.amp)[1] if bundle.val is not None else None
    net.load_state_dict(kept)
    net.cpu()
    return {"test": test, "val": val}


def train_network(
    net: nn.Module,
    bundle: DataBundle,
    config: TrainConfig,
    *,
    name: str = "autosc",
    folder: RunFolder | None = None,
    phase: str = "autosc",
    display: Display | None = None,
    dist: DistContext | None = None,
    save_extra: dict | None = None,
    teacher: nn.Module | None = None,
    retimer: Retimer | None = None,
) -> Trainer:
    """Train ``net`` to the end; with a folder, resume from and save to its ``phase`` checkpoint.

    ``teacher``: distil from it (autosc/train/distill.py); ``retimer``: re-time the shape under a latency budget
    as it learns (autosc/run/retime.py; its records are checkpointed). Returns the trainer: its ``history`` holds the
    per-epoch metrics (validation and test), and its ``stop_signal`` is set if SIGINT or SIGTERM stopped
    it early (the state is saved at a batch boundary).
    """
    display = display or Display(quiet=True)
    dist = dist or DistContext()
    trainer = Trainer(net, bundle.train, bundle.test, config, dist=dist, teacher=teacher, val_set=bundle.val)
    ckpt = folder.checkpoint(phase) if folder is not None else None
    if ckpt is not None and ckpt.is_file():
        _resume(net, trainer, ckpt, retimer)
        display.log(f"{name}: resuming from {ckpt} (epoch {trainer.epoch}, batch {trainer.batch})")

    def save(t: Trainer) -> None:
        if folder is None or not dist.is_main:  # one writer: every rank holds the same weights and metrics
            return
        if isinstance(net, BudgetedNetwork):
            retimes = {"retimes": retimer.records} if retimer is not None else {}
            save_checkpoint(net, ckpt, trainer=t.state_dict(), **retimes)
        else:
            state = {"format": BASELINE_FORMAT, **(save_extra or {})}
            io.save({**state, "state_dict": net.state_dict(), "trainer": t.state_dict()}, ckpt)
        folder.write_metrics(t.history, phase)

    on_batch, on_epoch = display.phase(name, trainer)
    if retimer is not None:
        on_batch = _both(on_batch, retimer.on_batch)
    with display.progress:
        train(trainer, save=save, on_batch=on_batch, on_epoch=on_epoch,
              on_epoch_end=retimer.on_epoch_end if retimer is not None else None)  # fmt: skip
    return trainer


def _both(first: Callable[[Trainer], None] | None, second: Callable[[Trainer], None]) -> Callable[[Trainer], None]:
    def call(trainer: Trainer) -> None:
        if first is not None:
            first(trainer)
        second(trainer)

    return call


def _resume(net: nn.Module, trainer: Trainer, ckpt: Path, retimer: Retimer | None = None) -> None:
    """Load a checkpoint's weights and trainer state into a run built from the same plan, and the latency model's
    calibration and budget as its re-times left them; a damaged or edited checkpoint is one line naming it (its
    state is plain data: a wrong type would fail deep inside training)."""
    data = io.load(ckpt, expect=(io.CHECKPOINT_FORMAT, BASELINE_FORMAT))
    io.load_state(net, data.get("state_dict"), ckpt)
    state = data.get("trainer")
    try:
        _check_counters(state, trainer)
        if isinstance(net, BudgetedNetwork) and net.cost_model.latency is not None:
            stored = migrate_plan(data["config"])
            net.retime(stored["latency_calibration"], Budget.from_dict(stored["budget"]))
            if retimer is not None:
                retimer.records = [dict(r) for r in data.get("retimes", [])]
        trainer.load_state_dict(state)
    except AutoscError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError, AttributeError) as exc:
        raise AutoscError(
            f"cannot resume from {ckpt}: its trainer state is damaged or was edited ({one_line(exc)[:160]}); "
            "start the run again with --force"
        ) from exc


def _check_counters(state: object, trainer: Trainer) -> None:
    """Where the stored run stopped: whole numbers within this run's epochs and batches."""
    if not isinstance(state, dict):
        raise TypeError(f"it is {type(state).__name__}, not a dict")
    limits = {"epoch": trainer.config.epochs, "batch": trainer.batches_per_epoch - 1, "step": trainer.total_steps}
    for key, high in limits.items():
        value = state.get(key)  # None: missing
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
            raise ValueError(f"{key} is {value!r}, not a whole number from 0 to {high}")


@dataclass
class TrainedBaseline:
    """The human network narrowed to the budget and trained with the same recipe: the comparison to beat."""

    net: nn.Module
    width: float
    trainer: Trainer

    def to_report(self, size: tuple[int, int], convention: str) -> schema.Baseline:
        cost = count(self.net, size, cells=False)
        return schema.Baseline(
            width=self.width,
            accuracy=self.trainer.history[-1]["test_acc"],
            epochs=self.trainer.epoch,
            macs=cost.macs_in(convention),
            params=cost.params,
        )


def train_baseline(
    config: RunConfig,
    bundle: DataBundle,
    budget: Budget,
    size: tuple[int, int],
    train_config: TrainConfig,
    *,
    folder: RunFolder | None = None,
    display: Display | None = None,
    dist: DistContext | None = None,
) -> TrainedBaseline:
    """The human network at the widest width that fits ``budget``, same recipe and seed (see train_network)."""
    width = auto_width(human_spec(config, bundle), size, budget, ratio=1.0)
    spec = human_spec(config, bundle, width)
    torch.manual_seed(train_config.seed)
    net = spec.build()
    trainer = train_network(
        net,
        bundle,
        train_config,
        name=f"baseline (width {width:g})",
        folder=folder,
        phase="baseline",
        display=display,
        dist=dist,
        save_extra={"model": spec.to_dict()},
    )
    return TrainedBaseline(net, width, trainer)
