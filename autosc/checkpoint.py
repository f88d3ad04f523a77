"""Training checkpoints of a budgeted network, and opening any autosc model file."""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from . import io
from .cost.budgeted import BudgetedNetwork
from .freeze import freeze, frozen_from_data
from .planning import network_from_config


def save_checkpoint(network: BudgetedNetwork, path: str | os.PathLike, **extra: object) -> Path:
    """Weights, alphas and the config that rebuilds the architecture; ``extra`` holds plain data (epoch, optimiser)."""
    return io.save(
        {"format": io.CHECKPOINT_FORMAT, "config": network.config(), "state_dict": network.state_dict(), **extra}, path
    )


def load_checkpoint(path: str | os.PathLike) -> tuple[BudgetedNetwork, dict]:
    """Rebuild the network from the stored config and load its state; returns the raw data too."""
    data = io.load(path, expect=(io.CHECKPOINT_FORMAT,))
    return _network_from_data(data), data


def _network_from_data(data: dict) -> BudgetedNetwork:
    network = network_from_config(data["config"])
    network.load_state_dict(data["state_dict"])
    return network


def load_frozen_or_checkpoint(path: str | os.PathLike) -> tuple[nn.Module, dict]:
    """A frozen network and its shape spec, from a frozen file or (frozen on the fly) from a checkpoint."""
    data = io.load(path)
    if data["format"] == io.FROZEN_FORMAT:
        return frozen_from_data(data)
    return freeze(_network_from_data(data))
