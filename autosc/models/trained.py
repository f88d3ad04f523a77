"""The network a run starts from: the human network from scratch, or the user's trained one (docs/algorithm.md,
Compressing a trained network).

A trained start is a ``state_dict`` file (``--weights``; what
``torch.save(model.state_dict())`` writes, read with ``weights_only=True``) or,
in Python, a module instance. Its width is read off the weights' shapes, so the
user states only the width the compressed network should have; a wider target
is filled by :func:`autosc.models.widen.widen` so that it starts as the trained
function.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import AutoscError
from ..io import load_problem, refuse_non_float
from . import ModelSpec, scales_width
from .widen import widen

#: ``--width`` values tried when reading a trained width off a state dict (a zoo family at width w rounds every
#: channel count with make_divisible, so widths differing by less than this grid are indistinguishable anyway).
WIDTH_GRID = tuple(round(0.05 * i, 2) for i in range(2, 161))


def read_weights(path: str | os.PathLike) -> dict[str, Tensor]:
    """A state dict from ``path``: saved directly, or under ``state_dict`` / ``model`` in a checkpoint dict.

    Read with ``weights_only=True`` (a file never runs code); a ``module.`` prefix (DataParallel) is removed.
    """
    return _read(path)[0]


def _read(path: str | os.PathLike) -> tuple[dict[str, Tensor], str]:
    """The state dict and the SHA-256 of the file's bytes, from one read of it."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise AutoscError(f"--weights {path} {what}; give the file torch.save(model.state_dict()) wrote")
    raw = path.read_bytes()
    try:
        data = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise AutoscError(f"cannot read --weights {path}: {load_problem(exc)}") from exc
    if isinstance(data, dict) and not _is_state(data):
        for key in ("state_dict", "model"):
            if isinstance(data.get(key), dict) and _is_state(data[key]):
                data = data[key]
                break
    if not isinstance(data, dict) or not _is_state(data):
        raise AutoscError(
            f"--weights {path} holds no state dict (a dict of tensors, or one under 'state_dict' or 'model'); "
            "save it with torch.save(model.state_dict(), path)"
        )
    _refuse_sparse(data, path)
    if all(k.startswith("module.") for k in data):
        data = {k.removeprefix("module."): v for k, v in data.items()}
    return dict(data), hashlib.sha256(raw).hexdigest()


def _is_state(data: dict) -> bool:
    return bool(data) and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in data.items())


def _refuse_sparse(state: dict[str, Tensor], path: Path) -> None:
    """A sparse tensor (a pruned network saved as one) is one line saying how to save it dense: it would pass every
    shape check and then fail deep inside ``load_state_dict``."""
    sparse = [k for k, v in state.items() if v.layout != torch.strided]
    if sparse:
        more = " ..." if len(sparse) > 3 else ""
        raise AutoscError(
            f"--weights {path} holds sparse tensors ({', '.join(sparse[:3])}{more}); autosc reads dense weights: "
            "save them with torch.save({k: v.to_dense() for k, v in model.state_dict().items()}, path)"
        )


