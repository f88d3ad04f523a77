"""Latency budgets: the start calibration (the host's drift since the model was measured) and what it changes:
the ratio kept out of the cache, a narrower width on a slower host, a relative budget retimed with its reference.
Nothing is timed: the latency model is synthetic (test_latency_budget.py)."""

import json
from dataclasses import replace

import pytest

import autosc
from autosc.cost.latency_model import LatencyModel, load_cached, save_cached
from autosc.cost.latency_probe import ProbeSettings
from autosc.errors import AutoscError, UnreachableBudget
from autosc.planning import latency as latency_planning

from .test_latency_budget import (
    _calibrate_at,
    _probes,
    _synthetic,
    fake_timing,  # noqa: F401  (a fixture: a synthetic latency model, nothing timed)
)


def test_calibration_rescales_predictions_and_stays_out_of_the_cache(tmp_path):
    model = LatencyModel.fit(_probes(), key={"name": "m"})
    sizes = [(9, 9), (7, 7)]
    calibrated = model.calibrated(sizes, 1.5 * model.predict(sizes))
    assert calibrated.calibration == pytest.approx(1.5)
    assert calibrated.predict(sizes) == pytest.approx(1.5 * model.predict(sizes))
    assert calibrated.predict([(5, 5), (3, 3)]) == pytest.approx(1.5 * model.predict([(5, 5), (3, 3)]))
    assert calibrated.segment_share(1, (3, 3)) == pytest.approx(1.5 * model.segment_share(1, (3, 3)))
    assert calibrated.fixed_share() == pytest.approx(1.5 * model.fixed_share())
    assert calibrated.errors() == model.errors()  # the in-sample fit is the model's, as measured
    assert LatencyModel.from_dict(json.loads(json.dumps(calibrated.to_dict()))) == calibrated
    save_cached(calibrated, tmp_path)
    assert load_cached(calibrated.key, tmp_path) == model  # the cache holds the model as measured
    with pytest.raises(AutoscError, match="positive measured latency"):
        model.calibrated(sizes, 0.0)


@pytest.mark.slow
@pytest.mark.usefixtures("fake_timing")
def test_a_plan_calibrates_on_its_start_shape_and_a_rebuild_reuses_the_ratio(monkeypatch):
    """Measured 2x slower now than the (cached) model says: the start shape is projected on the measurement, the
    ratio is in the plan's config, and rebuilding from that config (a resumed run) does not time again."""
    from autosc.planning import network_from_config

    monkeypatch.setattr(latency_planning, "calibrate", _calibrate_at(2.0))
    plain = autosc.plan("mobilenet_v2_cifar", latency="1ms", input_size=16, num_classes=10, width=1.0,
                      timing=ProbeSettings(calibrate=False))  # fmt: skip
    plan = autosc.plan("mobilenet_v2_cifar", latency="1ms", input_size=16, num_classes=10, width=1.0)
    assert plain.network.cost_model.latency.calibration == 1.0
    assert plan.network.cost_model.latency.calibration == pytest.approx(2.0, rel=0.2)
    assert plan.projected.cost.latency_ms <= 1.0
    area = sum(h * w for h, w in plan.projected.sizes)
    assert area < sum(h * w for h, w in plain.projected.sizes)  # projected on the slower host: smaller
    config = plan.network.config()
    assert config["latency_calibration"] == plan.network.cost_model.latency.calibration
    assert plan.to_dict()["latency_ms"]["calibration"] == config["latency_calibration"]

    def no_timing(*_a, **_k):
        raise AssertionError("a rebuilt network must not calibrate again")

    monkeypatch.setattr(latency_planning, "calibrate", no_timing)
    again = network_from_config(config)
    assert again.cost_model.latency.calibration == config["latency_calibration"]
    assert [tuple(s) for s in again.update_shape().sizes] == [tuple(s) for s in plan.projected.sizes]


