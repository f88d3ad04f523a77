"""``make_plan``: from a model and a :class:`~autosc.config.PlanConfig` to a widened, adapted, budget-projected
network, without training (docs/architecture.md, The pipeline)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from ..adaptor import meta_copy
from ..config import PlanConfig
from ..cost.budget import Budget, parse_budget
from ..cost.device_table import read_table
from ..cost.latency_probe import ProbeSettings
from ..cost.shape_cost import Cost
from ..cost.width import AUTO_WIDTH_RATIO, human_network_cost
from ..errors import AutoscError, UnreachableBudget, one_line
from ..models import ModelSpec, default_input_size
from ..models.trained import Start, load_start
from ..prune.strategies import Strategy, strategy_of
from ..resources import check_batch
from ..units import is_latency_share, parse_input_size
from . import latency as latency_planning
from .adapt import adapt_network
from .plan import Plan
from .prune import prune_start
from .width import choose_width, parse_width, refuse_unneeded


def make_plan(
    model: str | nn.Module,
    config: PlanConfig,
    *,
    input_size: tuple[int, int] | None = None,
    num_classes: int | None = None,
    in_channels: int = 3,
    seed: int = 0,
    start: Start | None = None,
    budget: Budget | None = None,
    timing: ProbeSettings | None = None,
    width_ratio: float = AUTO_WIDTH_RATIO,
    prune_batch: tuple[Tensor, Tensor] | None = None,
) -> Plan:
    """Prune the channels for the strategy's share of the cut, choose the width, place adaptors at identity, and
    project the identity shape under the budget.

    ``config`` is what the user asked for; the keywords are facts of the data and the run (input size and
    classes, default the config's; the widening ``seed``; a ``start`` or ``budget`` already made; how a latency
    budget is measured, autosc/cost/latency_probe.py; labelled images for a pruning criterion that needs them)."""
    size, classes = plan_size(model, config, input_size), num_classes if num_classes is not None else config.num_classes
    fixed = parse_width(config.width)
    timing = timing or ProbeSettings()
    if config.latency_table is not None:  # the device's timings, for the network the table was measured for
        timing, fixed = _with_table(config, timing, fixed)
    o = _opening(model, config, size, classes, in_channels, seed, start=start, fixed=fixed, given=budget,
                 timing=timing, width_ratio=width_ratio, prune_batch=prune_batch)  # fmt: skip
    spec, note, network, cells, candidates = _adapted(
        config, o.start, o.human, o.fixed, size, o.budget, o.sizing, seed=seed, timing=timing, width_ratio=width_ratio
    )
    if (o.fixed is not None or note is not None) and o.pruning is None:
        refuse_unneeded(network.cost_model.human_cost(), o.budget, o.human, spec, size, width_ratio)
    if not o.strategy.shape_learns:
        network.hold_identity()
    projected = network.update_shape()
    if network.identity_held and timing.table is not None:
        check_held_on_table(projected.cost, o.budget)
    return Plan(
        network=network, width_mode="fixed" if o.fixed is not None else "auto", human=o.human_cost,
        projected=projected, cells=cells, candidates=candidates, start=o.start, width_note=note,
        human_latency_ms=o.human_ms, pruning=o.pruning,
    )  # fmt: skip


@dataclass(frozen=True)
class _Opened:
    """A plan's start and budget, before any adaptor: the start as pruned, its human network and cost, the width
    (None: chosen by the budget), the strategy, the budget, the one a width is sized by, the reference's p50."""

    start: Start
    human: ModelSpec
    human_cost: Cost
    fixed: float | None
    strategy: Strategy
    budget: Budget
    sizing: Budget
    human_ms: float | None
    pruning: dict | None


def _opening(
    model: str | nn.Module, config: PlanConfig, size: tuple[int, int], classes: int | None, in_channels: int,
    seed: int, *, start: Start | None, fixed: float | None, given: Budget | None, timing: ProbeSettings | None,
    width_ratio: float = AUTO_WIDTH_RATIO, prune_batch: tuple[Tensor, Tensor] | None = None,
) -> _Opened:  # fmt: skip
    """Load the start, count its human network, parse the budget against it and prune the strategy's share of the
    cut: what a plan and a probe of a pruned network (:func:`probed_start`) both begin with. ``timing`` None times
    nothing: a latency share is read against a nominal reference (the channels pruned are the same)."""
    start = start or _load_start(model, config, classes, in_channels, fixed, seed)
    human = start.spec
    if human.module is not None and classes is not None:
        check_outputs(human.module, size, in_channels, classes)
    human_cost = human_network_cost(human, size)
    strategy = _named_strategy(config)
    if strategy.prune_share(config.prune_share) > 0:  # pruning removes channels: the width is the start's own
        start, fixed = pruning_width(start, fixed)
    budget, sizing, human_ms = _budget(config, given, human, human_cost, size, fixed is None, width_ratio, timing)
    start, pruning = prune_start(
        start, strategy, share=strategy.prune_share(config.prune_share), importance=config.importance, budget=budget,
        human=replace(human_cost, latency_ms=budget.latency_reference_ms), size=size, batch=prune_batch,
        timing=timing if timing is not None and timing.table is None else None,  # a device's table: nothing timed
    )  # fmt: skip
    return _Opened(start, human, human_cost, fixed, strategy, budget, sizing, human_ms, pruning)


