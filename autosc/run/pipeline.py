"""One compress run, the stages in order: validate, read the data, load the start, plan (or rebuild the stored
plan), train, train the baseline, then rank 0 freezes, exports, times and writes the report
(docs/architecture.md, The pipeline). ``autosc.compress`` opens the run folder and calls :func:`run`."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .. import distributed, io
from ..config import RunConfig, require_data
from ..cost.budgeted import BudgetedNetwork
from ..data import DataBundle
from ..distributed import DistContext
from ..errors import AutoscError
from ..models.trained import Start
from ..planning import Plan, network_from_config
from ..planning.make import check_outputs
from ..prune.strategies import strategy_of
from ..report import Report, write_report
from ..report.build import Context, Measured
from ..resources import check_run
from ..stored import check_plan
from ..train import TrainConfig
from ..train.runtime import Stopped, check_compiler, resolve_device, stop_at_once
from ..units import parse_input_size
from . import stages
from .auto import check_auto, choose_split
from .data import prune_batch
from .folder import RunFolder
from .progress import Display
from .shape_search import search_shape
from .shrink import Shrinker, prune_further

#: A start network scoring under this many times chance is taken for untrained: it is not distilled from, and a
#: module instance that scores so is trained with the from-scratch recipe.
UNTRAINED_RATIO = 1.5


@dataclass(frozen=True)
class Inputs:
    """What a Python caller hands over that is not configuration: a module instance and datasets."""

    model: nn.Module | None = None
    train_data: Dataset | DataLoader | None = None
    test_data: Dataset | DataLoader | None = None

    @property
    def python_data(self) -> bool:
        return self.train_data is not None or self.test_data is not None


@dataclass
class Result:
    """What a compress run leaves: its folder, its report, and the frozen network (None if it stopped)."""

    run_dir: Path
    report: Report | None
    frozen: nn.Module | None
    completed: bool = True
    exit_code: int = 0  # 128 + the signal that stopped an incomplete run (130: Ctrl-C, 143: SIGTERM)


@dataclass
class StartState:
    """The network the run starts from, as the run sees it: built, its own accuracy, and how it is trained."""

    start: Start
    human: nn.Module  # the report's "human": the trained network, or the fresh human one
    accuracy: tuple[float | None, float | None]  # its own (test, validation) accuracy; (None, None) from scratch
    trained: bool  # fine-tuned with the trained-start recipe
    train_config: TrainConfig


def run(
    config: RunConfig, folder: RunFolder, display: Display, stored_plan: dict | None, command: str,
    dist: DistContext, inputs: Inputs,
) -> Result:  # fmt: skip
    """One run; ``stored_plan`` (from ``run.json``) when it resumes, else the plan is made and written."""
    started = time.perf_counter()
    size = _validate(config, inputs)
    bundle = stages.load_dataset(config, size, train_data=inputs.train_data, test_data=inputs.test_data)
    size = size or bundle.native_size
    display.log(f"data: {bundle.describe()}")
    state = _start_state(config, bundle, size, inputs, display)
    torch.manual_seed(state.train_config.seed)
    network = _network(config, bundle, size, state, stored_plan, command, folder, display, dist, inputs)
    display.log(
        f"plan: width {network.spec.width:g}, adaptors after {', '.join(network.config()['cells'])}, "
        f"budget {network.budget.describe()}"
    )
    teacher = state.human if state.train_config.distill and state.start.trained else None
    retimer = stages.shape_retimer(network, state.start.spec, state.train_config, dist, display.log)
    trainer = stages.train_network(
        network, bundle, state.train_config, folder=folder, display=display, dist=dist, teacher=teacher,
        retimer=retimer,
    )
    if trainer.stop_signal is not None:
        return _stopped(config, folder, display, trainer.stop_signal)
    baseline = None
    if config.baseline:
        scratch = replace(config.train.resolve(config.plan.model, size), distill=False)  # the human network, fresh
        baseline = stages.train_baseline(
            config, bundle, network.budget, size, scratch, folder=folder, display=display, dist=dist
        )
        if baseline.trainer.stop_signal is not None:
            return _stopped(config, folder, display, baseline.trainer.stop_signal)
    if not dist.is_main:  # freezing, export, latency and the report are rank 0's
        return Result(folder.root, None, None)
    try:
        with stop_at_once():  # the export and the timing have no batch boundary: a signal stops them where they are
            measured = _measure(config, network, state, baseline, bundle, size, folder, display)
            if config.export.quantize != "none":
                measured = replace(measured, quantized=stages.quantize_run(
                    folder, bundle, config.export, seed=state.train_config.seed,
                    threads=network.budget.latency_threads, batch=network.budget.latency_batch, display=display,
                ))  # fmt: skip
            if retimer is not None:
                measured.latency.retimes = retimer.records
            summary = folder.read_run().get("plan_summary", {})  # as planned, also on resume
            start = _start_record(state, network, summary, distilled=teacher is not None)
            report = stages.build_report(
                Context(config.plan.model, bundle.name, size, bundle.channels, command), network, trainer,
                state.human, measured,
                baseline=baseline.to_report(size, network.budget.convention) if baseline is not None else None,
                start=start, start_accuracy=state.accuracy if start else (None, None),
                seconds=time.perf_counter() - started, strategy=_strategy_record(config, summary),
            )  # fmt: skip
            io.write_json(folder.report, report.to_dict())
            write_report(folder.root, report, trainer.history)
    except Stopped as stop:  # the trained state is in the checkpoint: --resume exports and times again
        return _stopped(config, folder, display, stop.signum)
    return Result(folder.root, report, measured.frozen)


def _validate(config: RunConfig, inputs: Inputs) -> tuple[int, int] | None:
    """Refuse what can be refused before any data is read; the input size when it is known already."""
    config.plan.validate()
    config.dataset.validate()
    config.export.validate()
    if config.train.compile:  # found missing at the first compiled step, half-way through training
        check_compiler(resolve_device(config.train.device))
    if config.baseline and inputs.model is not None:
        raise AutoscError("--baseline builds the human network at another width, which a module instance cannot do")
    size = _input_size(config, inputs)
    if size is not None:  # bad hyper-parameters are refused before any data is read
        train = config.train.resolve(config.plan.model, size)
        train.validate()
        check_run(size, train.batch_size, config.plan.latency_batch if config.plan.latency is not None else None)
        if not inputs.python_data:
            require_data(config.dataset)
    return size


def _input_size(config: RunConfig, inputs: Inputs) -> tuple[int, int] | None:
    """The input size known before the data is read; None when it is the size of datasets given in Python."""
    given = config.plan.input_size
    if inputs.python_data:
        return parse_input_size(given) if given is not None else None
    if inputs.model is not None and given is None:
        raise AutoscError(
            "a module instance on a named dataset needs input_size (the size it was trained at, e.g. input_size=32)"
        )
    return stages.input_size(config)


def _start_state(
    config: RunConfig, bundle: DataBundle, size: tuple[int, int], inputs: Inputs, display: Display
) -> StartState:
    """Load the start, measure its own accuracy, and choose the recipe: a weights file is a trained start; a module
    instance is one if it scores above chance (it may be fresh)."""
    if inputs.model is not None:  # it must take the data and score every label before it is evaluated on them
        check_outputs(inputs.model, size, bundle.channels, bundle.num_classes)
    start = stages.load_start_network(config, bundle, inputs.model)
    human = start.build()
    accuracy, looks_trained = (None, None), False
    if start.trained:
        accuracy = stages.start_accuracy(human, bundle, config.train)
        test, val = accuracy
        val_text = f", validation {val:.2%}" if val is not None else ""
        display.log(f"start: {start.source} at width {start.spec.width:g}: test accuracy {test:.2%}{val_text}")
        # on validation when there is a split: a decision, not a report
        looks_trained = (val if val is not None else test) >= UNTRAINED_RATIO / bundle.num_classes
    trained = start.weights is not None or (start.trained and looks_trained)
    train_config = config.train.resolve(config.plan.model, size, trained=trained)
    if train_config.distill and config.train.distill is None and not looks_trained:
        display.log("the start network scores near chance, so it is not distilled from (pass --distill to force)")
        train_config = replace(train_config, distill=False)
    train_config.validate()
    return StartState(start, human, accuracy, trained, train_config)


def _network(
    config: RunConfig, bundle: DataBundle, size: tuple[int, int], state: StartState, stored_plan: dict | None,
    command: str, folder: RunFolder, display: Display, dist: DistContext, inputs: Inputs,
) -> BudgetedNetwork:  # fmt: skip
    """The adapted network: rebuilt from the stored plan on resume, else planned now and written to ``run.json``."""
    start, seed = state.start, state.train_config.seed
    if stored_plan is not None:
        check_plan(stored_plan, f"the plan in {folder.run_file}")
        stored_print = stored_plan["start"]["sha256"]  # None: no --weights
        if stored_print is not None and stored_print != start.sha256:
            raise AutoscError(
                f"--weights {config.plan.weights} changed since this run started (its SHA-256 differs); "
                "restore that file, or start a new run with --force"
            )
        start = _pruned_start(start, stored_plan, folder)
        return network_from_config(stored_plan, model=inputs.model or config.plan.model, start=start,
                                   widen_noise=config.plan.widen_noise, seed=seed)  # fmt: skip
    plan, searches = _plan(config, bundle, size, state, display, dist)
    plan.searches = searches  # recorded in run.json's plan_summary
    if dist.is_main and state.trained:  # the cut's own cost, before the fine-tune wins it back
        plan.before = stages.planned_accuracy(plan.network, bundle, state.train_config)
    for note in plan.notes().values():
        display.log(note)
    if dist.is_main:
        folder.write_run(
            {
                "model": config.plan.model,
                "config": config.to_dict(),
                "command": command,
                "plan": {**plan.config(), "start": {"sha256": start.sha256}},
                "plan_summary": plan.to_dict(),
            }
        )
        if plan.pruning is not None and plan.start.weights is not None:  # after write_run, which clears the folder
            weights = plan.start.weights
            io.atomic_write(folder.pruned_start, lambda tmp: torch.save(weights, tmp))
    return plan.network


def _plan(
    config: RunConfig, bundle: DataBundle, size: tuple[int, int], state: StartState, display: Display,
    dist: DistContext,
) -> tuple[Plan, dict]:  # fmt: skip
    """A new run's plan, and the searches' records: ``auto``, every candidate split's (``--strategy auto``,
    autosc/run/auto.py), ``shape_search``, every candidate shape's (``--shape-search``, autosc/run/shape_search.py)."""
    p = config.plan
    if p.shape_search and (dist.enabled or not (state.trained and state.start.trained)):
        raise AutoscError("--shape-search scores shapes by a trained network's weights in one process: give --weights "
                          "(or a trained module), and no torchrun")  # fmt: skip
    auto = None
    if strategy_of(p.strategy).searched:
        check_auto(config, state.trained and state.start.trained, dist.enabled)
        plan, auto = choose_split(config, bundle, size, state.start, teacher=state.human,
                                  train_config=state.train_config, mix=_mix(config, state), display=display)  # fmt: skip
    else:
        plan = _plan_one(config, bundle, size, state, display, dist)
    found = None
    if p.shape_search:
        found = search_shape(plan.network, bundle, state.train_config, random=p.shape_search, display=display)
    return plan, {"auto": auto, "shape_search": found}


