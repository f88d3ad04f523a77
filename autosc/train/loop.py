"""The training loop around a :class:`~autosc.train.Trainer`: epochs, saving, and a clean stop on Ctrl-C."""

from __future__ import annotations

from collections.abc import Callable

from .runtime import stop_on_signals
from .trainer import StopRequested, Trainer


def train(
    trainer: Trainer,
    *,
    save: Callable[[Trainer], None],
    on_batch: Callable[[Trainer], None] | None = None,
    on_epoch: Callable[[Trainer, dict], None] | None = None,
) -> bool:
    """Run the remaining epochs, saving after each; returns False if stopped by a signal (state saved).

    The signal that stopped it (SIGINT or SIGTERM) is left in ``trainer.stop_signal``.
    """
    with stop_on_signals() as stop:
        while not trainer.finished:
            try:
                row = trainer.run_epoch(stop, on_batch)
            except StopRequested:
                save(trainer)
                trainer.stop_signal = stop["signal"]
                return False
            save(trainer)
            if on_epoch is not None:
                on_epoch(trainer, row)
    return True
