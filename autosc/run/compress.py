"""``autosc compress``: plan, train weights and shapes under the budget, freeze, export, measure, report.

The orchestration only: every step is a public stage of autosc/run/stages.py,
and every option a field of :class:`~autosc.config.RunConfig`. A run lives in
one folder (autosc/run/folder.py); ``run.json`` records the configuration, so
``--resume`` rebuilds the same run from the folder alone and finishes with the
same result as an uninterrupted run with the same seed.
"""

from __future__ import annotations

import shlex
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .. import distributed, io
from ..config import RunConfig, require_data
from ..data import PYTHON_DATA, DataBundle
from ..distributed import DistContext
from ..errors import AutoscError
from ..models import instance_spec, is_zoo_model
from ..models.trained import Start
from ..planning import network_from_config
from ..report import Report, write_report
from ..units import parse_input_size
from . import stages
from .folder import RunFolder, default_run_dir
from .progress import Display


@dataclass
class Result:
    """What a compress run leaves: its folder, its report, and the frozen network (None if it stopped)."""

    run_dir: Path
    report: Report | None
    frozen: nn.Module | None
    completed: bool = True
    exit_code: int = 0  # 128 + the signal that stopped an incomplete run (130: Ctrl-C, 143: SIGTERM)


def read_preset(path: str | Path) -> dict[str, Any]:
    """A TOML preset's options (flat names of :class:`RunConfig`); unknown keys and wrong types are refused."""
    import tomllib  # Python 3.11+; presets are the one feature that needs it

    path = Path(path)
    if not path.is_file():
        raise AutoscError(f"preset file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AutoscError(f"preset {path} is not valid TOML: {exc}") from exc
    data = {k.replace("-", "_"): v for k, v in data.items() if k != "description"}
    RunConfig.from_flat(data, where=f"preset {path}")  # refuse bad keys and values now, naming the file
    return data


def command_line(config: RunConfig, given: dict[str, Any], verb: str = "compress") -> str:
    """The ``autosc compress`` (or ``verb``) command that reproduces the run: the options given, in the config's
    order."""
    parts = ["autosc", verb, str(config.plan.model)]
    for key in RunConfig.option_names():
        value = given.get(key)
        if key == "model" or value is None:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            parts += [flag] if value else ([f"--no-{key.replace('_', '-')}"] if _toggle(key) else [])
        elif isinstance(value, list):
            for item in value:
                parts += [flag, str(item)]
        else:
            parts += [flag, str(value)]
    return shlex.join(parts)


def _toggle(key: str) -> bool:
    """A boolean option the CLI spells as --x/--no-x (the others are plain flags that default to off)."""
    return next(f for _, f in RunConfig.option_fields() if f.name == key).metadata.get("flag") is None


@dataclass(frozen=True)
class Inputs:
    """What a Python caller hands over that is not configuration: a module instance and datasets."""

    model: nn.Module | None = None
    train_data: Dataset | DataLoader | None = None
    test_data: Dataset | DataLoader | None = None

    @property
    def python_data(self) -> bool:
        return self.train_data is not None or self.test_data is not None


def compress(
    model: str | nn.Module | None = None,
    *,
    train_data: Dataset | DataLoader | None = None,
    test_data: Dataset | DataLoader | None = None,
    preset: str | Path | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    force: bool = False,
    quiet: bool = False,
    verb: str = "compress",
    **options: Any,
) -> Result:
    """Compress ``model`` under a budget end to end; the Python face of ``autosc compress``.

    ``model`` is a zoo name, a builder reference or an ``nn.Module`` instance (trained or not: its
    weights are the start). ``train_data``/``test_data`` are ``Dataset`` s yielding ``(C x H x W
    tensor, int label)`` (or ``DataLoader`` s), instead of a named ``data``; input size, channels and
    classes are read from them. ``options`` are :class:`~autosc.config.RunConfig`'s flat names
    (``budget``, ``weights``, ``epochs``, ``opset``, ...); ``None`` values fall back to the preset, then
    to the defaults. ``out``/``resume``/``force``/``quiet`` say where and how loudly it runs, not what
    it computes. A network made from an instance loads back with :func:`autosc.load_frozen`. ``verb`` is the
    command the run folder's ``command`` names (``transfer`` for :func:`autosc.transfer`).
    """
    given = read_preset(preset) if preset is not None else {}
    given.update({k: v for k, v in options.items() if v is not None})
    inputs = Inputs(model if isinstance(model, nn.Module) else None, train_data, test_data)
    if isinstance(model, nn.Module):
        model = instance_spec(model).name
    if model:
        given["model"] = model
    if given.get("weights") is not None:  # stored absolute, so --resume finds it from any folder
        given["weights"] = str(Path(given["weights"]).expanduser().resolve())
    if inputs.python_data:
        if given.get("data") not in (None, PYTHON_DATA):
            raise AutoscError(f"give either data={given['data']!r} or train_data/test_data, not both")
        given["data"] = PYTHON_DATA
    config = RunConfig.from_flat(given)
    if not config.plan.model and not resume:
        raise AutoscError(
            "no model given: name one (e.g. autosc compress mobilenet_v2_cifar ...) or set model in --preset"
        )
    if out is None and resume and not config.plan.model:
        raise AutoscError("--resume needs the run folder: give --out DIR (or the MODEL and budget of the default one)")
    root = Path(out) if out is not None else default_run_dir(config.plan.model, config.plan.budget_texts())
    folder = RunFolder(root)
    # Under torchrun every rank runs this function; rank 0 alone holds and writes the run folder.
    owns_group = not torch.distributed.is_initialized()
    dist = distributed.init(config.train.device)
    try:
        with folder.session(resume=resume, force=force) if dist.is_main else nullcontext():
            distributed.barrier(dist)
            command = command_line(config, given, verb)
            stored_plan = None
            if resume:
                config, command, stored_plan = _stored(folder, given)
            display = Display(quiet or not dist.is_main)
            return _run(config, folder, display, stored_plan, command, dist, inputs)
    finally:
        if owns_group:
            distributed.shutdown()


#: Options that do not change what training computes, so ``--resume`` may change them (export and timing).
RESUME_SAFE = ("opset", "exporter", "latency_runs", "pool_halves")


def _stored(folder: RunFolder, given: dict[str, Any]) -> tuple[RunConfig, str, dict]:
    """The configuration, command and plan of the run in ``folder`` (one read of ``run.json``), with the options
    ``--resume`` may change applied.

    Any other option given that contradicts the stored run is refused, naming
    it: a resumed run finishes the run it continues, never a blend of two.
    """
    where = str(folder.run_file)
    try:
        stored = folder.read_run()
        if "config" in stored:
            data = dict(stored["config"])
            # a run started before the validation split trained on every training image: it goes on doing so
            data["dataset"] = {"val_split": 0.0, **data.get("dataset", {})}
            # and one started before device-resident data read through the per-image loader: same batches on
            data["train"] = {"device_data": "off", **data.get("train", {})}
            config = RunConfig.from_dict(data, where=where)
        else:  # a run folder written before the typed config: flat arguments beside the model
            flat_args = {"val_split": 0.0, "device_data": "off", **stored["args"], "model": stored["model"]}
            config = RunConfig.from_flat(flat_args, where=where)
        plan = dict(stored["plan"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # JSON errors are ValueErrors
        raise AutoscError(f"cannot resume: {where} is not a readable autosc run file ({exc})") from exc
    flat = config.to_flat()
    conflicts = [
        f"{'MODEL' if key == 'model' else '--' + key.replace('_', '-')} {value} (the run has {flat[key]})"
        for key, value in given.items()
        if key not in RESUME_SAFE and RunConfig.from_flat({key: value}).to_flat()[key] != flat[key]
    ]
    if conflicts:
        raise AutoscError(
            f"--resume continues the run in {folder.root} as it was started; these options contradict it: "
            f"{'; '.join(conflicts)}. Drop them, or start a new run with --force"
        )
    model = config.plan.model
    if not is_zoo_model(model) and given.get("model") != model:
        raise AutoscError(
            f"{where} names the model builder {model!r}; autosc never imports code a file names. "
            f"If you trust it, name it yourself: autosc compress {model} --out {folder.root} --resume"
        )
    safe = {k: given[k] for k in RESUME_SAFE if k in given}
    command = stored.get("command") or command_line(config, flat)
    return config.updated(safe), command, plan


def _run(
    config: RunConfig,
    folder: RunFolder,
    display: Display,
    stored_plan: dict | None,
    command: str,
    dist: DistContext,
    inputs: Inputs,
) -> Result:
    """One run; ``stored_plan`` (from ``run.json``) when it resumes, else the plan is made and written."""
    started = time.perf_counter()
    config.plan.validate()
    config.dataset.validate()
    config.export.validate()
    if config.baseline and inputs.model is not None:
        raise AutoscError("--baseline builds the human network at another width, which a module instance cannot do")
    size = _input_size(config, inputs)
    if size is not None:  # bad hyper-parameters are refused before any data is read
        config.train.resolve(config.plan.model, size).validate()
        if not inputs.python_data:
            require_data(config.dataset)
    bundle = stages.load_dataset(config, size, train_data=inputs.train_data, test_data=inputs.test_data)
    size = size or bundle.native_size
    display.log(f"data: {bundle.describe()}")
    start = stages.load_start_network(config, bundle, inputs.model)
    human, accuracy, looks_trained = _measure_start(start, bundle, config, display)
    # A weights file is a trained start; a module instance is one if it scores above chance (it may be fresh).
    trained = start.weights is not None or (start.trained and looks_trained)
    train_config = config.train.resolve(config.plan.model, size, trained=trained)
    if train_config.distill and config.train.distill is None and not looks_trained:
        display.log("the start network scores near chance, so it is not distilled from (pass --distill to force)")
        train_config = replace(train_config, distill=False)
    train_config.validate()
    mix = config.plan.adaptor_mix or ("straight-through" if trained else "blend")
    torch.manual_seed(train_config.seed)
    if stored_plan is not None:
        stored_print = stored_plan.get("start", {}).get("sha256")
        if stored_print is not None and stored_print != start.sha256:
            raise AutoscError(
                f"--weights {config.plan.weights} changed since this run started (its SHA-256 differs); "
                "restore that file, or start a new run with --force"
            )
        network = network_from_config(
            stored_plan,
            model=inputs.model or config.plan.model,
            start=start,
            widen_noise=config.plan.widen_noise,
            seed=train_config.seed,
        )
    else:
        if config.plan.latency is not None and dist.enabled:
            # One process times the latency model; the others read it from the cache, so every rank projects
            # with the same model (the sizes must agree across ranks). Single node: the cache is one folder.
            if dist.is_main:
                plan = stages.plan_network(config, bundle, size, start, mix=mix, display=display, calibrate=False)
            distributed.barrier(dist)
            if not dist.is_main:
                plan = stages.plan_network(config, bundle, size, start, mix=mix, calibrate=False)
        else:
            plan = stages.plan_network(config, bundle, size, start, mix=mix, display=display)
        network = plan.network
        if plan.width_note:
            display.log(plan.width_note)
        if dist.is_main:
            folder.write_run(
                {
                    "model": config.plan.model,
                    "config": config.to_dict(),
                    "command": command,
                    "plan": {**plan.config(), **({"start": {"sha256": start.sha256}} if start.sha256 else {})},
                    "plan_summary": plan.to_dict(),
                }
            )
    display.log(
        f"plan: width {network.spec.width:g}, adaptors after {', '.join(network.config()['cells'])}, "
        f"budget {network.budget.describe()}"
    )
    teacher = human if train_config.distill and start.trained else None
    trainer = stages.train_network(
        network, bundle, train_config, folder=folder, display=display, dist=dist, teacher=teacher
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
    report, frozen = _finish(config, command, network, trainer, baseline, bundle, size, folder, display, human)
    report.seconds = time.perf_counter() - started
    if start.trained:
        report.accuracy.human, report.accuracy.human_val = accuracy
        report.start = {
            "weights": start.source,
            "trained_width": start.spec.width,
            "widened": network.spec.width > start.spec.width,
            "distilled": teacher is not None,
            "fine_tuned": trained,  # False: a module instance near chance, trained with the from-scratch recipe
        }
    io.write_json(folder.report, report.to_dict())
    write_report(folder.root, report, trainer.history)
    return Result(folder.root, report, frozen)


#: A start network scoring under this many times chance is taken for untrained: it is not distilled from, and a
#: module instance that scores so is trained with the from-scratch recipe.
UNTRAINED_RATIO = 1.5


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


def _measure_start(
    start: Start, bundle: DataBundle, config: RunConfig, display: Display
) -> tuple[nn.Module, tuple[float | None, float | None], bool]:
    """The start network (the report's "human"), its (test, validation) accuracy before compressing, and whether
    it scores above chance (on validation when there is a split: a decision, not a report)."""
    human = start.build()
    if not start.trained:
        return human, (None, None), False
    test, val = stages.start_accuracy(human, bundle, config.train)
    val_text = f", validation {val:.2%}" if val is not None else ""
    display.log(f"start: {start.source} at width {start.spec.width:g}: test accuracy {test:.2%}{val_text}")
    looks_trained = (val if val is not None else test) >= UNTRAINED_RATIO / bundle.num_classes
    return human, (test, val), looks_trained


def _finish(
    config, command, network, trainer, baseline, bundle, size, folder, display, human
) -> tuple[Report, nn.Module]:
    """Freeze, export and check, time against the human (the start) network, and assemble the report."""
    display.log("freezing, exporting to ONNX and measuring latency ...")
    frozen, shape = stages.freeze_and_save(network, folder)
    networks = {"compressed": frozen, "human": human}
    if baseline is not None:
        networks["baseline"] = baseline.net
    exported = stages.export_networks(networks, size, bundle.channels, folder, config.export)
    shrunk = None
    if network.budget.limit("latency_ms") is not None:  # measured against the budget, shrunk while over it
        check = stages.measure_against_budget(
            network, networks, exported, size, bundle.channels, folder, config.export, display,
            recalibrate=stages.recalibrate_on(bundle, config.train),
        )  # fmt: skip
        latency, exported = check.latency, check.exported
        if check.shape is not None:
            frozen, shape = check.frozen, check.shape
            shrunk = stages.start_accuracy(frozen, bundle, config.train)  # the kept network's own accuracy
    else:
        latency = stages.measure_latency({label: folder.onnx(label) for label in networks}, config.export.latency_runs)
    report = stages.build_report(
        config=config,
        command=command,
        network=network,
        trainer=trainer,
        frozen=frozen,
        shape=shape,
        human=networks["human"],
        bundle=bundle,
        size=size,
        exported=exported["compressed"],
        latency=latency,
        baseline=baseline.to_report(size, network.budget.convention) if baseline is not None else None,
    )
    if shrunk is not None:  # shrunk after training: its accuracy is the frozen network's, not the last epoch's
        report.accuracy.final, report.accuracy.val = shrunk
    return report, frozen


def _stopped(config: RunConfig, folder: RunFolder, display: Display, signum: int) -> Result:
    display.log(
        f"stopped; the state is saved. Continue with: autosc compress {config.plan.model} --out {folder.root} --resume"
    )
    return Result(folder.root, None, None, completed=False, exit_code=128 + signum)
