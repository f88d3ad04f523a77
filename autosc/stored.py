"""The plain data a file holds, checked before anything is built from it: one check per kind of stored dict.

Checkpoints, frozen models and ``run.json`` are data, never code (docs/architecture.md, Invariants), but data a
person can edit or a disk can damage: a budget that is text, a size of a billion pixels or a width of 1e6 would
otherwise fail deep inside PyTorch as an internal error, or try to allocate the machine's memory. Each check
runs on the dict at the current format (after :mod:`autosc.formats` migrated it) and raises one
:class:`AutoscError` naming the file and the field. What needs the network to check (a cell name) is checked
where the network is built.
"""

from __future__ import annotations

import math
from typing import Any, NoReturn

from .adaptor import KINDS, MIXES, MODES
from .adaptor.module import BRANCHES, LOW_BRANCHES
from .config import INT_LIMITS
from .cost.budget import SETTINGS
from .cost.terms import TERMS
from .cost.width import MAX_WIDTH
from .errors import AutoscError
from .units import MAX_INPUT_SIDE

#: The most input channels a stored model spec may have (images have 1 to 4; a few more for stacked bands).
MAX_IN_CHANNELS = 1024


def _refuse(where: str, what: str) -> NoReturn:
    raise AutoscError(f"{where}: {what}; the file was edited or damaged (use the file autosc wrote)")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _field(data: dict, key: str, where: str) -> Any:
    if key not in data:
        _refuse(where, f"{key} is missing")
    return data[key]


def _choice(data: dict, key: str, choices: Any, where: str, *, optional: bool = False) -> None:
    value = _field(data, key, where)
    if (value is None and optional) or (isinstance(value, str) and value in choices):
        return
    _refuse(where, f"{key} must be one of {', '.join(choices)}{' or null' if optional else ''}, got {value!r}")


def _size(value: Any, key: str, where: str) -> None:
    """A (height, width) a network can be built at: two whole numbers from 1 to :data:`MAX_INPUT_SIDE`."""
    ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_whole(v, 1, MAX_INPUT_SIDE) for v in value)
    if not ok:
        _refuse(where, f"{key} must be [height, width] in whole pixels from 1 to {MAX_INPUT_SIDE}, got {value!r}")


