"""``autosc compress``: plan, train weights and shapes under the budget, freeze, export, measure, report.

A run lives in one folder (default ``exports/<model>-<budget>/``) holding
everything of SPEC §7. ``run.json`` records the arguments, so ``--resume``
rebuilds the same run from the folder alone and finishes with the same result
as an uninterrupted run with the same seed.
"""

from __future__ import annotations

import json
import platform
import re
import shlex
import shutil
import time
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import nn

from . import distributed, io
from .checkpoint import save_checkpoint
from .cost import count
from .cost.budget import Budget
from .cost.budgeted import BudgetedNetwork
from .cost.width import auto_width
from .data import DataBundle, load_data
from .distributed import DistContext
from .errors import AutoscError
from .export import export_onnx
from .freeze import freeze, save_frozen
from .latency import bench
from .models import ModelSpec, default_input_size
from .models.cells import model_cells
from .planning import Plan, make_plan, network_from_config
from .train import TrainConfig, Trainer, defaults_for, train
from .units import format_count, parse_input_size

BASELINE_FORMAT = "autosc-baseline/1"
RUN_FILE = "run.json"

#: Options a preset file may set (the same names as ``compress``'s keyword arguments).
PRESET_KEYS = (
    "model", "budget", "memory", "data", "data_root", "input_size", "width", "num_classes", "adaptors",
    "epochs", "batch_size", "lr", "weight_decay", "alpha_optimizer", "alpha_lr", "alpha_step", "seed",
    "subset", "test_subset", "baseline", "latency_runs", "opset", "exporter", "macs_convention", "alpha_pass", "channels_last",
    "cost_term", "device", "amp", "shape_until", "collapse",
)  # fmt: skip
TRAIN_KEYS = tuple(f.name for f in fields(TrainConfig))


@dataclass
class Result:
    """What a compress run leaves: its folder, its report, and the frozen network."""

    run_dir: Path
    report: dict
    frozen: nn.Module | None
    completed: bool = True


@dataclass
class _Context:
    """What every stage of one run needs to know."""

    model: str
    args: dict
    run_dir: Path
    command: str
    size: tuple[int, int]
    bundle: DataBundle
    display: _Display

    def human_spec(self, width: float = 1.0) -> ModelSpec:
        return ModelSpec(self.model, width, self.bundle.num_classes, self.bundle.channels)


