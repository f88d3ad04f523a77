"""``autosc compress``: plan, train weights and shapes under the budget, freeze, export, measure, report.

The orchestration only: every step is a public stage of autosc/run/stages.py,
and every option a field of :class:`~autosc.config.RunConfig`. A run lives in
one folder (autosc/run/folder.py); ``run.json`` records the configuration, so
``--resume`` rebuilds the same run from the folder alone and finishes with the
same result as an uninterrupted run with the same seed.
"""

from __future__ import annotations

import shlex
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .. import distributed
from ..config import RunConfig
from ..data import PYTHON_DATA
from ..errors import AutoscError
from ..models import instance_spec, is_zoo_model
from ..units import input_size_text
from . import pipeline
from .folder import RunFolder, default_run_dir
from .pipeline import Inputs, Result
from .progress import Display


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
    model = data.get("model")
    if model is not None and not is_zoo_model(model):  # a builder is code: the user names it, never a file
        raise AutoscError(
            f"preset {path} names the model builder {model!r}; autosc never imports code a file names. "
            f"If you trust it, remove model from the preset and name it yourself: autosc compress {model} "
            f"--preset {path}"
        )
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


def _changed(config: RunConfig) -> dict[str, Any]:
    """The options of ``config`` that differ from the defaults: what a user set, as the command line records it."""
    defaults = RunConfig().to_flat()
    return {k: v for k, v in config.to_flat().items() if v != defaults[k]}


def _given(
    config: RunConfig | None, preset: str | Path | None, options: dict[str, Any], model: str | None, inputs: Inputs
) -> dict[str, Any]:
    """The options as given, flat: ``config``'s changes, then the preset's, then the keywords (None: not given)."""
    given = _changed(config) if config is not None else {}
    given.update(read_preset(preset) if preset is not None else {})
    given.update({k: v for k, v in input_size_text(options).items() if v is not None})
    if model:
        given["model"] = model
    if given.get("weights") is not None:  # stored absolute, so --resume finds it from any folder
        given["weights"] = str(Path(given["weights"]).expanduser().resolve())
    if inputs.python_data:
        if given.get("data") not in (None, PYTHON_DATA):
            raise AutoscError(f"give either data={given['data']!r} or train_data/test_data, not both")
        given["data"] = PYTHON_DATA
    return given


def compress(
    model: str | nn.Module | None = None,
    config: RunConfig | None = None,
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

    ``model`` is a zoo name, a builder reference or an ``nn.Module`` instance (trained or not: its weights are
    the start). ``train_data``/``test_data`` are ``Dataset`` s yielding ``(C x H x W tensor, int label)`` (or
    ``DataLoader`` s) instead of a named ``data``; input size, channels and classes are read from them.
    ``config`` is a whole :class:`~autosc.config.RunConfig`; ``options`` are its flat names (``budget`` as text
    or an int of MACs, ``epochs``, ...) and override the preset, which overrides ``config``. ``out``, ``resume``,
    ``force`` and ``quiet`` say where and how loudly it runs; ``verb`` is the command ``command`` names.
    """
    inputs = Inputs(model if isinstance(model, nn.Module) else None, train_data, test_data)
    given = _given(config, preset, options, instance_spec(model).name if inputs.model is not None else model, inputs)
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
            return pipeline.run(config, folder, display, stored_plan, command, dist, inputs)
    finally:
        if owns_group:
            distributed.shutdown()


#: Options that do not change what training computes, so ``--resume`` may change them (export and timing).
RESUME_SAFE = ("opset", "exporter", "latency_runs", "pool_halves", "calibration_images")


def _stored_value(value: Any) -> str:
    """How a refused ``--resume`` names the stored value; None means the run left the option to its default."""
    return "the run left it to its default" if value is None else f"the run has {value}"


def _stored(folder: RunFolder, given: dict[str, Any]) -> tuple[RunConfig, str, dict]:
    """The configuration, command and plan of the run in ``folder`` (one read of ``run.json``), with the options
    ``--resume`` may change applied.

    Any other option given that contradicts the stored run is refused, naming
    it: a resumed run finishes the run it continues, never a blend of two.
    """
    where = str(folder.run_file)
    try:
        stored = folder.read_run()  # at the current format: older run files are migrated (autosc/formats.py)
        config = RunConfig.from_dict(stored["config"], where=where)
        plan = dict(stored["plan"])
    except AutoscError:  # a newer format, or a bad value, already says what and where in one line
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # JSON errors are ValueErrors
        raise AutoscError(f"cannot resume: {where} is not a readable autosc run file ({exc})") from exc
    flat = config.to_flat()
    conflicts = [
        f"{'MODEL' if key == 'model' else '--' + key.replace('_', '-')} {value} ({_stored_value(flat[key])})"
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
    command = stored["command"]
    return config.updated(safe), command, plan
