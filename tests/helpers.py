"""Shared test utilities: small real training so parity checks cannot pass trivially."""

import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from autosc.cost.budgeted import BudgetedNetwork


def train_a_little(network: BudgetedNetwork, steps: int = 4, batch: int = 8, seed: int = 0) -> None:
    """A few SGD steps on random data (weights and BN statistics move) and Adam steps on the alphas."""
    g = torch.Generator().manual_seed(seed)
    h, w = network.input_size
    x = torch.randn(batch, network.in_channels, h, w, generator=g)
    with torch.no_grad():
        classes = network.eval()(x[:1]).shape[1]
    y = torch.randint(0, classes, (batch,), generator=g)
    weights = torch.optim.SGD(network.weight_parameters(), lr=0.05, momentum=0.9)
    alphas = torch.optim.Adam(network.alpha_parameters(), lr=0.2)
    network.train()
    for _ in range(steps):
        loss = F.cross_entropy(network(x), y)
        weights.zero_grad()
        alphas.zero_grad()
        loss.backward()
        weights.step()
        alphas.step()
    network.eval()


def sgd_a_little(
    net: torch.nn.Module, channels: int, size: int = 32, steps: int = 3, seed: int = 0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """A few SGD steps of a plain network on 16 random labelled images (weights and BatchNorm statistics move, so
    a parity check cannot pass on near-zero logits); returns the batch, left in train mode. ``generator``: draw the
    batch from it (its state moves on) instead of a fresh one seeded with ``seed``."""
    g = generator if generator is not None else torch.Generator().manual_seed(seed)
    x = torch.randn(16, channels, size, size, generator=g)
    y = torch.randint(0, 10, (16,), generator=g)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    net.train()
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    return x, y


def zoo_net(name: str, in_channels: int = 1) -> torch.nn.Module:
    """A zoo network with 10 classes, seeded, in eval mode."""
    from autosc import build_model

    torch.manual_seed(0)
    return build_model(name, num_classes=10, in_channels=in_channels).eval()


def write_cifar_files(root: Path, hundred: bool) -> None:
    """A few random images per file in torchvision's unpacked layout (the real files are 50k/10k)."""
    rng = np.random.default_rng(0)
    folder = root / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    folder.mkdir(parents=True)
    key, classes = ("fine_labels", 100) if hundred else ("labels", 10)
    names = ["train", "test"] if hundred else [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]
    for name in names:
        entry = {
            "data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
            key: [int(v) for v in rng.integers(0, classes, 4)],
        }
        (folder / name).write_bytes(pickle.dumps(entry))
    meta_key = "fine_label_names" if hundred else "label_names"
    (folder / ("meta" if hundred else "batches.meta")).write_bytes(
        pickle.dumps({meta_key: [f"c{i}" for i in range(classes)]})
    )