def plan_size(model: str | nn.Module, config: PlanConfig, input_size: tuple[int, int] | None = None) -> tuple[int, int]:
    """The input size a plan is made at: the data's, else the configuration's, else the model's default."""
    if input_size is not None:
        return input_size
    named = isinstance(model, str)
    return parse_input_size(
        config.input_size if config.input_size is not None else default_input_size(model) if named else 224
    )


#: The reference p50 a probe prunes against (any value gives the same channels: the target is a share of it).
NOMINAL_MS = 1.0


def probed_start(
    model: str | nn.Module, config: PlanConfig, *, in_channels: int, seed: int,
    prune_batch: tuple[Tensor, Tensor] | None = None,
) -> Start | None:  # fmt: skip
    """The start network pruned as the plan on a deployment device's table will prune it (``autosc probe`` for a
    strategy that prunes: the table must describe the pruned network), or None when the strategy prunes nothing.

    Nothing is timed: the device's reference p50 is not known until its table is, so the latency cap must be a
    share (``--latency 60%``), which prunes to the same MACs whatever the reference (:func:`prune_start` without
    timing); the other caps are counted as in the plan."""
    strategy = _named_strategy(config)
    share = strategy.prune_share(config.prune_share)
    if share <= 0:
        return None
    config.validate()
    texts = config.budget_texts()
    if texts.get("latency") is None or not is_latency_share(str(texts["latency"])):
        raise AutoscError(
            f"probing for --strategy {strategy.name} writes the probes of the network pruned to your latency budget: "
            "give it as a share (--latency 60%), and the same budget, strategy and data options to compress"
        )
    return _opening(model, config, plan_size(model, config), config.num_classes, in_channels, seed, start=None,
                    fixed=parse_width(config.width), given=None, timing=None, prune_batch=prune_batch).start  # fmt: skip


def check_held_on_table(cost: Cost, budget: Budget) -> None:
    """A pruned network whose shape is held (``--strategy prune``) meets a device's latency cap by its channels
    alone, aimed through MACs (nothing can be timed on the device from here): the table's prediction must fit, as
    the end of the run judges it (autosc/run/measure.py, table_verdict)."""
    limit, reference = budget.limit(latency_planning.KEY), budget.latency_reference_ms
    if limit is not None and cost.latency_ms is not None and cost.latency_ms > limit:
        raise AutoscError(
            f"on the device's table the pruned network takes {cost.latency_ms / reference:.0%} of the start network's "
            f"p50, over the budget's {limit / reference:.0%}: pruning aims at a device's latency through MACs, which "
            "the device does not follow exactly; use --strategy compound (the shape takes the rest; probe again with "
            "it), or --strategy shape"
        )


def _named_strategy(config: PlanConfig) -> Strategy:
    """The configuration's strategy; one chosen on the data (``auto``) is not planning's to make."""
    strategy = strategy_of(config.strategy)
    if strategy.searched:
        raise AutoscError(
            f"--strategy {strategy.name} chooses the split by fine-tuning candidates on the data, which autosc compress "
            "does; a plan takes shape, prune or compound"
        )
    return strategy


def _adapted(
    config: PlanConfig, start: Start, human: ModelSpec, fixed: float | None, size: tuple[int, int], budget: Budget,
    sizing: Budget, *, seed: int, timing: ProbeSettings, width_ratio: float,
) -> tuple:  # fmt: skip
    """The width chosen and the adaptors placed at identity: (spec, width note, network, cells, candidates). Under
    ``--width auto``, a latency model found slower now than when measured chooses the width again."""
    mix = config.adaptor_mix or ("straight-through" if start.trained else "blend")

    def adapted(sizing: Budget, calibration: float | None = None, budget: Budget = budget):
        chosen, note = choose_width(start, fixed, size, sizing, width_ratio)
        spec = start.spec.at_width(chosen)
        net = start.build_at(spec, noise=config.widen_noise, seed=seed)
        return spec, note, *adapt_network(
            spec, size, budget, config.placement(), mode=config.mode, low_branch=config.low_branch, net=net,
            mix=mix, timing=timing, calibration=calibration, init_factor=config.init_factor, reference=human,
            input_adaptor=config.input_adaptor,
        )  # fmt: skip

    try:
        return adapted(sizing)
    except UnreachableBudget as exc:
        if fixed is not None or getattr(exc, "calibration", None) is None:
            raise
        return adapted(*_on_slower_host(exc, budget, human, size, width_ratio, timing))


