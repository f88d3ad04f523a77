"""Data-parallel training on PyTorch's own engine: ``torchrun`` sets the environment, DDP does the work.

Nothing here is home-made communication: a process group (gloo on CPU, nccl on
CUDA) from the variables torchrun exports, DistributedDataParallel for the
gradients, and a handful of collectives for what DDP does not cover (metrics,
the stop request, and the check that every rank holds the same shape).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .errors import AutoscError


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a (possibly one-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_env() -> DistContext:
    """The rank layout torchrun exports (RANK, WORLD_SIZE, LOCAL_RANK); one process without them."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise AutoscError(f"cannot read torchrun's RANK/WORLD_SIZE/LOCAL_RANK: {exc}") from exc
    return DistContext(rank=rank, world_size=world, local_rank=local)


def init(device: str = "auto") -> DistContext:
    """Join the process group when started by torchrun (nccl for CUDA, gloo otherwise); a no-op alone."""
    ctx = from_env()
    if not ctx.enabled or dist.is_initialized():
        return ctx
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        torch.cuda.set_device(ctx.local_rank)
    dist.init_process_group("nccl" if cuda else "gloo")
    return ctx


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def device_name(ctx: DistContext, name: str) -> str:
    """Each rank on its own GPU: ``cuda``/``auto`` become ``cuda:LOCAL_RANK`` in a multi-process CUDA run."""
    if ctx.enabled and (name == "cuda" or (name == "auto" and torch.cuda.is_available())):
        return f"cuda:{ctx.local_rank}"
    return name


def _tensor(values: list[float], device: torch.device) -> torch.Tensor:
    # nccl reduces CUDA tensors only; gloo CPU ones.
    return torch.tensor(values, dtype=torch.float64, device=device)


def sum_all(ctx: DistContext, values: list[float], device: torch.device) -> list[float]:
    """Element-wise sum over ranks (metrics counted per rank)."""
    if not ctx.enabled:
        return list(values)
    t = _tensor(values, device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def any_rank(ctx: DistContext, flag: bool, device: torch.device) -> bool:
    """True on every rank if it is true on any (a Ctrl-C seen by one rank stops all at the same batch)."""
    if not ctx.enabled:
        return flag
    t = _tensor([1.0 if flag else 0.0], device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def from_main(ctx: DistContext, values: list[float], device: torch.device) -> list[float]:
    """Rank 0's ``values`` on every rank (what one process measured, such as a re-time, used by all alike)."""
    if not ctx.enabled:
        return list(values)
    t = _tensor(values, device)
    dist.broadcast(t, src=0)
    return t.tolist()


def check_identical(ctx: DistContext, values: list[float], device: torch.device, what: str) -> None:
    """Raise unless every rank holds exactly the same ``values`` (compared by max and min over ranks)."""
    if not ctx.enabled:
        return
    hi, lo = _tensor(values, device), _tensor(values, device)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    if not torch.equal(hi, lo):
        raise AutoscError(
            f"ranks disagree on {what} (max {hi.tolist()} vs min {lo.tolist()}); the shape must be identical on "
            "every rank: this is a bug, please report it"
        )


def average_grads(ctx: DistContext, params: list[torch.nn.Parameter]) -> None:
    """Average ``params``' gradients over ranks (for gradients computed outside DDP's backward)."""
    if not ctx.enabled:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad /= ctx.world_size
