"""Shared test utilities: small real training so parity checks cannot pass trivially."""

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
