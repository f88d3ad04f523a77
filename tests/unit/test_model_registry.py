"""The model registry: a family registered here (a tiny network) is built, listed, counted, trained with its
weight decay, cut into its cells and rebuilt at stride 1 from its entry, without touching any other file."""

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autosc import AutoscError, build_model, list_models
from autosc.adaptor.modes import place_adaptors
from autosc.models import Family, default_input_size, family_of, registry, scales_width
from autosc.models.cells import model_cells
from autosc.models.registry import register_family, register_model
from autosc.train.config import recipe


class Halve(nn.Module):
    """A downsampling layer torch's stride-one rules do not know: only its family's rule can rebuild it."""

    stride = 2

    def forward(self, x):
        return F.avg_pool2d(x, self.stride)


class Stage(nn.Module):
    """A container that runs its blocks in order; the family declares it, so its blocks are cells."""

    def __init__(self, *blocks: nn.Module) -> None:
        super().__init__()
        for i, block in enumerate(blocks):
            self.add_module(str(i), block)

    def forward(self, x):
        for block in self.children():
            x = block(x)
        return x


def _block(c: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU())


def tiny_net(*, width: float = 1.0, num_classes: int = 7, in_channels: int = 3) -> nn.Module:
    c = max(8, int(8 * width))
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1), nn.ReLU()),
        Halve(),
        Stage(_block(c), _block(c)),
        nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)),
    )


TINY = Family(
    "tiny",
    weight_decay=1e-3,
    sequences=frozenset({f"{Stage.__module__}.{Stage.__qualname__}"}),
    stride_one={Halve: lambda layer: nn.Identity()},
)


@pytest.fixture
def tiny():
    """``tiny_net`` registered for one test; the registry's tables are restored afterwards."""
    models, families = dict(registry._MODELS), dict(registry._FAMILIES)
    register_model("tiny_net", family=TINY, num_classes=7, input_size=16)(tiny_net)
    yield "tiny_net"
    registry._MODELS.clear(), registry._MODELS.update(models)
    registry._FAMILIES.clear(), registry._FAMILIES.update(families)


def test_a_taken_name_or_a_name_with_a_colon_is_refused(tiny):
    with pytest.raises(ValueError, match="already registered as 'resnet18'"):
        register_model("resnet18", family=TINY)(tiny_net)
    with pytest.raises(ValueError, match="already registered as 'tiny_net'"):
        register_model("tiny_net", family=TINY)(tiny_net)
    with pytest.raises(ValueError, match="no ':'"):
        register_model("tiny:net", family=TINY)
    with pytest.raises(ValueError, match="different model family is already registered as 'tiny'"):
        register_family(Family("tiny", weight_decay=0.0))


def test_a_registered_family_is_built_listed_and_read_from_its_entry(tiny):
    assert tiny in list_models()
    net = build_model(tiny, width=2.0)
    assert net(torch.zeros(2, 3, 16, 16)).shape == (2, 7)  # the entry's default classes
    assert build_model(tiny, num_classes=3, in_channels=1)(torch.zeros(1, 1, 16, 16)).shape == (1, 3)
    assert default_input_size(tiny) == 16 and scales_width(tiny) and family_of(tiny) is TINY
    assert recipe(tiny, (16, 16))["weight_decay"] == 1e-3
    assert recipe("mobilenet_v2", (32, 32))["weight_decay"] == 4e-5
    assert recipe("x.py:build", (32, 32))["weight_decay"] == 5e-4
    assert [name for name, _ in model_cells(net)] == ["0", "1", "2.0", "2.1", "3"]  # the Stage is opened


def test_the_cli_counts_a_registered_family(tiny, cli):
    result = cli("count", tiny, "--json")
    assert result.code == 0, result.err
    counted = json.loads(result.out)
    assert counted["model"] == tiny and counted["input_size"] == [16, 16]
    assert [c["name"] for c in counted["cells"]][:4] == ["0", "1", "2.0", "2.1"]


def test_the_family_rule_rebuilds_its_own_layer_at_stride_one(tiny):
    net = build_model(tiny)
    placement = place_adaptors(net, (16, 16), 3, None, mode="standard")
    assert placement.cells == ["1"] and placement.kinds == ["standard"] and isinstance(net[1].cell, nn.Identity)
    registry._FAMILIES.pop("tiny")  # without its family's rule, torch's rules cannot rebuild the layer
    with pytest.raises(AutoscError, match="cell 1 halves its input"):
        place_adaptors(build_model(tiny), (16, 16), 3, None, mode="standard")


def test_a_family_without_a_width_multiplier_builds_at_width_one_only(tiny):
    register_model("tiny_fixed", family=Family("tiny_fixed", widens=False))(tiny_net)
    assert not scales_width("tiny_fixed") and build_model("tiny_fixed") is not None
    with pytest.raises(AutoscError, match="tiny_fixed has no width multiplier"):
        build_model("tiny_fixed", width=1.5)


def test_a_registered_network_is_counted_once_and_again_when_registered_anew(tiny, monkeypatch):
    """``human_network_cost`` counts a registered network once per (spec, size) in a process, and a name registered
    again with another builder is counted again; a user's builder is counted every time (its code may change)."""
    from autosc.cost import width
    from autosc.models import ModelSpec

    width._counted.cache_clear()  # whatever an earlier test in this process counted
    counts = []
    count = width._count
    monkeypatch.setattr(width, "_count", lambda spec, size: counts.append(spec.name) or count(spec, size))
    spec = ModelSpec(tiny, 1.0, 7)
    first = width.human_network_cost(spec, (16, 16))
    assert width.human_network_cost(spec, (16, 16)) == first and counts == [tiny]

    def wider(**kwargs):
        return tiny_net(**{**kwargs, "width": 2 * kwargs.get("width", 1.0)})

    registry._MODELS.pop(tiny)
    register_model(tiny, family=TINY, num_classes=7, input_size=16)(wider)
    again = width.human_network_cost(spec, (16, 16))
    assert counts == [tiny, tiny] and again.macs > first.macs
    user = ModelSpec("/some/net.py:build", 1.0, 7)
    monkeypatch.setattr(ModelSpec, "build", lambda self: tiny_net(num_classes=7))
    width.human_network_cost(user, (16, 16)), width.human_network_cost(user, (16, 16))
    assert counts == [tiny, tiny, user.name, user.name]
