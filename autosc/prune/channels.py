"""What channel pruning changed, as plain data, and the same change made again on a freshly built network
(docs/algorithm.md, Channel pruning).

Written here because Torch-Pruning's own ``tp.state_dict`` pickles every module's ``__dict__``, and autosc never
unpickles code from a file (docs/architecture.md, Invariants): a model spec carries this record instead, and
:meth:`autosc.models.ModelSpec.build` applies it before the weights are loaded.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import AutoscError

#: The module types whose channel counts pruning may change, with the attributes that state them.
COUNTS: dict[type[nn.Module], tuple[str, ...]] = {
    nn.Conv2d: ("in_channels", "out_channels", "groups"),
    nn.BatchNorm2d: ("num_features",),
    nn.Linear: ("in_features", "out_features"),
    nn.GroupNorm: ("num_channels",),
}


def _kind(module: nn.Module) -> type[nn.Module] | None:
    return next((kind for kind in COUNTS if isinstance(module, kind)), None)


def _tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    return {**dict(module.named_parameters(recurse=False)), **dict(module.named_buffers(recurse=False))}


def channel_record(pruned: nn.Module, original: nn.Module) -> dict[str, dict]:
    """Per module of ``pruned`` whose tensors differ in shape from ``original``'s (the network before pruning): its
    type and channel counts. A changed module of a type autosc cannot rebuild is refused in one line."""
    before = dict(original.named_modules())
    record = {}
    for name, module in pruned.named_modules():
        old = before.get(name)
        if old is None or type(old) is not type(module):
            raise AutoscError(f"the pruned network's {name or 'root'} is not the original's: record what pruning changed only")
        mine, theirs = _tensors(module), _tensors(old)
        if all(tuple(t.shape) == tuple(theirs[k].shape) for k, t in mine.items() if k in theirs):
            continue
        kind = _kind(module)
        if kind is None:
            raise AutoscError(f"autosc cannot record the pruned channels of {name} ({type(module).__name__})")
        record[name] = {"type": type(module).__name__, **{a: int(getattr(module, a)) for a in COUNTS[kind]}}
    return record


def _shapes(module: nn.Module, kind: type[nn.Module]) -> dict[str, tuple[int, ...]]:
    """The shape each of ``module``'s tensors has at its (new) channel counts."""
    if kind is nn.Conv2d:
        weight = (module.out_channels, module.in_channels // module.groups, *module.kernel_size)
        return {"weight": weight, "bias": (module.out_channels,)}
    if kind is nn.Linear:
        return {"weight": (module.out_features, module.in_features), "bias": (module.out_features,)}
    n = module.num_features if kind is nn.BatchNorm2d else module.num_channels
    return {"weight": (n,), "bias": (n,), "running_mean": (n,), "running_var": (n,)}


def _resized(tensor: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """The leading corner of ``tensor`` at ``shape`` (its values are replaced when the weights load), else zeros."""
    if len(shape) == tensor.dim() and all(s <= t for s, t in zip(shape, tensor.shape, strict=True)):
        return tensor.detach()[tuple(slice(0, s) for s in shape)].clone()
    return torch.zeros(shape, dtype=tensor.dtype, device=tensor.device)


def apply_channels(net: nn.Module, record: dict) -> nn.Module:
    """Give ``net`` (built as the original was) the channel counts of ``record`` (:func:`channel_record`), in place.

    The record comes from a file, so every entry is checked: a module it names must exist, be of the type it
    names, and the counts must be positive integers; anything else is one line.
    """
    if not isinstance(record, dict):
        raise AutoscError("a channel record must map module names to their channel counts")
    for name, entry in record.items():
        try:
            module = net.get_submodule(name)
        except AttributeError:
            raise AutoscError(f"the channel record names {name}, which this network does not have") from None
        kind = _kind(module)
        if kind is None or not isinstance(entry, dict) or entry.get("type") != type(module).__name__:
            raise AutoscError(f"the channel record's entry for {name} does not fit its {type(module).__name__}")
        for attr in COUNTS[kind]:
            value = entry.get(attr)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise AutoscError(f"the channel record's {attr} of {name} must be a positive integer, got {value!r}")
            setattr(module, attr, value)
        for key, shape in _shapes(module, kind).items():
            tensor = getattr(module, key, None)
            if tensor is None:
                continue
            resized = _resized(tensor, shape)
            if isinstance(tensor, nn.Parameter):
                setattr(module, key, nn.Parameter(resized, requires_grad=tensor.requires_grad))
            else:
                module.register_buffer(key, resized)
    return net
