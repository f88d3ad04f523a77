"""The training loop around a :class:`~autosc.train.Trainer`: epochs, saving, and a clean stop on Ctrl-C."""

from __future__ import annotations

import signal
from collections.abc import Callable

from .. import distributed
from .runtime import stop_on_signals
from .trainer import StopRequested, Trainer


def train(
    trainer: Trainer,
    *,
    save: Callable[[Trainer], None],
    on_batch: Callable[[Trainer], None] | None = None,
    on_epoch: Callable[[Trainer, dict], None] | None = None,
    on_epoch_end: Callable[[Trainer], None] | None = None,
) -> bool:
    """Run the remaining epochs, saving after each; returns False if stopped by a signal (state saved).

    A signal stops the run at the next batch boundary: inside an epoch (:class:`StopRequested`), or at the end
    of one, which is the only boundary a run of one-batch epochs has. The signal that stopped it (SIGINT or
    SIGTERM) is left in ``trainer.stop_signal``. ``on_epoch_end`` runs after an epoch and before its state is
    saved (what it changes is in the checkpoint); ``on_epoch`` after the save.
    """
    with stop_on_signals() as stop:
        while not trainer.finished:
            try:
                row = trainer.run_epoch(stop, on_batch)
            except StopRequested:
                save(trainer)
                return _stopped(trainer, stop)
            if on_epoch_end is not None:
                on_epoch_end(trainer)
            save(trainer)
            if on_epoch is not None:
                on_epoch(trainer, row)
            # every rank asks, so that all stop after the same epoch; a stop after the last one still stops here
            # (the run resumes to its export), rather than going on to minutes of export the sender did not want
            if distributed.any_rank(trainer.dist, stop["stop"], trainer.device):
                return _stopped(trainer, stop)
    return True


def _stopped(trainer: Trainer, stop: dict) -> bool:
    """Record which signal stopped the run (a rank the signal did not reach stops as if by SIGTERM)."""
    trainer.stop_signal = stop["signal"] or signal.SIGTERM
    return False