def _mix(config: RunConfig, state: StartState) -> str:
    return config.plan.adaptor_mix or ("straight-through" if state.trained else "blend")


def _plan_one(
    config: RunConfig, bundle: DataBundle, size: tuple[int, int], state: StartState, display: Display,
    dist: DistContext,
) -> Plan:  # fmt: skip
    """The plan of a named strategy; under torchrun with a latency budget, the latency model timed by rank 0."""
    start, mix = state.start, _mix(config, state)
    if config.plan.latency is not None and dist.enabled:
        # One process times the latency model; the others read it from the cache, so every rank projects
        # with the same model (the sizes must agree across ranks). Single node: the cache is one folder.
        if dist.is_main:
            plan = stages.plan_network(config, bundle, size, start, mix=mix, display=display, calibrate=False)
        distributed.barrier(dist)
        if not dist.is_main:
            plan = stages.plan_network(config, bundle, size, start, mix=mix, calibrate=False)
        return plan
    return stages.plan_network(config, bundle, size, start, mix=mix, display=display)


def _pruned_start(start: Start, stored_plan: dict, folder: RunFolder) -> Start:
    """A resumed run's start: the trained network as pruned when the run was planned (its weights were saved in
    the folder then: pruning again could choose other channels), or ``start`` when the plan prunes nothing."""
    channels = stored_plan["model"].get("channels")
    if channels is None or not start.trained:
        return start
    path = folder.pruned_start
    if not path.is_file():
        raise AutoscError(
            f"{path} is missing: this run pruned its start's channels and kept them there; start the run again "
            "with --force"
        )
    try:
        weights = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: one line, never a traceback
        raise AutoscError(f"cannot read {path}: {io.load_problem(exc)}; start the run again with --force") from exc
    return replace(start, spec=start.spec.pruned(channels), weights=weights)


