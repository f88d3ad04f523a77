"""The input adaptor (``--input-adaptor``): the input resolution learned as one more adaptor before the first
cell, identity at the start (docs/algorithm.md, The input adaptor)."""

import pytest
import torch

import autosc
from autosc import AutoscError
from autosc.cost import count, fvcore_macs
from autosc.cost.counters import example_input
from autosc.freeze import freeze, load_frozen, save_frozen

from .test_prune_on_table import NET, TIMING, nothing_timed, synthetic_table  # noqa: F401  (a fixture)
from .test_strategy import SIZE, trained

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_at_identity_the_input_adaptor_reproduces_the_trained_networks_logits():
    net = trained()
    plan = autosc.plan(net, no_budget=True, input_size=SIZE, in_channels=1, num_classes=10, input_adaptor=True)
    adaptor = plan.network.adaptors()[0]
    assert adaptor.kind == "input" and plan.cells[0] == "features.0" and adaptor.size == SIZE
    x = torch.randn(4, 1, *SIZE)
    with torch.no_grad():
        reference = net.eval()(x)
        torch.testing.assert_close(plan.network.eval()(x), reference, rtol=1e-5, atol=1e-6)
    assert reference.abs().max() > 1e-2  # trained weights: not near-zero logits


def test_under_a_budget_the_input_is_resized_and_the_frozen_network_meets_it(tmp_path):
    net = trained()
    plan = autosc.plan(net, budget="40%", input_size=SIZE, in_channels=1, num_classes=10, input_adaptor=True)
    assert plan.network.mode == "autosc" and [a.kind for a in plan.network.adaptors()][:2] == ["input", "autosc"]
    assert plan.config()["input_cell"] == "features.0"
    frozen, spec = freeze(plan.network)
    entry = spec["adaptors"][0]
    assert entry["kind"] == "input" and tuple(entry["size"]) < SIZE  # the image itself is made smaller
    cost = count(frozen, SIZE, cells=False)
    assert cost.total_macs <= plan.budget.limit("macs")
    assert fvcore_macs(frozen, example_input(frozen, SIZE)) == cost.macs  # a second counter agrees
    save_frozen(frozen, spec, tmp_path / "frozen.pt")
    loaded, _ = load_frozen(tmp_path / "frozen.pt", model=net)  # rebuilt from the spec: the adaptor before its cell
    x = torch.randn(2, 1, *SIZE)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), frozen(x), rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # exports the probe networks
@pytest.mark.usefixtures("nothing_timed")
def test_under_a_latency_budget_the_input_adaptor_is_timed_with_an_empty_stem(tmp_path):
    """The latency model times the network by parts cut at the adaptors; the input adaptor resizes the image itself,
    so the stem before it is empty (an identity on the image, never called). On a synthetic device table (nothing
    timed) the plan meets the cap and makes the image smaller."""
    from autosc.cost.latency_probe import split_at_adaptors

    net = trained()
    adapted = autosc.plan(net, no_budget=True, input_adaptor=True, **NET).network
    split, _ = split_at_adaptors(adapted.net, adapted.adaptor_names)
    assert isinstance(split.submod_0, torch.nn.Identity)
    x = torch.randn(2, 1, *SIZE)
    with torch.no_grad():
        torch.testing.assert_close(split(x), net.eval()(x), rtol=1e-5, atol=1e-6)
    probes = autosc.probe(net, tmp_path / "probes", input_adaptor=True, timing=TIMING, **NET).parent
    plan = autosc.plan(net, latency="60%", input_adaptor=True, latency_table=str(synthetic_table(probes, 1.0)),
                       timing=TIMING, **NET)  # fmt: skip
    assert plan.projected.cost.latency_ms <= plan.budget.limit("latency_ms")
    assert plan.network.adaptors()[0].kind == "input" and tuple(plan.projected.sizes[0]) < SIZE


def test_the_input_adaptor_is_refused_where_it_does_not_apply():
    with pytest.raises(AutoscError, match="--input-adaptor is for --mode autosc"):
        autosc.plan("mobilenet_v2_cifar", budget="50%", input_size=SIZE, in_channels=1, num_classes=10,
                    input_adaptor=True, mode="standard")  # fmt: skip
