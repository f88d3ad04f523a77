"""The public stages of a compress run, each with typed inputs and outputs.

``compress`` (autosc/run/compress.py) calls them in order, and so may a
benchmark or a notebook: :func:`load_dataset` -> :func:`plan_network` ->
:func:`train_network` (and :func:`train_baseline`) -> :func:`freeze_and_save`
-> :func:`export_networks` -> :func:`measure_latency` -> :func:`build_report`.
A stage given no :class:`~autosc.run.folder.RunFolder` keeps nothing on disk
but what it must (ONNX files go to the folder it is given).
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .. import io
from ..adaptor import alpha_to_factor
from ..checkpoint import save_checkpoint
from ..config import ExportConfig, RunConfig, require_data
from ..cost import count
from ..cost.budget import Budget
from ..cost.budgeted import BudgetedNetwork
from ..cost.latency_probe import BLOCK, Timing
from ..cost.width import auto_width
from ..data import PYTHON_DATA, DataBundle, from_datasets, load_data, split_validation
from ..data.bundle import take_subset
from ..distributed import DistContext
from ..errors import AutoscError
from ..export import ExportResult, export_onnx
from ..freeze import freeze, save_frozen
from ..latency import bench, environment
from ..models import ModelSpec, default_input_size
from ..models.cells import model_cells
from ..models.trained import Start, load_start
from ..planning import Plan, make_plan, parse_width
from ..report import schema
from ..train import TrainConfig, Trainer, train
from ..train.evaluate import evaluate, recalibrate_batchnorm
from ..train.runtime import resolve_device
from ..units import parse_input_size
from .folder import RunFolder
from .progress import Display

BASELINE_FORMAT = "autosc-baseline/1"
#: Which exported networks are checked against PyTorch (onnx.checker + ONNX Runtime parity); the human
#: network is exported only to be timed.
CHECKED = {"compressed": True, "human": False, "baseline": True}


def input_size(config: RunConfig) -> tuple[int, int]:
    """The network's input (height, width): the configured one, else the family's own."""
    plan = config.plan
    return parse_input_size(plan.input_size if plan.input_size is not None else default_input_size(plan.model))


def human_spec(config: RunConfig, bundle: DataBundle, width: float = 1.0) -> ModelSpec:
    """The user's network at ``width``, shaped for the data's classes and channels."""
    return ModelSpec(config.plan.model, width, bundle.num_classes, bundle.channels)


# -- data and plan ------------------------------------------------------------------------------------


def load_dataset(
    config: RunConfig,
    size: tuple[int, int] | None,
    *,
    train_data: Dataset | DataLoader | None = None,
    test_data: Dataset | DataLoader | None = None,
) -> DataBundle:
    """Train, validation and test splits at the network's input size; a contradicting ``--num-classes`` is refused.

    ``train_data``/``test_data`` are datasets given in Python (then ``size`` may be None: the data's own);
    otherwise ``config.dataset`` names the source. The validation split (``val_split``) is carved from
    the training images, seeded by the run's seed.
    """
    d = config.dataset
    if train_data is not None or test_data is not None:
        if train_data is None or test_data is None:
            raise AutoscError("give both train_data and test_data (the test split is what the report states)")
        bundle = from_datasets(train_data, test_data, num_classes=config.plan.num_classes)
        if size is not None and tuple(size) != bundle.native_size:
            h, w = bundle.native_size
            raise AutoscError(f"input_size {size[0]}x{size[1]} does not match the data's {h}x{w} images")
        bundle.train = take_subset(bundle.train, d.subset, config.train.seed, "train_data", "subset")
        bundle.test = take_subset(bundle.test, d.test_subset, config.train.seed, "test_data", "test_subset")
    elif d.data == PYTHON_DATA:
        raise AutoscError(
            "this run trains on datasets given in Python: pass train_data= and test_data= to autosc.compress "
            "(a resumed run needs them again)"
        )
    else:
        bundle = load_data(
            require_data(d),
            input_size=size,
            data_root=d.data_root,
            subset=d.subset,
            test_subset=d.test_subset,
            seed=config.train.seed,
            download=d.download,
        )
    classes = config.plan.num_classes
    if classes is not None and classes != bundle.num_classes:
        raise AutoscError(f"--num-classes {classes} does not match the {bundle.num_classes} classes of {bundle.name}")
    return split_validation(bundle, d.val_split, config.train.seed)


def load_start_network(config: RunConfig, bundle: DataBundle, model: nn.Module | None = None) -> Start:
    """The network the run starts from: ``--weights`` read and matched to the data, a module instance, or fresh."""
    p = config.plan
    width = parse_width(p.width)  # a file's weights are tried first at the width asked for (ignored for a module)
    return load_start(
        model if model is not None else p.model,
        weights=p.weights,
        width_hint=width if width is not None else 1.0,
        num_classes=bundle.num_classes,
        in_channels=bundle.channels,
        new_head=p.new_head,
        seed=config.train.seed,
    )


def plan_network(
    config: RunConfig,
    bundle: DataBundle,
    size: tuple[int, int],
    start: Start | None = None,
    *,
    mix: str | None = None,
    display: Display | None = None,
    calibrate: bool = True,
) -> Plan:
    """Width, adaptor places and the identity shape projected under the budget (autosc/planning.py).

    ``mix`` overrides ``--adaptor-mix`` (compress decides it once it knows whether the start is trained);
    ``display`` draws the latency model's measurement (latency budgets only); ``calibrate`` off projects on the
    model as measured (ranks of a distributed run must all project alike, and each would time its own moment).
    """
    plan = config.plan if mix is None else replace(config.plan, adaptor_mix=mix)
    progress = display.counter("measuring the latency model") if display is not None else None
    return make_plan(
        start.spec.module if start is not None and start.spec.module is not None else plan.model,
        plan,
        input_size=size,
        num_classes=bundle.num_classes,
        in_channels=bundle.channels,
        seed=config.train.seed,
        start=start,
        timing=Timing(progress=progress, calibrate=calibrate),
    )


def recalibrate_on(bundle: DataBundle, config: TrainConfig) -> Callable[[nn.Module], int]:
    """The BatchNorm recalibration of a network shrunk after training, on ``bundle``'s training images, on the
    training device (the network goes back to the CPU for export)."""

    def run(net: nn.Module) -> int:
        device = resolve_device(config.device)
        try:
            return recalibrate_batchnorm(net.to(device), bundle.train, batch_size=config.batch_size,
                                         workers=config.workers, device=device)  # fmt: skip
        finally:
            net.cpu()

    return run


def start_accuracy(net: nn.Module, bundle: DataBundle, config: TrainConfig) -> tuple[float, float | None]:
    """(test, validation) accuracy of the start network before any step: the trained network's own figures."""
    device = resolve_device(config.device)
    net.to(device)
    _, test = evaluate(net, bundle.test, workers=config.workers, device=device, amp=config.amp)
    val = None
    if bundle.val is not None:
        _, val = evaluate(net, bundle.val, workers=config.workers, device=device, amp=config.amp)
    net.cpu()  # the trainer moves it back if it becomes the teacher
    return test, val


# -- training -----------------------------------------------------------------------------------------


def train_network(
    net: nn.Module,
    bundle: DataBundle,
    config: TrainConfig,
    *,
    name: str = "autosc",
    folder: RunFolder | None = None,
    phase: str = "autosc",
    display: Display | None = None,
    dist: DistContext | None = None,
    save_extra: dict | None = None,
    teacher: nn.Module | None = None,
) -> Trainer:
    """Train ``net`` to the end; with a folder, resume from and save to its ``phase`` checkpoint.

    ``teacher``: distil from it (autosc/train/distill.py). Returns the trainer: its ``history`` holds the
    per-epoch metrics (validation and test), and its ``stop_signal`` is set if SIGINT or SIGTERM stopped
    it early (the state is saved at a batch boundary).
    """
    display = display or Display(quiet=True)
    dist = dist or DistContext()
    trainer = Trainer(net, bundle.train, bundle.test, config, dist=dist, teacher=teacher, val_set=bundle.val)
    ckpt = folder.checkpoint(phase) if folder is not None else None
    if ckpt is not None and ckpt.is_file():
        data = io.load(ckpt, expect=(io.CHECKPOINT_FORMAT, BASELINE_FORMAT))
        net.load_state_dict(data["state_dict"])
        trainer.load_state_dict(data["trainer"])
        display.log(f"{name}: resuming from {ckpt} (epoch {trainer.epoch}, batch {trainer.batch})")

    def save(t: Trainer) -> None:
        if folder is None or not dist.is_main:  # one writer: every rank holds the same weights and metrics
            return
        if isinstance(net, BudgetedNetwork):
            save_checkpoint(net, ckpt, trainer=t.state_dict())
        else:
            state = {"format": BASELINE_FORMAT, **(save_extra or {})}
            io.save({**state, "state_dict": net.state_dict(), "trainer": t.state_dict()}, ckpt)
        folder.write_metrics(t.history, phase)

    on_batch, on_epoch = display.phase(name, trainer)
    with display.progress:
        train(trainer, save=save, on_batch=on_batch, on_epoch=on_epoch)
    return trainer


@dataclass
class TrainedBaseline:
    """The human network narrowed to the budget and trained with the same recipe: the comparison to beat."""

    net: nn.Module
    width: float
    trainer: Trainer

    def to_report(self, size: tuple[int, int], convention: str) -> schema.Baseline:
        cost = count(self.net, size, cells=False)
        return schema.Baseline(
            width=self.width,
            accuracy=self.trainer.history[-1]["test_acc"],
            epochs=self.trainer.epoch,
            macs=cost.macs_in(convention),
            params=cost.params,
        )


def train_baseline(
    config: RunConfig,
    bundle: DataBundle,
    budget: Budget,
    size: tuple[int, int],
    train_config: TrainConfig,
    *,
    folder: RunFolder | None = None,
    display: Display | None = None,
    dist: DistContext | None = None,
) -> TrainedBaseline:
    """The human network at the widest width that fits ``budget``, same recipe and seed (see train_network)."""
    width = auto_width(human_spec(config, bundle), size, budget, ratio=1.0)
    spec = human_spec(config, bundle, width)
    torch.manual_seed(train_config.seed)
    net = spec.build()
    trainer = train_network(
        net,
        bundle,
        train_config,
        name=f"baseline (width {width:g})",
        folder=folder,
        phase="baseline",
        display=display,
        dist=dist,
        save_extra={"model": spec.to_dict()},
    )
    return TrainedBaseline(net, width, trainer)


# -- freeze, export, measure --------------------------------------------------------------------------


def freeze_and_save(network: BudgetedNetwork, folder: RunFolder | None = None) -> tuple[nn.Module, dict]:
    """The frozen network (CPU, eval) and its shape spec; written to ``frozen.pt`` when a folder is given."""
    network.cpu().eval()  # export and latency are CPU work, whichever device trained it
    frozen, shape = freeze(network)
    if folder is not None:
        save_frozen(frozen, shape, folder.frozen)
    return frozen, shape


def export_networks(
    networks: dict[str, nn.Module],
    size: tuple[int, int],
    in_channels: int,
    folder: RunFolder,
    options: ExportConfig,
) -> dict[str, ExportResult]:
    """Each network (label -> module, on the CPU) to ``folder.onnx(label)``; autosc's own ones checked."""
    return {
        label: export_onnx(
            net.cpu().eval(),
            size,
            folder.onnx(label),
            in_channels=in_channels,
            check=CHECKED.get(label, True),
            opset=options.opset,
            exporter=options.exporter,
            pool_halves=options.pool_halves,
        )
        for label, net in networks.items()
    }


def measure_latency(paths: dict[str, Path], runs: int, *, threads: int = 1, batch: int = 1) -> schema.Latency:
    """ONNX Runtime p50/p90/p99 of every file, timed interleaved in one run (labels: compressed, human, ...), in
    warm blocks as the latency model is (``cost.latency_probe.BLOCK``): each network as warm as when deployed."""
    timing = bench(
        [str(p) for p in paths.values()],
        labels=list(paths),
        threads=[threads],
        batches=[batch],
        runs=runs,
        warmup=min(20, runs),
        block=min(BLOCK, runs),
    )
    found = {r["label"]: schema.Timing(**{k: r[k] for k in ("p50", "p90", "p99")}) for r in timing["results"]}
    return schema.Latency(**found, threads=threads, batch=batch, runs=runs)


#: Interleaved timing rounds at the end of a latency-budgeted run: half their range is the noise it is judged by.
LATENCY_ROUNDS = 3
#: Times a frozen network measured over its latency budget is shrunk and measured again before it is kept.
LATENCY_SHRINKS = 3


@dataclass
class LatencyCheck:
    """The end of a latency-budgeted run: the measured latency and the network it measured (maybe shrunk)."""

    latency: schema.Latency
    frozen: nn.Module
    shape: dict
    exported: dict


def measure_against_budget(
    network: BudgetedNetwork,
    networks: dict[str, nn.Module],
    exported: dict,
    size: tuple[int, int],
    in_channels: int,
    folder: RunFolder,
    config: ExportConfig,
    display: Display | None = None,
    recalibrate: Callable[[nn.Module], object] | None = None,
) -> LatencyCheck:
    """Time the frozen network against its latency budget; shrink it while it is over by more than the noise.

    A latency budget is never reported as met without a measurement (docs/algorithm.md, Latency budgets): the
    networks are timed in ``LATENCY_ROUNDS`` interleaved rounds; if the middle round's compressed p50 exceeds the
    budget by more than half the rounds' range, the projection aims that much lower on predicted latency, the
    network is frozen and exported again, and timed again (at most ``LATENCY_SHRINKS`` times). A shrunk network
    was not trained at its new sizes: ``recalibrate`` (given the frozen network; see
    :func:`autosc.train.evaluate.recalibrate_batchnorm`) re-estimates its BatchNorm statistics before it is
    saved and exported.
    """
    budget = network.budget
    limit = budget.limit("latency_ms")
    frozen, shape, shrinks, target = networks["compressed"], None, 0, limit
    try:
        while True:
            paths = {label: folder.onnx(label) for label in networks}
            rounds = [
                measure_latency(paths, config.latency_runs, threads=budget.latency_threads, batch=budget.latency_batch)
                for _ in range(LATENCY_ROUNDS)
            ]
            rounds.sort(key=lambda r: r.compressed.p50)
            middle = rounds[len(rounds) // 2]
            spread = (rounds[-1].compressed.p50 - rounds[0].compressed.p50) / 2
            measured = middle.compressed.p50
            if measured <= limit + spread or shrinks == LATENCY_SHRINKS:
                break
            shrinks += 1
            target *= limit / measured
            if display is not None:
                display.log(
                    f"measured p50 {measured:.3f} ms is over the {limit:.3f} ms budget by more than the "
                    f"noise ({spread:.3f} ms): shrinking to a predicted {target:.3f} ms and measuring again"
                )
            network.budget = budget.with_limits(latency_ms=target)
            frozen, shape = freeze_and_save(network)
            if recalibrate is not None:
                recalibrate(frozen)
            save_frozen(frozen, shape, folder.frozen)
            networks["compressed"] = frozen
            exported = {**exported, **export_networks({"compressed": frozen}, size, in_channels, folder, config)}
        predicted = network.update_shape().cost.latency_ms
    finally:
        network.budget = budget  # the report states the user's budget
    latency = replace(
        middle, predicted=predicted, rounds=len(rounds), spread=spread, budget_met=measured <= limit,
        shrinks=shrinks,
    )  # fmt: skip
    return LatencyCheck(latency, frozen, shape, exported)


def cell_sizes(net: nn.Module, size: tuple[int, int], in_channels: int) -> list[dict]:
    """Spatial size of every cell's output, in execution order (the data of the shape picture)."""
    rows: list[dict] = []
    hooks = [
        module.register_forward_hook(
            lambda m, i, o, name=name: rows.append({"name": name, "size": list(o.shape[-2:])}) if o.dim() == 4 else None
        )
        for name, module in model_cells(net)
    ]
    try:
        with torch.no_grad():
            net.eval()(torch.zeros(1, in_channels, *size))
    finally:
        for h in hooks:
            h.remove()
    return rows


# -- report -------------------------------------------------------------------------------------------


def environment_info() -> dict:
    """Versions, CPU and Python of this machine, for the report."""
    return {**environment(), "autosc": __import__("autosc").__version__, "python": platform.python_version()}


def _adaptors(shape: dict, trainer: Trainer) -> list[schema.Adaptor]:
    alpha_end = list(trainer.history[-1].get("alphas", [])) if trainer.history else []
    out = []
    for i, (entry, start) in enumerate(zip(shape["adaptors"], trainer.alpha_start, strict=True)):
        out.append(
            schema.Adaptor(
                **entry,
                alpha_start=start,
                alpha_end=alpha_end[i] if i < len(alpha_end) else None,
                s_start=alpha_to_factor(start),
            )
        )
    return out


def build_report(
    *,
    config: RunConfig,
    command: str,
    network: BudgetedNetwork,
    trainer: Trainer,
    frozen: nn.Module,
    shape: dict,
    human: nn.Module,
    bundle: DataBundle,
    size: tuple[int, int],
    exported: ExportResult,
    latency: schema.Latency,
    baseline: schema.Baseline | None = None,
) -> schema.Report:
    """The run's report: MACs by the counters on the networks themselves, the shape, accuracy, export, latency."""
    conv = network.budget.convention
    human_cost, final = count(human, size, cells=False), count(frozen, size, cells=False)
    widened = network.cost_model.human_cost()
    history = trainer.history
    return schema.Report(
        model=config.plan.model,
        data=bundle.name,
        input_size=list(size),
        command=command,
        budget=network.budget.to_dict(),
        width=network.spec.width,
        macs=schema.Macs(
            convention=conv,
            counter=final.counter if conv == "standard" else "FlopCounterMode MACs + 4 x BatchNorm elements (= thop)",
            human=human_cost.macs_in(conv),
            widened=widened.budget_macs(conv) - widened.resize_macs,
            final=final.macs_in(conv),
            final_resize=final.resize_macs,
        ),
        params={"human": human_cost.params, "final": final.params},
        activation_bytes={"human": human_cost.activation_bytes, "final": final.activation_bytes},
        adaptors=_adaptors(shape, trainer),
        accuracy=schema.Accuracy(
            final=history[-1]["test_acc"], best=max(r["test_acc"] for r in history), val=history[-1].get("val_acc")
        ),
        onnx=schema.Onnx(
            path="model.onnx",
            opset=exported.opset,
            exporter=exported.exporter,
            max_abs_diff=exported.max_abs_diff,
            pooled_resizes=exported.pooled_resizes,
        ),
        latency_ms=latency,
        baseline=baseline,
        layers={
            "human": cell_sizes(network.spec.build(), size, bundle.channels),
            "learned": cell_sizes(frozen, size, bundle.channels),
        },
        epochs=trainer.epoch,
        train=trainer.config.to_dict(),
        alpha_step=trainer.alpha_step,
        env=environment_info(),
    )
