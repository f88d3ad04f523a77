"""From a model name and a budget to a widened, adapted, budget-projected network (no training).

``make_plan`` is what ``autosc plan`` prints and what ``compress`` trains;
``network_from_config`` rebuilds the same network from the plain-data config
stored in checkpoints, so opening a checkpoint never unpickles code.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from .adaptor import factor_to_alpha, meta_copy, place_adaptors
from .cost.budget import Budget, parse_budget
from .cost.budgeted import BudgetedNetwork
from .cost.latency_probe import Timing, calibrate, measure_latency, time_network
from .cost.projection import Projection, check_reachable, fits, sizes_from_factors
from .cost.shape_cost import Cost, ShapeCostModel
from .cost.width import AUTO_WIDTH_RATIO, MAX_WIDTH, auto_width, human_cost
from .errors import AutoscError, UnreachableBudget, one_line
from .models import ModelSpec, default_input_size, is_timm_name, scales_width, spec_from_file
from .models.trained import Start, load_start
from .units import format_bytes, format_count, format_ms, parse_input_size


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
    start: Start  # the network the run starts from (trained weights, or a fresh human network)
    width_note: str | None = None  # why the width is not what was asked for (a trained network kept as it is)
    human_latency_ms: float | None = None  # measured p50 of the human network (latency budgets only)

    def config(self) -> dict:
        """Plain data that rebuilds the architecture (see :func:`network_from_config`)."""
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
        }

    def to_dict(self) -> dict:
        adaptors = [
            {"name": cell, "human_size": list(a.start_size), "size": list(size), "s": a.factor(), **a.place_keys()}
            for cell, a, size in zip(self.cells, self.network.adaptors(), self.projected.sizes, strict=True)
        ]  # fmt: skip
        conv = self.budget.convention
        start = self.network.cost_model.cost(
            self.network.cost_model.clamp(
                sizes_from_factors(self.network.cost_model.human_sizes, self.network.factors())
            )
        )  # the identity start: the human shape (in standard and both modes, with its resizing cells at stride 1)
        return {
            **self.config(),
            "width": self.spec.width,
            "width_mode": self.width_mode,
            "mode": self.network.mode,
            "trained_width": self.start.spec.width if self.start.trained else None,
            "weights": self.start.source if self.start.weights is not None else None,
            "macs": {
                "convention": conv,
                "human": self.human_macs,
                "widened": self.widened.budget_macs(conv) - self.widened.resize_macs,
                "widened_resize": self.widened.resize_macs,
                "start": start.budget_macs(conv) - start.resize_macs,
                "start_resize": start.resize_macs,
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
            **({"latency_ms": self._latency()} if self.budget.latency_ms is not None else {}),
            "projection_scale": self.projected.scale,
            "adaptors": adaptors,
            "candidates": self.candidates,
        }


def parse_width(value: float | str) -> float | None:
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
    mode: str = "autosc",
    low_branch: str = "max",
    net: nn.Module | None = None,
    mix: str = "blend",
    timing: Timing | None = None,
    calibration: float | None = None,
    init_factor: float | None = None,
) -> tuple[BudgetedNetwork, list[str], list[str]]:
    """Insert the ``mode``'s adaptors at identity into ``net`` (default: ``spec`` built fresh) and wrap it under
    ``budget`` (``adaptors``: the AutoSC adaptors' count or cells, autosc/adaptor/modes.py).

    Returns (network, cells, candidates). ``net`` is the start network at ``spec``'s width (trained weights).
    A latency budget measures the network's latency model first (``timing``: how; cached, so a rebuild of the
    same network on the same machine reads it back), then calibrates it on the projected start shape measured
    now (:func:`autosc.cost.latency_probe.calibrate`, unless ``timing.calibrate`` is off); ``calibration`` is a
    ratio already measured (a resumed run's), applied instead.
    """
    net = spec.build() if net is None else net
    placement = place_adaptors(net, size, spec.in_channels, adaptors, mode=mode, pool=low_branch, mix=mix)
    names = placement.names
    if init_factor is not None:  # AutoTL: the standard adaptors start near, not at, the human factor 0.5
        for name, kind in zip(names, placement.kinds, strict=True):
            if kind == "standard":
                net.get_submodule(name).alpha.data.fill_(factor_to_alpha(init_factor))
    latency = cost_model = None
    if budget.latency_ms is not None:
        cost_model = ShapeCostModel(net, names, size, spec.in_channels)
        latency = measure_latency(
            net, names, input_size=size, in_channels=spec.in_channels, identity=spec.to_dict(),
            threads=budget.latency_threads, batch=budget.latency_batch, timing=timing, cost_model=cost_model,
        )  # fmt: skip
    if latency is not None and calibration is not None:
        latency = dataclasses.replace(latency, calibration=calibration)
    network = BudgetedNetwork(
        net, names, input_size=size, budget=budget, in_channels=spec.in_channels, spec=spec, latency=latency,
        cost_model=cost_model,
    )  # fmt: skip
    network.init_factor = init_factor  # written into the plan, so a rebuild starts where this one did
    if latency is not None and calibration is None and (timing or Timing()).calibrate:
        start = network.update_shape().sizes
        cost_model.with_latency(
            calibrate(net, names, start, latency, input_size=size, in_channels=spec.in_channels,
                      threads=budget.latency_threads, batch=budget.latency_batch, timing=timing)
        )  # fmt: skip
        try:
            check_reachable(cost_model, budget)
        except UnreachableBudget as exc:  # the host is slower now: make_plan may choose a narrower width
            exc.calibration = cost_model.latency.calibration
            raise
        network.update_shape()
    return network, placement.cells, placement.candidates


def make_plan(
    model: str | nn.Module,
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
    weights: str | None = None,
    widen_noise: float = 0.1,
    seed: int = 0,
    mix: str | None = None,
    start: Start | None = None,
    latency: str | None = None,
    latency_threads: int = 1,
    latency_batch: int = 1,
    timing: Timing | None = None,
    mode: str = "autosc",
    init_factor: float | None = None,
    free: bool = False,
    new_head: bool = False,
) -> Plan:
    """Choose the width, place adaptors at identity, and project the identity shape under the budget.

    ``model`` may be a module instance (its weights are the start); ``weights`` a state-dict file of the
    trained human network, whose width is read off its shapes. A trained start is widened preserving its
    function (``widen_noise``, ``seed``: autosc/models/widen.py); "human" then means the trained network.
    ``mix`` (None: straight-through for a trained start, else blend) is how the adaptors combine their branches.
    ``start`` is an already loaded start (:func:`autosc.models.trained.load_start`), used instead of ``weights``.
    ``latency`` (``1.5ms``) budgets ONNX Runtime p50 at ``latency_threads``/``latency_batch`` through a latency
    model measured on this machine (``timing``: how; autosc/cost/latency_probe.py). ``mode`` says which layers
    take adaptors: ``autosc`` the non-resizing ones, ``standard`` the human resizes, ``both`` the two;
    ``init_factor`` starts the standard adaptors there instead of at the human shape. ``free``: with no budget
    given, none (the learned shape is not projected; the width stays the start's). ``new_head``: ``weights`` were
    trained on other classes, and their classifier is replaced (autosc/models/trained.py).
    """
    named = isinstance(model, str)
    size = parse_input_size(input_size if input_size is not None else default_input_size(model) if named else 224)
    fixed = parse_width(width)
    if named:
        with torch.device("meta"):  # validates name and arguments first; meta: no weights, no draws from the RNG
            ModelSpec(model, 1.0, num_classes, in_channels).build()
    hint = fixed if fixed is not None and named else 1.0  # a file's weights are first tried at the width asked for
    if start is None:
        start = load_start(model, weights=weights, width_hint=hint, num_classes=num_classes, in_channels=in_channels,
                           new_head=new_head, seed=seed)  # fmt: skip
    human = start.spec
    if human.module is not None and num_classes is not None:
        _check_outputs(human.module, size, in_channels, num_classes)
    human_macs, human_bytes = human_cost(human, size, macs_convention)
    parsed = parse_budget(
        str(budget) if budget is not None else None,
        memory,
        human_macs=human_macs,
        convention=macs_convention,
        latency=latency,
        latency_threads=latency_threads,
        latency_batch=latency_batch,
        free=free,
    )
    human_ms = None
    sizing = parsed
    if parsed.latency_ms is not None:
        timing = timing or Timing()
        human_ms = _time_spec(human, size, parsed, timing)
        if fixed is None:
            sizing = _width_budget(human, size, parsed, width_ratio, timing)
    mix = mix or ("straight-through" if start.trained else "blend")

    def adapted(sizing: Budget, calibration: float | None = None):
        chosen_width, note = _choose_width(start, fixed, size, sizing, width_ratio)
        spec = human.at_width(chosen_width)
        net = start.build_at(spec, noise=widen_noise, seed=seed)
        return spec, note, *adapt_network(spec, size, parsed, adaptors, mode=mode, low_branch=low_branch, net=net,
                                          mix=mix, timing=timing, calibration=calibration,
                                          init_factor=init_factor)  # fmt: skip

    try:
        spec, note, network, cells, candidates = adapted(sizing)
    except UnreachableBudget as exc:
        ratio = getattr(exc, "calibration", None)
        if fixed is not None or ratio is None:
            raise
        # --width auto chose by timings of another moment; the calibration says the host runs ``ratio`` times
        # slower now: choose again for the budget in those milliseconds, and keep the ratio (no second timing)
        slower = dataclasses.replace(parsed, latency_ms=parsed.latency_ms / ratio)
        spec, note, network, cells, candidates = adapted(_width_budget(human, size, slower, width_ratio, timing), ratio)
    widened = network.cost_model.human_cost()
    if parsed.bounded and (fixed is not None or note is not None) and fits(widened, parsed):
        have = (
            f"{format_count(widened.budget_macs(parsed.convention))} MACs"
            if parsed.macs is not None
            else format_bytes(widened.activation_bytes)
            if parsed.memory_bytes is not None
            else f"{format_ms(widened.latency_ms)} predicted"
        )
        if not scales_width(human.name):
            raise AutoscError(
                f"budget {parsed.describe()} is at or above the trained network's cost ({have}), "
                "so there is nothing to compress; lower the budget"
            )
        suggestion = max(auto_width(human.at_width(1.0), size, parsed, width_ratio), human.width)
        raise AutoscError(
            f"budget {parsed.describe()} is at or above the widened network's cost ({have} at width {spec.width:g}), "
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
        start=start,
        width_note=note,
        human_latency_ms=human_ms,
    )


def _time_spec(spec: ModelSpec, size: tuple[int, int], budget: Budget, timing: Timing) -> float:
    """Measured p50 (ms) of the human network ``spec`` (fresh weights: latency does not depend on them)."""
    with torch.random.fork_rng():  # building draws initial weights; leave the caller's RNG as it was
        net = spec.build() if spec.module is None else copy.deepcopy(spec.module)  # the user's module stays as is
    return time_network(net, size, spec.in_channels, threads=budget.latency_threads, batch=budget.latency_batch,
                        timing=timing, identity=spec.to_dict())  # fmt: skip


def _width_budget(human: ModelSpec, size: tuple[int, int], budget: Budget, ratio: float, timing: Timing) -> Budget:
    """The budget ``--width auto`` sizes the network by when latency is budgeted: the latency as MACs.

    Latency is taken as proportional to MACs at the width-1 network's measured rate, then corrected once at
    the width that gives (wider layers run more MACs per second); a MACs or memory budget also set still binds.
    """
    if not scales_width(human.name):
        return budget
    base = human.at_width(1.0)
    target = human_cost(base, size, budget.convention)[0] * budget.latency_ms / _time_spec(base, size, budget, timing)
    width = auto_width(base, size, Budget(macs=max(1, int(target)), convention=budget.convention), ratio)
    if width != base.width:
        at = base.at_width(width)
        macs = human_cost(at, size, budget.convention)[0]
        target = macs * budget.latency_ms / _time_spec(at, size, budget, timing)
    macs = int(min(target, budget.macs)) if budget.macs is not None else max(1, int(target))
    return Budget(macs=macs, memory_bytes=budget.memory_bytes, convention=budget.convention)


def _check_outputs(module: nn.Module, size: tuple[int, int], in_channels: int, num_classes: int) -> None:
    """A module instance must output one logit per class of the data: checked on the meta device (no arithmetic)."""
    probe = meta_copy(module).eval()
    try:
        with torch.no_grad():
            out = probe(torch.zeros(1, in_channels, *size, device="meta"))
    except RuntimeError as exc:
        first = one_line(exc)
        raise AutoscError(f"the module cannot run on a {in_channels}x{size[0]}x{size[1]} input: {first}") from exc
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[1] != num_classes:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise AutoscError(
            f"the module outputs {shape} for one image; the data has {num_classes} classes (1, {num_classes})"
        )


def _choose_width(
    start: Start, fixed: float | None, size: tuple[int, int], budget: Budget, ratio: float
) -> tuple[float, str | None]:
    """The width to compress at, and a note when a trained network keeps its own width.

    A trained network is widened only where the copy rule applies (zoo families; autosc/models/widen.py)
    and is never narrowed: removing channels of a trained network is channel pruning, not shape learning.
    """
    human = start.spec
    if not budget.bounded:  # no budget to size a width by: the start's own (or the one asked for)
        return (fixed if fixed is not None else human.width), None
    if fixed is None and is_timm_name(human.name) and not scales_width(human.name):
        return human.width, f"--width auto keeps width {human.width:g}: {human.name} has no channel multiplier"
    if not start.trained:
        chosen = fixed if fixed is not None else auto_width(human, size, budget, ratio)
        if fixed is None and chosen >= MAX_WIDTH:
            _refuse_unbinding(human.at_width(MAX_WIDTH), size, budget)
        return chosen, None
    trained, widenable = human.width, scales_width(human.name)
    if fixed is not None:
        if fixed < trained:
            raise AutoscError(
                f"--width {fixed:g} is below the trained network's width {trained:g}: autosc widens a trained "
                f"network, it does not remove its channels; use --width {trained:g} or auto"
            )
        if fixed > trained and not widenable:
            raise AutoscError(
                f"--width {fixed:g} would widen {human.name}, and autosc can widen a trained network keeping its "
                f"function only for the built-in families; use --width {trained:g} (or auto, which keeps it)"
            )
        return fixed, None
    if not widenable:
        return trained, f"--width auto keeps the trained width {trained:g}: autosc widens only built-in families"
    chosen = auto_width(human.at_width(1.0), size, budget, ratio)
    if chosen <= trained:
        return trained, f"--width auto keeps the trained width {trained:g} (the budget asks for no wider network)"
    if chosen >= MAX_WIDTH:
        _refuse_unbinding(human.at_width(MAX_WIDTH), size, budget)
    return chosen, None


def network_from_config(
    config: dict,
    *,
    model: str | nn.Module | None = None,
    start: Start | None = None,
    widen_noise: float = 0.1,
    seed: int = 0,
) -> BudgetedNetwork:
    """Rebuild the adapted network of a plan from :meth:`Plan.config` data (fresh weights, or ``start``'s).

    The data comes from a file, so a builder it names is used only as ``model``, named by the user
    (:func:`autosc.models.spec_from_file`); a network made from a module instance needs the instance.
    """
    spec = spec_from_file(config.get("model"), source="the stored plan", model=model)
    budget = Budget(**config["budget"])
    net = start.build_at(spec, noise=widen_noise, seed=seed) if start is not None else None
    mode = config.get("mode", "autosc")
    standard = set(config.get("standard_cells", []))
    autosc_cells = [c for c in config["cells"] if c not in standard]
    network, cells, _ = adapt_network(
        spec,
        tuple(config["input_size"]),
        budget,
        autosc_cells if mode != "standard" else None,
        mode=mode,
        low_branch=config.get("low_branch", "max"),
        net=net,
        mix=config.get("mix", "blend"),
        # the run's own calibration: measuring again would move the shape it trained at (1.0: a run before it)
        calibration=config.get("latency_calibration", 1.0) if budget.latency_ms is not None else None,
        init_factor=config.get("init_factor"),
    )
    if cells != list(config["cells"]):
        raise AutoscError(
            f"the stored plan adapts {', '.join(config['cells'])}, but this network gives {', '.join(cells)}; "
            "rebuild it with the model it was planned for"
        )
    if config.get("branches"):
        network.collapse(config["branches"])
    return network
