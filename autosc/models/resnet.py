"""ResNet builders with a width multiplier, built from torchvision's own blocks.

torchvision's ``ResNet`` hard-codes the 64/128/256/512 stage widths, so the
skeleton is re-assembled here; the blocks, the module names and (at width 1)
the state-dict layout are torchvision's, which the tests check by loading a
torchvision state dict strictly.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck, conv1x1

from ._utils import make_divisible
from .registry import Family, register_model

RESNET = Family("resnet")

Block = type[BasicBlock] | type[Bottleneck]


class ResNet(nn.Module):
    """A torchvision-layout ResNet whose every stage is ``width`` times wider."""

    def __init__(
        self,
        block: Block,
        layers: list[int],
        *,
        width: float = 1.0,
        num_classes: int = 1000,
        in_channels: int = 3,
        cifar_stem: bool = False,
    ) -> None:
        super().__init__()
        stem = make_divisible(64 * width)
        # 32 px inputs get a 3x3 stride-1 stem and no max-pool (the seed paper's CIFAR ResNets).
        kernel, stride = (3, 1) if cifar_stem else (7, 2)
        self.conv1 = nn.Conv2d(in_channels, stem, kernel_size=kernel, stride=stride, padding=kernel // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool: nn.Module = nn.Identity() if cifar_stem else nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.inplanes = stem
        self.layer1 = self._make_layer(block, make_divisible(64 * width), layers[0])
        self.layer2 = self._make_layer(block, make_divisible(128 * width), layers[1], stride=2)
        self.layer3 = self._make_layer(block, make_divisible(256 * width), layers[2], stride=2)
        self.layer4 = self._make_layer(block, make_divisible(512 * width), layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(self.inplanes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block: Block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        cells = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        cells += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*cells)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


@register_model("resnet18", family=RESNET)
def resnet18(*, width: float = 1.0, num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2], width=width, num_classes=num_classes, in_channels=in_channels)


@register_model("resnet50", family=RESNET)
def resnet50(*, width: float = 1.0, num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3], width=width, num_classes=num_classes, in_channels=in_channels)


@register_model("resnet18_cifar", family=RESNET, num_classes=10, input_size=32)
def resnet18_cifar(*, width: float = 1.0, num_classes: int = 10, in_channels: int = 3) -> ResNet:
    return ResNet(
        BasicBlock, [2, 2, 2, 2], width=width, num_classes=num_classes, in_channels=in_channels, cifar_stem=True
    )


@register_model("resnet50_cifar", family=RESNET, num_classes=10, input_size=32)
def resnet50_cifar(*, width: float = 1.0, num_classes: int = 10, in_channels: int = 3) -> ResNet:
    return ResNet(
        Bottleneck, [3, 4, 6, 3], width=width, num_classes=num_classes, in_channels=in_channels, cifar_stem=True
    )
