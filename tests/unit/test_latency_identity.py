"""What the whole network saves where an adaptor keeps its human size (no Resize), fitted on whole networks
(autosc/cost/latency_model.py: LatencyModel.fit; autosc/cost/probe_shapes.py: identity_shapes)."""

from __future__ import annotations

import json

import pytest

import autosc
from autosc.cost.latency_model import LatencyModel, Probe
from autosc.cost.probe_shapes import identity_shapes, probe_shapes

HUMAN = [(8, 8), (4, 4)]
SAVED = (0.05, 0.02)  # what the whole saves with adaptor k at its human size; its part timed alone does not show it


def _probe(sizes: list[tuple[int, int]]) -> Probe:
    """Parts: stem 0.1 ms, segment k 0.01 * (k + 1) ms per pixel; the whole: 0.03 ms more than their sum, less
    the saving of each adaptor at its human size."""
    parts = [0.1, *(0.01 * (k + 1) * h * w for k, (h, w) in enumerate(sizes))]
    kept = sum(s for s, size, human in zip(SAVED, sizes, HUMAN, strict=True) if tuple(size) == human)
    return Probe(sizes, parts, 0.03 + sum(parts) - kept)


def _shapes(with_identity: bool) -> list[list[tuple[int, int]]]:
    shapes = [HUMAN, [(2, 2), (2, 2)], [(4, 4), (2, 2)], [(6, 6), (3, 3)], [(7, 7), (3, 3)], [(5, 5), (2, 2)],
              [(7, 7), (2, 2)], [(3, 3), (2, 2)]]  # fmt: skip
    return shapes + ([[(8, 8), (2, 2)], [(8, 8), (3, 3)]] if with_identity else [])


def test_the_saving_at_the_human_size_is_fitted_on_whole_networks_and_predicts_shapes_never_probed():
    model = LatencyModel.fit([_probe(s) for s in _shapes(True)], human_sizes=HUMAN)
    assert LatencyModel.from_dict(json.loads(json.dumps(model.to_dict()))) == model
    assert max(abs(e) for e in model.errors()) < 1e-9
    assert model.scale == pytest.approx(1.0) and model.offset_ms == pytest.approx(0.03)
    assert model.identity_ms == pytest.approx([0.64, 0.32]) and model.saved_ms == pytest.approx(SAVED)
    for sizes in ([(8, 8), (3, 2)], [(8, 8), (4, 3)], [(6, 6), (4, 4)]):  # one map whole, the other not
        assert model.predict(sizes) == pytest.approx(_probe(sizes).whole_ms, rel=1e-9)
    # without probes that keep the first map alone, the savings cannot be told apart: none is fitted, and a
    # shape keeping only its first map is predicted slow by a good part of its saving (what a start shape was, before)
    old = LatencyModel.fit([_probe(s) for s in _shapes(False)], human_sizes=HUMAN)
    assert old.identity_ms == pytest.approx([0.64, 0.32]) and not old.saved_ms
    assert old.predict([(8, 8), (3, 3)]) > _probe([(8, 8), (3, 3)]).whole_ms + 0.3 * SAVED[0]


def test_too_few_probes_fit_no_saving():
    shapes = _shapes(True)[:4] + _shapes(True)[-1:]  # five probes: the savings and the line would fit them exactly
    model = LatencyModel.fit([_probe(s) for s in shapes], human_sizes=HUMAN)
    assert not model.saved_ms


@pytest.mark.slow
def test_identity_shapes_keep_their_first_maps_whole_and_the_rest_in_range():
    cost = autosc.plan("mobilenet_v2_cifar", budget="5M", input_size=32, num_classes=10, width=0.5).network.cost_model
    n = len(cost.human_sizes)
    shapes = identity_shapes(cost, 3, seed=0)
    assert len(shapes) == 3 * (n - 1)
    for j in range(1, n):
        for sizes in shapes[3 * (j - 1) : 3 * j]:
            assert [tuple(s) for s in sizes[:j]] == [tuple(h) for h in cost.human_sizes[:j]]
            assert all(f[0] <= s[0] <= h[0] and f[1] <= s[1] <= h[1]
                       for s, f, h in zip(sizes, cost.min_sizes, cost.human_sizes, strict=True))  # fmt: skip
    assert identity_shapes(cost, 3, seed=0) == shapes and identity_shapes(cost, 3, seed=1) != shapes
    assert probe_shapes(cost, 4, 2, identity_probes=3)[-len(shapes) :] == identity_shapes(cost, 3, seed=1)
