"""One budget, two knobs: the strategies that split it between channel pruning and the learned shape
(autosc/prune/strategies.py, autosc/planning/prune.py), planned and frozen without training."""

import pytest
import torch

import autosc
from autosc import AutoscError, build_model
from autosc.config import PlanConfig
from autosc.cost import Budget, count, fvcore_macs
from autosc.cost.counters import example_input
from autosc.cost.shape_cost import Cost
from autosc.freeze import freeze, load_frozen, save_frozen
from autosc.planning.prune import split_budget
from autosc.prune.strategies import STRATEGIES

from ..helpers import sgd_a_little
from .test_latency_budget import fake_timing  # noqa: F401  (a fixture: a synthetic latency model, nothing timed)

SIZE = (32, 32)

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def trained(name: str = "mobilenet_v2_cifar", width: float = 0.5) -> torch.nn.Module:
    """A zoo network moved off its initialisation, so that pruning ranks real weights and outputs are not ~0."""
    torch.manual_seed(0)
    net = build_model(name, width=width, num_classes=10, in_channels=1)
    sgd_a_little(net, 1)
    return net.eval()


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Labelled images for the default importance (``taylor`` takes gradients on them)."""
    torch.manual_seed(1)
    return torch.randn(16, 1, *SIZE), torch.randint(0, 10, (16,))


def test_split_budget_moves_each_cap_its_share_of_the_way():
    human = Cost(macs=1000, resize_macs=0, activation_bytes=4000, latency_ms=10.0)
    budget = Budget.of(macs=500, memory_bytes=2000, latency_ms=6.0, latency_reference_ms=10.0)
    half = split_budget(budget, human, 0.5)
    assert half.limit("macs") == 750 and half.limit("memory_bytes") == 3000
    assert half.limit("latency_ms") == pytest.approx(8.0)
    assert split_budget(budget, human, 1.0).limits == budget.limits
    assert split_budget(budget, human, 0.0).limit("macs") == 1000


def _frozen_round_trip(plan, tmp_path, model=None):
    """The plan's network frozen, written, read back (rebuilt from the spec) and compared on a batch."""
    frozen, spec = freeze(plan.network)
    save_frozen(frozen, spec, tmp_path / "frozen.pt")
    loaded, _ = load_frozen(tmp_path / "frozen.pt", model=model)
    x = torch.randn(4, 1, *SIZE)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), frozen(x), rtol=1e-5, atol=1e-6)
        assert frozen(x).abs().max() > 1e-2  # trained weights: the comparison is not of near-zero logits
    return frozen, spec


def test_prune_meets_a_macs_budget_with_the_shape_held_at_identity(tmp_path):
    net = trained()
    plan = autosc.plan(net, budget="50%", input_size=SIZE, in_channels=1, num_classes=10, strategy="prune",
                       prune_batch=batch())  # fmt: skip
    limit = plan.budget.limit("macs")
    assert plan.pruning is not None and plan.pruning.share == 1.0 and plan.pruning.importance == "taylor"
    assert plan.pruning.macs_after <= limit < plan.pruning.macs_before
    assert plan.network.collapsed  # the shape cannot learn
    assert [tuple(a.start_size) for a in plan.network.adaptors()] == [tuple(s) for s in plan.projected.sizes]
    assert plan.spec.channels and plan.spec.module is not None  # the instance, pruned
    frozen, spec = _frozen_round_trip(plan, tmp_path, model=net)
    cost = count(frozen, SIZE, cells=False)
    assert cost.resize_macs == 0 and cost.total_macs <= limit  # no Resize: a plain pruned network
    assert fvcore_macs(frozen, example_input(frozen, SIZE)) == cost.macs  # a second counter agrees
    assert spec["model"]["channels"] == plan.spec.channels


