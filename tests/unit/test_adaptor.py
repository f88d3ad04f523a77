"""Shape adaptors: placement by probe, identity initialisation, the hard budget, exact cost model."""

import functools

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import autosc
from autosc import AutoscError, build_model, count
from autosc.adaptor import ShapeAdaptor, choose, find_candidates
from autosc.cost import Budget
from autosc.cost.projection import fits, sizes_from_factors
from autosc.models import ModelSpec
from autosc.planning import adapt_network

HUGE = Budget.of(macs=10**15)


@pytest.mark.parametrize(
    ("name", "size", "widths"),
    [
        ("mobilenet_v2", 224, (1.0, 1.4)),
        ("mobilenet_v2", 32, (1.0, 1.4)),
        ("mobilenet_v2_cifar", 32, (0.5, 1.0)),
        ("resnet18", 224, (0.5, 1.0)),
        ("vgg16_bn", 224, (0.25, 0.5)),
    ],
)
@pytest.mark.slow
def test_identity_init_keeps_human_shape_and_macs(name, size, widths):
    """At the initial alphas every adaptor's size is its human size and conv+linear MACs are the widened human MACs."""
    for width in widths:
        spec = ModelSpec(name, width)
        network, cells, _ = adapt_network(spec, (size, size), HUGE)
        human = [a.human_size for a in network.adaptors()]
        assert sizes_from_factors(human, network.factors()) == human
        assert network.update_shape().sizes == human
        adapted = count(network, (size, size), cells=False)
        assert adapted.macs == count(spec.build(), (size, size), cells=False).macs
        assert adapted.resize_macs > 0  # the adaptors' own resizes, reported apart
        assert len(cells) == (3 if size < 64 else 4)


def test_placement_follows_non_resizing_cells():
    cands = find_candidates(build_model("resnet18"), (224, 224))
    names = [c.name for c in cands]
    assert "layer2.0" not in names and "layer2.1" in names  # stride-2 block excluded, stride-1 kept
    assert "layer4.1" not in names  # never after the last cell before global pooling
    assert "conv1" not in names and "bn1" not in names  # resizing stem; cells without a conv
    chosen = choose(cands, 2, (224, 224))
    assert len(chosen) == 2 and chosen[0].name != chosen[1].name


def test_placement_on_user_sequential_network():
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
        nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.ReLU()),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )  # fmt: skip
    names = [c.name for c in find_candidates(net, (32, 32))]
    assert names == ["0", "2", "4"]  # "1" is a ReLU (no conv), "3" resizes, "5" is the last conv


def test_network_without_candidates_is_a_clear_error():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
    with pytest.raises(AutoscError, match="no non-resizing convolution cell"):
        choose(find_candidates(net, (32, 32)), None, (32, 32))


def test_adaptor_gradient_reaches_alpha_only_through_mixing():
    adaptor = ShapeAdaptor((8, 8), alpha=0.3)
    adaptor.size = (5, 5)
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    adaptor(x).square().sum().backward()
    assert adaptor.alpha.grad is not None and adaptor.alpha.grad != 0
    assert adaptor(x).shape == (2, 4, 5, 5)


@functools.cache
def _network(name: str, size: int, width: float):
    network, _, _ = adapt_network(ModelSpec(name, width), (size, size), HUGE)
    return network


@pytest.mark.parametrize(("name", "size", "width"), [("mobilenet_v2_cifar", 32, 1.0), ("resnet18", 64, 0.5)])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
@pytest.mark.slow
def test_projection_is_feasible_tight_and_exact(name, size, width, data):
    """Random alphas and budgets in [smallest reachable, widened]: the projected cost fits, no adaptor
    can grow one more pixel without breaking the budget (up to its learned size when the learned shape is
    over budget, up to its human size when it is under and is scaled up), and the cost model equals the counters."""
    network = _network(name, size, width)
    model = network.cost_model
    low, high = model.floor_cost().total_macs, model.human_cost().total_macs
    budget = Budget.of(macs=data.draw(st.integers(low, high), label="budget"))
    alphas = data.draw(st.lists(st.floats(-4, 6), min_size=len(model.human_sizes), max_size=len(model.human_sizes)))
    for adaptor, alpha in zip(network.adaptors(), alphas, strict=True):
        adaptor.alpha.data.fill_(alpha)
    network.budget = budget
    projection = network.update_shape()
    assert projection.cost.total_macs <= budget.macs
    learned = model.clamp(sizes_from_factors(model.human_sizes, network.factors()))
    caps = learned if projection.scale < 1 else model.human_sizes
    assert (projection.scale < 1) == (not fits(model.cost(learned), budget))
    for k, ((h, w), (ch, cw)) in enumerate(zip(projection.sizes, caps, strict=True)):
        if (h, w) != (ch, cw):
            grown = list(projection.sizes)
            grown[k] = (min(h + 1, ch), min(w + 1, cw))
            assert not fits(model.cost(grown), budget), (k, projection.sizes, grown)
    counted = count(network, (size, size), cells=False)  # forward re-projects to the same sizes
    assert counted.macs == projection.cost.macs
    assert counted.resize_macs == projection.cost.resize_macs
    assert counted.activation_bytes == projection.cost.activation_bytes


@pytest.mark.slow
def test_memory_budget_alone_and_with_macs():
    plan = autosc.plan("mobilenet_v2_cifar", memory="5MiB", width=1.0)
    assert plan.widened.activation_bytes > 5 * 2**20
    assert plan.projected.cost.activation_bytes <= 5 * 2**20
    assert count(plan.network, (32, 32), cells=False).activation_bytes <= 5 * 2**20
    both = autosc.plan("mobilenet_v2_cifar", budget="40M", memory="8MiB", width=1.0)
    cost = both.projected.cost
    assert cost.total_macs <= 40_000_000 and cost.activation_bytes <= 8 * 2**20


@pytest.mark.slow
def test_auto_width_lands_above_the_budget():
    plan = autosc.plan("mobilenet_v2_cifar", budget="30M")
    assert plan.width_mode == "auto"
    assert plan.widened.macs > 30_000_000  # the adaptors have something to remove
    assert plan.widened.macs <= 1.25 * 30_000_000
    assert plan.projected.cost.total_macs <= 30_000_000
    # maps of 8 and 4 px make integer steps coarse here; the 224 px figures are in benchmarks/RESULTS.md
    assert plan.projected.cost.total_macs >= 0.95 * 30_000_000


@pytest.mark.slow
def test_paper_convention_budget_matches_thop():
    """A paper-convention budget (the seed table's 94.7M): thop's count of the frozen network fits it."""
    from autosc.cost import example_input, thop_macs
    from autosc.freeze import freeze

    plan = autosc.plan("mobilenet_v2_cifar", num_classes=100, budget="94.7M", macs_convention="paper", width=1.2)
    assert plan.budget.convention == "paper"
    assert round(plan.human_macs / 1e6, 1) == 94.7  # the seed table's human MobileNetV2
    frozen, _ = freeze(plan.network)
    x = example_input(frozen, (32, 32))
    counted = count(frozen, (32, 32), cells=False)
    assert thop_macs(frozen, x) == counted.macs + 4 * counted.norm_elements
    assert thop_macs(frozen, x) + counted.resize_macs <= 94_700_000
    assert plan.projected.cost.budget_macs("paper") == thop_macs(frozen, x) + counted.resize_macs
