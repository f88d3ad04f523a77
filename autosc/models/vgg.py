"""VGG-16 with batch norm, widened, with each conv+BN+ReLU grouped into one cell.

torchvision's ``make_layers`` returns a flat list of conv, BN and ReLU modules;
grouping each triple into a ``Conv2dNormActivation`` makes the cell boundary
(where a shape adaptor may go) explicit instead of guessed.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.ops.misc import Conv2dNormActivation

from ._utils import make_divisible
from .registry import Family, register_model

VGG16_BN = Family("vgg16_bn")

_VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def _features(width: float, in_channels: int) -> tuple[nn.Sequential, int]:
    cells: list[nn.Module] = []
    channels = in_channels
    for v in _VGG16:
        if v == "M":
            cells.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            out = make_divisible(int(v) * width)
            cells.append(Conv2dNormActivation(channels, out, kernel_size=3, bias=True))
            channels = out
    return nn.Sequential(*cells), channels


class VGG(nn.Module):
    """VGG-16-BN: ImageNet head (7x7 pool, two hidden FC layers) or CIFAR head (one linear)."""

    def __init__(
        self, *, width: float = 1.0, num_classes: int = 1000, in_channels: int = 3, cifar_head: bool = False
    ) -> None:
        super().__init__()
        self.features, channels = _features(width, in_channels)
        if cifar_head:
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.classifier: nn.Module = nn.Linear(channels, num_classes)
        else:
            hidden = make_divisible(4096 * width)
            self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
            self.classifier = nn.Sequential(
                nn.Linear(channels * 7 * 7, hidden),
                nn.ReLU(True),
                nn.Dropout(),
                nn.Linear(hidden, hidden),
                nn.ReLU(True),
                nn.Dropout(),
                nn.Linear(hidden, num_classes),
            )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


@register_model("vgg16_bn", family=VGG16_BN)
def vgg16_bn(*, width: float = 1.0, num_classes: int = 1000, in_channels: int = 3) -> VGG:
    return VGG(width=width, num_classes=num_classes, in_channels=in_channels)


@register_model("vgg16_bn_cifar", family=VGG16_BN, num_classes=10, input_size=32)
def vgg16_bn_cifar(*, width: float = 1.0, num_classes: int = 10, in_channels: int = 3) -> VGG:
    return VGG(width=width, num_classes=num_classes, in_channels=in_channels, cifar_head=True)
