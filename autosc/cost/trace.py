"""Record every operator of one forward pass: output shape, MACs, resize MACs, fresh bytes.

No library reports activation memory or bilinear-resize work per operator, so
this small dispatch mode does; MACs per operator still come from
``torch.utils.flop_counter``'s own formula registry, not from a table here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import flop_registry

aten = torch.ops.aten

#: Resize MACs per output element (fvcore's convention for bilinear interpolation).
RESIZE_MACS_PER_ELEMENT = {aten.upsample_bilinear2d: 4}


@dataclass(frozen=True)
class OpRecord:
    op: str
    shape: tuple[int, ...]  # shape of the first output
    macs: int  # conv / matmul multiply-accumulates (flop_counter FLOPs / 2)
    resize_macs: int
    new_bytes: int  # bytes of outputs that do not alias an input (views and in-place ops add nothing)
    norm_elements: int = 0  # output elements of batch norm (the paper convention counts 4 MACs each)


class OpRecorder(TorchDispatchMode):
    """Dispatch mode collecting one :class:`OpRecord` per aten operator call."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[OpRecord] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - torch's signature
        kwargs = kwargs or {}
        out = _meta_resize(func, args, kwargs)
        if out is None:
            out = func(*args, **kwargs)
        packet = func._overloadpacket
        outs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        if not outs:
            return out
        macs = flop_registry[packet](*args, **kwargs, out_val=out) // 2 if packet in flop_registry else 0
        resize = RESIZE_MACS_PER_ELEMENT.get(packet, 0) * outs[0].numel()
        returns = func._schema.returns
        fresh = 0
        for i, t in enumerate(outs):
            aliases = i < len(returns) and returns[i].alias_info is not None
            if not aliases and t.dim() >= 2:
                fresh += t.numel() * t.element_size()
        norm = outs[0].numel() if "batch_norm" in str(packet) else 0
        self.records.append(OpRecord(str(packet), tuple(outs[0].shape), int(macs), int(resize), fresh, norm))
        return out


def _meta_resize(func, args: tuple, kwargs: dict) -> torch.Tensor | None:  # noqa: ANN001 - an aten overload
    """The output of a bilinear resize to a given size on the meta device, without running its kernel; None for
    any other call.

    On meta, ``upsample_bilinear2d`` runs torch's Python decomposition (about 20 ms a call), which was half of
    planning an ImageNet network whose probe lives on meta (autosc/cost/shape_cost.py); the output's shape is all
    a trace reads, and it is the input's batch and channels at the requested size.
    """
    if func._overloadpacket is not aten.upsample_bilinear2d:
        return None
    x = args[0] if args else kwargs.get("input", kwargs.get("self"))
    size = args[1] if len(args) > 1 else kwargs.get("output_size")
    if not isinstance(x, torch.Tensor) or x.device.type != "meta" or size is None or x.dim() != 4:
        return None
    return torch.empty((x.shape[0], x.shape[1], int(size[0]), int(size[1])), dtype=x.dtype, device="meta")


def record_ops(model: torch.nn.Module, x: torch.Tensor) -> list[OpRecord]:
    """Run ``model(x)`` once without autograd and return its operator records."""
    with torch.no_grad(), OpRecorder() as rec:
        model(x)
    return rec.records
