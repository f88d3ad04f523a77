"""An adapted network that keeps itself under budget: the projection runs before every forward, or, while a
trainer holds the shape (``shape_held``), whenever the trainer changes the alphas."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from ..adaptor import ShapeAdaptor
from ..errors import AutoscError
from ..models import ModelSpec
from .budget import Budget
from .latency_model import LatencyModel
from .projection import Projection, check_reachable, project, sizes_from_factors
from .shape_cost import ShapeCostModel


class BudgetedNetwork(nn.Module):
    """Wraps a network holding :class:`ShapeAdaptor` s; sizes are a pure function of the alphas.

    Every process computes the same sizes from the same alphas, so nothing
    about the shape needs to be communicated in data-parallel training.
    """

    def __init__(
        self,
        net: nn.Module,
        adaptor_names: list[str],
        *,
        input_size: tuple[int, int],
        budget: Budget,
        in_channels: int = 3,
        spec: ModelSpec | None = None,
        latency: LatencyModel | None = None,
        cost_model: ShapeCostModel | None = None,
        check: bool = True,
    ) -> None:
        super().__init__()
        self.spec = spec  # how to rebuild the widened human network (needed to freeze and reload)
        self.in_channels = in_channels
        self.net = net
        self.adaptor_names = list(adaptor_names)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.budget = budget
        # ``cost_model``: one already built for this net and these adaptors (a latency model was measured on it)
        self.cost_model = cost_model or ShapeCostModel(net, self.adaptor_names, self.input_size, in_channels)
        if latency is not None:  # measured for this network (autosc.cost.fit_latency_model); predicts every Cost
            self.cost_model.with_latency(latency)
        if check:  # off only where a latency model is calibrated next, which checks (planning/latency.py)
            check_reachable(self.cost_model, budget)
        self.last_projection: Projection | None = None
        self.init_factor: float | None = None  # where the standard adaptors started, if not at the human shape
        self._held = False  # within shape_held(): forwards keep the last projected sizes
        self.identity_held = False  # hold_identity(): the shape is not part of the solution (--strategy prune)
        self.searched_alphas: list[float] | None = None  # where a shape search started the shape (autosc/run/shape_search.py)

    def config(self) -> dict:
        """Plain data that rebuilds this architecture (:func:`autosc.planning.network_from_config`)."""
        if self.spec is None:
            raise AutoscError("this network was built without a model spec, so it cannot be saved and rebuilt")
        latency = self.cost_model.latency
        return {  # every key, None where it does not apply (docs/algorithm.md, File formats)
            "model": self.spec.to_dict(),
            "input_size": list(self.input_size),
            "budget": self.budget.to_dict(),
            "cells": [n.removesuffix(".adaptor") for n in self.adaptor_names],
            "mode": self.mode,
            "standard_cells": [
                n.removesuffix(".adaptor") for n, a in zip(self.adaptor_names, self.adaptors(), strict=True)
                if a.kind == "standard"
            ],  # fmt: skip
            "init_factor": self.init_factor,
            "branches": [a.branch for a in self.adaptors()] if self.collapsed else None,
            "low_branch": self.pool,
            "mix": self.mix,
            # a resumed run projects with the ratio this run measured (None: no latency budget)
            "latency_calibration": latency.calibration if latency is not None else None,
            # a latency model fitted on a deployment device's timing table (None: timed on this machine)
            "latency_table": latency.key.get("table") if latency is not None else None,
            # the latency budget is on the INT8 network (--quantize int8): its model was timed on INT8 probes
            "latency_int8": bool(latency.key.get("int8")) if latency is not None else False,
            "identity_held": self.identity_held,
            # the cell the input adaptor resizes the image before (None: no input adaptor)
            "input_cell": next((n.removesuffix(".adaptor") for n, a in zip(self.adaptor_names, self.adaptors(),
                                strict=True) if a.kind == "input"), None),  # fmt: skip
            "searched_alphas": self.searched_alphas,
        }

    @property
    def mode(self) -> str:
        """``autosc``, ``standard`` or ``both``: what the adaptors are to the human network (autosc/adaptor/modes.py)."""
        kinds = {a.kind for a in self.adaptors() if a.kind != "input"}  # the input adaptor goes with autosc mode
        return "both" if len(kinds) > 1 else kinds.pop() if kinds else "autosc"

    @property
    def mix(self) -> str:
        """How the adaptors combine their branches while the shape learns (one kind per network)."""
        return self.adaptors()[0].mix if self.adaptor_names else "blend"

    @property
    def pool(self) -> str:
        """The adaptors' half-resolution branch (one kind per network)."""
        return self.adaptors()[0].pool if self.adaptor_names else "max"

    def adaptors(self) -> list[ShapeAdaptor]:
        return [self.net.get_submodule(n) for n in self.adaptor_names]

    def alpha_parameters(self) -> Iterator[nn.Parameter]:
        return (a.alpha for a in self.adaptors())

    def weight_parameters(self) -> Iterator[nn.Parameter]:
        alphas = {id(p) for p in self.alpha_parameters()}
        return (p for p in self.parameters() if id(p) not in alphas)

    @property
    def collapsed(self) -> bool:
        """Whether the adaptors keep one branch each (the shape is final; see :meth:`collapse`)."""
        return any(a.branch is not None for a in self.adaptors())

    def collapse(self, branches: list[str] | None = None) -> None:
        """Reduce every adaptor to one branch (default: the full one) and stop its alpha learning.

        The full branch, resized to the learned size, is kept even where sigma < 0.5:
        the size already holds the downsampling, and the half-resolution branch
        would only be upsampled back to it (less detail for the same MACs).
        The sizes stay those of the alphas at this moment; the cost only falls
        (one resize instead of two and a max-pool), so the budget still holds.
        """
        adaptors = self.adaptors()
        branches = branches or ["full"] * len(adaptors)
        if len(branches) != len(adaptors):
            raise AutoscError(f"{len(branches)} branches given for {len(adaptors)} adaptors")
        for adaptor, branch in zip(adaptors, branches, strict=True):
            adaptor.collapse(branch)
            adaptor.alpha.requires_grad_(False)

    def hold_identity(self) -> None:
        """Fix every adaptor at the identity, its full branch at the human size, for good: no alpha learns and no
        projection moves a size (the pruned network of ``--strategy prune`` meets the budget by its channels; its
        cost is counted on the frozen network, which has no resize). The cost model keeps the two-branch cost of
        the identity, which is above the frozen network's, so projecting would shrink a shape that already fits."""
        self.collapse()
        self.identity_held = True

    def factors(self) -> list[float]:
        return [a.factor() for a in self.adaptors()]

    def relaxed_cost(self) -> Tensor:
        """Learned cost over budget (1.0 = exactly at budget) as a smooth function of the alphas.

        The exact cost is a step function of integer sizes and gives the alphas no
        gradient; each segment's cost scales with its map's area, i.e. with the
        square of the product of the factors before it. The largest ratio counts
        when several kinds are capped.
        """
        parts, rest = self.cost_model.segments()
        area = (torch.cumprod(torch.stack([a.factor_tensor() for a in self.adaptors()]), 0) ** 2).double()
        budget = self.budget
        if not budget.bounded:  # no budget (autosc transfer): nothing to press against
            return torch.zeros((), dtype=torch.float32, device=area.device)
        ratios = [
            (
                term.read(rest, budget)
                + (torch.tensor([term.read(p, budget) for p in parts], dtype=area.dtype, device=area.device) * area).sum()
            )
            / limit
            for term, limit in budget.terms()
        ]  # each segment's figure grows with its map's area, MACs, memory and latency alike
        return torch.stack(ratios).max().float()

    @torch.no_grad()
    def update_shape(self, budget: Budget | None = None) -> Projection:
        """Project the learned factors under the budget (or ``budget``, a tighter one that the end of a latency run
        freezes under) and set every adaptor's size."""
        if self.identity_held:
            model = self.cost_model  # the start shape: the human one, in every mode
            sizes = model.clamp(sizes_from_factors(model.human_sizes, self.factors()))
            projection = Projection(1.0, sizes, self.cost_model.cost(sizes))
        else:
            projection = project(self.cost_model, self.factors(), budget or self.budget)
        for adaptor, size in zip(self.adaptors(), projection.sizes, strict=True):
            adaptor.size = size
        self.last_projection = projection
        return projection

    def retime(self, calibration: float, budget: Budget) -> Projection:
        """Project again with the latency model rescaled to ``calibration`` and under ``budget`` (the same budget,
        its reference timed again): what a re-time during training measured (autosc/run/retime.py), or what a
        resumed run's checkpoint holds."""
        latency = self.cost_model.latency
        if latency is None:
            raise AutoscError("this network has no latency model to re-time")
        self.cost_model.with_latency(dataclasses.replace(latency, calibration=float(calibration)))
        self.budget = budget
        return self.update_shape()

    @contextmanager
    def shape_held(self) -> Iterator[None]:
        """Forwards inside keep the sizes of the last :meth:`update_shape` (projected once on entry).

        Projecting reads every alpha, a wait for the device, and runs the bisection in Python; a trainer
        changes the alphas only in its alpha updates, so it projects after those and nowhere else
        (autosc/train/trainer.py). Outside, every forward projects, so a changed alpha always takes effect.
        """
        self.update_shape()
        previous, self._held = self._held, True
        try:
            yield
        finally:
            self._held = previous

    def forward(self, x: Tensor) -> Tensor:
        if tuple(x.shape[-2:]) != self.input_size:
            raise AutoscError(
                f"this network was planned for {self.input_size[0]}x{self.input_size[1]} inputs, got {x.shape[-2]}x{x.shape[-1]}"
            )
        if not self._held:
            self.update_shape()
        return self.net(x)