def mismatches(net: nn.Module, state: dict[str, Tensor]) -> list[str]:
    """What keeps ``state`` from loading into ``net``: missing, unexpected and wrongly shaped keys, in order."""
    own = net.state_dict()
    out = [f"missing {k}" for k in own if k not in state]
    out += [f"unexpected {k}" for k in state if k not in own]
    out += [
        f"{k} is {tuple(state[k].shape)}, the network has {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    return out


def _fits(spec: ModelSpec, state: dict[str, Tensor]) -> bool:
    try:
        with torch.device("meta"):
            net = spec.build()
    except AutoscError:  # a width this family cannot be built at
        return False
    return not mismatches(net, state)


def _file_shape(state: dict[str, Tensor]) -> tuple[int | None, int | None]:
    """(classes, input channels) the weights imply: the last 2-D weight's rows and the first 4-D weight's inputs."""
    matrices = [v for k, v in state.items() if k.endswith("weight") and v.dim() == 2]
    convs = [v for k, v in state.items() if k.endswith("weight") and v.dim() == 4]
    return (int(matrices[-1].shape[0]) if matrices else None, int(convs[0].shape[1]) if convs else None)


def trained_width(spec: ModelSpec, state: dict[str, Tensor], source: str) -> float:
    """The width at which ``spec``'s network has exactly the shapes of ``state``; else one line on what differs.

    ``spec.width`` is tried first, then (for zoo networks) :data:`WIDTH_GRID`. The message names the first
    few mismatches and the width, classes and channels that would fit.
    """
    if _fits(spec, state):
        return spec.width
    with torch.device("meta"):
        net = spec.build()
    # A zoo family's layer names do not change with its width (only channel counts do): a file whose names differ
    # fits no width, which one comparison says instead of building every width of the grid (20 s for a wrong file).
    widths = WIDTH_GRID if scales_width(spec.name) and set(state) == set(net.state_dict()) else (1.0,)
    for width in (w for w in widths if w != spec.width):
        if _fits(spec.at_width(width), state):
            return width
    problems = mismatches(net, state)
    hint = _hint(spec, state, widths)
    classes = spec.num_classes if spec.num_classes is not None else _file_shape(net.state_dict())[0]
    shape = f"{classes} classes, " if classes is not None else ""  # the family's default when none was asked for
    raise AutoscError(
        f"--weights {source} does not fit {spec.name} ({shape}{spec.in_channels} input "
        f"channels) at any width: {'; '.join(problems[:3])}{' ...' if len(problems) > 3 else ''}{hint}"
    )


def _hint(spec: ModelSpec, state: dict[str, Tensor], widths: tuple[float, ...]) -> str:
    """Which classes/channels/width the file was saved with, when a spec with them fits."""
    classes, channels = _file_shape(state)
    if classes is None or channels is None:
        return ""
    other = ModelSpec(spec.name, spec.width, classes, channels, spec.module)
    if (classes, channels) == (spec.num_classes, spec.in_channels):
        return ". Is it a state dict of this model?"
    for width in (spec.width, *widths):
        if _fits(other.at_width(width), state):
            return (
                f". It fits {classes} classes and {channels} input channels at width {width:g}: is it for other data?"
            )
    return f". It looks like {classes} classes and {channels} input channels"


@dataclass(frozen=True)
class Start:
    """The network a run starts from: ``spec`` (its width, classes, channels) and its weights, if trained.

    ``weights`` is None for a fresh network and for a module instance (the instance carries its own).
    """

    spec: ModelSpec
    weights: dict[str, Tensor] | None = None
    source: str | None = None  # where the trained weights came from (a file, or "the module instance")
    sha256: str | None = None  # of the weights file: a resumed run must start from the same one

    @property
    def trained(self) -> bool:
        return self.weights is not None or self.spec.module is not None

    def build(self) -> nn.Module:
        """The start network itself, with its trained weights (the teacher and the "human" of the report)."""
        if self.weights is None:
            return self.spec.build()
        # the initial values are overwritten: drawing them must not move the RNG
        with torch.random.fork_rng(devices=[]):
            net = self.spec.build()
        net.load_state_dict(self.weights)
        return net

    def build_at(self, target: ModelSpec, *, noise: float, seed: int) -> nn.Module:
        """The network at ``target``'s width: a fresh one when untrained; trained ones widened preserving function."""
        if not self.trained:
            return target.build()
        if target.channels != self.spec.channels:  # the pruned weights are the pruning step's, not derivable here
            raise AutoscError(
                f"{target.name} was channel-pruned for this run and the start given is not that pruned network; "
                "resume from the run folder that holds it"
            )
        net = self.build()
        if target.width == self.spec.width:
            return net
        with torch.random.fork_rng(devices=[]):  # building the wide network must not move the run's seeded RNG
            wide = target.build()
        return widen(net, wide, in_channels=self.spec.in_channels, noise=noise, seed=seed)


def load_start(
    model: str | nn.Module,
    *,
    weights: str | os.PathLike | None = None,
    width_hint: float = 1.0,
    num_classes: int | None = None,
    in_channels: int = 3,
    new_head: bool = False,
    seed: int = 0,
) -> Start:
    """The start of a run on ``model``: ``weights`` read and matched (width read off their shapes), or fresh.

    ``new_head``: the weights were trained on other classes; their classifier is replaced by a fresh one
    (seeded by ``seed``) for ``num_classes`` before matching (:func:`new_classifier`).
    """
    from . import instance_spec

    if new_head and isinstance(model, nn.Module):
        raise AutoscError(
            "--new-head works on a zoo network or a builder; give a module instance its new head yourself"
        )
    if isinstance(model, nn.Module):
        spec = instance_spec(model, num_classes=num_classes, in_channels=in_channels)
        if weights is None:
            return Start(spec, None, "the module instance")
        state, sha256 = _read(weights)
        problems = mismatches(model, state)
        if problems:
            more = " ..." if len(problems) > 3 else ""
            raise AutoscError(f"--weights {weights} does not fit the given module: {'; '.join(problems[:3])}{more}")
        refuse_non_float(model, state, f"--weights {weights}")
        return Start(spec, state, str(weights), sha256)
    spec = ModelSpec(model, width_hint, num_classes, in_channels)
    if weights is None:
        return Start(spec.at_width(1.0))
    state, sha256 = _read(weights)
    if new_head:
        state = new_classifier(spec, state, num_classes, seed=seed, source=str(weights))
    width = trained_width(spec, state, str(weights))
    with torch.device("meta"):
        refuse_non_float(spec.at_width(width).build(), state, f"--weights {weights}")
    return Start(spec.at_width(width), state, str(weights), sha256)


def new_classifier(
    spec: ModelSpec, state: dict[str, Tensor], num_classes: int | None, *, seed: int, source: str
) -> dict[str, Tensor]:
    """``state`` with its classifier (the network's last ``nn.Linear``) replaced by a fresh one for ``num_classes``.

    The features keep their trained weights; the new rows are drawn by ``nn.Linear``'s own initialisation from
    ``seed``, so a transfer run is reproducible (docs/algorithm.md, AutoTL).
    """
    with torch.device("meta"):
        net = spec.build()
    linears = [name for name, m in net.named_modules() if isinstance(m, nn.Linear)]
    key = f"{linears[-1]}.weight" if linears else None
    if key is None:
        raise AutoscError(f"--new-head replaces the last nn.Linear of {spec.name}, and it has none")
    if key not in state or state[key].dim() != 2:
        raise AutoscError(
            f"--new-head replaces {spec.name}'s classifier (the last nn.Linear, {key}), and --weights {source} "
            f"holds no 2-D {key}: is it a state dict of {spec.name}?"
        )
    features = int(state[key].shape[1])
    classes = num_classes if num_classes is not None else int(state[key].shape[0])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = nn.Linear(features, classes, bias=f"{linears[-1]}.bias" in state)
    out = dict(state)
    out[key] = head.weight.detach().clone()
    if head.bias is not None:
        out[f"{linears[-1]}.bias"] = head.bias.detach().clone()
    return out


__all__ = ["Start", "load_start", "mismatches", "read_weights", "trained_width"]