def _measure(
    config: RunConfig, network: BudgetedNetwork, state: StartState, baseline: stages.TrainedBaseline | None,
    bundle: DataBundle, size: tuple[int, int], folder: RunFolder, display: Display,
) -> Measured:  # fmt: skip
    """Freeze, export and check, and time against the human (the start) network; under a latency budget, the
    frozen network is measured against it, and shrunk and fine-tuned (with the run's resolved training recipe:
    the configuration as given may leave the batch size to the recipe) while confirmed over
    (autosc/run/measure.py)."""
    human, train = state.human, state.train_config
    display.log("freezing, exporting to ONNX and measuring latency ...")
    frozen, shape = stages.freeze_and_save(network, folder)
    networks = {"compressed": frozen, "human": human}
    if baseline is not None:
        networks["baseline"] = baseline.net
    exported = stages.export_networks(networks, size, bundle.channels, folder, config.export)
    model = network.cost_model.latency
    on_device = model is not None and "table" in model.key  # planned on a deployment device's timing table
    if network.budget.limit("latency_ms") is None or on_device:
        budget = network.budget  # a device's table: timed here as information, at the threads and batch it is for
        latency = stages.time_onnx({label: folder.onnx(label) for label in networks}, config.export.latency_runs,
                                   threads=budget.latency_threads, batch=budget.latency_batch)  # fmt: skip
        latency = stages.table_verdict(network, latency) if on_device else latency
        return Measured(frozen, shape, exported["compressed"], latency)
    check = stages.check_latency_budget(
        network, networks, exported, size, bundle.channels, folder, config.export, display,
        retrain=stages.retrain_after_shrink(bundle, train), shrink=_shrinker(config, network, bundle, size),
    )  # fmt: skip
    if check.shape is None:
        return Measured(frozen, shape, check.exported["compressed"], check.latency)
    # shrunk after training: its accuracy is the kept network's own, not the last epoch's
    accuracy = stages.start_accuracy(check.frozen, bundle, train)
    return Measured(check.frozen, check.shape, check.exported["compressed"], check.latency, accuracy)


