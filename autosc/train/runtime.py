"""Where and how a training step runs: device, precision, memory layout, signals, per-epoch seeding.

Kept apart from the trainer so the method (autosc/train/trainer.py, alpha.py)
reads without the plumbing; docs/algorithm.md ("Training") says why each exists.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress

import torch
from torch.utils.data import DataLoader

from ..errors import AutoscError

DEVICE_HELP = "--device must be auto, cpu, cuda or cuda:N"


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:i``; a clear error when absent."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise AutoscError(f"{DEVICE_HELP}, got {name!r}") from exc
    if device.type not in ("cpu", "cuda"):
        raise AutoscError(f"{DEVICE_HELP}, got {name!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise AutoscError(f"--device {name}: no CUDA device is visible here; use --device cpu (or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise AutoscError(
                f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) are visible (cuda:0 .. "
                f"cuda:{torch.cuda.device_count() - 1})"
            )
    return device


def layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """NHWC when asked for (faster convolutions on a CPU), else unchanged."""
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x


def autocast(device: torch.device, amp: str):
    """The network's forward under bf16/fp16 autocast, or a no-op context for ``off``."""
    if amp == "off":
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


#: Signals that ask a run to stop at the next batch boundary, state saved: Ctrl-C, and what ``kill``,
#: schedulers and ``torchrun`` send.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def _handling(handler: Callable) -> Iterator[None]:
    """``handler`` for every stop signal while the block runs, the previous handlers restored after it."""
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig in STOP_SIGNALS:
        with suppress(ValueError):  # not the main thread: no handler, signals behave as usual
            signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            with suppress(ValueError):
                signal.signal(sig, old)


@contextmanager
def stop_on_signals() -> Iterator[dict]:
    """The first SIGINT or SIGTERM asks the loop to stop at the next batch boundary; a second Ctrl-C stops at once.

    The flag dict holds ``stop`` and the ``signal`` number that asked, so the exit code can say which (130, 143).
    """
    flag: dict = {"stop": False, "signal": None}

    def handler(signum, frame):  # noqa: ARG001 - signal's signature
        if flag["stop"] and signum == signal.SIGINT:  # a second Ctrl-C: the person wants out now
            raise KeyboardInterrupt
        if not flag["stop"]:  # a repeated SIGTERM (a scheduler and torchrun both send one) changes nothing
            flag["stop"], flag["signal"] = True, signum

    with _handling(handler):
        yield flag


class Stopped(BaseException):
    """A stop signal arrived in work that has no batch boundary to wait for (the export, the latency timing).

    A ``BaseException``, as ``KeyboardInterrupt`` is, so that no ``except Exception`` on the way swallows it, while
    every ``finally`` and :func:`autosc.io.atomic_write`'s clean-up still runs: no temporary file is left.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


@contextmanager
def stop_at_once() -> Iterator[None]:
    """The first SIGINT or SIGTERM raises :class:`Stopped` where the code is; later ones change nothing.

    Without it SIGTERM would kill the process on the spot (leaving a half-written temporary file and no word);
    a repeated signal is ignored so that it cannot interrupt the clean-up of the first.
    """
    raised = []

    def handler(signum, frame):  # noqa: ARG001 - signal's signature
        if not raised:
            raised.append(signum)
            raise Stopped(signum)

    with _handling(handler):
        yield


def check_compiler(device: torch.device) -> None:
    """``--compile`` needs the compiler torch inductor calls; refuse the run now if it is missing.

    Otherwise the first compiled step fails with a long internal error, and for an adapted network that step
    comes when its shape is fixed, half-way through training. On the CPU inductor builds C++ with ``$CXX``
    (default ``g++``; ``clang++`` on macOS); on CUDA, Triton builds its launchers with ``$CC``, else gcc or clang.
    """
    if device.type == "cuda":
        named = os.environ.get("CC")
        found = shutil.which(named) if named else shutil.which("gcc") or shutil.which("clang")
        wanted = f"the C compiler $CC ({named})" if named else "a C compiler (gcc or clang) for Triton"
    else:
        named = os.environ.get("CXX")
        default = "clang++" if sys.platform == "darwin" else "g++"
        found = shutil.which(named or default)
        wanted = f"the C++ compiler $CXX ({named})" if named else f"a C++ compiler ({default}) for torch inductor"
    if found is None:
        raise AutoscError(f"--compile needs {wanted}, and it is not on PATH; install it, or drop --compile")


def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


def seed_epoch(seed: int, epoch: int) -> torch.Generator:
    """Seed everything an epoch draws from, so any epoch can be replayed on its own (exact resume)."""
    s = epoch_seed(seed, epoch)
    torch.manual_seed(s)
    random.seed(s)
    return torch.Generator().manual_seed(s)


def skip_batches(loader: DataLoader, skip: int) -> Iterator:
    """Iterate ``loader`` from batch ``skip`` on, drawing the sampler's order but loading no skipped item."""
    indices = list(loader.sampler)
    size = loader.batch_size
    dataset = loader.dataset
    collate = loader.collate_fn
    for start in range(skip * size, len(indices), size):
        yield collate([dataset[i] for i in indices[start : start + size]])
