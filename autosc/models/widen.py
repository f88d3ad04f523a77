"""Function-preserving widening of a trained network (Net2WiderNet; docs/algorithm.md, Compressing a trained network).

``widen(narrow, wide)`` fills a wider copy of the same architecture with the
narrow network's weights so that both compute the same function: every new
channel copies an existing channel of its layer (filters, bias, BatchNorm
parameters and statistics, depthwise filter), and every consumer's input
weights for a copied channel are split between its copies. Channels are
tracked as *channel spaces* on the traced graph (torch.fx): a convolution or
linear layer opens a new space, BatchNorm, activations, pooling and depthwise
convolutions keep theirs, and a residual add or a squeeze-excite product joins
its operands' spaces into one, so every layer writing into a joined space uses
the same mapping. torch.fx is used because the joins are only visible in the
forward code, not in the module tree; Torch-Pruning builds a similar graph to
*remove* channels and has no operation to add them.

Symmetry: copies with identical consumer weights would receive identical
gradients and stay copies forever. The split is therefore uneven (``noise``):
the copies of a channel get consumer shares ``r_i / sum(r)`` with
``r_i = exp(noise * N(0, 1))``, which still sum to one, so the function is
preserved exactly while the copies' gradients differ.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

import torch
import torch.fx
from torch import Tensor, nn

from ..errors import AutoscError, one_line

#: Operations that combine two tensors elementwise: their channel operands must share one mapping.
_JOINS = {operator.add, operator.iadd, operator.mul, operator.imul, torch.add, torch.mul, "add", "add_", "mul", "mul_"}
#: Operations that are known to change or mix the channel layout, which the copy rule cannot follow.
_UNSUPPORTED = {torch.cat, torch.stack, torch.chunk, torch.split, "chunk", "split", "permute", "transpose"}


class _Tracer(torch.fx.Tracer):
    """Keeps every convolution, BatchNorm and linear layer (subclasses too, e.g. timm's BatchNormAct2d) a leaf."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, (nn.Conv2d, nn.modules.batchnorm._BatchNorm, nn.Linear)):
            return True
        return super().is_leaf_module(m, qualname)


@dataclass
class _Space:
    """One channel dimension of the network: its narrow and wide sizes, and how wide channels map to narrow ones."""

    name: str
    narrow: int
    wide: int
    parent: _Space | None = None
    mapping: Tensor | None = None  # wide index -> narrow index
    share: Tensor | None = None  # each wide channel's share of its narrow channel (copies sum to 1)

    def root(self) -> _Space:
        return self if self.parent is None else self.parent.root()


@dataclass
class _Layers:
    """The layers to fill, each with its input and output channel spaces (from the traced graph)."""

    convs: list[tuple[str, _Space, _Space]] = field(default_factory=list)
    depthwise: list[tuple[str, _Space]] = field(default_factory=list)
    norms: list[tuple[str, _Space]] = field(default_factory=list)
    linears: list[tuple[str, _Space, _Space]] = field(default_factory=list)


def _join(a: _Space, b: _Space, where: str) -> _Space:
    ra, rb = a.root(), b.root()
    if ra is rb:
        return ra
    if (ra.narrow, ra.wide) != (rb.narrow, rb.wide):
        raise AutoscError(
            f"cannot widen: {where} joins {ra.narrow}/{ra.wide} channels with {rb.narrow}/{rb.wide} (narrow/wide)"
        )
    rb.parent = ra
    return ra


def _trace(wide: nn.Module) -> torch.fx.Graph:
    try:
        return _Tracer().trace(wide)
    except Exception as exc:  # fx refuses data-dependent control flow, among others: say it in one line
        first = one_line(exc)
        raise AutoscError(
            f"cannot widen {type(wide).__name__}: its forward cannot be traced by torch.fx ({first})"
        ) from exc


def _spaces(graph: torch.fx.Graph, narrow: nn.Module, wide: nn.Module, in_channels: int) -> _Layers:
    """Walk the graph once, assigning every tensor-valued node its channel space."""
    layers = _Layers()
    space: dict[torch.fx.Node, _Space] = {}
    for node in graph.nodes:
        tensor_args = [a for a in (*node.args, *node.kwargs.values()) if isinstance(a, torch.fx.Node) and a in space]
        if node.op == "placeholder":
            space[node] = _Space("input", in_channels, in_channels)
        elif node.op == "call_module":
            out = _module_space(node, tensor_args, space, narrow, wide, layers)
            if out is not None:
                space[node] = out
        elif node.op in ("call_function", "call_method"):
            if node.target in _UNSUPPORTED:
                raise AutoscError(f"cannot widen: the network uses {node.target} at {node.name}, which mixes channels")
            if not tensor_args:
                continue
            if node.target in _JOINS and len(tensor_args) > 1:
                out = tensor_args[0]
                joined = space[out]
                for other in tensor_args[1:]:
                    joined = _join(joined, space[other], f"the {node.name} operation")
                space[node] = joined
            elif len(tensor_args) == 1:
                space[node] = space[tensor_args[0]]
            else:
                raise AutoscError(
                    f"cannot widen: {node.name} ({node.target}) combines tensors in a way autosc cannot follow"
                )
    return layers


def _module_space(
    node: torch.fx.Node,
    args: list[torch.fx.Node],
    space: dict[torch.fx.Node, _Space],
    narrow: nn.Module,
    wide: nn.Module,
    layers: _Layers,
) -> _Space | None:
    name = str(node.target)
    w, n = wide.get_submodule(name), narrow.get_submodule(name)
    if not args:
        return None
    s_in = space[args[0]]
    if isinstance(w, nn.Conv2d):
        if w.groups == 1:
            out = _Space(name, n.out_channels, w.out_channels)
            layers.convs.append((name, s_in, out))
            return out
        if w.groups == w.in_channels == w.out_channels and n.groups == n.in_channels == n.out_channels:
            layers.depthwise.append((name, s_in))
            return s_in
        raise AutoscError(f"cannot widen: {name} is a grouped convolution ({w.groups} groups), which has no copy rule")
    if isinstance(w, nn.modules.batchnorm._BatchNorm):
        layers.norms.append((name, s_in))
        return s_in
    if isinstance(w, nn.Linear):
        out = _Space(name, n.out_features, w.out_features)
        layers.linears.append((name, s_in, out))
        return out
    if any(True for _ in w.parameters()):
        raise AutoscError(f"cannot widen: {name} ({type(w).__name__}) holds weights autosc has no copy rule for")
    return s_in  # parameter-free modules (activations, pooling, dropout, flatten) keep the channel layout


def _assign(spaces: list[_Space], noise: float, generator: torch.Generator) -> None:
    """Draw each root space's mapping (the first ``narrow`` channels stay, the rest copy random ones) and shares."""
    for s in {id(x.root()): x.root() for x in spaces}.values():
        if s.mapping is not None:
            continue
        if s.wide < s.narrow:
            raise AutoscError(f"cannot widen: {s.name} would go from {s.narrow} to {s.wide} channels (fewer)")
        extra = torch.randint(0, s.narrow, (s.wide - s.narrow,), generator=generator)
        s.mapping = torch.cat([torch.arange(s.narrow), extra])
        weight = torch.exp(noise * torch.randn(s.wide, generator=generator, dtype=torch.float64))
        total = torch.zeros(s.narrow, dtype=torch.float64).index_add_(0, s.mapping, weight)
        s.share = weight / total[s.mapping]


@torch.no_grad()
def widen(
    narrow: nn.Module,
    wide: nn.Module,
    *,
    in_channels: int = 3,
    noise: float = 0.1,
    seed: int = 0,
) -> nn.Module:
    """Fill ``wide`` (the same architecture with more channels) so that it computes what ``narrow`` computes.

    Both networks must have the same module names; ``wide`` is changed in place and returned.
    Raises :class:`AutoscError` for a layer or operation without a copy rule (grouped convolutions,
    concatenation, layers other than convolution, BatchNorm and linear).
    """
    if set(dict(narrow.named_modules())) != set(dict(wide.named_modules())):
        raise AutoscError("cannot widen: the trained and the wider network do not have the same layers")
    layers = _spaces(_trace(wide), narrow, wide, in_channels)
    every = [s for _, a, b in layers.convs + layers.linears for s in (a, b)]
    every += [s for _, s in layers.depthwise + layers.norms]
    _assign(every, noise, torch.Generator().manual_seed(seed))
    filled: set[str] = set()
    for name, s_in, s_out in layers.convs:
        _fill_weight(narrow.get_submodule(name), wide.get_submodule(name), s_in.root(), s_out.root())
        filled.add(name)
    for name, s in layers.depthwise:
        n, w = narrow.get_submodule(name), wide.get_submodule(name)
        root = s.root()
        w.weight.copy_(n.weight[root.mapping])
        if w.bias is not None:
            w.bias.copy_(n.bias[root.mapping])
        filled.add(name)
    for name, s in layers.norms:
        n, w = narrow.get_submodule(name), wide.get_submodule(name)
        for key, value in n.state_dict().items():
            target = w.state_dict()[key]
            target.copy_(value[s.root().mapping] if value.dim() == 1 else value)
        filled.add(name)
    for name, s_in, s_out in layers.linears:
        _fill_linear(narrow.get_submodule(name), wide.get_submodule(name), s_in.root(), s_out.root())
        filled.add(name)
    _check_all_filled(wide, filled)
    return wide


def _fill_weight(n: nn.Conv2d, w: nn.Conv2d, s_in: _Space, s_out: _Space) -> None:
    share = s_in.share.to(n.weight.dtype)
    w.weight.copy_(n.weight[s_out.mapping][:, s_in.mapping] * share[None, :, None, None])
    if w.bias is not None:
        w.bias.copy_(n.bias[s_out.mapping])


def _fill_linear(n: nn.Linear, w: nn.Linear, s_in: _Space, s_out: _Space) -> None:
    """A linear consumer; after a flatten of a C x H x W map, each channel owns ``repeat`` consecutive inputs."""
    repeat = n.in_features // s_in.narrow
    if repeat * s_in.narrow != n.in_features or repeat * s_in.wide != w.in_features:
        raise AutoscError(f"cannot widen: the inputs of the linear layer do not follow its channels ({n.in_features})")
    offsets = torch.arange(repeat)
    columns = (s_in.mapping[:, None] * repeat + offsets).reshape(-1)
    share = s_in.share.to(n.weight.dtype).repeat_interleave(repeat)
    w.weight.copy_(n.weight[s_out.mapping][:, columns] * share[None, :])
    if w.bias is not None:
        w.bias.copy_(n.bias[s_out.mapping])


def _check_all_filled(wide: nn.Module, filled: set[str]) -> None:
    """Every module holding weights must have been filled: a layer the trace never reached would stay random."""
    missing = [
        name
        for name, m in wide.named_modules()
        if name not in filled and any(True for _ in m.parameters(recurse=False)) and name
    ]
    if missing:
        raise AutoscError(f"cannot widen: {', '.join(missing[:3])} never ran in the traced forward")


__all__ = ["widen"]
