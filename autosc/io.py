"""Files autosc writes and reads: atomically written, and never unpickling code when read.

Checkpoints and frozen models are plain dicts of tensors and JSON-like data,
saved with ``torch.save`` and opened with ``torch.load(weights_only=True)``;
the architecture is rebuilt from the model spec and the shape spec.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .errors import AutoscError, one_line

CHECKPOINT_FORMAT = "autosc-checkpoint/1"
FROZEN_FORMAT = "autosc-frozen/1"


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then move it into place.

    A crash or Ctrl-C leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise AutoscError(f"folder {path.parent} does not exist; create it or choose another output path")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike, data: Any) -> Path:
    def write(tmp: str) -> None:
        Path(tmp).write_text(json.dumps(data, indent=2) + "\n")

    return atomic_write(path, write)


def save(obj: dict, path: str | os.PathLike) -> Path:
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def load(path: str | os.PathLike, expect: tuple[str, ...] = (CHECKPOINT_FORMAT, FROZEN_FORMAT)) -> dict:
    """Open an autosc file safely (``weights_only=True``); a missing or foreign file is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise AutoscError(f"{path} does not exist (expected an autosc checkpoint or frozen model)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = one_line(exc)
        raise AutoscError(f"cannot read {path}: not an autosc checkpoint or frozen model ({first[:200]})") from exc
    if not isinstance(data, dict) or data.get("format") not in expect:
        raise AutoscError(f"{path} is not an autosc file of kind {' or '.join(expect)}")
    return data


def load_state(net: torch.nn.Module, state_dict: Any, source: str | os.PathLike) -> None:
    """``net.load_state_dict`` for weights read from a file: a foreign or edited state dict is one clear line."""
    try:
        net.load_state_dict(state_dict)
    except (KeyError, RuntimeError, TypeError, AttributeError) as exc:
        first = one_line(exc)
        raise AutoscError(f"{source}: the weights do not fit the network it describes ({first[:160]})") from exc
