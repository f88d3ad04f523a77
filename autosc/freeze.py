"""Freeze a learned shape into an ordinary fixed-resize network (docs/algorithm.md, Freeze, export, measure).

Each :class:`~autosc.adaptor.ShapeAdaptor` becomes a :class:`FrozenAdaptor`
with a constant integer size and a constant sigma: the same function as the
trained network in eval mode, with no alpha, no budget logic and no cost
model. The learned shape is also a small JSON *shape spec* that rebuilds the
frozen architecture around fresh weights.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

from torch import Tensor, nn

from . import io
from .adaptor import AdaptedCell, low_branch, one_branch, resize, stride_one
from .cost.budget import Budget
from .cost.budgeted import BudgetedNetwork
from .errors import AutoscError
from .formats import SHAPE_FORMAT, migrate_shape
from .models import spec_from_file
from .models.trained import mismatches
from .stored import check_shape

SHAPE_SPEC_FORMAT = SHAPE_FORMAT  # the shape spec's tag and version (docs/algorithm.md, File formats)


class FrozenAdaptor(nn.Module):
    """A shape adaptor with its size and mixing weight fixed.

    When the size equals the input's, the unchanged branch skips its resize
    (bilinear resizing to the same size is the identity), which saves the
    work and the ONNX node without changing the function.
    """

    def __init__(self, size: tuple[int, int], sigma: float, pool: str = "max") -> None:
        super().__init__()
        self.size = (int(size[0]), int(size[1]))
        self.sigma = float(sigma)
        self.pool = pool

    def forward(self, x: Tensor) -> Tensor:
        same = tuple(x.shape[-2:]) == self.size
        low = resize(low_branch(x, self.pool), self.size)
        return (1 - self.sigma) * low + self.sigma * (x if same else resize(x, self.size))

    def extra_repr(self) -> str:
        pool = f", pool={self.pool}" if self.pool != "max" else ""
        return f"size={self.size}, sigma={self.sigma:.6f}{pool}"


class SingleBranchAdaptor(nn.Module):
    """A collapsed adaptor: one branch, resized to the learned size (docs/algorithm.md, Freeze, export, measure).

    The frozen form of an adaptor that training collapsed (``--collapse``, the
    default: the weights were fine-tuned on it, so it is the trained function).
    :func:`collapse` also makes it from a two-branch network after the fact,
    which changes the function and needs fine-tuning before use. It exists
    because every two-branch adaptor costs two resizes and a max-pool.
    """

    def __init__(self, size: tuple[int, int], low: bool, pool: str = "max") -> None:
        super().__init__()
        self.size = (int(size[0]), int(size[1]))
        self.low = bool(low)
        self.pool = pool

    def forward(self, x: Tensor) -> Tensor:
        return one_branch(x, self.size, low=self.low, pool=self.pool)

    def extra_repr(self) -> str:
        return f"size={self.size}, branch={'low' if self.low else 'full'}"


def collapse(frozen: nn.Module) -> nn.Module:
    """A copy of a frozen network with every adaptor reduced to its dominant branch (sigma >= 0.5: the full one)."""
    collapsed = copy.deepcopy(frozen)
    for name, module in list(collapsed.named_modules()):
        if isinstance(module, FrozenAdaptor):
            collapsed.set_submodule(name, SingleBranchAdaptor(module.size, low=module.sigma < 0.5, pool=module.pool))
    return collapsed


def shape_spec(network: BudgetedNetwork, budget: Budget | None = None) -> dict:
    """The learned shape as plain data: model spec, input size and each adaptor's size and sigma, projected under
    ``budget`` (default: the network's own), which is the budget it records."""
    if network.spec is None:
        raise AutoscError("this network was built without a model spec, so its shape cannot be written down")
    budget = budget or network.budget
    projection = network.update_shape(budget)
    adaptors = []
    for name, adaptor, size in zip(network.adaptor_names, network.adaptors(), projection.sizes, strict=True):
        adaptors.append(
            {
                "name": name.removesuffix(".adaptor"),
                "human_size": list(adaptor.start_size),  # the human network's size here
                "size": list(size),
                "sigma": float(adaptor.sigma().detach()),
                "s": adaptor.factor(),
            }
        )
        adaptors[-1].update(adaptor.place_keys())  # kind "standard": its cell runs at stride 1 (build_frozen)
        # the branch it kept (None: the two-branch mix); straight-through's forward is the full branch: freeze that
        adaptors[-1]["branch"] = adaptor.branch or ("full" if adaptor.mix == "straight-through" else None)
    return {
        "format": SHAPE_SPEC_FORMAT,
        "model": network.spec.to_dict(),
        "input_size": list(network.input_size),
        "budget": budget.to_dict(),
        "projection_scale": projection.scale,
        "low_branch": network.pool,
        "adaptors": adaptors,
    }


def _fixed_adaptor(entry: dict, pool: str) -> nn.Module:
    """The fixed module of one shape-spec entry: the two-branch mix, or one branch if training collapsed it."""
    if entry["branch"]:
        return SingleBranchAdaptor(entry["size"], low=entry["branch"] == "low", pool=pool)
    return FrozenAdaptor(entry["size"], entry["sigma"], pool)


def freeze(network: BudgetedNetwork, budget: Budget | None = None) -> tuple[nn.Module, dict]:
    """A plain network computing what ``network`` computes in eval mode (projected under ``budget``, default its
    own), and its shape spec."""
    spec = shape_spec(network, budget)
    frozen = copy.deepcopy(network.net)
    for entry in spec["adaptors"]:
        frozen.set_submodule(f"{entry['name']}.adaptor", _fixed_adaptor(entry, spec["low_branch"]))
    return frozen.eval(), spec


def build_frozen(spec: dict, *, model: str | nn.Module | None = None) -> nn.Module:
    """Rebuild the frozen architecture from a shape spec, with fresh weights.

    An entry of kind ``standard`` replaced a human resize: its cell is rebuilt at stride 1 first.
    A spec naming a builder (not a zoo network) needs ``model``, the builder the user names themselves
    (:func:`autosc.models.spec_from_file`). A spec of an older version is read through
    :func:`autosc.formats.migrate_shape`.
    """
    spec = migrate_shape(spec)
    net = spec_from_file(spec["model"], source="the shape spec", model=model).build()
    for entry in spec["adaptors"]:
        cell = _cell(net, entry["name"], spec["model"]["name"])
        if entry["kind"] == "standard":
            cell = stride_one(cell)
        before = entry["kind"] == "input"  # the input adaptor resizes the image before its cell
        net.set_submodule(entry["name"], AdaptedCell(cell, _fixed_adaptor(entry, spec["low_branch"]), before=before))
    return net


def _cell(net: nn.Module, name: str, model: str) -> nn.Module:
    """The cell a shape spec's adaptor follows; a name the network lacks (an edited file) is one line."""
    try:
        return net.get_submodule(name)
    except AttributeError as exc:
        raise AutoscError(
            f"the shape spec puts an adaptor after cell {name!r}, which {model} does not have; the file was edited, "
            "or give the model it was made with"
        ) from exc


def save_frozen(frozen: nn.Module, spec: dict, path: str | os.PathLike) -> Path:
    """Write the frozen weights and shape spec to one file, plus the spec as JSON beside it."""
    path = Path(path)
    io.save({"format": io.FROZEN_FORMAT, "shape_spec": spec, "state_dict": frozen.state_dict()}, path)
    io.write_json(path.with_suffix(".shape.json"), spec)
    return path


def frozen_from_data(
    data: dict, *, model: str | nn.Module | None = None, source: str | os.PathLike = "the frozen file"
) -> tuple[nn.Module, dict]:
    """The frozen network (eval mode) and shape spec (at the current version) held by a loaded frozen file."""
    if not isinstance(data.get("shape_spec"), dict):
        raise AutoscError(f"{source} holds no shape spec; export the frozen.pt a compress run wrote")
    spec = migrate_shape(data["shape_spec"], where=f"the shape spec in {source}")
    check_shape(spec, f"the shape spec in {source}")
    if isinstance(model, nn.Module):  # the caller's instance: its cells first, then its weights' shapes
        missing = [f"it has no cell {e['name']}" for e in spec["adaptors"] if not _has_module(model, e["name"])]
        _refuse_instance(model, missing, spec, source)
    net = build_frozen(spec, model=model)
    state = data.get("state_dict")
    if isinstance(model, nn.Module) and isinstance(state, dict) and all(isinstance(v, Tensor) for v in state.values()):
        _refuse_instance(model, mismatches(net, state), spec, source)
    io.load_state(net, state, source)
    return net.eval(), spec


def _refuse_instance(model: nn.Module, problems: list[str], spec: dict, source: str | os.PathLike) -> None:
    """One line when the instance given is not the stored network: a wrong instance would otherwise fail inside
    the rebuild (a cell it lacks) or load as some other network."""
    if problems:
        more = " ..." if len(problems) > 3 else ""
        raise AutoscError(
            f"model={type(model).__name__}(...) is not the network stored in {source} ({spec['model']['name']}): "
            f"{'; '.join(problems[:3])}{more}; pass a fresh instance of the class that run compressed"
        )


def _has_module(net: nn.Module, name: str) -> bool:
    try:
        net.get_submodule(name)
    except AttributeError:
        return False
    return True


def load_frozen(path: str | os.PathLike, *, model: str | nn.Module | None = None) -> tuple[nn.Module, dict]:
    """Rebuild a frozen network from its file; the file holds data only (``weights_only=True``)."""
    return frozen_from_data(io.load(path, expect=(io.FROZEN_FORMAT,)), model=model, source=path)