def pruning_width(start: Start, fixed: float | None) -> tuple[Start, float]:
    """The start a pruning strategy prunes, and its width: a trained network's own (a ``--width`` that differs is
    refused: pruning removes channels, it does not widen), a fresh one's at the width asked for (default 1)."""
    if not start.trained:
        width = fixed if fixed is not None else start.spec.width
        return replace(start, spec=start.spec.at_width(width)), width
    if fixed is not None and fixed != start.spec.width:
        raise AutoscError(
            f"--width {fixed:g} with --strategy prune or compound: pruning removes channels from the trained network "
            f"at its own width {start.spec.width:g}; leave --width out"
        )
    return start, start.spec.width


def _on_slower_host(
    exc: UnreachableBudget, budget: Budget, human: ModelSpec, size: tuple[int, int], ratio: float, timing: ProbeSettings
) -> tuple[Budget, float, Budget]:
    """--width auto chose by timings of another moment, and the calibration says the host runs ``exc.calibration``
    times slower now: the budget to choose the width by again (in those milliseconds), that ratio, and the budget
    retimed against the reference as timed then (nothing is timed a second time)."""
    slower = latency_planning.slower(budget, exc.calibration)
    sizing = latency_planning.width_budget(human, size, slower, ratio, timing)
    reference_ms = getattr(exc, "reference_ms", None)
    return sizing, exc.calibration, budget.retimed(reference_ms) if reference_ms is not None else budget


def _budget(
    config: PlanConfig, given: Budget | None, human: ModelSpec, human_cost: Cost, size: tuple[int, int],
    auto: bool, ratio: float, timing: ProbeSettings | None,
) -> tuple[Budget, Budget, float | None]:  # fmt: skip
    """The budget asked for (``given``, else the config's text, a relative one read against ``human_cost``), the
    one ``--width auto`` sizes the width by, and the human network's measured latency (a latency budget only)."""
    texts = config.budget_texts()
    human_ms = None
    if (given.limit(latency_planning.KEY) if given is not None else texts.get("latency")) is not None:
        settings = given or Budget(
            latency_threads=config.latency_threads, latency_batch=config.latency_batch, free=True
        )
        check_batch("--latency-batch", settings.latency_batch, (human.in_channels, *size))  # before anything is timed
        # the reference a latency share is of; nominal when nothing is timed (a probe: the share prunes alike)
        human_ms = latency_planning.time_spec(human, size, settings, timing) if timing is not None else NOMINAL_MS
    if given is not None:
        keep = human_ms is None or given.latency_reference_ms is not None
        budget = given if keep else replace(given, latency_reference_ms=human_ms)
    else:
        budget = parse_budget(
            human=replace(human_cost, latency_ms=human_ms), convention=config.macs_convention,
            latency_threads=config.latency_threads, latency_batch=config.latency_batch, free=config.no_budget, **texts,
        )  # fmt: skip
    if human_ms is None:
        return budget, budget, None
    sizing = latency_planning.width_budget(human, size, budget, ratio, timing) if auto else budget
    return budget, sizing, human_ms


def _with_table(config: PlanConfig, timing: ProbeSettings, fixed: float | None) -> tuple[ProbeSettings, float]:
    """The timing settings that fit on the device's table (nothing timed or calibrated here) and the width the table
    was measured at (a width given that differs is refused: the table would not describe that network)."""
    table = read_table(config.latency_table)  # the config's validation refused a table without a latency budget
    if fixed is not None and fixed != table.width:
        raise AutoscError(
            f"--latency-table {table.path} was measured at width {table.width:g}, not {fixed:g}: leave --width out "
            "or probe at that width"
        )
    return replace(timing, table=table, calibrate=False), table.width


def _load_start(
    model: str | nn.Module, config: PlanConfig, classes: int | None, in_channels: int, fixed: float | None, seed: int
) -> Start:
    """The network the plan starts from: trained weights, a module instance, or fresh."""
    named = isinstance(model, str)
    if named:
        with torch.device("meta"):  # validates name and arguments first; meta: no weights, no draws from the RNG
            ModelSpec(model, 1.0, classes, in_channels).build()
    hint = fixed if fixed is not None and named else 1.0  # a file's weights are first tried at the width asked for
    return load_start(model, weights=config.weights, width_hint=hint, num_classes=classes,
                      in_channels=in_channels, new_head=config.new_head, seed=seed)  # fmt: skip


def check_outputs(module: nn.Module, size: tuple[int, int], in_channels: int, num_classes: int) -> None:
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
