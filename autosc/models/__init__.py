"""Model zoo: the human-designed networks autosc starts from, at any width.

``build_model("mobilenet_v2", width=1.4)`` builds a registered network (:mod:`.registry`: each family
module registers its builders with ``@register_model``); ``build_model("path/to/file.py:build")`` or
``build_model("pkg.mod:build")`` calls a user's own builder with the same keyword arguments (:mod:`.user`);
``build_model("timm:efficientnet_b0")`` builds a timm network (an optional dependency, :mod:`.timm_models`).
"""

from __future__ import annotations

import copy
import difflib
import math
from dataclasses import dataclass, field, replace

from torch import nn

from ..errors import AutoscError
from . import mobilenet, resnet, vgg  # noqa: F401  (importing a family module registers its networks)
from ._utils import make_divisible
from .registry import USER, Family, ModelEntry, list_models, model_entry, register_family, register_model
from .timm_models import FAMILY as TIMM_FAMILY
from .timm_models import PREFIX as TIMM_PREFIX
from .timm_models import build_timm, is_timm_name, timm_widenable
from .user import build_user


def family_of(name: str) -> Family:
    """The facts of the network ``name``: its entry's family, timm's for ``timm:ARCH``, else a user network's."""
    entry = model_entry(name)
    if entry is not None:
        return entry.family
    return TIMM_FAMILY if is_timm_name(name) else USER


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild the same human network: the architecture comes from here, never from a pickle."""

    name: str
    width: float = 1.0
    num_classes: int | None = None
    in_channels: int = 3
    #: A user's own network instance (the Python API): ``build`` copies it instead of calling a builder. Never
    #: written to a file; ``name`` is then ``module:Class`` and the instance must be given again to rebuild.
    module: nn.Module | None = field(default=None, compare=False, repr=False)
    #: What channel pruning changed (:func:`autosc.prune.channel_record`: module name -> its type and channel
    #: counts), applied to the network built at ``width``; None: not pruned.
    channels: dict | None = field(default=None, hash=False)

    def build(self) -> nn.Module:
        if self.module is not None:
            if self.width != 1.0:
                raise AutoscError(f"{self.name} is a module instance; autosc cannot build it at width {self.width:g}")
            net = copy.deepcopy(self.module)
        else:
            net = build_model(self.name, width=self.width, num_classes=self.num_classes, in_channels=self.in_channels)
        if self.channels is not None:
            from ..prune.channels import apply_channels  # prune imports cost; import at call time

            apply_channels(net, self.channels)
        return net

    def at_width(self, width: float) -> ModelSpec:
        """The same network at another width (a pruned one has its own channel counts: only at its width)."""
        if self.channels is not None and width != self.width:
            raise AutoscError(f"{self.name} was channel-pruned at width {self.width:g}; it has no other width")
        return replace(self, width=width)

    def pruned(self, channels: dict) -> ModelSpec:
        """The same network with the channel counts a pruning recorded."""
        return replace(self, channels=channels)

    def to_dict(self) -> dict:
        data = {
            "name": self.name,
            "width": self.width,
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
        }
        return data if self.channels is None else {**data, "channels": self.channels}


#: How a module instance is named in files: it cannot be rebuilt from the name, only recognised.
INSTANCE_PREFIX = "module:"


def instance_spec(module: nn.Module, *, num_classes: int | None = None, in_channels: int = 3) -> ModelSpec:
    """The spec of a user's network instance (its current weights are part of it)."""
    if not isinstance(module, nn.Module):
        raise AutoscError(
            f"model must be a zoo name, a builder reference or a torch.nn.Module, got {type(module).__name__}"
        )
    cls = type(module)
    return ModelSpec(f"{INSTANCE_PREFIX}{cls.__module__}.{cls.__qualname__}", 1.0, num_classes, in_channels, module)


def is_zoo_model(name: str) -> bool:
    """A built-in network, as opposed to a user's ``file.py:build`` reference.

    Building one imports no user code: a zoo network, or a ``timm:ARCH`` name (timm's registry, no
    weights), so a stored file naming one is safe to rebuild.
    """
    return model_entry(name) is not None or is_timm_name(name)


