"""MobileNetV2 builders: torchvision's network, widened and optionally CIFAR-shaped."""

from __future__ import annotations

from torch import nn
from torchvision.models import MobileNetV2

from ._utils import make_divisible
from .registry import Family, register_model

MOBILENET_V2 = Family("mobilenet_v2", weight_decay=4e-5)  # less decay, as in the MobileNetV2 paper

_IMAGENET_SETTING = [
    # t, c, n, s
    [1, 16, 1, 1],
    [6, 24, 2, 2],
    [6, 32, 3, 2],
    [6, 64, 4, 2],
    [6, 96, 3, 1],
    [6, 160, 3, 2],
    [6, 320, 1, 1],
]


def _replace_stem(model: MobileNetV2, in_channels: int, stride: int) -> None:
    """Swap the first convolution for one with the requested input channels and stride."""
    old = model.features[0][0]
    if in_channels == old.in_channels and stride == old.stride[0]:
        return
    new = nn.Conv2d(in_channels, old.out_channels, kernel_size=3, stride=stride, padding=1, bias=False)
    nn.init.kaiming_normal_(new.weight, mode="fan_out")
    model.features[0][0] = new


@register_model("mobilenet_v2", family=MOBILENET_V2)
def mobilenet_v2(*, width: float = 1.0, num_classes: int = 1000, in_channels: int = 3) -> MobileNetV2:
    """torchvision's MobileNetV2 (ImageNet layout); ``width`` is its ``width_mult``."""
    model = MobileNetV2(num_classes=num_classes, width_mult=width)
    _replace_stem(model, in_channels, stride=2)
    return model


@register_model("mobilenet_v2_cifar", family=MOBILENET_V2, num_classes=10, input_size=32)
def mobilenet_v2_cifar(*, width: float = 1.0, num_classes: int = 10, in_channels: int = 3) -> MobileNetV2:
    """MobileNetV2 for 32 px inputs, as in the seed paper: stride-1 stem and 24-channel stage.

    With these two strides the network downsamples 8x instead of 32x, so a
    32 px image still has a 4x4 map before global pooling.
    """
    setting = [row[:] for row in _IMAGENET_SETTING]
    setting[1][3] = 1
    model = MobileNetV2(num_classes=num_classes, width_mult=width, inverted_residual_setting=setting)
    _replace_stem(model, in_channels, stride=1)
    return model


__all__ = ["mobilenet_v2", "mobilenet_v2_cifar", "make_divisible"]
