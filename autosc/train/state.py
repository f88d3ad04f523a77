"""A :class:`~autosc.train.Trainer`'s resumable state: everything a resume needs, as plain tensors and numbers
(loadable with ``weights_only=True``); the ``trainer`` entry of a checkpoint (autosc/checkpoint.py).

The keys and their meaning are a file format: checkpoints written before must still resume.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import torch

from ..errors import AutoscError

if TYPE_CHECKING:
    from .trainer import Trainer


def trainer_state(trainer: Trainer) -> dict:
    """The trainer's state now: counters, optimisers and schedules, history, running sums, dual, scaler, RNG."""
    state = {
        "epoch": trainer.epoch,
        "batch": trainer.batch,
        "step": trainer.step,
        "weight_opt": trainer.weight_opt.state_dict(),
        "weight_sched": trainer.weight_sched.state_dict(),
        "history": trainer.history,
        "running": dict(trainer.running),
        "alpha_start": trainer.alpha_start,
        "dual": trainer.dual,
        "scaler": trainer.scaler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "python_rng": random.getstate(),
        "config": trainer.config.to_dict(),
    }
    if trainer.alpha_opt is not None:
        state["alpha_opt"] = trainer.alpha_opt.state_dict()
        state["alpha_sched"] = trainer.alpha_sched.state_dict()
    return state


def load_trainer_state(trainer: Trainer, state: dict) -> None:
    """Put ``state`` (from :func:`trainer_state`) into a trainer built for the same run.

    A run stopped mid-epoch keeps its RNG state in ``trainer.resume_rng``, restored once the epoch's batches
    are made (their order is re-seeded per epoch, the augmentation draws then continue from where they stopped).
    """
    trainer.epoch, trainer.batch, trainer.step = state["epoch"], state["batch"], state["step"]
    trainer.weight_opt.load_state_dict(state["weight_opt"])
    if "lr_lambdas" not in state["weight_sched"]:
        raise AutoscError(
            "this checkpoint was written by an older autosc (a plain cosine schedule, no warm-up); finish it "
            "with that version, or start the run again with --force"
        )
    trainer.weight_sched.load_state_dict(state["weight_sched"])
    if trainer.alpha_opt is not None and "alpha_opt" in state:
        trainer.alpha_opt.load_state_dict(state["alpha_opt"])
        trainer.alpha_sched.load_state_dict(state["alpha_sched"])
    trainer.history = list(state["history"])
    trainer.sums.reset(state["running"])
    trainer.alpha_start = list(state["alpha_start"])
    trainer.dual = float(state.get("dual", 1.0))
    if state.get("scaler"):
        trainer.scaler.load_state_dict(state["scaler"])
    if trainer.batch:
        trainer.resume_rng = {"torch": state["torch_rng"], "python": state["python_rng"]}
