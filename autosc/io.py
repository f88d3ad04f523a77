"""Files autosc writes and reads: atomically written, and never unpickling code when read.

Checkpoints and frozen models are plain dicts of tensors and JSON-like data,
saved with ``torch.save`` and opened with ``torch.load(weights_only=True)``;
the architecture is rebuilt from the model spec and the shape spec.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .errors import AutoscError, one_line

CHECKPOINT_FORMAT = "autosc-checkpoint/1"
FROZEN_FORMAT = "autosc-frozen/1"


#: The temporary files :func:`atomic_write` makes: ``tempfile.mkstemp(prefix=".<name>.", suffix=".tmp")``, whose
#: random part is 8 characters of ``tempfile``'s alphabet. A run folder's clean-up removes only names of this form
#: (autosc/run/folder.py), never a user's file that merely ends in ``.tmp``.
TEMPORARY = re.compile(r"\.(?P<name>[^/]+)\.[a-z0-9_]{8}\.tmp")


def temporary_target(name: str) -> str | None:
    """The file name an :func:`atomic_write` temporary called ``name`` was for; None if ``name`` is not one."""
    match = TEMPORARY.fullmatch(name)
    return match["name"] if match is not None else None


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then move it into place.

    A crash or Ctrl-C leaves either the old file or the new one, never half of one. Only a regular file is
    replaced: the rename would put a regular file in the place of a device node, a FIFO or a symbolic link
    (``-o /dev/null`` as root), so any of those is refused, before writing and again just before the rename.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise AutoscError(f"folder {path.parent} does not exist; create it or choose another output path")
    refuse_non_regular(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # O_EXCL: a new file
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        refuse_non_regular(path)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def refuse_non_regular(path: Path) -> None:
    """Refuse (one line) a ``path`` that exists and is not a regular file: autosc replaces only its own kind of
    file, and a symbolic link is not followed (its target may be anywhere)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise not_regular(path, mode)


def not_regular(path: str | os.PathLike, mode: int) -> AutoscError:
    """The one line for a path autosc will not write over: a folder, a symbolic link, a device node, a FIFO."""
    kind = "a folder" if stat.S_ISDIR(mode) else "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
    return AutoscError(f"{path} is {kind}; autosc writes only over regular files: remove it or choose another path")


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
        what = "is a folder" if path.is_dir() else "does not exist"
        raise AutoscError(f"{path} {what} (expected an autosc checkpoint or frozen model file)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise AutoscError(f"cannot read {path} as an autosc checkpoint or frozen model: {load_problem(exc)}") from exc
    if not isinstance(data, dict) or data.get("format") not in expect:
        raise AutoscError(f"{path} is not an autosc file of kind {' or '.join(expect)}")
    return data


#: Terminal colour codes torch puts in its messages; the Python class a weights-only load refused.
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def load_problem(exc: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, as plain words for one error line.

    torch's own message spans many lines, carries terminal colour codes and advises ``weights_only=False``,
    which would run whatever code the file holds: autosc never passes that advice on. A file that pickles
    Python objects is said to hold them (naming the first one refused); any other failure is a file torch
    cannot read, with torch's first sentence.
    """
    text = _ANSI.sub("", str(exc))
    refused = _GLOBAL.search(text)
    if refused is not None:
        return f"it holds Python objects other than tensors (here {refused[1]}), and autosc reads only weights (state dicts)"
    detail = text.split("WeightsUnpickler error:")[-1] if "WeightsUnpickler error:" in text else text
    first = one_line(ValueError(detail)).split(". ")[0].rstrip(".")
    return f"it is not a file torch.save wrote, or it is damaged ({first})"


def non_float(net: torch.nn.Module, state_dict: dict[str, Any]) -> list[str]:
    """The entries of ``state_dict`` holding integer, boolean or complex values where ``net`` holds real
    floating-point ones: loading would cast them without a word (a BatchNorm's int64 ``num_batches_tracked``
    is the network's own type, so it passes)."""
    own = net.state_dict()
    return [
        f"{key} holds {str(value.dtype).removeprefix('torch.')} values"
        for key, value in state_dict.items()
        if key in own and own[key].is_floating_point() and isinstance(value, torch.Tensor)
        and not value.is_floating_point()
    ]  # fmt: skip


def refuse_non_float(net: torch.nn.Module, state_dict: dict[str, Any], source: str) -> None:
    """One line naming the first non-floating entries of ``state_dict`` (see :func:`non_float`)."""
    problems = non_float(net, state_dict)
    if problems:
        more = " ..." if len(problems) > 3 else ""
        raise AutoscError(
            f"{source}: {'; '.join(problems[:3])}{more} where the network has floating-point weights; "
            "autosc reads float32, float16, bfloat16 or float64 weights"
        )


def load_state(net: torch.nn.Module, state_dict: Any, source: str | os.PathLike) -> None:
    """``net.load_state_dict`` for weights read from a file: a foreign or edited state dict is one clear line."""
    if isinstance(state_dict, dict):
        refuse_non_float(net, state_dict, str(source))
    try:
        net.load_state_dict(state_dict)
    except (KeyError, RuntimeError, TypeError, AttributeError) as exc:
        first = one_line(exc)
        raise AutoscError(f"{source}: the weights do not fit the network it describes ({first[:160]})") from exc
