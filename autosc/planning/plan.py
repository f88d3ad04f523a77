"""The :class:`Plan`: what planning decided, and the envelope ``autosc plan`` prints (docs/architecture.md,
The pipeline)."""

from __future__ import annotations

from dataclasses import dataclass

from ..cost.budget import Budget
from ..cost.budgeted import BudgetedNetwork
from ..cost.projection import Projection, sizes_from_factors
from ..cost.shape_cost import Cost
from ..models.trained import Start
from .prune import Pruning

#: a shape-only plan whose floor uses more of a cap than this says so: at 35% of a converged mobilenet_v2_cifar's
#: latency the floor was predicted at 0.93-0.95 of the budget at two seeds, and those runs trained at or next to the
#: floor and ended 20-26 points under it (at 0.72, the third ended 6 under; benchmarks/RESULTS.md, issue 30)
NEAR_FLOOR = 0.85
#: the keys of :meth:`Plan.notes`, in the order they are shown
NOTE_KEYS = ("width_note", "floor_note")


def near_floor_note(floor: Cost, budget: Budget) -> str | None:
    """One line where the smallest shape already uses over :data:`NEAR_FLOOR` of a cap: the shape alone has
    almost nothing to choose from there, and on a timed budget one slow measurement can send it to the floor."""
    for term, limit in budget.terms():
        value = term.read(floor, budget)
        if value is not None and limit > 0 and value > NEAR_FLOOR * limit:
            return (
                f"note: the smallest shape at this width is predicted at {value / limit:.0%} of the {term.noun} budget "
                f"({term.format(value)} of {term.format(limit)}): the shape alone has little room left; --strategy "
                "compound or prune also cuts channels (docs/algorithm.md, Strategies)"
            )
    return None


@dataclass
class Plan:
    """The planned network and the figures around it; the budget, spec and input size are the network's own."""

    network: BudgetedNetwork
    width_mode: str  # "auto" or "fixed"
    human: Cost  # the human (or trained) network the run starts from, unadapted
    projected: Projection  # identity shape after the budget projection
    cells: list[str]  # cells followed by an adaptor
    candidates: list[str]
    start: Start  # the network the run starts from (trained weights, or a fresh human network)
    width_note: str | None = None  # why the width is not what was asked for (a trained network kept as it is)
    human_latency_ms: float | None = None  # measured p50 of the human network (latency budgets only)
    pruning: Pruning | None = None  # what the strategy's pruning step did (None: the shape alone)
    #: what compress's searches tried on the data: ``auto`` (the candidate splits), ``shape_search`` (the candidate
    #: shapes); None where a search did not run (autosc/run/auto.py, autosc/run/shape_search.py)
    searches: dict | None = None
    #: the planned network's top-1 before any step, {"test", "val"} (a trained start only): what the cut itself
    #: costs, which the fine-tune must win back (docs/algorithm.md, Compressing a trained network)
    before: dict | None = None

    @property
    def spec(self):  # the widened network's spec
        return self.network.spec

    @property
    def input_size(self) -> tuple[int, int]:
        return self.network.input_size

    @property
    def budget(self) -> Budget:
        return self.network.budget

    @property
    def human_macs(self) -> int:
        """Width 1 (or the trained width), no adaptors, in the budget's convention."""
        return self.human.budget_macs(self.budget.convention) - self.human.resize_macs

    @property
    def human_activation_bytes(self) -> int:
        return self.human.activation_bytes

    @property
    def widened(self) -> Cost:
        """The identity shape at the chosen width."""
        return self.network.cost_model.human_cost()

    @property
    def floor(self) -> Cost:
        """Every adapted map at its floor."""
        return self.network.cost_model.floor_cost()

    @property
    def floor_note(self) -> str | None:
        """:func:`near_floor_note` for a plan whose shape alone meets the budget (no channels pruned)."""
        return near_floor_note(self.floor, self.budget) if self.pruning is None else None

    def notes(self) -> dict[str, str]:
        """The lines a user reads before training, by key (:data:`NOTE_KEYS`): ``compress`` logs them, ``autosc
        plan`` prints them and puts them in its ``--json``."""
        return {key: text for key in NOTE_KEYS if (text := getattr(self, key))}

    def config(self) -> dict:
        """Plain data that rebuilds the architecture (see :func:`autosc.planning.network_from_config`)."""
        return self.network.config()

    def _latency(self) -> dict:
        """The latency envelope: human measured; widened, projected and floor predicted by the latency model."""
        model = self.network.cost_model.latency
        return {
            "human_measured": self.human_latency_ms,
            "widened": self.widened.latency_ms,
            "projected": self.projected.cost.latency_ms,
            "floor": self.floor.latency_ms,
            "model_fit": {
                "max_abs_error": max((abs(e) for e in model.errors()), default=None),
                "probes": len(model.probes),
            },
            # the start shape measured now over the model's prediction there (the host's drift since it was measured)
            "calibration": model.calibration,
            "threads": self.budget.latency_threads,
            "batch": self.budget.latency_batch,
            "int8": bool(model.key.get("int8")),  # timed as INT8 files (--quantize int8)
        }

    def _macs(self) -> dict:
        conv, widened, projected = self.budget.convention, self.widened, self.projected.cost
        model = self.network.cost_model
        # the identity start: the human shape (in standard and both modes, with its resizing cells at stride 1)
        start = model.cost(model.clamp(sizes_from_factors(model.human_sizes, self.network.factors())))
        return {
            "convention": conv,
            "human": self.human_macs,
            "widened": widened.budget_macs(conv) - widened.resize_macs,
            "widened_resize": widened.resize_macs,
            "start": start.budget_macs(conv) - start.resize_macs,
            "start_resize": start.resize_macs,
            "projected": projected.budget_macs(conv) - projected.resize_macs,
            "projected_resize": projected.resize_macs,
            "floor": self.floor.budget_macs(conv),
        }

    def _budget_use(self) -> dict:
        """Per capped kind, its limit and what the projected identity shape uses of it (``autosc plan``'s last
        lines; each kind reads its own figure, autosc/cost/terms/)."""
        cost, budget = self.projected.cost, self.budget
        return {term.key: {"limit": limit, "projected": term.read(cost, budget)} for term, limit in budget.terms()}

    def to_dict(self) -> dict:
        adaptors = [
            {"name": cell, "human_size": list(a.start_size), "size": list(size), "s": a.factor(), **a.place_keys()}
            for cell, a, size in zip(self.cells, self.network.adaptors(), self.projected.sizes, strict=True)
        ]  # fmt: skip
        return {
            **self.config(),
            "width": self.spec.width,
            "width_mode": self.width_mode,
            "mode": self.network.mode,
            "trained_width": self.start.spec.width if self.start.trained else None,
            "weights": self.start.source if self.start.weights is not None else None,
            "macs": self._macs(),
            "activation_bytes": {
                "human": self.human_activation_bytes,
                "widened": self.widened.activation_bytes,
                "projected": self.projected.cost.activation_bytes,
                "floor": self.floor.activation_bytes,
            },
            "latency_ms": self._latency() if self.budget.limit("latency_ms") is not None else None,
            "budget_use": self._budget_use(),
            "projection_scale": self.projected.scale,
            "adaptors": adaptors,
            "candidates": self.candidates,
            "pruning": self.pruning.to_dict() if self.pruning is not None else None,
            "auto": (self.searches or {}).get("auto"),
            "shape_search": (self.searches or {}).get("shape_search"),
            "before": self.before,
        }