def test_compound_prunes_part_of_the_cut_and_the_shape_the_rest(tmp_path):
    plan = autosc.plan(
        "mobilenet_v2_cifar", budget="40%", input_size=SIZE, in_channels=1, num_classes=10, width=1.0,
        strategy="compound", prune_share=0.5, prune_batch=batch(),
    )  # fmt: skip
    human, limit = plan.human_macs, plan.budget.limit("macs")
    pruning = plan.pruning
    assert pruning.target["macs"] == int(human - 0.5 * (human - limit))
    assert limit < pruning.macs_after <= pruning.target["macs"]
    assert not plan.network.collapsed
    frozen, _ = freeze(plan.network)
    assert count(frozen, SIZE, cells=False).total_macs <= limit
    assert any(tuple(s) != tuple(a.start_size) for s, a in zip(plan.projected.sizes, plan.network.adaptors(), strict=True))


def test_a_memory_budget_is_met_by_pruning_and_by_compound(tmp_path):
    net = trained()
    human = count(net, SIZE, cells=False).activation_bytes
    limit = int(0.7 * human)
    for strategy in ("prune", "compound"):
        plan = autosc.plan(net, memory=str(limit), input_size=SIZE, in_channels=1, num_classes=10, strategy=strategy,
                           importance="l1")  # fmt: skip
        frozen, _ = freeze(plan.network)
        assert count(frozen, SIZE, cells=False).activation_bytes <= limit, strategy


def test_shape_is_the_default_and_prunes_nothing():
    plan = autosc.plan("mobilenet_v2_cifar", budget="60%", input_size=SIZE, in_channels=1, num_classes=10)
    assert plan.pruning is None and plan.spec.channels is None and plan.to_dict()["pruning"] is None
    assert list(STRATEGIES) == ["shape", "prune", "compound", "auto"]


def test_bad_strategy_options_are_refused_in_one_line():
    with pytest.raises(AutoscError, match="--strategy must be one of shape, prune, compound, auto, got 'both'"):
        PlanConfig(budget="60%", strategy="both").validate()
    with pytest.raises(AutoscError, match="unknown importance 'l3'"):
        PlanConfig(budget="60%", importance="l3").validate()
    with pytest.raises(AutoscError, match="--prune-share must be a number from 0 to 1"):
        PlanConfig(budget="60%", prune_share=1.5).validate()
    with pytest.raises(AutoscError, match=r"needs a batch of labelled images .*--importance l1 or bn.*prune_batch="):
        autosc.plan(trained(), budget="50%", input_size=SIZE, in_channels=1, num_classes=10, strategy="prune")


def test_a_trained_network_is_pruned_at_its_own_width(tmp_path):
    path = tmp_path / "w.pt"
    torch.save(trained().state_dict(), path)
    with pytest.raises(AutoscError, match="at its own width 0.5; leave --width out"):
        autosc.plan("mobilenet_v2_cifar", budget="50%", input_size=SIZE, in_channels=1, num_classes=10,
                    weights=str(path), width=1.0, strategy="prune")  # fmt: skip


def test_shape_search_candidates_all_meet_the_budget_once_projected():
    from autosc.adaptor.module import LOWER_BOUND
    from autosc.run.shape_search import candidate_factors, set_factors

    plan = autosc.plan(trained(), budget="45%", input_size=SIZE, in_channels=1, num_classes=10)
    identity = plan.network.factors()
    found = candidate_factors(identity, 4, seed=30)
    assert [label for label, _ in found[:4]] == ["identity", "cut at adaptor 1", "cut at adaptor 2", "cut at adaptor 3"]
    assert found[0][1] == identity and len(found) == 1 + 3 + 4
    assert found[2][1] == [1.0, LOWER_BOUND, 1.0]
    assert all(LOWER_BOUND <= s <= 1 for _, factors in found[4:] for s in factors)
    assert candidate_factors(identity, 4, seed=30) == found  # seeded
    limit, shapes = plan.budget.limit("macs"), set()
    for _, factors in found:
        shapes.add(tuple(set_factors(plan.network, factors)))
        frozen, _ = freeze(plan.network)
        assert count(frozen, SIZE, cells=False).total_macs <= limit
    assert len(shapes) > 3  # the candidates are different shapes, not one projected shape