def spec_from_file(data: dict, *, source: str, model: str | nn.Module | None = None) -> ModelSpec:
    """The model spec a checkpoint, frozen file or run file stores, without ever importing code it names.

    A zoo name is used as it is. A builder reference (``file.py:build``) is
    used only when the user names it themselves (``model``, e.g. ``--model``):
    a crafted file must not be able to make autosc import a file or module.
    A network made from a module instance needs a fresh instance as ``model``; an instance given is used
    whatever the file names (a zoo network too), and the caller checks that it fits the stored weights.
    """
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise AutoscError(f"{source} holds no model spec (a model name); is it an autosc file?")
    name = data["name"]
    if isinstance(model, nn.Module):  # the caller's own instance, whatever the file names (a zoo network too)
        spec = _spec(data, source)
        return replace(spec, width=1.0, module=model)
    if is_zoo_model(name):
        return _spec(data, source)
    if name.startswith(INSTANCE_PREFIX):
        raise AutoscError(
            f"{source} was made from a module instance ({name.removeprefix(INSTANCE_PREFIX)}); "
            "pass a fresh instance of that class: autosc.load_frozen(path, model=YourNet())"
        )
    if model is None:
        raise AutoscError(
            f"{source} names the model builder {name!r}; autosc never imports code a file names. "
            f"If you trust it, name it yourself with --model {name}"
        )
    return _spec({**data, "name": model}, source)


def _spec(data: dict, source: str) -> ModelSpec:
    try:
        return ModelSpec(**data)
    except TypeError as exc:  # unknown or missing fields: not a spec autosc wrote
        raise AutoscError(f"{source} holds a model spec autosc cannot read ({exc})") from exc


def scales_width(name: str) -> bool:
    """Whether autosc can build ``name`` at any width and widen a trained one keeping its function: the built-in
    families, and timm's families with a channel multiplier (the family's ``widens``; autosc/models/widen.py)."""
    widens = family_of(name).widens
    return widens(name) if callable(widens) else widens


def default_input_size(name: str) -> int:
    """The input size a zoo network was designed for (224 for timm and user networks)."""
    entry = model_entry(name)
    return entry.input_size if entry is not None else 224


def _check_positive(what: str, value: float, integer: bool = False) -> None:
    bad = not math.isfinite(value) or value <= 0 or (integer and int(value) != value)
    if bad:
        kind = "a positive integer" if integer else "a positive number"
        raise AutoscError(f"{what} must be {kind}, got {value!r}")


def build_model(name: str, *, width: float = 1.0, num_classes: int | None = None, in_channels: int = 3) -> nn.Module:
    """Build a zoo network or a user's network with every channel count scaled by ``width``.

    ``num_classes=None`` keeps the family's default (1000 for ImageNet layouts and timm, 10 for CIFAR ones).
    """
    _check_positive("width", width)
    _check_positive("in_channels", in_channels, integer=True)
    if num_classes is not None:
        _check_positive("num_classes", num_classes, integer=True)
    entry = model_entry(name)
    if entry is not None:
        return _build_entry(entry, width, num_classes, in_channels)
    if name.startswith(TIMM_PREFIX):
        return build_timm(name, width=width, num_classes=num_classes, in_channels=in_channels)
    if ":" not in name:
        close = difflib.get_close_matches(name, list_models(), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else f"choose one of {', '.join(list_models())}"
        raise AutoscError(f"unknown model {name!r}: {hint} (or give path/to/file.py:build)")
    return build_user(name, width=width, num_classes=num_classes, in_channels=in_channels)


def _build_entry(entry: ModelEntry, width: float, num_classes: int | None, in_channels: int) -> nn.Module:
    if width != 1 and not scales_width(entry.name):
        raise AutoscError(f"{entry.name} has no width multiplier, so width {width:g} cannot be applied; use width 1")
    return entry.build(width=width, num_classes=num_classes or entry.num_classes, in_channels=in_channels)


__all__ = [
    "INSTANCE_PREFIX",
    "Family",
    "ModelEntry",
    "ModelSpec",
    "build_model",
    "default_input_size",
    "family_of",
    "instance_spec",
    "is_timm_name",
    "is_zoo_model",
    "list_models",
    "make_divisible",
    "model_entry",
    "register_family",
    "register_model",
    "scales_width",
    "spec_from_file",
    "timm_widenable",
]