def _names(value: Any, key: str, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        _refuse(where, f"{key} must be a list of cell names, got {value!r}")
    return value


def check_model_spec(data: Any, where: str) -> None:
    """A stored model spec (``ModelSpec.to_dict``): a name, a width autosc builds, sane classes and channels."""
    if not isinstance(data, dict):
        _refuse(where, f"model must be a model spec (name, width, num_classes, in_channels), got {data!r}")
    where = f"{where}, model"
    if not isinstance(_field(data, "name", where), str):
        _refuse(where, f"name must be text, got {data['name']!r}")
    width = data.get("width", 1.0)
    if not (_is_number(width) and 0 < width <= MAX_WIDTH):
        _refuse(where, f"width must be a number in (0, {MAX_WIDTH:g}], got {width!r}")
    classes = data.get("num_classes")
    if classes is not None and not _is_whole(classes, 1, INT_LIMITS["num_classes"]):
        _refuse(where, f"num_classes must be a whole number from 1 to {INT_LIMITS['num_classes']}, got {classes!r}")
    channels = data.get("in_channels", 3)
    if not _is_whole(channels, 1, MAX_IN_CHANNELS):
        _refuse(where, f"in_channels must be a whole number from 1 to {MAX_IN_CHANNELS}, got {channels!r}")
    pruned = data.get("channels")
    if pruned is not None and not (isinstance(pruned, dict) and all(
            isinstance(k, str) and isinstance(v, dict) for k, v in pruned.items())):  # fmt: skip
        _refuse(where, f"channels must map module names to their pruned channel counts, got {pruned!r}")


def _network(data: Any, what: str, where: str) -> None:
    """What a network config and a shape spec both hold: the model spec and the input size it is built at."""
    if not isinstance(data, dict):
        _refuse(where, f"the {what} must be a dict, got {type(data).__name__}")
    check_model_spec(_field(data, "model", where), where)
    _size(_field(data, "input_size", where), "input_size", where)


def check_budget(data: Any, where: str) -> None:
    """A stored budget (``Budget.to_dict``): each cap None or a positive number, each setting of its type."""
    if not isinstance(data, dict):
        _refuse(where, f"budget must be a dict of limits ({', '.join(TERMS)}), got {data!r}")
    optional = [k for k, default in SETTINGS.items() if default is None]  # a latency share or reference
    for key in (*TERMS, *optional):
        value = data.get(key)
        if value is not None and not (_is_number(value) and value > 0):
            _refuse(where, f"budget {key} must be a positive number or null, got {value!r}")
    for key, default in SETTINGS.items():
        value = data.get(key, default)
        if default is not None and type(value) is not type(default):
            _refuse(where, f"budget {key} must be of the type of {default!r}, got {value!r}")
    for key in ("latency_threads", "latency_batch"):
        if not _is_whole(data.get(key, 1), 1, INT_LIMITS[key]):
            _refuse(where, f"budget {key} must be a whole number from 1 to {INT_LIMITS[key]}, got {data.get(key)!r}")


def check_plan(config: Any, where: str) -> None:
    """A network config (a checkpoint's ``config``, ``run.json``'s ``plan``; :meth:`BudgetedNetwork.config`)."""
    _network(config, "network config", where)
    check_budget(_field(config, "budget", where), where)
    cells = _names(_field(config, "cells", where), "cells", where)
    standard = _names(_field(config, "standard_cells", where), "standard_cells", where)
    if not set(standard) <= set(cells):
        _refuse(where, f"standard_cells {standard} are not all among the adapted cells {cells}")
    _choice(config, "mode", MODES, where)
    _choice(config, "low_branch", LOW_BRANCHES, where)
    _choice(config, "mix", MIXES, where)
    factor = _field(config, "init_factor", where)
    if factor is not None and not (_is_number(factor) and 0.5 < factor < 1):
        _refuse(where, f"init_factor must be a number in (0.5, 1) or null, got {factor!r}")
    branches = _field(config, "branches", where)
    if branches is not None and not (
        isinstance(branches, list) and len(branches) == len(cells) and all(b in BRANCHES for b in branches)
    ):
        _refuse(where, f"branches must be null or one of {', '.join(BRANCHES)} per adapted cell, got {branches!r}")
    if not isinstance(_field(config, "identity_held", where), bool):
        _refuse(where, f"identity_held must be true or false, got {config['identity_held']!r}")
    input_cell = _field(config, "input_cell", where)
    if input_cell is not None and (not isinstance(input_cell, str) or input_cell not in cells):
        _refuse(where, f"input_cell must be null or one of the adapted cells {cells}, got {input_cell!r}")
    alphas = _field(config, "searched_alphas", where)
    if alphas is not None and not (isinstance(alphas, list) and len(alphas) == len(cells) and all(_is_number(a) for a in alphas)):
        _refuse(where, f"searched_alphas must be null or one number per adapted cell, got {alphas!r}")
    calibration = _field(config, "latency_calibration", where)
    if calibration is not None and not (_is_number(calibration) and calibration > 0):
        _refuse(where, f"latency_calibration must be a positive number or null, got {calibration!r}")


def check_shape(spec: Any, where: str) -> None:
    """A shape spec (``frozen.pt``'s ``shape_spec``, ``frozen.shape.json``; :func:`autosc.freeze.shape_spec`)."""
    _network(spec, "shape spec", where)
    if spec.get("budget") is not None:  # a record of what the shape was projected under; nothing is built from it
        check_budget(spec["budget"], where)
    _choice(spec, "low_branch", LOW_BRANCHES, where)
    adaptors = _field(spec, "adaptors", where)
    if not isinstance(adaptors, list):
        _refuse(where, f"adaptors must be a list, got {type(adaptors).__name__}")
    for i, entry in enumerate(adaptors):
        _check_adaptor(entry, f"{where}, adaptor {i + 1}")


def _check_adaptor(entry: Any, where: str) -> None:
    """One adaptor of a shape spec: the cell it follows, its fixed size, and its branch or mixing weight."""
    if not isinstance(entry, dict):
        _refuse(where, f"must be a dict (name, size, sigma, branch, kind), got {entry!r}")
    if not isinstance(_field(entry, "name", where), str) or not entry["name"]:
        _refuse(where, f"name must be a cell name, got {entry['name']!r}")
    _size(_field(entry, "size", where), "size", where)
    _choice(entry, "branch", BRANCHES, where, optional=True)
    _choice(entry, "kind", KINDS, where)
    sigma = _field(entry, "sigma", where)
    if not (_is_number(sigma) and 0 <= sigma <= 1):
        _refuse(where, f"sigma must be a number in [0, 1], got {sigma!r}")
