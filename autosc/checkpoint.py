"""Training checkpoints of a budgeted network, and opening any autosc model file."""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from . import io
from .cost.budgeted import BudgetedNetwork
from .errors import AutoscError
from .formats import migrate_plan
from .freeze import freeze, frozen_from_data
from .planning import network_from_config
from .stored import check_plan


def save_checkpoint(network: BudgetedNetwork, path: str | os.PathLike, **extra: object) -> Path:
    """Weights, alphas and the config that rebuilds the architecture; ``extra`` holds plain data (epoch, optimiser)."""
    return io.save(
        {"format": io.CHECKPOINT_FORMAT, "config": network.config(), "state_dict": network.state_dict(), **extra}, path
    )


def load_checkpoint(path: str | os.PathLike, *, model: str | None = None) -> tuple[BudgetedNetwork, dict]:
    """Rebuild the network from the stored config and load its state; returns the raw data too."""
    data = io.load(path, expect=(io.CHECKPOINT_FORMAT,))
    return _network_from_data(data, path, model), data


def _network_from_data(data: dict, path: str | os.PathLike, model: str | None) -> BudgetedNetwork:
    if not isinstance(data.get("config"), dict):
        raise AutoscError(f"{path} holds no network config; is it a checkpoint autosc wrote?")
    config = migrate_plan(data["config"])  # a config older versions wrote too
    check_plan(config, f"the network config in {path}")
    network = network_from_config(config, model=model)
    io.load_state(network, data.get("state_dict"), path)
    return network


def load_frozen_or_checkpoint(path: str | os.PathLike, *, model: str | None = None) -> tuple[nn.Module, dict]:
    """A frozen network and its shape spec, from a frozen file or (frozen on the fly) from a checkpoint.

    ``model`` is the builder the user names for a file whose network is not a zoo one; a file never
    chooses code to import by itself.
    """
    data = io.load(path)
    if data["format"] == io.FROZEN_FORMAT:
        return frozen_from_data(data, model=model, source=path)
    return freeze(_network_from_data(data, path, model))
