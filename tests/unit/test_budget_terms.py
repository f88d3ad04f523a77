"""Budget kinds are one registry: a kind defined only here plans, projects, freezes and reports with no other file
touched (docs/architecture.md, To add a budget kind); the registry refuses clashes; budgets round-trip."""

import json

import pytest

import autosc
from autosc import AutoscError, Budget, RunConfig, count
from autosc.adaptor.module import factor_to_alpha
from autosc.cost.budget import SETTINGS, parse_budget
from autosc.cost.projection import check_reachable
from autosc.cost.shape_cost import Cost
from autosc.cost.terms import TERMS, BudgetTerm, register_term, unregister_term
from autosc.cost.width import human_network_cost
from autosc.errors import UnreachableBudget
from autosc.freeze import FrozenAdaptor, build_frozen, freeze
from autosc.models import ModelSpec
from autosc.report import render_markdown
from autosc.run.folder import default_run_dir
from autosc.units import format_count, parse_macs

from .test_report import make_report


class ConvMacsTerm(BudgetTerm):
    """Conv + linear MACs only, the adaptors' resize MACs left out: a kind that exists in this test alone."""

    key = "conv_macs"
    option = "conv_budget"
    example = "--conv-budget (e.g. 5M)"
    noun = "conv MAC"
    relative = True

    def parse_value(self, text):
        return parse_macs(text)[0]

    def parse_fraction(self, text):
        return parse_macs(text)[1]

    def read(self, cost, budget):
        return cost.macs

    def format(self, value):
        return f"{format_count(value)} conv MACs"

    def report_figures(self, report):
        return {"human": report.macs.human, "final": report.macs.final, "baseline": None}


@pytest.fixture
def conv_term():
    register_term(ConvMacsTerm)
    yield TERMS["conv_macs"]
    unregister_term("conv_macs")


def test_a_kind_registered_in_a_test_plans_projects_freezes_and_reports(conv_term):
    limit = int(0.8 * human_network_cost(ModelSpec("mobilenet_v2_cifar", 0.5, 10), (32, 32)).macs)
    budget = Budget.of(conv_macs=limit)
    assert budget.conv_macs == limit and budget.describe() == f"{format_count(limit)} conv MACs"
    plan = autosc.plan("mobilenet_v2_cifar", budget=budget, width=0.5, input_size=32, num_classes=10)
    assert plan.widened.macs > limit >= plan.projected.cost.macs  # projected from above the cap to under it
    assert plan.projected.cost.macs > 0.95 * limit  # and the fill used the cap
    assert plan.to_dict()["budget"]["conv_macs"] == limit
    # the relaxed cost reads the same figure: at the identity shape it is the exact ratio
    network = plan.network
    for a in network.adaptors():
        a.alpha.data.fill_(factor_to_alpha(1 - 1e-7))
    exact = network.cost_model.human_cost().macs / limit
    assert network.relaxed_cost().item() == pytest.approx(exact, rel=1e-5)
    network.update_shape()

    frozen, spec = freeze(network)
    assert spec["budget"]["conv_macs"] == limit
    assert count(frozen, (32, 32), cells=False).macs <= limit  # a second counter agrees the cap holds
    rebuilt = build_frozen(spec)
    assert [m.size for m in rebuilt.modules() if isinstance(m, FrozenAdaptor)] == [
        tuple(a["size"]) for a in spec["adaptors"]
    ]

    report = make_report()
    report.budget = {**Budget.of(conv_macs=40_000_000).to_dict()}
    md = render_markdown(report)
    assert "40.00M conv MACs" in md.splitlines()[0]
    assert "% of conv MAC budget used" in md and "% of MAC budget used" not in md
    report.macs.final = 41_000_000
    assert "WARNING: OVER CONV MAC BUDGET" in render_markdown(report)


def test_a_registered_kind_drives_width_auto_reachability_and_the_run_folder(conv_term):
    plan = autosc.plan("mobilenet_v2_cifar", budget=Budget.of(conv_macs=6_000_000), input_size=32, num_classes=10)
    assert 1.0 < plan.widened.macs / 6_000_000 <= 1.25 + 0.05  # --width auto: about 1.25x the cap (width steps)
    with pytest.raises(UnreachableBudget, match=r"conv MACs against 1\.00K conv MACs"):
        check_reachable(plan.network.cost_model, Budget.of(conv_macs=1000))
    assert parse_budget(conv_budget="60%", human=Cost(1000, 7, 0)).conv_macs == 600  # of its own figure
    assert parse_budget(conv_budget="5M").conv_macs == 5_000_000
    with pytest.raises(AutoscError, match="relative, but the human network's conv MAC is not known"):
        parse_budget(conv_budget="60%")
    assert default_run_dir("mobilenet_v2_cifar", {"budget": "25M", "conv_budget": "5M"}).name == (
        "mobilenet_v2_cifar-25M-5M"
    )


def test_the_registry_refuses_a_key_or_option_twice_and_budgets_refuse_unknown_kinds():
    class Again(ConvMacsTerm):
        key = "macs"

    class SameOption(ConvMacsTerm):
        option = "budget"

    for cls in (Again, SameOption):
        with pytest.raises(ValueError, match="already"):
            register_term(cls)
    assert "conv_macs" not in TERMS
    with pytest.raises(AutoscError, match="unknown budget kind 'params'"):
        Budget.of(params=5)
    with pytest.raises(AutoscError, match="unknown budget option 'params'"):
        parse_budget(params="5")
    with pytest.raises(AutoscError, match="unknown budget field"):
        Budget.from_dict({"macs": 5, "flops": 3})


def test_every_kind_and_setting_is_written_and_an_older_budget_reads_back():
    budget = parse_budget(budget="300M", memory="4MiB", convention="paper")
    data = budget.to_dict()
    assert set(data) == set(TERMS) | set(SETTINGS) and data["latency_ms"] is None and data["free"] is False
    assert Budget.from_dict(data) == budget
    older = {"macs": 300_000_000, "memory_bytes": None, "convention": "standard"}  # written before latency budgets
    assert Budget.from_dict(older) == Budget.of(macs=300_000_000)
    assert Budget.of(free=True).describe() == "none (the learned shape as it is)"
    assert budget.describe() == "300.00M MACs (paper convention) and 4.00MiB activations"
    with pytest.raises(AttributeError):
        budget.flops  # noqa: B018
    with pytest.raises(AutoscError, match="no budget given: pass --budget"):
        Budget()
    with pytest.raises(AutoscError, match="--memory does not take a percentage"):
        TERMS["memory_bytes"].check("60%") if TERMS["memory_bytes"].relative else TERMS["memory_bytes"].parse_fraction("6%")


@pytest.mark.slow
def test_compress_takes_a_run_config_with_overrides_and_a_budget_as_an_int(tmp_path):
    config = RunConfig.from_flat(
        {"data": "synthetic", "subset": 64, "test_subset": 32, "batch_size": 32, "width": 0.35, "epochs": 1,
         "latency_runs": 3, "exporter": "torchscript", "budget": "20M"}
    )  # fmt: skip
    result = autosc.compress("mobilenet_v2_cifar", config, budget=8_000_000, out=tmp_path / "run", quiet=True)
    assert result.report.budget["macs"] == 8_000_000  # the keyword overrides the config
    assert result.report.macs.final_total <= 8_000_000
    command = json.loads((tmp_path / "run" / "run.json").read_text())["command"]
    assert "--budget 8000000" in command and "--width 0.35" in command and "--epochs 1" in command
