"""Refusing, before anything is allocated, a batch or input size that cannot fit in this machine's memory.

A batch of ``batch x channels x height x width`` float32 values is what every option that sizes a tensor
ends up allocating (``--batch-size`` and ``--input-size`` for training, ``--latency-batch`` for the latency
model and check, ``bench --batch``). The estimate is deliberately a lower bound, so that nothing that could
run is refused: the batch itself times :data:`FACTOR`, for the few activations of its size that any forward
pass holds at once (training holds every layer's, far more). It is set against the memory the operating
system reports available now (``MemAvailable`` in ``/proc/meminfo``, else ``os.sysconf``'s free pages);
where neither exists nothing is refused. Without the check such a value is not an error but a machine
that swaps for minutes, or a process the kernel's out-of-memory killer ends without a word
(docs/reliability.md, Resource limits).
"""

from __future__ import annotations

import math
import os

from .errors import AutoscError
from .units import format_bytes

#: Bytes of one float32 value.
BYTES = 4
#: The batch and three activations of its size: the least any forward pass holds at once.
FACTOR = 4


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now; None where the system does not say."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def check_batch(option: str, batch: int, item: tuple[int, ...]) -> None:
    """Refuse ``batch`` items of shape ``item`` (C, H, W) when even the lower-bound estimate exceeds the memory
    available, in one line naming ``option``, the estimate, the limit and the largest batch that fits."""
    per_item = math.prod(item) * BYTES * FACTOR
    need = batch * per_item
    have = available_memory()
    if have is None or need <= have:
        return
    shape = "x".join(str(d) for d in item)
    largest = have // per_item
    advice = f"use a batch of at most {largest}" if largest >= 1 else "use a smaller --input-size"
    raise AutoscError(
        f"{option}: a batch of {batch} at {shape} needs at least {format_bytes(need)} of memory ({batch} x {shape} "
        f"float32 values x {FACTOR}), more than the {format_bytes(have)} this machine has available; {advice}"
    )


def check_run(size: tuple[int, int], batch_size: int, latency_batch: int | None = None) -> None:
    """A compress run's training batch (and latency batch, under a latency budget) at ``size``, before its data is
    read: the data's channels are not known yet, so one channel is assumed, which keeps the estimate a lower bound."""
    check_batch("--batch-size", batch_size, (1, *size))
    if latency_batch is not None:
        check_batch("--latency-batch", latency_batch, (1, *size))


__all__ = ["available_memory", "check_batch", "check_run"]
