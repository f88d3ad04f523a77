"""Adaptors placed at identity in a network and wrapped under its budget; and the same network rebuilt from the
plain data a checkpoint stores, so opening a checkpoint never unpickles code (docs/architecture.md, Invariants)."""

from __future__ import annotations

import torch
from torch import nn

from ..adaptor import factor_to_alpha, place_adaptors
from ..cost.budget import Budget
from ..cost.budgeted import BudgetedNetwork
from ..cost.device_table import read_table
from ..cost.latency_probe import ProbeSettings
from ..errors import AutoscError
from ..models import ModelSpec, spec_from_file
from ..models.trained import Start
from . import latency as latency_planning


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
    timing: ProbeSettings | None = None,
    calibration: float | None = None,
    init_factor: float | None = None,
    reference: ModelSpec | None = None,
    input_adaptor: bool = False,
) -> tuple[BudgetedNetwork, list[str], list[str]]:
    """Insert the ``mode``'s adaptors at identity into ``net`` (default: ``spec`` built fresh) and wrap it under
    ``budget`` (``adaptors``: the AutoSC adaptors' count or cells, autosc/adaptor/modes.py).

    Returns (network, cells, candidates). ``net`` is the start network at ``spec``'s width (trained weights).
    A latency budget measures the network's latency model first (``timing``: how; cached, so a rebuild of the
    same network on the same machine reads it back), then calibrates it on the projected start shape measured
    now (autosc/planning/latency.py, unless ``timing.calibrate`` is off); ``calibration`` is a ratio already
    measured (a resumed run's), applied instead; ``reference``, the network a latency budget is judged against,
    is timed with the start shape.
    """
    net = spec.build() if net is None else net
    placement = place_adaptors(net, size, spec.in_channels, adaptors, mode=mode, pool=low_branch, mix=mix,
                               input_adaptor=input_adaptor)  # fmt: skip
    names = placement.names
    if init_factor is not None:  # AutoTL: the standard adaptors start near, not at, the human factor 0.5
        for name, kind in zip(names, placement.kinds, strict=True):
            if kind == "standard":
                net.get_submodule(name).alpha.data.fill_(factor_to_alpha(init_factor))
    latency = cost_model = None
    if budget.limit(latency_planning.KEY) is not None:
        cost_model, latency = latency_planning.latency_model(net, names, spec, size, budget, timing, calibration)
    calibrating = latency is not None and calibration is None and (timing or ProbeSettings()).calibrate
    network = BudgetedNetwork(
        net, names, input_size=size, budget=budget, in_channels=spec.in_channels, spec=spec, latency=latency,
        cost_model=cost_model, check=not calibrating,  # the model as measured may be of a slower moment
    )  # fmt: skip
    network.init_factor = init_factor  # written into the plan, so a rebuild starts where this one did
    if calibrating:
        latency_planning.calibrate_start(network, spec, timing, reference)
    return network, placement.cells, placement.candidates


def network_from_config(
    config: dict,
    *,
    model: str | nn.Module | None = None,
    start: Start | None = None,
    widen_noise: float = 0.1,
    seed: int = 0,
) -> BudgetedNetwork:
    """Rebuild the adapted network of a plan from :meth:`Plan.config` data (fresh weights, or ``start``'s).

    ``config`` is at the current format: a file's reader migrates it first (:func:`autosc.formats.migrate_plan`;
    docs/algorithm.md, File formats). The data comes from a file, so a builder it names is used only as ``model``,
    named by the user (:func:`autosc.models.spec_from_file`); a network made from a module instance needs the
    instance.
    """
    spec = spec_from_file(config["model"], source="the stored plan", model=model)
    budget = Budget.from_dict(config["budget"])
    # a plan fitted on a device's timing table rebuilds its latency model from that table, never by timing here
    timing = ProbeSettings(table=read_table(config["latency_table"])) if config["latency_table"] else None
    if config["latency_int8"]:  # a budget on the INT8 network: its latency model was timed on INT8 probes
        timing = ProbeSettings(int8=True)
    net = start.build_at(spec, noise=widen_noise, seed=seed) if start is not None else None
    mode = config["mode"]
    standard = set(config["standard_cells"])
    autosc_cells = [c for c in config["cells"] if c not in standard and c != config["input_cell"]]
    network, cells, _ = adapt_network(
        spec,
        tuple(config["input_size"]),
        budget,
        autosc_cells if mode != "standard" else None,
        mode=mode,
        low_branch=config["low_branch"],
        net=net,
        mix=config["mix"],
        # the run's own calibration: measuring again would move the shape it trained at (None: no latency budget)
        calibration=config["latency_calibration"],
        init_factor=config["init_factor"],
        timing=timing,
        input_adaptor=config["input_cell"] is not None,
    )
    if cells != list(config["cells"]):
        raise AutoscError(
            f"the stored plan adapts {', '.join(config['cells'])}, but this network gives {', '.join(cells)}; "
            "rebuild it with the model it was planned for"
        )
    if config["branches"]:
        network.collapse(config["branches"])
    if config["searched_alphas"] is not None:  # a shape search chose the start: a rebuild starts there too
        with torch.no_grad():
            for adaptor, alpha in zip(network.adaptors(), config["searched_alphas"], strict=True):
                adaptor.alpha.fill_(float(alpha))
        network.searched_alphas = list(config["searched_alphas"])
    if config["identity_held"]:
        network.hold_identity()
    return network
