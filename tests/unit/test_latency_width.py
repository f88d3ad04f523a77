"""``--width auto`` under a latency budget (issue 29, item 1): the width is sized by candidate networks' shares of
the reference timed together with it, corrected until it stays. Nothing is timed: the shares are injected."""

from __future__ import annotations

import pytest

from autosc import ModelSpec
from autosc.cost.budget import Budget
from autosc.cost.latency_probe import ProbeSettings
from autosc.cost.width import auto_width
from autosc.planning import latency as latency_planning

HUMAN = ModelSpec("mobilenet_v2_cifar", 1.0, 10, 3)
SIZE = (16, 16)


def test_the_width_is_sized_by_shares_timed_with_the_reference_until_it_stays(monkeypatch):
    """Latency falling faster than MACs as the network narrows (share = width^2.5, MACs about width^2): the MACs
    stand-in of one measurement at width 1 sizes the network too narrow (its full-size network already under the
    budget, as resnet18@224 at 60% once was); the corrections converge on the width whose full-size network runs
    at about 1.25 x the allowed share (the adaptors remove the rest)."""
    calls = []

    def share(spec, reference, *_):
        calls.append((spec.width, reference.width))
        return spec.width**2.5

    monkeypatch.setattr(latency_planning, "time_share", share)
    monkeypatch.setattr(latency_planning, "time_spec", lambda *a: pytest.fail("the reference's p50 is the budget's"))
    budget = Budget.of(latency_ms=1.0, latency_reference_ms=2.0)  # 50% of the reference
    sizing = latency_planning.width_budget(HUMAN, SIZE, budget, 1.25, ProbeSettings())
    width = auto_width(HUMAN, SIZE, sizing, 1.25)
    assert 2 <= len(calls) <= latency_planning.WIDTH_CORRECTIONS and {r for _, r in calls} == {1.0}
    once = auto_width(HUMAN, SIZE, Budget.of(macs=int(0.5 * sizing_macs(1.0))), 1.25)  # one measurement, at width 1
    assert width > once
    assert width**2.5 == pytest.approx(1.25 * 0.5, rel=0.06)


def sizing_macs(width: float) -> int:
    from autosc.cost.width import human_network_cost

    return human_network_cost(HUMAN.at_width(width), SIZE).budget_macs("standard")


def test_a_candidate_that_is_the_reference_is_not_timed(monkeypatch):
    monkeypatch.setattr("autosc.latency.time_together", lambda *a, **k: pytest.fail("timed"))
    assert latency_planning.time_share(HUMAN, HUMAN, SIZE, Budget.of(latency_ms=1.0), ProbeSettings()) == 1.0


def test_a_share_is_the_middle_of_three_rounds_timed_together(monkeypatch):
    """One round ranged 0.34-0.42 on one pruned network, and the pruning step kept a low draw that the end check
    then measured over the budget: a share is read as the end check reads its own, the middle round."""
    rounds = iter([(0.30, 1.0), (0.45, 1.0), (0.72, 2.0)])  # candidate, reference p50 per round: 0.30, 0.45, 0.36
    calls = []

    def time_together(networks, *a, **k):
        calls.append(sorted(networks))
        c, r = next(rounds)
        return {"candidate": {"p50": c}, "reference": {"p50": r}}

    monkeypatch.setattr("autosc.latency.time_together", time_together)
    share = latency_planning.time_share(HUMAN.at_width(0.5), HUMAN, SIZE, Budget.of(latency_ms=1.0), ProbeSettings())
    assert share == pytest.approx(0.36)
    assert calls == [["candidate", "reference"]] * latency_planning.SHARE_ROUNDS == [["candidate", "reference"]] * 3
