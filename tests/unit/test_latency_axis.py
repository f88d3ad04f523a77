"""The latency model's tables over each segment's work rather than its map's area (autosc/cost/latency_model.py):
a stride after the adaptor makes a segment's cost a step function of the adaptor's size."""

from __future__ import annotations

import json
import math

import pytest

import autosc
from autosc.cost.latency_model import LatencyModel, Probe
from autosc.errors import AutoscError


def stride_2(k: int, size: tuple[int, int]) -> float:
    """A segment whose operators run at half the adaptor's size, rounded up (a stride-2 convolution)."""
    return (k + 1) * math.ceil(size[0] / 2) * math.ceil(size[1] / 2)


def _probes() -> list[Probe]:
    """Even sizes only; each segment costs 0.1 ms per unit of work, the stem 0.5 ms, the whole their sum."""
    probes = []
    for side in (2, 4, 6, 8, 10, 12):
        sizes = [(side, side), (side, side)]
        parts = [0.5, *(0.1 * stride_2(k, s) for k, s in enumerate(sizes))]
        probes.append(Probe(sizes, parts, sum(parts)))
    return probes


def test_a_table_over_work_follows_a_stride_that_one_over_area_misses():
    """At odd sizes (never probed) the work axis gives the step exactly; the area axis interpolates between the
    even neighbours and is off by a fifth at 3x3 (work of a 4x4 map, area of 9 / 16 of one)."""
    by_work, by_area = LatencyModel.fit(_probes(), coordinate=stride_2), LatencyModel.fit(_probes())
    assert by_work.axis == "work" and by_area.axis == "area"
    for side in (3, 5, 7, 9, 11):
        sizes = [(side, side), (side, side)]
        truth = 0.5 + sum(0.1 * stride_2(k, s) for k, s in enumerate(sizes))
        assert by_work.predict(sizes) == pytest.approx(truth, rel=1e-6)
    sizes = [(3, 3), (3, 3)]
    assert by_area.predict(sizes) < 0.8 * by_work.predict(sizes)
    assert by_work.predict([(3, 3), (3, 3)]) == pytest.approx(by_work.predict([(4, 4), (4, 4)]))  # one step


def test_a_model_over_work_reads_back_and_needs_its_cost_model():
    model = LatencyModel.fit(_probes(), coordinate=stride_2)
    back = LatencyModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert back == model and back.axis == "work" and back.coordinate is None
    with pytest.raises(AutoscError, match="without its cost model"):
        back.predict([(3, 3), (3, 3)])
    assert back.on(stride_2).predict([(3, 3), (3, 3)]) == model.predict([(3, 3), (3, 3)])
    old = {k: v for k, v in model.to_dict().items() if k != "axis"}  # a file written before the axis existed
    assert LatencyModel.from_dict(old).axis == "area"
    with pytest.raises(AutoscError, match="axis"):
        LatencyModel(0.1, [[4, 9]], [[1.0, 2.0]], axis="volume")


@pytest.mark.slow
def test_segment_work_is_what_each_adaptor_adds_to_the_counted_macs():
    """Second counter: changing one adaptor's size changes the network's counted MACs (checked against a traced
    pass by the cost model itself) by exactly the change in that segment's work; and a cost model attaches itself
    to a model over work it is given."""
    cost = autosc.plan("resnet18_cifar", budget="10M", input_size=32, num_classes=10, width=0.25).network.cost_model
    base = list(cost.min_sizes)
    steps = 0
    for k, ((h, w), (fh, _)) in enumerate(zip(cost.human_sizes, cost.min_sizes, strict=True)):
        for side in range(fh, h):
            small, large = list(base), list(base)
            small[k], large[k] = (side, min(side, w)), (side + 1, min(side + 1, w))
            added = cost.cost(large).total_macs - cost.cost(small).total_macs
            assert added == cost.segment_work(k, large[k]) - cost.segment_work(k, small[k])
            steps += cost.cost(large).macs == cost.cost(small).macs  # a stride: one more pixel, no more conv work
    assert steps > 0
    model = LatencyModel.fit([Probe(base, [0.1] * (len(base) + 1), 1.0)], coordinate=cost.segment_work)
    attached = cost.with_latency(LatencyModel.from_dict(model.to_dict())).latency
    assert attached.coordinate is not None and attached.predict(base) == pytest.approx(model.predict(base))


def test_sizes_between_the_last_probe_and_the_human_size_run_on_to_the_human_timing():
    """A 4x3 map (one side at the human 4) lies above the table's last point (3x3): it is predicted between that
    point and the human size's timing, in proportion to its area, and never below the last point when the human
    size (no Resize) is the faster one."""
    probes = [Probe([(2, 2)], [0.1, 0.2], 0.3), Probe([(3, 3)], [0.1, 0.3], 0.4), Probe([(4, 4)], [0.1, 0.6], 0.7)]
    model = LatencyModel.fit(probes, human_sizes=[(4, 4)])
    assert model.areas == [[4, 9]] and model.identity_ms == [0.6]
    seg = [model._segment(0, s) for s in ((3, 3), (4, 3), (4, 4))]
    assert seg == pytest.approx([0.3, 0.3 + 0.3 * 3 / 7, 0.6])
    cheap = LatencyModel.fit([*probes[:2], Probe([(4, 4)], [0.1, 0.25], 0.35)], human_sizes=[(4, 4)])
    assert cheap._segment(0, (4, 3)) == pytest.approx(0.3) and cheap._segment(0, (4, 4)) == pytest.approx(0.25)
