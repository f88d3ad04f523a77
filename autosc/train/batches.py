"""An epoch's training batches: one seeded order per epoch, split over ranks, so that N processes of batch B see
the same global batches as one process of batch N x B, and a resumed epoch replays the same order."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..data.device import DeviceImages
from ..distributed import DistContext
from .config import TrainConfig
from .runtime import epoch_seed, seed_epoch, skip_batches


def epoch_batches(
    train_set: Dataset,
    data: DeviceImages | None,
    config: TrainConfig,
    dist: DistContext,
    device: torch.device,
    epoch: int,
    skip: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Epoch ``epoch``'s training batches from batch ``skip`` on; seeds the epoch now (before any resume restore).

    Device-resident ``data`` indexes the epoch's order on the device and augments each batch with the epoch's
    draws; otherwise (None) the loader reads item by item, and a resume skips batches without loading them (the
    sampler's order is fixed by the epoch seed) and without creating a loader iterator, which would draw from the
    restored RNG.
    """
    generator = seed_epoch(config.seed, epoch)
    sampler = _sampler(train_set, config, dist, epoch)
    if data is None:
        loader = DataLoader(
            train_set,
            batch_size=config.batch_size,
            sampler=sampler,
            num_workers=config.workers,
            pin_memory=device.type == "cuda",
            persistent_workers=False,
        )
        return skip_batches(loader, skip) if skip else iter(loader)
    order = torch.tensor(list(sampler), dtype=torch.long, device=device)
    draws = data.draws(generator)
    size = config.batch_size
    return (data.batch(order[i : i + size], draws) for i in range(skip * size, len(order), size))


def _sampler(train_set: Dataset, config: TrainConfig, dist: DistContext, epoch: int) -> DistributedSampler:
    """One order per epoch, split over ranks (with one process: the whole permutation)."""
    sampler = DistributedSampler(
        train_set,
        num_replicas=dist.world_size,
        rank=dist.rank,
        shuffle=True,
        seed=epoch_seed(config.seed, 0),
    )
    sampler.set_epoch(epoch)
    return sampler