@pytest.mark.slow
@pytest.mark.usefixtures("fake_timing")
def test_pruning_strategies_meet_a_latency_budget_on_a_synthetic_model(monkeypatch):
    """Nothing is timed: the latency model is synthetic (tests/unit/test_latency_budget.py) and a pruned network's
    share of the start network's p50 is its share of the MACs, which pruning to a latency cap corrects by."""
    from autosc.cost.terms.latency import AIM_UNDER
    from autosc.cost.width import human_network_cost
    from autosc.planning import latency as latency_planning

    def share(spec, reference, size, *_):
        return human_network_cost(spec, size).total_macs / human_network_cost(reference, size).total_macs

    monkeypatch.setattr(latency_planning, "time_share", share)
    net = trained()
    for strategy in ("prune", "compound"):
        plan = autosc.plan(net, latency="50%", input_size=SIZE, in_channels=1, num_classes=10, strategy=strategy,
                           prune_batch=batch())  # fmt: skip
        pruning, limit = plan.pruning, plan.budget.limit("latency_ms")
        aimed = pruning.target["latency_ms"] * (1 - AIM_UNDER) / plan.budget.latency_reference_ms
        assert pruning.latency_share <= aimed and pruning.latency_share > aimed - 0.05, strategy  # corrected to it
        if strategy == "compound":  # the shape takes the rest of the cut: the projection meets the cap, predicted
            assert plan.projected.cost.latency_ms <= limit and not plan.network.collapsed
        else:  # the pruned network met it by its measured share; the shape is held, never projected
            assert plan.network.identity_held and plan.projected.scale == 1.0


def test_taylor_ranks_on_the_same_unaugmented_batch_every_time():
    from autosc.data import load_data
    from autosc.run.data import PRUNE_IMAGES, prune_batch

    bundle = load_data("synthetic", input_size=SIZE, subset=96, test_subset=32, seed=0)
    first, again = prune_batch(bundle, "taylor"), prune_batch(bundle, "taylor")
    assert first[0].shape[0] == PRUNE_IMAGES and torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert prune_batch(bundle, "l1") is None  # a data-free criterion takes no batch


@pytest.mark.parametrize("module", [False, True])
def test_a_held_shape_confirmed_over_its_latency_is_pruned_further_and_its_file_rebuilds_it(tmp_path, module):
    """``--strategy prune`` cannot shrink a shape, so the end check cuts channels (autosc/run/shrink.py): to the
    factor of the MACs, the spec's channel record updated so the saved file rebuilds the network that was cut."""
    from autosc.cost.terms.latency import AIM_UNDER
    from autosc.run.shrink import prune_further

    net = trained()
    model = net if module else "mobilenet_v2_cifar"
    plan = autosc.plan(model, budget="60%", input_size=SIZE, in_channels=1, num_classes=10, strategy="prune",
                       prune_batch=batch(), width=None if module else 0.5)  # fmt: skip
    frozen, spec = freeze(plan.network)
    before = count(frozen, SIZE, cells=False).total_macs
    shrunk = prune_further(SIZE, 1, importance="taylor", batch=batch())(frozen, spec, plan.budget, 0.7)
    after = count(shrunk.frozen, SIZE, cells=False).total_macs
    assert shrunk.pruned["macs_before"] == before and shrunk.pruned["macs_after"] == after
    assert 0.5 * 0.7 * before < after <= 0.7 * (1 - AIM_UNDER) * before  # cut by the factor, not to nothing
    assert shrunk.predicted is None and shrunk.budget == plan.budget  # a MACs budget: no latency limit to tighten
    assert shrunk.shape["model"]["channels"] != spec["model"]["channels"]
    assert all(".cell." not in name for name in shrunk.shape["model"]["channels"])  # the spec's names, not the wrapper's
    sgd_a_little(shrunk.frozen, 1)  # logits far from zero, so the comparison below can fail
    save_frozen(shrunk.frozen.eval(), shrunk.shape, tmp_path / "frozen.pt")
    loaded, _ = load_frozen(tmp_path / "frozen.pt", model=net if module else None)
    x = torch.randn(4, 1, *SIZE)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), shrunk.frozen(x), rtol=1e-5, atol=1e-6)
        assert shrunk.frozen(x).abs().max() > 1e-2
    assert count(loaded, SIZE, cells=False).total_macs == after
