"""timm networks as built-in networks, named ``timm:NAME`` (``timm:efficientnet_b0``, ``timm:resnet18``).

A module of its own because timm is optional (``pip install 'autosc[timm]'``): it is imported only
when a ``timm:`` name is built, and naming one needs no import at all (:func:`is_timm_name`).
Networks come from timm's registry with ``pretrained=False``, so nothing is ever downloaded;
names with a source (``hf-hub:``, ``local-dir:``) or a pretrained tag are refused.

Width: ``timm.create_model`` has no width argument, and ``channel_multiplier=`` is a TypeError
for registered names (each entrypoint passes its own multiplier to a generator such as
``_gen_efficientnet(variant, channel_multiplier, ...)``). So for the families built that way
(EfficientNet, MobileNetV3/V4, MnasNet, FBNet, LCNet, ...), ``width`` multiplies the multiplier
the name's entrypoint passes its generator, for the length of one build: timm's own channel
rounding, stem and head rules then apply, exactly as for timm's wider variants. Families with no
such generator (ResNet, RegNet, ...) build at width 1 only.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType

from torch import nn

from ..errors import AutoscError
from .registry import Family, register_family

PREFIX = "timm:"
#: The generators' argument that ``width`` multiplies.
MULTIPLIER = "channel_multiplier"
_ARCH = re.compile(r"[A-Za-z0-9_]+")  # a bare architecture name: no source prefix, no pretrained tag
_LOCK = threading.Lock()  # one widened build at a time: a generator is rebound while it runs


def is_timm_name(name: str) -> bool:
    """``timm:ARCH`` with a bare architecture name (checked without importing timm)."""
    return name.startswith(PREFIX) and _ARCH.fullmatch(name.removeprefix(PREFIX)) is not None


def _timm() -> ModuleType:
    try:
        import timm
    except ImportError as exc:
        raise AutoscError(
            f"timm models need the timm package ({exc}); install it with: pip install 'autosc[timm]'"
        ) from exc
    return timm


def _arch(name: str) -> str:
    """The registered timm architecture ``name`` (``timm:ARCH`` or ``ARCH``) names, or a one-line error."""
    arch = name.removeprefix(PREFIX)
    timm = _timm()
    if _ARCH.fullmatch(arch) and timm.models.is_model(arch):
        return arch
    if not _ARCH.fullmatch(arch):
        raise AutoscError(
            f"{PREFIX}{arch} is not a timm architecture name (letters, digits and underscores, no pretrained tag "
            f"or hub source); autosc builds timm networks from timm's registry, without weights"
        )
    close = difflib.get_close_matches(arch, timm.list_models(), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(PREFIX + c for c in close)}?" if close else "timm.list_models() lists them"
    raise AutoscError(f"unknown timm model {arch!r}: {hint}")


def _generators(entry: Callable) -> list[str]:
    """Names of the module-level functions ``entry`` calls that take a channel multiplier."""
    code, scope = getattr(entry, "__code__", None), getattr(entry, "__globals__", {})
    found = []
    for name in code.co_names if code is not None else ():
        fn = scope.get(name)
        if inspect.isfunction(fn) and MULTIPLIER in inspect.signature(fn).parameters:
            found.append(name)
    return found


def timm_widenable(name: str) -> bool:
    """Whether ``width`` can be applied to the timm network ``name`` (``timm:ARCH`` or ``ARCH``).

    True for families whose entrypoint passes a channel multiplier to its generator
    (EfficientNet, MobileNetV3, ...), False for the others (ResNet, RegNet, ...).
    An unknown name is an :class:`AutoscError`.
    """
    return bool(_generators(_timm().models.model_entrypoint(_arch(name))))


#: The facts of every ``timm:`` network: width per network (:func:`timm_widenable`), and RegNet's stages
#: ``s1..s4`` are only their blocks ``b1, b2, ...``, so ``model_cells`` opens them.
FAMILY = register_family(Family("timm", widens=timm_widenable, sequences=frozenset({"timm.models.regnet.RegStage"})))


def _scaled(fn: Callable, width: float, calls: list[int]) -> Callable:
    """``fn`` with its channel multiplier times ``width`` when called from this thread."""
    signature, owner = inspect.signature(fn), threading.get_ident()

    @functools.wraps(fn)
    def call(*args, **kwargs):
        if threading.get_ident() != owner:
            return fn(*args, **kwargs)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        bound.arguments[MULTIPLIER] *= width
        calls.append(1)
        return fn(*bound.args, **bound.kwargs)

    return call


@contextmanager
def _widened(entry: Callable, names: list[str], width: float) -> Iterator[list[int]]:
    """Rebind ``entry``'s generators to scaled ones while the block runs; yields the list of scaled calls."""
    scope, calls = entry.__globals__, []
    with _LOCK:
        originals = {name: scope[name] for name in names}
        scope.update({name: _scaled(fn, width, calls) for name, fn in originals.items()})
        try:
            yield calls
        finally:
            scope.update(originals)


def _no_multiplier(name: str, width: float) -> AutoscError:
    return AutoscError(f"{name} has no channel multiplier, so width {width:g} cannot be applied; use width 1")


def build_timm(name: str, *, width: float = 1.0, num_classes: int | None = None, in_channels: int = 3) -> nn.Module:
    """``timm.create_model`` for ``timm:ARCH``, untrained, with ``width`` applied where the family allows it.

    ``num_classes=None`` gives 1000 (ImageNet), as for the other ImageNet zoo networks.
    """
    arch = _arch(name)
    timm = _timm()
    label = f"{PREFIX}{arch}"
    kwargs = {"pretrained": False, "num_classes": int(num_classes or 1000), "in_chans": int(in_channels)}
    entry = timm.models.model_entrypoint(arch)
    generators = _generators(entry) if width != 1 else []
    if width != 1 and not generators:
        raise _no_multiplier(label, width)
    try:
        if not generators:
            return timm.create_model(arch, **kwargs)
        with _widened(entry, generators, width) as calls:
            model = timm.create_model(arch, **kwargs)
    except Exception as exc:
        at = f" at width {width:g}" if width != 1 else ""
        raise AutoscError(f"timm.create_model({arch!r}){at} failed: {type(exc).__name__}: {exc}") from exc
    if not calls:  # the entrypoint did not reach its generator: the width was not applied
        raise _no_multiplier(label, width)
    return model
