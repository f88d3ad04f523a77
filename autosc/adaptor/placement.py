"""Where shape adaptors go: after non-resizing cells, found by a shape-only probe (docs/algorithm.md, Placement and identity initialisation)."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import AutoscError, one_line
from ..models.cells import model_cells
from .module import MIN_SIZE, AdaptedCell, ShapeAdaptor


@dataclass(frozen=True)
class Candidate:
    """A cell whose output has the spatial size of its input, so an adaptor may follow it."""

    name: str
    size: tuple[int, int]  # spatial size of its output in the human network


def meta_copy(model: nn.Module) -> nn.Module:
    """A weightless copy for shape-only passes: the same code runs, no arithmetic is done."""
    return copy.deepcopy(model).to("meta")


def _has_conv(module: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in module.modules())


@dataclass(frozen=True)
class CellCall:
    """One cell's run in the shape probe: its name, module (of the probed copy), input and output shapes."""

    name: str
    module: nn.Module
    shape_in: tuple[int, ...]
    shape_out: tuple[int, ...]
    calls: int  # how often the cell ran in one forward
    has_conv: bool

    @property
    def spatial(self) -> bool:
        return len(self.shape_in) == 4 and len(self.shape_out) == 4 and self.calls == 1


def probe_cells(model: nn.Module, input_size: tuple[int, int], in_channels: int = 3) -> list[CellCall]:
    """Every cell's run, in execution order, from one eval forward of a weightless copy on the meta device."""
    probe = meta_copy(model)
    cells = model_cells(probe)
    calls: list[tuple[str, tuple, tuple]] = []
    seen: dict[str, int] = {}

    def hook(name: str):
        def fn(module, args, output):
            seen[name] = seen.get(name, 0) + 1
            if args and isinstance(args[0], torch.Tensor) and isinstance(output, torch.Tensor):
                calls.append((name, tuple(args[0].shape), tuple(output.shape)))

        return fn

    handles = [module.register_forward_hook(hook(name)) for name, module in cells]
    try:
        with torch.no_grad():
            probe.eval()(torch.zeros(1, in_channels, *input_size, device="meta"))
    except RuntimeError as exc:
        raise AutoscError(
            f"the network cannot run on a {in_channels}x{input_size[0]}x{input_size[1]} input: {one_line(exc)}"
        ) from exc
    finally:
        for h in handles:
            h.remove()
    by_name = dict(cells)
    return [
        CellCall(name, by_name[name], shape_in, shape_out, seen[name], _has_conv(by_name[name]))
        for name, shape_in, shape_out in calls
    ]


def find_candidates(
    model: nn.Module, input_size: tuple[int, int], in_channels: int = 3, *, calls: list[CellCall] | None = None
) -> list[Candidate]:
    """Non-resizing cells, in execution order, probed on the meta device.

    A candidate contains a convolution, maps a 4-D tensor to a 4-D tensor of the
    same height and width, is larger than the 2-pixel floor, runs once, and is
    followed by at least one more convolution cell (an adaptor is never placed
    after the last cell before global pooling). ``calls``: this network's :func:`probe_cells`, if already run.
    """
    calls = probe_cells(model, input_size, in_channels) if calls is None else calls
    conv_calls = [i for i, c in enumerate(calls) if c.has_conv]
    last_conv = conv_calls[-1] if conv_calls else -1
    found = []
    for i, c in enumerate(calls):
        if i >= last_conv or not c.spatial:
            continue
        if c.shape_in[-2:] == c.shape_out[-2:] and max(c.shape_out[-2:]) > MIN_SIZE and c.has_conv:
            found.append(Candidate(c.name, (int(c.shape_out[-2]), int(c.shape_out[-1]))))
    return found


def default_adaptor_count(input_size: tuple[int, int]) -> int:
    """3 adaptors for inputs under 64 px, else 4 (the reference defaults)."""
    return 3 if min(input_size) < 64 else 4


def choose(
    candidates: list[Candidate], adaptors: int | list[str] | None, input_size: tuple[int, int]
) -> list[Candidate]:
    """Pick adaptor places: N spread evenly over the candidates, or the named cells."""
    if not candidates:
        raise AutoscError("this network has no non-resizing convolution cell to place a shape adaptor after")
    if isinstance(adaptors, list | tuple):
        by_name = {c.name: c for c in candidates}
        unknown = [n for n in adaptors if n not in by_name]
        if unknown:
            raise AutoscError(f"{', '.join(unknown)} cannot take an adaptor; candidates are: {', '.join(by_name)}")
        if len(set(adaptors)) != len(adaptors):
            raise AutoscError("each cell can take one adaptor; a name is repeated in --adaptor-at")
        return [c for c in candidates if c.name in set(adaptors)]
    n = min(default_adaptor_count(input_size), len(candidates)) if adaptors is None else adaptors
    if not 1 <= n <= len(candidates):
        raise AutoscError(
            f"--adaptors must be between 1 and {len(candidates)} (the non-resizing cells of this network), got {n}"
        )
    return [candidates[math.floor((i + 0.5) * len(candidates) / n)] for i in range(n)]


def insert_adaptors(model: nn.Module, chosen: list[Candidate], *, pool: str = "max", mix: str = "blend") -> list[str]:
    """Wrap each chosen cell as ``AdaptedCell(cell, ShapeAdaptor)`` in place; return the adaptors' names.

    ``pool`` names the adaptors' half-resolution branch (``autosc.adaptor.module.LOW_BRANCHES``), ``mix`` how
    the branches combine (``autosc.adaptor.module.MIXES``).
    """
    names = []
    for cand in chosen:
        model.set_submodule(
            cand.name, AdaptedCell(model.get_submodule(cand.name), ShapeAdaptor(cand.size, pool=pool, mix=mix))
        )
        names.append(f"{cand.name}.adaptor")
    return names