@pytest.mark.slow
@pytest.mark.usefixtures("fake_timing")
def test_a_host_slower_than_the_width_choice_assumed_gets_a_narrower_width(monkeypatch):
    """--width auto chose by (cached) timings; when the calibration says the host runs slower now and the budget
    is out of reach at that width, the plan chooses again for the budget in today's milliseconds."""

    def measure(net, names, *, cost_model, identity, **_):  # a narrower network is faster
        w = identity["width"]
        return _synthetic(cost_model, per_pixel=(0.002 * w * w, 0.01 * w * w, 0.03 * w * w), stem=0.2 * w * w)

    monkeypatch.setattr(latency_planning, "fit_latency_model", measure)
    first = autosc.plan("mobilenet_v2_cifar", latency="1ms", input_size=16, num_classes=10)
    floor = first.floor.latency_ms
    ratio = 1.5 / floor  # the floor at that width now predicts 1.5 ms: out of reach of 1 ms
    monkeypatch.setattr(latency_planning, "calibrate", _calibrate_at(ratio))
    plan = autosc.plan("mobilenet_v2_cifar", latency="1ms", input_size=16, num_classes=10)
    assert plan.spec.width < first.spec.width
    assert plan.network.cost_model.latency.calibration == pytest.approx(ratio)
    assert plan.projected.cost.latency_ms <= 1.0
    with pytest.raises(UnreachableBudget, match="impossible"):
        autosc.plan("mobilenet_v2_cifar", latency="1ms", input_size=16, num_classes=10, width=first.spec.width)


@pytest.mark.slow
@pytest.mark.usefixtures("fake_timing")
def test_a_model_measured_in_a_slow_spell_is_calibrated_before_its_reach_is_judged(monkeypatch):
    """Timed while the host ran 3x slower than now, the model's smallest shape misses the budget as measured; the
    plan calibrates on that smallest shape, then on the start shape it projects, and gets the steady plan's shape
    (it used to refuse the budget as impossible before calibrating)."""
    steady = autosc.plan("mobilenet_v2_cifar", latency="50%", input_size=16, num_classes=10, width=1.0)

    def measure(net, names, *, cost_model, **_):
        return _synthetic(cost_model, per_pixel=(0.006, 0.03, 0.09), stem=0.6)

    calls = []

    def calibrate(net, names, sizes, model, *, reference=None, **_):
        calls.append([tuple(s) for s in sizes])  # the host now: a third of what the model was measured at
        return model.calibrated(sizes, replace(model, calibration=1.0).predict(sizes) / 3), 2.0

    monkeypatch.setattr(latency_planning, "fit_latency_model", measure)
    monkeypatch.setattr(latency_planning, "calibrate", calibrate)
    slow = autosc.plan("mobilenet_v2_cifar", latency="50%", input_size=16, num_classes=10, width=1.0)
    cost = slow.network.cost_model
    assert measure(None, None, cost_model=cost).predict(cost.min_sizes) > slow.network.budget.latency_ms  # as measured
    assert calls == [[tuple(s) for s in cost.min_sizes], [tuple(s) for s in calls[1]]] and calls[1] != calls[0]
    assert cost.latency.calibration == pytest.approx(1 / 3)
    assert [tuple(s) for s in slow.projected.sizes] == [tuple(s) for s in steady.projected.sizes]


@pytest.mark.slow
@pytest.mark.usefixtures("fake_timing")
def test_a_relative_budget_follows_the_reference_timed_with_the_start_shape(monkeypatch):
    """``--latency 50%``: half the reference network's p50. On a host twice as slow at the calibration as the cached
    timings say, the milliseconds double with the reference, and the projected shape is the one a steady host gets
    (the drift cancels); the share, the reference and the calibration go into the plan, for a resumed run."""
    from autosc.planning import network_from_config

    steady = autosc.plan("mobilenet_v2_cifar", latency="50%", input_size=16, num_classes=10, width=1.0)
    assert steady.network.budget.latency_ms == pytest.approx(1.0)  # half the 2 ms reference
    monkeypatch.setattr(latency_planning, "calibrate", _calibrate_at(2.0))
    slow = autosc.plan("mobilenet_v2_cifar", latency="50%", input_size=16, num_classes=10, width=1.0)
    budget = slow.network.budget
    assert (budget.latency_share, budget.latency_reference_ms, budget.latency_ms) == (0.5, 4.0, 2.0)
    assert budget.latency_allowed_share == 0.5
    assert [tuple(s) for s in slow.projected.sizes] == [tuple(s) for s in steady.projected.sizes]
    absolute = autosc.plan("mobilenet_v2_cifar", latency="1ms", input_size=16, num_classes=10, width=1.0).network
    assert (absolute.budget.latency_ms, absolute.budget.latency_reference_ms) == (1.0, 4.0)  # judged as a quarter
    config = slow.network.config()
    again = network_from_config(json.loads(json.dumps(config)))
    assert again.budget == budget
    assert [tuple(s) for s in again.update_shape().sizes] == [tuple(s) for s in slow.projected.sizes]
