"""Latency budgets (issue 17): the grammar of --latency and what a budget means, with or without MACs."""

import pytest

from autosc.cost.budget import Budget, parse_budget
from autosc.cost.shape_cost import Cost
from autosc.errors import AutoscError
from autosc.units import parse_latency
from tests.conftest import assert_one_line_error


@pytest.mark.parametrize(
    ("text", "ms"),
    [("1.5ms", 1.5), ("800us", 0.8), ("800\u00b5s", 0.8), ("0.002s", 2.0), (" 2 ms ", 2.0), ("1e3us", 1.0)],
)
def test_latency_grammar(text, ms):
    assert parse_latency(text) == pytest.approx(ms)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("1.5", "no unit"), ("1.5MS", "unknown unit 'MS'"), ("2min", "unknown unit"), ("0ms", "positive"),
     ("fast", "cannot read"), ("-1ms", "cannot read")],
)  # fmt: skip
def test_latency_grammar_errors(text, fragment):
    with pytest.raises(AutoscError, match=fragment):
        parse_latency(text)


@pytest.mark.parametrize(("text", "share"), [("60%", 0.6), ("0.6x", 0.6), (" 100% ", 1.0), ("12.5%", 0.125)])
def test_latency_share_grammar(text, share):
    """A share of the reference network's p50; the reference's figure sets the milliseconds and is kept."""
    budget = parse_budget(latency=text, human=Cost(1, 0, 0, latency_ms=4.0))
    assert (budget.latency_share, budget.latency_reference_ms) == (pytest.approx(share), 4.0)
    assert budget.latency_ms == pytest.approx(4.0 * share) and budget.latency_allowed_share == pytest.approx(share)
    assert f"{share:.0%} of the start network's latency" in budget.describe()
    assert Budget.from_dict(budget.to_dict()) == budget
    with pytest.raises(AutoscError, match="relative, but the human network's latency is not known"):
        parse_budget(latency=text)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("0%", "above 0 and at most 100%"), ("150%", "at most 100%"), ("1.5x", "at most 100%"), ("abc%", "cannot read"),
     ("-5%", "above 0"), ("nanx", "above 0")],
)  # fmt: skip
def test_latency_share_grammar_errors(text, fragment):
    with pytest.raises(AutoscError, match=fragment):
        parse_budget(latency=text, human=Cost(1, 0, 0, latency_ms=4.0))


def test_an_absolute_budget_keeps_its_limit_and_is_judged_against_the_reference():
    budget = parse_budget(latency="1ms", human=Cost(1, 0, 0, latency_ms=4.0))
    assert (budget.latency_ms, budget.latency_share, budget.latency_allowed_share) == (1.0, None, 0.25)
    retimed = budget.retimed(8.0)  # the host slowed 2x: the milliseconds stay, the allowed share halves
    assert (retimed.latency_ms, retimed.latency_allowed_share) == (1.0, 0.125)
    share = parse_budget(latency="25%", human=Cost(1, 0, 0, latency_ms=4.0)).retimed(8.0)
    assert (share.latency_ms, share.latency_allowed_share) == (2.0, 0.25)  # a share follows the reference


def test_latency_budget_alone_or_with_macs_and_its_meaning():
    b = parse_budget(budget="300M", latency="1.5ms", latency_threads=2, latency_batch=4)
    assert (b.macs, b.latency_ms, b.latency_threads, b.latency_batch) == (300_000_000, 1.5, 2, 4)
    assert "1.500ms latency (2 threads, batch 4)" in b.describe() and "300.00M MACs" in b.describe()
    assert Budget.from_dict(b.to_dict()) == b
    assert parse_budget(budget="300M").to_dict()["latency_ms"] is None  # every kind is written, None where uncapped
    with pytest.raises(AutoscError, match="--latency-batch must be a whole number"):
        parse_budget(latency="1ms", latency_batch=0)


@pytest.mark.parametrize(
    "args",
    [("--latency", "1.5"), ("--latency", "3 parsecs"), ("--latency", "1ms", "--latency-threads", "0")],
)
def test_latency_option_errors_are_one_line(cli, args):
    assert_one_line_error(cli("plan", "mobilenet_v2_cifar", "--input-size", "32", *args), "latency")
