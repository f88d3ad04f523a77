"""Small helpers the export and parity modules share: error text and running a network."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from ..errors import AutoscError, one_line

__all__ = ["as_list", "eval_mode", "model_device", "one_line"]


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode for the duration, the caller's mode restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def as_list(out) -> list[torch.Tensor]:
    """A network's outputs as a flat list of tensors (a tensor, or a tuple/list of them)."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)) and all(isinstance(t, torch.Tensor) for t in out):
        return list(out)
    raise AutoscError(f"the network must return a tensor or a tuple of tensors, not {type(out).__name__}")