def read_preset(path: str | Path) -> dict:
    """A TOML preset: keys are ``compress`` options; an unknown key is an error, not a silent no-op."""
    import tomllib

    path = Path(path)
    if not path.is_file():
        raise AutoscError(f"preset file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise AutoscError(f"preset {path} is not valid TOML: {exc}") from exc
    data = {k.replace("-", "_"): v for k, v in data.items() if k != "description"}
    unknown = sorted(set(data) - set(PRESET_KEYS))
    if unknown:
        raise AutoscError(f"preset {path} has unknown key(s) {', '.join(unknown)}; allowed: {', '.join(PRESET_KEYS)}")
    return data


def _tag(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._]+", "-", text.replace("%", "pct")).strip("-") or "run"


def default_run_dir(model: str, budget: str | None, memory: str | None) -> Path:
    name = Path(model.split(":")[0]).stem if ":" in model else model
    parts = [p for p in (budget, memory) if p is not None]
    return Path("exports") / _tag("-".join([name, *map(str, parts)]))


def _prepare_dir(run_dir: Path, *, resume: bool, force: bool) -> None:
    if resume:
        if not (run_dir / RUN_FILE).is_file():
            raise AutoscError(
                f"nothing to resume in {run_dir}: it holds no {RUN_FILE}; start a new run without --resume"
            )
        return
    if run_dir.exists() and any(run_dir.iterdir()):
        if not force:
            raise AutoscError(f"{run_dir} already holds a run; use --resume to continue it or --force to start over")
        if not (run_dir / RUN_FILE).is_file():
            raise AutoscError(
                f"--force only replaces autosc run folders, and {run_dir} has no {RUN_FILE}; choose another --out"
            )
        shutil.rmtree(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise AutoscError(f"cannot write to {run_dir} ({exc.strerror}); choose a writable --out") from exc


def cell_sizes(net: nn.Module, input_size: tuple[int, int], in_channels: int) -> list[dict]:
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
            net.eval()(torch.zeros(1, in_channels, *input_size))
    finally:
        for h in hooks:
            h.remove()
    return rows


class _Display:
    """A rich progress bar per training phase, or nothing with ``quiet``."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
            console=self.console,
            disable=quiet,
        )

    def log(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text, highlight=False)

    def phase(self, name: str, trainer: Trainer):
        total = trainer.total_steps
        task = self.progress.add_task(name, total=total, completed=trainer.step, status="")
        budget = getattr(trainer.net, "budget", None)

        def on_batch(t: Trainer) -> None:
            seen = max(t._running["seen"], 1)
            status = f"loss {t._running['loss'] / seen:.3f} acc {100 * t._running['correct'] / seen:.1f}%"
            projection = getattr(t.net, "last_projection", None)
            if projection is not None and budget is not None and budget.macs:
                sizes = ",".join(str(h) for h, _ in projection.sizes)
                status += (
                    f" | MACs {format_count(projection.cost.total_macs)}/{format_count(budget.macs)} | sizes {sizes}"
                )
            desc = f"{name} epoch {min(t.epoch + 1, t.config.epochs)}/{t.config.epochs}"
            self.progress.update(task, completed=t.step, description=desc, status=status)

        def on_epoch(t: Trainer, row: dict) -> None:
            extra = (
                f", MACs {format_count(row['macs'] + row['resize_macs'])}, sizes {row['sizes']}"
                if row.get("macs")
                else ""
            )
            self.log(
                f"{name} epoch {row['epoch']}: test acc {100 * row['test_acc']:.2f}%, loss {row['test_loss']:.4f}{extra}"
            )

        return on_batch, on_epoch


def _write_metrics(path: Path, history: list[dict]) -> None:
    io.atomic_write(path, lambda tmp: Path(tmp).write_text("".join(json.dumps(r) + "\n" for r in history)))


def _train_phase(
    name: str,
    net: nn.Module,
    bundle,
    config: TrainConfig,
    ckpt: Path,
    metrics: Path,
    display: _Display,
    save_extra: dict,
    dist: DistContext,
) -> Trainer | None:
    """Train ``net`` to the end (resuming from ``ckpt`` if present); None if stopped by Ctrl-C."""
    trainer = Trainer(net, bundle.train, bundle.test, config, dist=dist)
    if ckpt.is_file():
        data = io.load(ckpt, expect=(io.CHECKPOINT_FORMAT, BASELINE_FORMAT))
        net.load_state_dict(data["state_dict"])
        trainer.load_state_dict(data["trainer"])
        display.log(f"{name}: resuming from {ckpt} (epoch {trainer.epoch}, batch {trainer.batch})")

    def save(t: Trainer) -> None:
        if not dist.is_main:  # one writer: every rank holds the same weights, alphas and metrics
            return
        if hasattr(net, "config"):
            save_checkpoint(net, ckpt, trainer=t.state_dict())
        else:
            io.save(
                {"format": BASELINE_FORMAT, **save_extra, "state_dict": net.state_dict(), "trainer": t.state_dict()},
                ckpt,
            )
        _write_metrics(metrics, t.history)

    on_batch, on_epoch = display.phase(name, trainer)
    with display.progress:
        done = train(trainer, save=save, on_batch=on_batch, on_epoch=on_epoch)
    return trainer if done else None


def _environment() -> dict:
    from .latency import environment

    env = environment()
    env["autosc"] = __import__("autosc").__version__
    return env


def compress(model: str | None, *, preset: str | Path | None = None, command: str | None = None, **options) -> Result:
    """Compress ``model`` under a budget end to end; the Python face of ``autosc compress``.

    Options are those of :data:`PRESET_KEYS` plus ``out``, ``resume``,
    ``force``, ``quiet``, ``download``, ``workers``, ``opset``; ``None``
    values fall back to the preset, then to the defaults.
    """
    args = read_preset(preset) if preset is not None else {}
    args.update({k: v for k, v in options.items() if v is not None})
    preset_model = args.pop("model", None)
    model = model or preset_model
    if not model:
        raise AutoscError(
            "no model given: name one (e.g. autosc compress mobilenet_v2_cifar ...) or set model in --preset"
        )
    resume, force = bool(args.pop("resume", False)), bool(args.pop("force", False))
    quiet = bool(args.pop("quiet", False))
    out = args.pop("out", None)
    run_dir = Path(out) if out is not None else default_run_dir(model, args.get("budget"), args.get("memory"))
    # Under torchrun every rank runs this function; rank 0 alone prepares and writes the run folder.
    owns_group = not torch.distributed.is_initialized()
    dist = distributed.init(str(args.get("device", "auto")))
    try:
        if dist.is_main:
            _prepare_dir(run_dir, resume=resume, force=force)
        distributed.barrier(dist)
        if resume:
            stored = json.loads((run_dir / RUN_FILE).read_text())
            model, args, command = stored["model"], stored["args"], stored.get("command")
        display = _Display(quiet or not dist.is_main)
        return _run(model, args, run_dir, display, resume, command or _command(model, args), dist)
    finally:
        if owns_group:
            distributed.shutdown()


def _command(model: str, args: dict) -> str:
    parts = ["autosc", "compress", model]
    for key, value in args.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            parts.append(flag)
        elif value is not False and value is not None:
            parts += [flag, str(value)]
    return shlex.join(parts)


def _run(
    model: str, args: dict, run_dir: Path, display: _Display, resume: bool, command: str, dist: DistContext
) -> Result:
    started = time.perf_counter()
    seed = int(args.get("seed", 0))
    size = parse_input_size(args.get("input_size") or default_input_size(model))
    config = defaults_for(model, size)
    for key in TRAIN_KEYS:
        if args.get(key) is not None:
            setattr(config, key, type(getattr(config, key))(args[key]))
    config.seed = seed
    config.validate()  # bad hyper-parameters are refused before any data is read
    bundle = load_data(
        args.get("data", "synthetic"),
        input_size=size,
        data_root=args.get("data_root"),
        subset=args.get("subset"),
        test_subset=args.get("test_subset"),
        seed=seed,
        download=bool(args.get("download", False)),
    )
    display.log(f"data: {bundle.describe()}")
    classes = args.get("num_classes")
    if classes is not None and classes != bundle.num_classes:
        raise AutoscError(f"--num-classes {classes} does not match the {bundle.num_classes} classes of {bundle.name}")
    torch.manual_seed(seed)
    adaptors = args.get("adaptors")
    plan: Plan | None = None
    if resume:
        stored = json.loads((run_dir / RUN_FILE).read_text())
        network = network_from_config(stored["plan"])
    else:
        plan = make_plan(
            model,
            budget=args.get("budget"),
            memory=args.get("memory"),
            input_size=size,
            width=args.get("width", "auto"),
            num_classes=bundle.num_classes,
            in_channels=bundle.channels,
            adaptors=[a for a in adaptors.split(",")] if isinstance(adaptors, str) else adaptors,
            macs_convention=args.get("macs_convention", "standard"),
        )
        network = plan.network
        if dist.is_main:
            io.write_json(
                run_dir / RUN_FILE,
                {
                    "model": model,
                    "args": args,
                    "command": command,
                    "plan": plan.config(),
                    "plan_summary": plan.to_dict(),
                },
            )
    spec = network.spec
    display.log(
        f"plan: width {spec.width:g}, adaptors after {', '.join(network.config()['cells'])}, "
        f"budget {network.budget.describe()}"
    )
    trainer = _train_phase(
        "autosc", network, bundle, config, run_dir / "checkpoint.pt", run_dir / "metrics.jsonl", display, {}, dist
    )
    if trainer is None:
        return _stopped(model, run_dir, display)

    ctx = _Context(model, args, run_dir, command, size, bundle, display)
    baseline = None
    if args.get("baseline"):
        budget: Budget = network.budget
        width = auto_width(ctx.human_spec(), size, budget, ratio=1.0)
        torch.manual_seed(seed)
        baseline_net = ctx.human_spec(width).build()
        btrainer = _train_phase(
            f"baseline (width {width:g})",
            baseline_net,
            bundle,
            config,
            run_dir / "baseline_checkpoint.pt",
            run_dir / "baseline_metrics.jsonl",
            display,
            {"model": ctx.human_spec(width).to_dict()},
            dist,
        )
        if btrainer is None:
            return _stopped(model, run_dir, display)
        baseline = (
            baseline_net,
            {"width": width, "accuracy": btrainer.history[-1]["test_acc"], "epochs": btrainer.epoch},
        )

    if not dist.is_main:  # freezing, export, latency and the report are rank 0's
        return Result(run_dir, {}, None)
    report, frozen = _finish(ctx, network, trainer, baseline)
    report["seconds"] = time.perf_counter() - started
    io.write_json(run_dir / "report.json", report)
    from .report import write_report

    write_report(run_dir, report, trainer.history)
    return Result(run_dir, report, frozen)


def _stopped(model: str, run_dir: Path, display: _Display) -> Result:
    display.log(f"stopped; the state is saved. Continue with: autosc compress {model} --out {run_dir} --resume")
    return Result(run_dir, {}, None, completed=False)


def _finish(
    ctx: _Context, network: BudgetedNetwork, trainer: Trainer, baseline: tuple[nn.Module, dict] | None
) -> tuple[dict, nn.Module]:
    """Freeze, export and check, time against the human (and baseline) network, and assemble report.json."""
    model, args, run_dir, display, size, bundle = ctx.model, ctx.args, ctx.run_dir, ctx.display, ctx.size, ctx.bundle
    display.log("freezing, exporting to ONNX and measuring latency ...")
    network.cpu().eval()  # export and latency are CPU work, whichever device trained it
    if baseline is not None:
        baseline[0].cpu()
    frozen, shape = freeze(network)
    save_frozen(frozen, shape, run_dir / "frozen.pt")
    onnx_options = {"opset": int(args.get("opset", 18)), "exporter": args.get("exporter", "dynamo")}
    exported = export_onnx(frozen, size, run_dir / "model.onnx", in_channels=bundle.channels, **onnx_options)
    human = ctx.human_spec().build().eval()
    export_onnx(human, size, run_dir / "human.onnx", in_channels=bundle.channels, check=False, **onnx_options)
    paths, labels = [run_dir / "model.onnx", run_dir / "human.onnx"], ["compressed", "human"]
    if baseline is not None:
        export_onnx(baseline[0].eval(), size, run_dir / "baseline.onnx", in_channels=bundle.channels, **onnx_options)
        paths.append(run_dir / "baseline.onnx")
        labels.append("baseline")
    runs = int(args.get("latency_runs", 200))
    timing = bench([str(p) for p in paths], labels=labels, threads=[1], batches=[1], runs=runs, warmup=min(20, runs))
    latency = {r["label"]: {k: r[k] for k in ("p50", "p90", "p99")} for r in timing["results"]}

    conv = network.budget.convention
    human_cost = count(human, size, cells=False)
    final = count(frozen, size, cells=False)
    widened = network.cost_model.human_cost()
    last = trainer.history[-1]
    adaptors = [{**a, "alpha_start": s} for a, s in zip(shape["adaptors"], trainer.alpha_start, strict=True)]
    for a, alpha in zip(adaptors, last.get("alphas", []), strict=False):
        a["alpha_end"] = alpha
    report = {
        "model": model,
        "data": bundle.name,
        "input_size": list(size),
        "command": ctx.command,
        "budget": network.budget.to_dict(),
        "width": network.spec.width,
        "macs": {
            "convention": conv,
            "counter": final.counter
            if conv == "standard"
            else "FlopCounterMode MACs + 4 x BatchNorm elements (= thop)",
            "human": human_cost.macs_in(conv),
            "widened": widened.budget_macs(conv) - widened.resize_macs,
            "final": final.macs_in(conv),
            "final_resize": final.resize_macs,
            "final_total": final.macs_in(conv) + final.resize_macs,
        },
        "params": {"human": human_cost.params, "final": final.params},
        "activation_bytes": {"human": human_cost.activation_bytes, "final": final.activation_bytes},
        "adaptors": adaptors,
        "accuracy": {"final": last["test_acc"], "best": max(r["test_acc"] for r in trainer.history)},
        "onnx": {
            "path": "model.onnx",
            "opset": exported.opset,
            "exporter": exported.exporter,
            "max_abs_diff": exported.max_abs_diff,
        },
        "latency_ms": {**latency, "threads": 1, "batch": 1, "runs": runs},
        "baseline": None,
        "layers": {
            "human": cell_sizes(ModelSpec(**shape["model"]).build(), size, bundle.channels),
            "learned": cell_sizes(frozen, size, bundle.channels),
        },
        "epochs": trainer.epoch,
        "train": trainer.config.to_dict(),
        "alpha_step": trainer.alpha_step,
        "env": {**_environment(), "python": platform.python_version()},
    }
    if baseline is not None:
        bcost = count(baseline[0], size, cells=False)
        report["baseline"] = {**baseline[1], "macs": bcost.macs_in(conv), "params": bcost.params}
    return report, frozen
