"""The table of dataset sources: each loader registers itself under its name, ``load_data`` looks names up here.

A table instead of an if-chain (the style of torchvision's ``register_model``): adding a dataset is one decorated
function in its own module, and the accepted names in help and error messages are read off the same table.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import AutoscError
from .bundle import DataBundle


@dataclass(frozen=True)
class LoadRequest:
    """What ``load_data`` hands a source: the text after the colon (or ""), the input size and the options."""

    arg: str
    size: tuple[int, int]
    data_root: str | None
    seed: int
    augment: bool
    download: bool


Loader = Callable[[LoadRequest], DataBundle]


@dataclass(frozen=True)
class Source:
    """One registered dataset: its loader and, for names such as ``imagefolder:PATH``, the argument it takes."""

    name: str
    load: Loader
    arg: str | None = None  # the argument's placeholder in help ("PATH"); None: the name stands alone
    usage: str | None = None  # said when the argument is missing

    @property
    def label(self) -> str:
        """The name as help and error messages write it: ``imagefolder:PATH``, ``cifar10``."""
        return f"{self.name}:{self.arg}" if self.arg else self.name


_SOURCES: dict[str, Source] = {}


def register_source(name: str, *, arg: str | None = None, usage: str | None = None) -> Callable[[Loader], Loader]:
    """Register the decorated loader under ``name`` (lower case, ``-`` not ``_``); a name is taken only once.

    ``arg`` (e.g. ``"PATH"``) makes the source take the text after a colon, ``name:PATH``; ``usage`` is the
    message for the bare name. Registration order is the order of :func:`dataset_names`.
    """
    if name != normalise(name) or ":" in name:
        raise ValueError(f"source names are lower case with '-' and no ':', got {name!r}")
    if name in _SOURCES:
        raise ValueError(f"a data source is already registered as {name!r}")

    def decorate(load: Loader) -> Loader:
        _SOURCES[name] = Source(name, load, arg, usage)
        return load

    return decorate


def dataset_names() -> tuple[str, ...]:
    """The accepted names in registration order, arguments as placeholders (``imagefolder:PATH``)."""
    return tuple(source.label for source in _SOURCES.values())


def normalise(name: str) -> str:
    """Spelling variants meet: ``Fashion_MNIST`` and ``fashion-mnist`` are one name."""
    return name.lower().replace("_", "-")


def find_source(name: str) -> tuple[Source, str]:
    """The source for a stripped ``name`` and the text after its colon ("" for a name without one).

    Raises a one-line error naming the accepted names, with the closest as a suggestion, for anything else.
    """
    key = normalise(name)
    head, colon, _ = key.partition(":")
    source = _SOURCES.get(head)
    if source is None or bool(colon) != bool(source.arg):
        raise AutoscError(unknown_message(name))
    arg = name.split(":", 1)[1] if colon else ""
    if source.arg and not arg:
        raise AutoscError(unknown_message(source.name))
    return source, arg


def unknown_message(name: str) -> str:
    """Why ``name`` is not a dataset: the usage of a source missing its argument, else a suggestion and the list."""
    source = _SOURCES.get(normalise(name))
    if source is not None and source.arg:
        return source.usage or f"{source.name} needs an argument: {source.label}"
    close = difflib.get_close_matches(normalise(name), list(_SOURCES), n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown dataset {name!r}; {hint}accepted: {', '.join(dataset_names())}"


def cache_dir() -> Path:
    """Where ``download=True`` puts files when no ``data_root`` is given: the XDG cache, as pip and torch do."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "autosc" / "data"
