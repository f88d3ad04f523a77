"""A user's own builder, named ``path/to/file.py:build`` or ``package.module:build``.

Not a registry entry: the name says where the code is, and it is imported only when the user names it
(``spec_from_file`` never imports a builder a file names). Its facts are :data:`autosc.models.registry.USER`.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from pathlib import Path

from torch import nn

from ..errors import AutoscError
from .registry import Builder


def load_builder(ref: str) -> Builder:
    """The callable ``ref`` names; a one-line error for a missing file, a failed import or a missing name."""
    target, _, attr = ref.rpartition(":")
    if not target or not attr:
        raise AutoscError(f"model reference {ref!r} must look like path/to/file.py:build or package.module:build")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise AutoscError(f"model file {target} does not exist; give the path to a .py file defining {attr}()")
        spec = importlib.util.spec_from_file_location(f"autosc_user_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise AutoscError(f"cannot import {target} as a Python file")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except (Exception, SystemExit) as exc:  # the user's file failed (or exited) on import: say where
            raise AutoscError(f"importing {target} failed: {type(exc).__name__}: {exc}") from exc
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise AutoscError(f"cannot import module {target!r} ({exc}); is it installed or on PYTHONPATH?") from exc
    builder = getattr(module, attr, None)
    if not callable(builder):
        raise AutoscError(f"{target} has no callable named {attr!r}")
    return builder


def _accepts(builder: Builder, name: str) -> bool:
    try:
        params = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def build_user(name: str, *, width: float, num_classes: int | None, in_channels: int) -> nn.Module:
    """Call the builder ``name`` with the arguments it takes; one it lacks may only be at its default."""
    builder = load_builder(name)
    kwargs: dict = {}
    for key, value, default in (
        ("width", width, 1.0),
        ("num_classes", num_classes, None),
        ("in_channels", in_channels, 3),
    ):
        if _accepts(builder, key):
            if value is not None:
                kwargs[key] = value
        elif value != default:
            raise AutoscError(f"{name} does not take a {key} argument, so {key}={value} cannot be applied")
    try:
        model = builder(**kwargs)
    except SystemExit as exc:  # a builder that exits would end the run silently, with its exit code
        raise AutoscError(f"{name}({kwargs}) called sys.exit({exc.code}) instead of returning a network") from exc
    except Exception as exc:
        raise AutoscError(f"{name}({kwargs}) failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, nn.Module):
        raise AutoscError(f"{name} returned {type(model).__name__}, not a torch.nn.Module")
    return model
