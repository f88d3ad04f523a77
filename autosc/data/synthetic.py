"""``synthetic``: a small learnable stand-in for tests and dry runs, made in memory from the seed."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from .bundle import DataBundle, TensorImages
from .registry import LoadRequest, register_source
from .transforms import IMAGENET_STATS, SplitTransform, TransformSpec, to_normalised_float

SYNTHETIC_CLASSES, SYNTHETIC_TRAIN, SYNTHETIC_TEST = 10, 512, 128


@register_source("synthetic")
def load_synthetic(request: LoadRequest) -> DataBundle:
    """Ten classes, each a fixed random colour plus a random low-frequency pattern, under pixel noise.

    The colour makes a small CNN learn in an epoch or two (global pooling sees it); the pattern (a random 4x4
    image upsampled to the input size) rewards spatial features; the noise keeps one pixel alone a poor guide.
    """
    size = request.size
    h, w = size
    g = torch.Generator().manual_seed(request.seed)
    colours = torch.rand(SYNTHETIC_CLASSES, 3, 1, 1, generator=g)
    shapes = torch.rand(SYNTHETIC_CLASSES, 3, 4, 4, generator=g)
    patterns = F.interpolate(0.5 * colours + 0.5 * shapes, size=size, mode="bilinear")

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = (torch.arange(n) % SYNTHETIC_CLASSES)[torch.randperm(n, generator=g)]
        pixels = 0.2 + 0.6 * patterns[labels] + 0.25 * torch.randn(n, 3, h, w, generator=g)
        return (pixels.clamp(0, 1) * 255).round().to(torch.uint8), labels

    (train_x, train_y), (test_x, test_y) = draw(SYNTHETIC_TRAIN), draw(SYNTHETIC_TEST)
    spec = TransformSpec(tuple(size), tuple(size), IMAGENET_STATS, train=False, flip=False)
    transform = SplitTransform([v2.ToImage(), *to_normalised_float(IMAGENET_STATS)], spec)  # at input size: no resize
    return DataBundle(
        name="synthetic",
        train=TensorImages(train_x, train_y, transform),
        test=TensorImages(test_x, test_y, transform),
        num_classes=SYNTHETIC_CLASSES,
        channels=3,
        native_size=size,
        source="synthetic",
    )
