"""Top-1 accuracy and loss of a network on a dataset, in eval mode."""

from __future__ import annotations

import random

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


#: Training images whose batch statistics re-estimate BatchNorm after a shrink (recalibrate_batchnorm).
RECALIBRATION_IMAGES = 2048


def recalibrate_batchnorm(
    net: nn.Module,
    dataset: Dataset | DeviceImages,
    *,
    images: int = RECALIBRATION_IMAGES,
    batch_size: int = 128,
    workers: int = 0,
    device: torch.device | str | None = None,
) -> int:
    """Re-estimate every BatchNorm's running statistics on ``images`` training images, weights untouched.

    A network whose feature maps were resized after training (the latency check's shrink, docs/algorithm.md,
    Latency budgets) keeps statistics measured at the old sizes; measured here, a mobilenet_v2_cifar shrunk
    from its trained shape fell from 86% to 20% top-1 with them. The statistics are reset and averaged over the
    batches (momentum None), in train mode without gradients, as after any change of resolution. Returns how
    many BatchNorm layers were recalibrated (0: nothing to do, the network is left as it was).
    """
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return 0
    device = torch.device(device) if device is not None else next(net.parameters()).device
    if isinstance(dataset, DeviceImages):
        loader = dataset.batches(batch_size)
    else:
        generator = torch.Generator().manual_seed(0)  # the same images every time: a reproducible network
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers, generator=generator)
    momenta = [m.momentum for m in norms]
    was_training = net.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches, not an exponential one
    net.train()
    seen = 0
    with torch.no_grad():
        for x, _ in loader:
            net(x.to(device, non_blocking=True))
            seen += len(x)
            if seen >= images:
                break
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    net.train(was_training)
    return len(norms)


def precise_batchnorm(
    net: nn.Module, dataset: Dataset | DeviceImages, *, images: int, batch_size: int, workers: int = 0,
    device: torch.device | str | None = None,
) -> int:
    """:func:`recalibrate_batchnorm` before an evaluation during training, leaving every random state as it was.

    BatchNorm's running averages (momentum 0.1) lag weights that move fast: on the README main job the first
    epoch's evaluation loss was 6-265 while the training loss was near chance, and how far it lagged depended on
    the CPU (benchmarks/RESULTS.md). Statistics measured on the current weights, as precise-BN does, make every
    evaluation mean what it says. Training reads batch statistics only, so the weights' trajectory is unchanged;
    the random states are restored because the augmentation of the per-image loader draws from them.
    """
    if images <= 0:
        return 0
    python_state = random.getstate()
    with torch.random.fork_rng(devices=[]):
        try:
            return recalibrate_batchnorm(net, dataset, images=images, batch_size=batch_size, workers=workers,
                                         device=device)  # fmt: skip
        finally:
            random.setstate(python_state)
