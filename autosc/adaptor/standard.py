"""Standard mode: the human resizing layers become shape adaptors (docs/algorithm.md, Modes: standard and both).

A resizing cell (one that halves its input: a strided conv block or a pool) is rebuilt to run at stride 1,
and an adaptor after it learns a factor in (0.5, 1) where the human design fixed 0.5. The adaptor is the
same module as AutoSC's (low branch: a 2x2 max-pool of the cell's output); only its place and start differ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import AutoscError, one_line
from ..models.registry import stride_one_rules
from .module import LOWER_BOUND, MIN_SIZE, factor_to_alpha
from .placement import CellCall, meta_copy


@dataclass(frozen=True)
class Resizing:
    """A cell of the human network that halves its input: a standard adaptor replaces the halving."""

    name: str
    shape_in: tuple[int, ...]  # its input in the human network (N, C, H, W)
    size: tuple[int, int]  # its output size in the human network


def _halves(n_in: int, n_out: int) -> bool:
    return n_out < n_in and n_out in (n_in // 2, -(-n_in // 2))


def find_resizing(calls: list[CellCall]) -> list[Resizing]:
    """The cells that halve both sides of their input, in execution order.

    A halving to under the 2-pixel floor stays human (no adaptor resizes below 2x2, autosc/adaptor/module.py).
    """
    return [
        Resizing(c.name, c.shape_in, (int(c.shape_out[-2]), int(c.shape_out[-1])))
        for c in calls
        if c.spatial
        and all(_halves(a, b) for a, b in zip(c.shape_in[-2:], c.shape_out[-2:], strict=True))
        and min(c.shape_out[-2:]) >= MIN_SIZE
    ]


def _conv_stride_one(conv: nn.Module) -> nn.Module:
    conv.stride = (1,) * len(conv.stride)
    return conv


def _drop_pool(pool: nn.Module) -> nn.Module:
    return nn.Identity()


#: How each downsampling layer runs at stride 1: a conv keeps its weights and padding, a strided pool goes
#: (the adaptor's low branch is the pool now). Looked up along the layer's class hierarchy (timm's
#: ``Conv2dSame`` is a ``Conv2d``), together with the rules a model family registers for its own layers
#: (:class:`autosc.models.registry.Family` ``stride_one``), which win for the same class.
STRIDE_ONE: dict[type[nn.Module], Callable[[nn.Module], nn.Module]] = {
    nn.Conv2d: _conv_stride_one,
    nn.MaxPool2d: _drop_pool,
    nn.AvgPool2d: _drop_pool,
}


def _rule(module: nn.Module) -> Callable[[nn.Module], nn.Module] | None:
    stride = getattr(module, "stride", 1)
    if all(v == 1 for v in (stride if isinstance(stride, tuple | list) else (stride,))):
        return None
    rules = {**STRIDE_ONE, **stride_one_rules()}
    return next((rules[t] for t in type(module).__mro__ if t in rules), None)


def stride_one(cell: nn.Module) -> nn.Module:
    """``cell`` with every strided layer run at stride 1 (in place; weights kept), or its replacement."""
    rule = _rule(cell)
    if rule is not None:
        return rule(cell)
    for name, module in list(cell.named_modules()):
        rule = _rule(module) if name else None
        if rule is not None:
            cell.set_submodule(name, rule(module))
    return cell


def rebuild_at_stride_one(name: str, cell: nn.Module, shape_in: tuple[int, ...]) -> nn.Module:
    """:func:`stride_one`, checked on the meta device: the rebuilt cell must keep its input's size."""
    rebuilt = stride_one(cell)
    try:
        with torch.no_grad():
            out = meta_copy(rebuilt).eval()(torch.zeros(shape_in, device="meta"))
        detail = f"at stride 1 it maps {shape_in[-2]}x{shape_in[-1]} to {out.shape[-2]}x{out.shape[-1]}"
        kept = tuple(out.shape[-2:]) == tuple(shape_in[-2:])
    except RuntimeError as exc:
        detail, kept = f"at stride 1 it fails: {one_line(exc)}", False
    if not kept:
        raise AutoscError(
            f"cell {name} halves its input, but autosc cannot rebuild it at stride 1 ({detail}); "
            "standard mode needs each resize to be a strided conv (padded to keep the size at stride 1) or a pool; "
            "use --mode autosc"
        )
    return rebuilt


#: Rounding margin of the start sizes (as in :func:`autosc.adaptor.identity_alpha`): a product exactly at
#: a half pixel would round either way.
_MARGIN = 0.49


def start_alphas(kinds: list[str], targets: list[tuple[int, int]], unadapted: list[tuple[int, int]]) -> list[float]:
    """Per-adaptor start alphas under which every adaptor's size is the human network's (the identity start).

    Adaptor k's size is round(U_k p_k), p_k = prod_{j<=k} s_j, for its unadapted size U_k
    (autosc/cost/projection.py), so p_k must stay in the rounding interval of its human size. Taken in order:
    a standard adaptor takes the largest factor in it (human factor 0.5; the most gradient sigma(1 - sigma)
    left), which puts p_k at the top of its interval; a run of n AutoSC adaptors (human factor 1) then
    shares the way down to the bottom of the last one's interval in n equal factors, as small as identity
    allows (for a single map, the rule of :func:`autosc.adaptor.identity_alpha`).
    """
    spans = [
        (max((t - _MARGIN) / u for t, u in zip(target, full, strict=True)),
         min((t + _MARGIN) / u for t, u in zip(target, full, strict=True)))
        for target, full in zip(targets, unadapted, strict=True)
    ]  # fmt: skip
    alphas, product = [], 1.0
    for k, kind in enumerate(kinds):
        lo = max(LOWER_BOUND + 1e-6, spans[k][0] / product)
        hi = min(1 - 1e-6, spans[k][1] / product)
        if lo > hi:
            target, full = targets[k], unadapted[k]
            raise AutoscError(
                f"adaptor {k + 1} cannot start at the human size {target[0]}x{target[1]} "
                f"(its map is {full[0]}x{full[1]} at stride 1); use --mode autosc"
            )
        if kind == "standard":
            s = hi
        else:
            run = next((j for j in range(k, len(kinds)) if kinds[j] == "standard"), len(kinds)) - k
            s = min(hi, max(lo, (spans[k + run - 1][0] / product) ** (1 / run)))
        product *= s
        alphas.append(factor_to_alpha(s))
    return alphas
