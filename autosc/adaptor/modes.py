"""Where the adaptors of each mode go, and their identity start (docs/algorithm.md, Modes: standard and both).

``autosc`` (the default) follows non-resizing cells; ``standard`` replaces every human resize; ``both`` does
the two. All modes give one list of adaptors in execution order, so the budget, projection, cost model,
freeze, export and report treat them alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..errors import AutoscError
from .module import AdaptedCell, ShapeAdaptor, identity_alpha
from .placement import Candidate, CellCall, choose, find_candidates, insert_adaptors, probe_cells
from .standard import Resizing, find_resizing, rebuild_at_stride_one, start_alphas


@dataclass(frozen=True)
class Placement:
    """The adapted cells of one network, in execution order."""

    cells: list[str]
    kinds: list[str]  # per cell: "autosc" or "standard" (autosc/adaptor/module.py, KINDS)
    candidates: list[str]  # the non-resizing cells an AutoSC adaptor may follow

    @property
    def names(self) -> list[str]:
        return [f"{c}.adaptor" for c in self.cells]


@dataclass(frozen=True)
class Mode:
    """What a mode adapts: the non-resizing cells (AutoSC adaptors), the human resizes (standard ones), or both."""

    autosc: bool
    standard: bool


MODES: dict[str, Mode] = {
    "autosc": Mode(autosc=True, standard=False),
    "standard": Mode(autosc=False, standard=True),
    "both": Mode(autosc=True, standard=True),
}


def place_adaptors(
    net: nn.Module,
    input_size: tuple[int, int],
    in_channels: int,
    adaptors: int | list[str] | None,
    *,
    mode: str = "autosc",
    pool: str = "max",
    mix: str = "blend",
    input_adaptor: bool = False,
) -> Placement:
    """Insert the mode's adaptors into ``net`` in place, each at the identity start (the human shape); with
    ``input_adaptor``, one more before the first cell, which resizes the input (autosc mode only)."""
    if mode not in MODES:
        raise AutoscError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    calls = probe_cells(net, input_size, in_channels)
    candidates = find_candidates(net, input_size, in_channels, calls=calls)
    if input_adaptor:
        if MODES[mode].standard:
            raise AutoscError(f"--input-adaptor is for --mode autosc; --mode {mode} resizes inside the network only")
        return _with_input_adaptor(net, input_size, calls, choose(candidates, adaptors, input_size), candidates,
                                   pool, mix)  # fmt: skip
    if MODES[mode].autosc:
        chosen = choose(candidates, adaptors, input_size)
    elif adaptors:
        raise AutoscError(
            "--adaptors and --adaptor-at place AutoSC adaptors; --mode standard puts one on each human resize "
            "(use --mode both to add AutoSC adaptors)"
        )
    else:
        chosen = []
    if not MODES[mode].standard:
        alpha = identity_alpha([c.size for c in chosen])
        for name in insert_adaptors(net, chosen, pool=pool, mix=mix):
            net.get_submodule(name).alpha.data.fill_(alpha)
        return Placement([c.name for c in chosen], ["autosc"] * len(chosen), [c.name for c in candidates])
    resizing = find_resizing(calls)
    if not resizing:
        raise AutoscError(
            f"--mode {mode} replaces the human resizing layers, and this network has none autosc can find "
            "(a cell that halves its input: a strided conv block or a pool); use --mode autosc"
        )
    return _replace_resizes(net, input_size, in_channels, calls, candidates, chosen, resizing, pool, mix)


def _with_input_adaptor(
    net: nn.Module, input_size: tuple[int, int], calls: list[CellCall], chosen: list[Candidate],
    candidates: list[Candidate], pool: str, mix: str,
) -> Placement:  # fmt: skip
    """The AutoSC adaptors after ``chosen``, and the input adaptor before the first cell that runs on the image."""
    first = next((c for c in calls if c.spatial and c.has_conv), None)
    if first is None or tuple(first.shape_in[-2:]) != tuple(input_size):
        raise AutoscError("--input-adaptor needs a first convolution cell that takes the image; this network has none")
    if first.name in {c.name for c in chosen}:
        raise AutoscError(f"{first.name} takes the input adaptor; place the AutoSC adaptors after other cells")
    alpha = identity_alpha([tuple(input_size), *(c.size for c in chosen)])
    adaptor = ShapeAdaptor(tuple(input_size), alpha=alpha, pool=pool, mix=mix, kind="input")
    net.set_submodule(first.name, AdaptedCell(net.get_submodule(first.name), adaptor, before=True))
    for name in insert_adaptors(net, chosen, pool=pool, mix=mix):
        net.get_submodule(name).alpha.data.fill_(alpha)
    cells = [first.name, *(c.name for c in chosen)]
    return Placement(cells, ["input"] + ["autosc"] * len(chosen), [c.name for c in candidates])


def _replace_resizes(
    net: nn.Module,
    input_size: tuple[int, int],
    in_channels: int,
    calls: list[CellCall],
    candidates: list[Candidate],
    chosen: list[Candidate],
    resizing: list[Resizing],
    pool: str,
    mix: str,
) -> Placement:
    for r in resizing:
        net.set_submodule(r.name, rebuild_at_stride_one(r.name, net.get_submodule(r.name), r.shape_in))
    unadapted = {
        c.name: (int(c.shape_out[-2]), int(c.shape_out[-1])) for c in probe_cells(net, input_size, in_channels)
    }
    order = {c.name: i for i, c in enumerate(calls)}
    human = {**{c.name: c.size for c in chosen}, **{r.name: r.size for r in resizing}}
    kinds = {**{c.name: "autosc" for c in chosen}, **{r.name: "standard" for r in resizing}}
    cells = sorted(human, key=order.__getitem__)
    alphas = start_alphas([kinds[c] for c in cells], [human[c] for c in cells], [unadapted[c] for c in cells])
    for cell, alpha in zip(cells, alphas, strict=True):
        adaptor = ShapeAdaptor(
            unadapted[cell], alpha=alpha, pool=pool, mix=mix, kind=kinds[cell], start_size=human[cell]
        )
        net.set_submodule(cell, AdaptedCell(net.get_submodule(cell), adaptor))
    return Placement(cells, [kinds[c] for c in cells], [c.name for c in candidates])
