"""Top-1 accuracy and loss of a network on a dataset, in eval mode."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..data.device import DeviceImages
from .runtime import autocast, layout


def evaluate(
    net: nn.Module,
    dataset: Dataset | DeviceImages,
    batch_size: int = 256,
    workers: int = 0,
    channels_last: bool = False,
    *,
    device: torch.device | str | None = None,
    amp: str = "off",
) -> tuple[float, float]:
    """(mean cross-entropy, top-1 accuracy) on ``dataset`` in eval mode, on the network's device by default.

    A :class:`DeviceImages` split is read in batches where it lies (autosc/data/device.py).
    """
    device = torch.device(device) if device is not None else next(net.parameters()).device
    if isinstance(dataset, DeviceImages):
        loader = dataset.batches(batch_size)
    else:
        loader = DataLoader(
            dataset, batch_size=batch_size, shuffle=False, num_workers=workers, pin_memory=device.type == "cuda"
        )
    was_training = net.training
    net.eval()
    total, correct, loss_sum = 0, 0.0, 0.0
    with torch.no_grad():
        for x, y in loader:
            x, y = layout(x.to(device, non_blocking=True), channels_last), y.to(device, non_blocking=True)
            with autocast(device, amp):
                out = net(x)
            loss_sum += F.cross_entropy(out.float(), y, reduction="sum")
            correct += (out.argmax(1) == y).sum()
            total += y.numel()
    net.train(was_training)
    return float(loss_sum) / max(total, 1), float(correct) / max(total, 1)
