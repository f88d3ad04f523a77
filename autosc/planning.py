"""From a model name and a budget to a widened, adapted, budget-projected network (no training).

``make_plan`` is what ``autosc plan`` prints and what ``compress`` trains;
``network_from_config`` rebuilds the same network from the plain-data config
stored in checkpoints, so opening a checkpoint never unpickles code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .adaptor import choose, find_candidates, identity_alpha, insert_adaptors
from .cost.budget import Budget, parse_budget
from .cost.budgeted import BudgetedNetwork
from .cost.projection import Projection, fits
from .cost.shape_cost import Cost
from .cost.width import AUTO_WIDTH_RATIO, MAX_WIDTH, auto_width, human_cost
from .errors import AutoscError
from .models import ModelSpec, default_input_size, spec_from_file
from .units import format_bytes, format_count, parse_input_size


@dataclass
class Plan:
    spec: ModelSpec  # the widened network's spec
    input_size: tuple[int, int]
    budget: Budget
    width_mode: str  # "auto" or "fixed"
    network: BudgetedNetwork
    human_macs: int  # width 1, no adaptors
    human_activation_bytes: int
    widened: Cost  # identity shape at the chosen width
    projected: Projection  # identity shape after the budget projection
    floor: Cost  # every adapted map at its floor
    cells: list[str]  # cells followed by an adaptor
    candidates: list[str]

    def config(self) -> dict:
        """Plain data that rebuilds the architecture (see :func:`network_from_config`)."""
        return self.network.config()

    def to_dict(self) -> dict:
        adaptors = [
            {"name": cell, "human_size": list(human), "size": list(size), "s": s}
            for cell, human, size, s in zip(
                self.cells,
                self.network.cost_model.human_sizes,
                self.projected.sizes,
                self.network.factors(),
                strict=True,
            )
        ]
        conv = self.budget.convention
        return {
            **self.config(),
            "width": self.spec.width,
            "width_mode": self.width_mode,
            "macs": {
                "convention": conv,
                "human": self.human_macs,
                "widened": self.widened.budget_macs(conv) - self.widened.resize_macs,
                "widened_resize": self.widened.resize_macs,
                "projected": self.projected.cost.budget_macs(conv) - self.projected.cost.resize_macs,
                "projected_resize": self.projected.cost.resize_macs,
                "floor": self.floor.budget_macs(conv),
            },
            "activation_bytes": {
                "human": self.human_activation_bytes,
                "widened": self.widened.activation_bytes,
                "projected": self.projected.cost.activation_bytes,
                "floor": self.floor.activation_bytes,
            },
            "projection_scale": self.projected.scale,
            "adaptors": adaptors,
            "candidates": self.candidates,
        }


def _width(value: float | str) -> float | None:
    """None for "auto", else a validated positive float."""
    if isinstance(value, str):
        if value.strip().lower() == "auto":
            return None
        try:
            value = float(value)
        except ValueError:
            raise AutoscError(f"--width must be 'auto' or a positive number, got {value!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise AutoscError(f"width must be a positive number, got {value!r}")
    if value > MAX_WIDTH:
        raise AutoscError(f"width {value:g} is above the widest network autosc builds ({MAX_WIDTH:g})")
    return float(value)


def _refuse_unbinding(widest: ModelSpec, size: tuple[int, int], budget: Budget) -> None:
    """A budget the widest buildable network already fits leaves nothing to compress: refuse it, with the figure."""
    macs, memory = human_cost(widest, size, budget.convention)
    if (budget.macs is None or macs <= budget.macs) and (budget.memory_bytes is None or memory <= budget.memory_bytes):
        raise AutoscError(
            f"budget {budget.describe()} is at or above the widest network autosc builds (width {widest.width:g}: "
            f"{format_count(macs)} MACs, {format_bytes(memory)} activations); nothing needs compressing, lower the budget"
        )


def adapt_network(
    spec: ModelSpec,
    size: tuple[int, int],
    budget: Budget,
    adaptors: int | list[str] | None = None,
    *,
    low_branch: str = "max",
) -> tuple[BudgetedNetwork, list[str], list[str]]:
    """Build ``spec``, insert adaptors at identity and wrap it under ``budget``: (network, cells, candidates)."""
    net = spec.build()
    candidates = find_candidates(net, size, spec.in_channels)
    chosen = choose(candidates, adaptors, size)
    names = insert_adaptors(net, chosen, pool=low_branch)
    alpha = identity_alpha([c.size for c in chosen])
    for name in names:
        net.get_submodule(name).alpha.data.fill_(alpha)
    network = BudgetedNetwork(net, names, input_size=size, budget=budget, in_channels=spec.in_channels, spec=spec)
    return network, [c.name for c in chosen], [c.name for c in candidates]


def make_plan(
    model: str,
    *,
    budget: str | int | None = None,
    memory: str | None = None,
    input_size: str | int | tuple[int, int] | None = None,
    width: float | str = "auto",
    num_classes: int | None = None,
    in_channels: int = 3,
    adaptors: int | list[str] | None = None,
    width_ratio: float = AUTO_WIDTH_RATIO,
    macs_convention: str = "standard",
    low_branch: str = "max",
) -> Plan:
    """Choose the width, place adaptors at identity, and project the identity shape under the budget."""
    size = parse_input_size(input_size if input_size is not None else default_input_size(model))
    human = ModelSpec(model, 1.0, num_classes, in_channels)
    with torch.device("meta"):  # validates name and arguments first; meta: no weights, no draws from the seeded RNG
        human.build()
    human_macs, human_bytes = human_cost(human, size, macs_convention)
    parsed = parse_budget(
        str(budget) if budget is not None else None, memory, human_macs=human_macs, convention=macs_convention
    )
    fixed = _width(width)
    chosen_width = fixed if fixed is not None else auto_width(human, size, parsed, width_ratio)
    if fixed is None and chosen_width >= MAX_WIDTH:
        _refuse_unbinding(ModelSpec(model, MAX_WIDTH, num_classes, in_channels), size, parsed)
    spec = ModelSpec(model, chosen_width, num_classes, in_channels)
    network, cells, candidates = adapt_network(spec, size, parsed, adaptors, low_branch=low_branch)
    widened = network.cost_model.human_cost()
    if fixed is not None and fits(widened, parsed):
        suggestion = auto_width(human, size, parsed, width_ratio)
        have = (
            f"{format_count(widened.budget_macs(parsed.convention))} MACs"
            if parsed.macs is not None
            else format_bytes(widened.activation_bytes)
        )
        raise AutoscError(
            f"budget {parsed.describe()} is at or above the widened network's cost ({have} at width {fixed:g}), "
            f"so the adaptors have nothing to remove; use --width auto (here {suggestion:g}) or a width above {suggestion:g}"
        )
    projected = network.update_shape()
    return Plan(
        spec=spec,
        input_size=size,
        budget=parsed,
        width_mode="fixed" if fixed is not None else "auto",
        network=network,
        human_macs=human_macs,
        human_activation_bytes=human_bytes,
        widened=widened,
        projected=projected,
        floor=network.cost_model.floor_cost(),
        cells=cells,
        candidates=candidates,
    )


def network_from_config(config: dict, *, model: str | None = None) -> BudgetedNetwork:
    """Rebuild the adapted network of a plan from :meth:`Plan.config` data (fresh weights).

    The data comes from a file, so a builder it names is used only as ``model``, named by the user
    (:func:`autosc.models.spec_from_file`).
    """
    spec = spec_from_file(config.get("model"), source="the stored plan", model=model)
    budget = Budget(**config["budget"])
    network, _, _ = adapt_network(
        spec, tuple(config["input_size"]), budget, list(config["cells"]), low_branch=config.get("low_branch", "max")
    )
    if config.get("branches"):
        network.collapse(config["branches"])
    return network
