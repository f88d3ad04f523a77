"""The table of networks: each family module registers its builders here, and every per-family fact is read here.

One style of registry with the data sources (autosc/data/registry.py; torchvision's ``register_model``): adding a
family is one module whose builders carry ``@register_model``; ``build_model``, ``list_models``, the error
messages and the training recipe read the entry instead of testing names (docs/architecture.md, Layout).
timm networks and users' builders are not entries (their names are open-ended), but their facts are
:class:`Family` values too, registered with :func:`register_family`, so each fact has one place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from torch import nn

Builder = Callable[..., nn.Module]
#: How one downsampling layer runs at stride 1 in standard mode: the layer changed in place, or its replacement.
StrideOneRule = Callable[[nn.Module], nn.Module]


@dataclass(frozen=True)
class Family:
    """What autosc needs to know about a family of networks besides how to build them; shared by its entries."""

    name: str
    #: The recipe's weight decay (autosc/train/config.py: ``recipe``); MobileNetV2 trains with less, as in its paper.
    weight_decay: float = 5e-4
    #: Builds at any width, and a trained one widens keeping its function (autosc/models/widen.py); or a test
    #: of the network's name, where that differs within the family (timm: only generators with a multiplier).
    widens: bool | Callable[[str], bool] = True
    #: Container classes (``module.qualname``) that only run their children in order: ``model_cells`` opens them
    #: like a plain ``nn.Sequential`` of blocks. Names, so optional libraries need not be imported to match them.
    sequences: frozenset[str] = frozenset()
    #: Rules for the family's own downsampling layers at stride 1 (autosc/adaptor/standard.py: ``stride_one``),
    #: looked up along a layer's class hierarchy before the rules for torch's convolutions and pools.
    stride_one: Mapping[type[nn.Module], StrideOneRule] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class ModelEntry:
    """One registered network: its builder (keyword arguments ``width``, ``num_classes``, ``in_channels``),
    its family, and the number of classes and the square input size it was designed for."""

    name: str
    build: Builder
    family: Family
    num_classes: int = 1000
    input_size: int = 224


#: Facts for networks that are no family's: a user's builder or module instance (width 1 only, as before).
USER = Family("user", widens=False)

_MODELS: dict[str, ModelEntry] = {}
_FAMILIES: dict[str, Family] = {USER.name: USER}


def register_family(family: Family) -> Family:
    """Make ``family``'s cell sequences and stride-one rules known; a different family under a taken name is refused."""
    known = _FAMILIES.get(family.name)
    if known is not None and known != family:
        raise ValueError(f"a different model family is already registered as {family.name!r}")
    _FAMILIES[family.name] = family
    return family


def register_model(
    name: str, *, family: Family, num_classes: int = 1000, input_size: int = 224
) -> Callable[[Builder], Builder]:
    """Register the decorated builder under ``name`` (and its ``family``); a name is taken only once.

    ``num_classes`` is what ``build_model(name)`` builds when none is given; ``input_size`` is the family's own
    (``default_input_size``). Names have no ``:``, which marks ``timm:NAME`` and ``path/file.py:build``.
    """
    if not name or ":" in name:
        raise ValueError(f"model names are not empty and have no ':', got {name!r}")
    if name in _MODELS:
        raise ValueError(f"a model is already registered as {name!r}")

    def decorate(build: Builder) -> Builder:
        register_family(family)
        _MODELS[name] = ModelEntry(name, build, family, num_classes, input_size)
        return build

    return decorate


def model_entry(name: str) -> ModelEntry | None:
    """The registered network ``name``, or None for anything else (timm, a user's builder, an unknown name)."""
    return _MODELS.get(name)


def list_models() -> list[str]:
    """Names of the built-in networks."""
    return sorted(_MODELS)


def cell_sequences() -> frozenset[str]:
    """The container classes every registered family declares to be only a sequence of blocks."""
    return frozenset().union(*(f.sequences for f in _FAMILIES.values()))


def stride_one_rules() -> dict[type[nn.Module], StrideOneRule]:
    """The registered families' own stride-one rules, by layer class."""
    return {cls: rule for f in _FAMILIES.values() for cls, rule in f.stride_one.items()}
