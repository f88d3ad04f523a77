"""What every source returns: a :class:`DataBundle`, in-memory image tensors, and the seeded subset of a split."""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import torch
from torch.utils.data import Dataset, Subset
from torchvision.transforms import v2

from ..errors import AutoscError


@dataclass
class DataBundle:
    """Both splits of one dataset plus what a network needs to know about them (classes, channels)."""

    name: str
    train: Dataset
    test: Dataset
    num_classes: int
    channels: int
    native_size: tuple[int, int]
    source: str
    val: Dataset | None = None  # held out of the training images (split_validation): what decisions are made on

    def describe(self) -> str:
        """One line for logs: name, split sizes, classes, channels, native size and where it was read from."""
        h, w = self.native_size
        channels = f"{self.channels} channel" + ("s" if self.channels != 1 else "")
        val = f" / {len(self.val)} validation" if self.val is not None else ""
        return (
            f"{self.name}: {len(self.train)} train{val} / {len(self.test)} test images, {self.num_classes} classes, "
            f"{channels}, native {h}x{w}, from {self.source}"
        )


def flatten_subsets(dataset: Dataset) -> tuple[Dataset, list[int]]:
    """The underlying dataset of (nested) subsets and the indices into it."""
    indices = list(range(len(dataset)))
    while isinstance(dataset, Subset):
        indices = [dataset.indices[i] for i in indices]
        dataset = dataset.dataset
    return dataset, indices


def without_augmentation(dataset: Dataset, test: Dataset) -> Dataset:
    """``dataset`` read with the test split's transform (no augmentation), when both expose ``transform``."""
    test_base, _ = flatten_subsets(test)
    if hasattr(dataset, "transform") and hasattr(test_base, "transform"):
        plain = copy.copy(dataset)
        plain.transform = test_base.transform
        return plain
    return dataset  # a dataset given in Python is used as given


def split_validation(bundle: DataBundle, fraction: float, seed: int) -> DataBundle:
    """Hold a seeded random ``fraction`` of the training images out as a validation split (read without
    augmentation); the rest stays the training split. ``fraction=0`` returns the bundle unchanged."""
    if fraction == 0:
        return bundle
    base, indices = flatten_subsets(bundle.train)
    held = max(1, round(fraction * len(indices)))
    if held >= len(indices):
        raise AutoscError(
            f"--val-split {fraction:g} of {len(indices)} training images leaves no validation or no training images"
        )
    order = torch.randperm(len(indices), generator=torch.Generator().manual_seed(seed)).tolist()
    val = sorted(indices[i] for i in order[:held])
    train = sorted(indices[i] for i in order[held:])
    return replace(bundle, train=Subset(base, train), val=Subset(without_augmentation(base, bundle.test), val))


class TensorImages(Dataset):
    """Images held as one uint8 tensor (N, C, H, W) in memory, transformed per item: fast for small datasets."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: v2.Transform) -> None:
        self.images, self.targets, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[index]), int(self.targets[index])


def take_subset(dataset: Dataset, n: int | None, seed: int, what: str, option: str) -> Dataset:
    """A seeded random sample of ``n`` items, so short runs see a fixed, representative slice.

    The indices are sorted so reading stays sequential; the loader shuffles anyway. ``what`` and ``option``
    name the split and the option in the error for an ``n`` out of range.
    """
    if n is None:
        return dataset
    total = len(dataset)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= total:
        raise AutoscError(f"{option} must be an integer from 1 to {total} (the size of {what}), got {n!r}")
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    return Subset(dataset, sorted(order[:n].tolist()))
