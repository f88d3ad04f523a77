"""The image transforms every source shares: resize, augment, normalise (docs/algorithm.md, "Training")."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.transforms import v2

Stats = tuple[tuple[float, ...], tuple[float, ...]]


@dataclass(frozen=True)
class TransformSpec:
    """What :func:`build_transform` was asked for, kept on the transform so that the same steps can also run on
    whole batches on the training device (autosc/data/device.py)."""

    size: tuple[int, int]
    native: tuple[int, int] | None
    stats: Stats
    train: bool
    flip: bool

    @property
    def small(self) -> bool:
        return min(self.size) < 64

    @property
    def crop_padding(self) -> tuple[int, int] | None:
        """(height, width) padding of the training random crop (under 64 px), None when there is no crop."""
        h, w = self.size
        return (max(2, h // 8), max(2, w // 8)) if self.train and self.small else None


class SplitTransform(v2.Compose):
    """A split's transform (v2 steps run per item) that also says what it does (:class:`TransformSpec`)."""

    def __init__(self, transforms: list[v2.Transform], spec: TransformSpec) -> None:
        super().__init__(transforms)
        self.spec = spec


#: per-channel mean and std of ImageNet's training pixels in [0, 1], for folders of photos and synthetic data
IMAGENET_STATS: Stats = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def build_transform(
    size: tuple[int, int], native: tuple[int, int] | None, stats: Stats, *, train: bool, flip: bool = True
) -> SplitTransform:
    """The transform for one split at ``size`` (height, width), following docs/algorithm.md ("Training").

    Under 64 px it resizes from ``native`` (None: unknown, always resize) and pad-and-crops (CIFAR style);
    from 64 px it random-resized-crops for training and resizes plus centre-crops for testing.
    """
    spec = TransformSpec(tuple(size), tuple(native) if native else None, stats, train, flip)
    h, w = size
    steps: list[v2.Transform] = [v2.ToImage()]
    if spec.small:
        if native != size:
            steps.append(v2.Resize(size))
        if train:
            pad_h, pad_w = spec.crop_padding
            steps.append(v2.RandomCrop(size, padding=[pad_w, pad_h]))
    elif train:
        steps.append(v2.RandomResizedCrop(size))
    else:
        steps += [v2.Resize(round(max(h, w) / 0.875)), v2.CenterCrop(size)]
    if train and flip:
        steps.append(v2.RandomHorizontalFlip())
    return SplitTransform([*steps, *to_normalised_float(stats)], spec)


def to_normalised_float(stats: Stats) -> list[v2.Transform]:
    """The common tail: uint8 image to float32 in [0, 1], normalised by ``stats``, as a plain tensor."""
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(*stats), v2.ToPureTensor()]


def transform_pair(
    size: tuple[int, int], native: tuple[int, int] | None, stats: Stats, augment: bool, flip: bool = True
) -> tuple[v2.Compose, v2.Compose]:
    """(train, test) transforms; ``augment=False`` gives the training split the deterministic test transform."""
    test = build_transform(size, native, stats, train=False)
    return (build_transform(size, native, stats, train=True, flip=flip) if augment else test), test