def _shrinker(config: RunConfig, network: BudgetedNetwork, bundle: DataBundle, size: tuple[int, int]) -> Shrinker | None:
    """How the end check cuts a confirmed miss: a held shape (``--strategy prune``) by its channels, with the run's
    importance; else the default, the shape projected lower (autosc/run/shrink.py)."""
    if not network.identity_held:
        return None
    importance = config.plan.importance
    return prune_further(size, bundle.channels, importance=importance, batch=prune_batch(bundle, importance))


def _strategy_record(config: RunConfig, summary: dict) -> dict:
    """The report's ``strategy``: the options, and the pruning step's record as planned (``run.json``'s
    ``plan_summary``)."""
    candidates = summary.get("auto")
    p = config.plan
    chosen = next((c["strategy"] for c in candidates if c.get("chosen")), None) if candidates else None
    return {"name": p.strategy, "importance": p.importance, "prune_share": p.prune_share,
            "pruning": summary.get("pruning"), "chosen": chosen, "candidates": candidates,
            "shape_search": summary.get("shape_search")}  # fmt: skip


def _start_record(state: StartState, network: BudgetedNetwork, summary: dict, *, distilled: bool) -> dict | None:
    """The report's ``start``: what a trained start was and how it was used, and the planned network's top-1
    before the fine-tune (``before``, from ``run.json``'s ``plan_summary``); None from scratch."""
    start = state.start
    if not start.trained:
        return None
    return {
        "before": summary.get("before"),
        "weights": start.source,
        "trained_width": start.spec.width,
        "widened": network.spec.width > start.spec.width,
        "distilled": distilled,
        "fine_tuned": state.trained,  # False: a module instance near chance, trained with the from-scratch recipe
    }


def _stopped(config: RunConfig, folder: RunFolder, display: Display, signum: int) -> Result:
    display.log(
        f"stopped; the state is saved. Continue with: autosc compress {config.plan.model} --out {folder.root} --resume"
    )
    return Result(folder.root, None, None, completed=False, exit_code=128 + signum)
