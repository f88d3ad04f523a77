"""What a person watching a run sees: one rich progress bar per training phase, and a line per epoch."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..train import Trainer
from ..units import format_count

#: Seconds between reads of the running loss and accuracy for the bar (each read waits for the device).
STATUS_EVERY_S = 0.5


class Display:
    """A progress bar per training phase and log lines on stderr, or nothing at all with ``quiet``."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
            console=self.console,
            disable=quiet,
        )

    def log(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text, highlight=False)

    def counter(self, description: str) -> Callable[[int, int], None]:
        """A ``(done, total)`` callback drawing a bar for work counted in steps (the latency model's probe shapes);
        the bar goes away when the work is done."""
        task = None

        def step(done: int, total: int) -> None:
            nonlocal task
            if task is None:
                self.progress.start()
                task = self.progress.add_task(description, total=total, status="")
            self.progress.update(task, completed=done)
            if done >= total:
                self.progress.remove_task(task)
                self.progress.stop()
                task = None

        return step

    def phase(self, name: str, trainer: Trainer) -> tuple[Callable[[Trainer], None], Callable[[Trainer, dict], None]]:
        """The (per-batch, per-epoch) callbacks that keep the bar and the log up to date for one phase."""
        task = self.progress.add_task(name, total=trainer.total_steps, completed=trainer.step, status="")
        budget = getattr(trainer.net, "budget", None)

        refreshed = [0.0]

        def on_batch(t: Trainer) -> None:
            # The running figures live on the training device: read them a few times a second, not every batch.
            now = time.monotonic()
            if now - refreshed[0] < STATUS_EVERY_S and t.batch < t.batches_per_epoch:
                self.progress.update(task, completed=t.step)
                return
            refreshed[0] = now
            seen = max(t.running["seen"], 1)
            status = f"loss {t.running['loss'] / seen:.3f} acc {100 * t.running['correct'] / seen:.1f}%"
            projection = getattr(t.net, "last_projection", None)
            if projection is not None and budget is not None and budget.bounded:
                term, limit = next(iter(budget.terms()))  # the first capped kind: MACs when capped
                used = term.read(projection.cost, budget)
                sizes = ",".join(str(h) for h, _ in projection.sizes)
                status += f" | {term.format(used) if used is not None else '?'}/{term.format(limit)} | sizes {sizes}"
            desc = f"{name} epoch {min(t.epoch + 1, t.config.epochs)}/{t.config.epochs}"
            self.progress.update(task, completed=t.step, description=desc, status=status)

        def on_epoch(t: Trainer, row: dict) -> None:
            extra = (
                f", MACs {format_count(row['macs'] + row['resize_macs'])}, sizes {row['sizes']}"
                if row.get("macs")
                else ""
            )
            self.log(
                f"{name} epoch {row['epoch']}: test acc {100 * row['test_acc']:.2f}%, loss {row['test_loss']:.4f}{extra}"
            )

        return on_batch, on_epoch
