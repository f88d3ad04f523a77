"""The cells of a network: the units a shape adaptor may follow."""

from __future__ import annotations

from torch import nn


def model_cells(model: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """The network's cells in definition order, opening plain ``nn.Sequential`` containers of blocks.

    Subclasses of ``nn.Sequential`` (``Conv2dNormActivation``) and any other
    module are cells; a plain ``nn.Sequential`` holding blocks is only a list
    of them, while one holding only leaf layers (conv, BN, ReLU) is itself a
    cell. So MobileNetV2 yields ``features.0 … features.18, classifier.0,
    classifier.1`` and ResNet ``conv1, bn1, relu, maxpool, layer1.0 … layer4.1,
    avgpool, fc``.
    """
    cells: list[tuple[str, nn.Module]] = []
    for name, child in model.named_children():
        full = f"{prefix}{name}"
        if type(child) is nn.Sequential and any(len(list(c.children())) for c in child.children()):
            cells += model_cells(child, prefix=f"{full}.")
        else:
            cells.append((full, child))
    return cells
