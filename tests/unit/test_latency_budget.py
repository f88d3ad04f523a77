"""Latency budgets (issue 17): the latency model, its cache, and the projection on predicted latency (the grammar
is in test_latency_grammar.py, the start calibration in test_latency_calibration.py).

The projection and the error paths run on synthetic monotone tables, so nothing here depends on timing; one
small test measures a real model end to end on a tiny network (what it asserts is structure, not speed).
"""

import json
from dataclasses import replace

import pytest
import torch

import autosc
from autosc.cost import latency_probe
from autosc.cost.budget import Budget
from autosc.cost.latency_model import LatencyModel, Probe, cache_path, load_cached, non_decreasing, save_cached
from autosc.cost.latency_probe import ProbeSettings, model_key, split_at_adaptors
from autosc.cost.projection import fits, project
from autosc.cost.terms.latency import AIM_UNDER
from autosc.errors import AutoscError
from autosc.planning import latency as latency_planning
from tests.conftest import assert_one_line_error
from tests.helpers import train_a_little


def test_the_fine_tune_after_a_shrink_is_half_the_run_unless_given():
    """Bounded by the run (a fixed 200 steps was twice a short benchmark run's whole training); half of it won back
    what a shrink cost where a tenth did not (RESULTS, "The fine-tune after a shrink")."""
    from autosc.run.training import shrink_steps
    from autosc.train import TrainConfig

    assert shrink_steps(TrainConfig(epochs=4, batch_size=128), 3000) == 96  # 4 epochs of 24 batches
    assert shrink_steps(TrainConfig(epochs=1, batch_size=128), 64) == 1  # at least one
    assert shrink_steps(TrainConfig(epochs=4, batch_size=128, shrink_steps=0), 3000) == 0
    with pytest.raises(AutoscError, match="--shrink-steps must be >= 0"):
        TrainConfig(shrink_steps=-1).validate()


def test_non_decreasing_is_the_least_squares_monotone_fit():
    assert non_decreasing([1, 3, 2, 4]) == [1, 2.5, 2.5, 4]
    assert non_decreasing([5, 1, 1, 1]) == [2, 2, 2, 2]
    assert non_decreasing([1, 2, 3]) == [1, 2, 3]


def _probes(adaptors=2, a=0.3, b=1.2):
    """Shapes timed with segment k costing (k + 1) * area / 100 ms, stem 0.5 ms, whole = a + b * sum (+ noise)."""
    probes = []
    for i, side in enumerate((2, 5, 9, 14, 20)):
        sizes = [(max(2, side - 2 * k), max(2, side - 2 * k)) for k in range(adaptors)]
        segments = [(k + 1) * h * w / 100 for k, (h, w) in enumerate(sizes)]
        segments[0] += 0.05 * (-1) ** i  # timing noise: not monotone as measured
        parts = [0.5, *segments]
        probes.append(Probe(sizes, parts, a + b * sum(parts)))
    return probes


def test_latency_model_fit_is_monotone_and_models_the_whole_network_correction():
    model = LatencyModel.fit(_probes())
    for table in model.ms:
        assert all(x <= y for x, y in zip(table, table[1:], strict=False))
    assert model.scale == pytest.approx(1.2, rel=0.05) and model.offset_ms == pytest.approx(0.3, abs=0.1)
    assert max(abs(e) for e in model.errors()) < 0.05
    small, large = model.predict([(5, 5), (3, 3)]), model.predict([(9, 9), (3, 3)])
    assert small < large
    assert LatencyModel.from_dict(json.loads(json.dumps(model.to_dict()))) == model
    with pytest.raises(AutoscError, match="non-decreasing"):
        LatencyModel(0.1, [[4, 9]], [[2.0, 1.0]])


def test_cache_key_changes_with_threads_and_batch_and_the_cache_reads_back(tmp_path):
    places = [("features.2.adaptor", (32, 32)), ("features.9.adaptor", (8, 8))]
    timing = ProbeSettings(cache_dir=tmp_path)
    base = model_key({"name": "m"}, (32, 32), 3, places, threads=1, batch=1, timing=timing)
    others = [
        model_key({"name": "m"}, (32, 32), 3, places, threads=2, batch=1, timing=timing),
        model_key({"name": "m"}, (32, 32), 3, places, threads=1, batch=8, timing=timing),
        model_key({"name": "m", "width": 1.5}, (32, 32), 3, places, threads=1, batch=1, timing=timing),
        model_key({"name": "m"}, (32, 32), 3, places, threads=1, batch=1, timing=replace(timing, random_probes=2)),
        model_key({"name": "m"}, (32, 32), 3, places, threads=1, batch=1, timing=replace(timing, block=1)),
    ]
    assert "cpu" in base and "onnxruntime" in base
    paths = {cache_path(k, tmp_path) for k in [base, *others]}
    assert len(paths) == 6
    model = LatencyModel.fit(_probes(), key=base)
    save_cached(model, tmp_path)
    assert load_cached(base, tmp_path) == model
    assert load_cached(others[0], tmp_path) is None
    cache_path(base, tmp_path).write_text("{ half a file")
    assert load_cached(base, tmp_path) is None  # unreadable: measured again, not an error


def _plan(budget="50%", width=1.0):
    return autosc.plan("mobilenet_v2_cifar", budget=budget, input_size=16, num_classes=10, width=width)


def _synthetic(cost_model, per_pixel=(0.002, 0.01, 0.03), stem=0.2):
    """A monotone table over each adaptor's range: segment k costs per_pixel[k] ms per output pixel."""
    areas, ms = [], []
    for k, ((h, w), (fh, fw)) in enumerate(zip(cost_model.human_sizes, cost_model.min_sizes, strict=True)):
        a = sorted({fh * fw, (fh + h) // 2 * ((fw + w) // 2), h * w})
        areas.append(a)
        ms.append([per_pixel[min(k, len(per_pixel) - 1)] * v for v in a])
    return LatencyModel(stem, areas, ms)


@pytest.mark.slow
def test_projection_on_predicted_latency_is_tight():
    model = _plan().network.cost_model
    model.with_latency(_synthetic(model))
    human = model.human_cost().latency_ms
    budget = Budget.of(latency_ms=0.6 * human)
    projection = project(model, [1.0] * len(model.human_sizes), budget)
    # aimed AIM_UNDER under the limit, so that one measurement's few percent of noise leave it within the limit
    assert fits(projection.cost, budget) and projection.cost.latency_ms <= (1 - AIM_UNDER) * 0.6 * human
    assert projection.cost.latency_ms == pytest.approx(model.latency.predict(projection.sizes))
    grown = within_limit = 0
    for k, ((h, w), (hh, hw)) in enumerate(zip(projection.sizes, model.human_sizes, strict=True)):
        for bigger in ((h + 1, w), (h, w + 1)):
            if bigger[0] <= hh and bigger[1] <= hw:
                trial = [*projection.sizes[:k], bigger, *projection.sizes[k + 1 :]]
                assert not fits(model.cost(trial), budget), (k, bigger)  # one more pixel breaks the aim
                if model.cost(trial).latency_ms <= 0.6 * human:
                    within_limit += 1  # under the limit itself, but not under the aim
                grown += 1
    assert grown > 0 and within_limit > 0
    both = Budget.of(macs=projection.cost.total_macs // 2, latency_ms=0.6 * human)  # the tighter of the two binds
    assert project(model, [1.0] * len(model.human_sizes), both).cost.total_macs <= both.macs


@pytest.mark.slow
def test_relaxed_cost_counts_the_latency_budget():
    network = _plan().network
    network.cost_model.with_latency(_synthetic(network.cost_model))
    human = network.cost_model.human_cost().latency_ms
    network.budget = Budget.of(latency_ms=human / 2)
    latency, product, expected = network.cost_model.latency, 1.0, 0.0
    for k, (s, size) in enumerate(zip(network.factors(), network.cost_model.human_sizes, strict=True)):
        product *= s
        expected += latency.segment_share(k, size) * product**2  # each segment scales with its map's area
    expected = (latency.fixed_share() + expected) / (human / 2)
    assert network.relaxed_cost().item() == pytest.approx(expected, rel=1e-5)
    assert 1.5 < expected <= 2.0  # the identity shape's factors sit just under 1: about twice the budget


@pytest.fixture
def fake_timing(monkeypatch):
    """make_plan with a synthetic latency model and a fixed human-network time: nothing is timed."""

    def measure(net, names, *, cost_model, **_):
        return _synthetic(cost_model)

    monkeypatch.setattr(latency_planning, "fit_latency_model", measure)
    monkeypatch.setattr(latency_planning, "time_spec", lambda spec, *a: 2.0 * spec.width**2)
    monkeypatch.setattr(latency_planning, "time_share", lambda spec, reference, *a: (spec.width / reference.width) ** 2)
    monkeypatch.setattr(latency_planning, "calibrate", _calibrate_at(1.0))


def _calibrate_at(ratio: float):
    """A start calibration on a host ``ratio`` times slower than the (synthetic) model and the human time say: the
    start shape and the reference (the human network at width 1, 2 ms) both measured that much slower."""

    def calibrate(net, names, sizes, model, *, reference=None, **_):
        return model.calibrated(sizes, ratio * model.predict(sizes)), ratio * 2.0 if reference is not None else None

    return calibrate


@pytest.mark.slow
def test_impossible_latency_budget_is_refused_before_training_with_the_floor(fake_timing, cli):
    result = cli("plan", "mobilenet_v2_cifar", "--latency", "1us", "--input-size", "16", "--width", "1")
    assert_one_line_error(result, "impossible", "predicted latency against 1us")


@pytest.mark.slow
def test_plan_reports_the_latency_envelope(fake_timing, cli):
    result = cli("plan", "mobilenet_v2_cifar", "--latency", "1ms", "--input-size", "16", "--json")
    assert result.code == 0, result.err
    plan = result.json()
    lat = plan["latency_ms"]
    assert lat["floor"] < lat["projected"] <= 1.0 < lat["widened"]
    assert lat["human_measured"] == 2.0 and (lat["threads"], lat["batch"]) == (1, 1)
    assert plan["budget"]["latency_ms"] == 1.0
    text = cli("plan", "mobilenet_v2_cifar", "--latency", "1ms", "--input-size", "16", "--width", str(plan["width"]))
    assert "smallest reachable (predicted)" in text.out and "budget 1.000ms" in text.out


@pytest.mark.slow
def test_plan_with_quantize_int8_times_the_int8_network(fake_timing, cli, monkeypatch):
    """``autosc plan --latency ... --quantize int8``: the reference and the latency model are timed as INT8 files
    (the timing settings say so; the synthetic model stands in for the timings)."""
    asked = []

    def measure(net, names, *, cost_model, timing, **_):
        asked.append(timing.int8)
        return replace(_synthetic(cost_model), key={"int8": True} if timing.int8 else {})

    monkeypatch.setattr(latency_planning, "fit_latency_model", measure)
    monkeypatch.setattr(latency_planning, "time_spec", lambda spec, size, budget, timing: asked.append(timing.int8) or 2.0)
    result = cli("plan", "mobilenet_v2_cifar", "--latency", "1ms", "--input-size", "16", "--quantize", "int8", "--json")
    assert result.code == 0, result.err
    assert asked and all(asked) and result.json()["latency_ms"]["int8"] is True
    assert_one_line_error(cli("plan", "mobilenet_v2_cifar", "--quantize", "int4"), "--quantize must be one of")


@pytest.mark.slow
def test_split_at_adaptors_computes_the_collapsed_network():
    network = _plan(budget="40%").network
    train_a_little(network)
    network.update_shape()
    sizes = [a.size for a in network.adaptors()]
    network.collapse()  # full branch: what a collapsed run exports and what the parts are timed as
    split, adaptors = split_at_adaptors(network.net, network.adaptor_names)
    for adaptor, size in zip(adaptors, sizes, strict=True):
        adaptor.size = size
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        expected, got = network.net.eval()(x), split(x)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-6 * expected.abs().max().item())
    assert expected.abs().max() > 0.1  # trained a little: not the near-zero logits of a fresh network
    assert sorted(n for n, _ in split.named_children()) == ["submod_0", "submod_1", "submod_2", "submod_3"]


@pytest.mark.slow
def test_fit_latency_model_end_to_end_then_from_the_cache(tmp_path, monkeypatch):
    network = autosc.plan("mobilenet_v2_cifar", budget="1M", input_size=16, num_classes=10, width=0.25).network
    timing = ProbeSettings(cache_dir=tmp_path, probes=2, random_probes=2, identity_probes=1, runs=3, block=2)
    calls = []
    model = latency_probe.fit_latency_model(
        network.net, network.adaptor_names, input_size=(16, 16), identity={"name": "tiny"}, timing=timing,
        cost_model=network.cost_model,
    )  # fmt: skip
    n = len(network.adaptor_names)
    assert len(model.areas) == n and len(model.probes) == 4 + (n - 1)
    cost = network.cost_model
    assert [list(s) for s in model.probes[0].sizes] == [list(s) for s in cost.human_sizes]
    for probe in model.probes[2:]:  # random and identity probes: shapes training can reach, floor to human size
        assert all(f[0] <= s[0] <= h[0] and f[1] <= s[1] <= h[1]
                   for s, f, h in zip(probe.sizes, cost.min_sizes, cost.human_sizes, strict=True))  # fmt: skip
    assert model.probes[2].sizes != model.probes[3].sizes
    for j, probe in enumerate(model.probes[4:], start=1):  # the first j maps whole
        assert [tuple(s) for s in probe.sizes[:j]] == [tuple(h) for h in cost.human_sizes[:j]]
    assert all(len(p.parts_ms) == len(network.adaptor_names) + 1 and p.whole_ms > 0 for p in model.probes)
    # every segment's table is non-decreasing in area (PAV); the whole prediction is not compared at the two ends,
    # since the human size's Resize-free entry may be faster than a smaller size with its Resize (and 3 runs are noisy)
    assert all(all(b >= a for a, b in zip(ms, ms[1:], strict=False)) for ms in model.ms)
    monkeypatch.setattr("autosc.latency.bench", lambda *a, **k: calls.append(a))
    again = latency_probe.fit_latency_model(
        network.net, network.adaptor_names, input_size=(16, 16), identity={"name": "tiny"}, timing=timing
    )
    assert again == model and not calls  # read back, nothing timed


@pytest.mark.slow
def test_a_network_measured_over_its_latency_budget_is_shrunk_and_measured_again(tmp_path, monkeypatch):
    """The measurement, not the prediction, decides: over by more than the noise -> shrink, re-export, re-time."""
    from autosc.config import ExportConfig
    from autosc.report import schema
    from autosc.run import RunFolder, measure, stages

    network = _plan().network
    network.cost_model.with_latency(_synthetic(network.cost_model))
    budget_ms = 0.7 * network.cost_model.human_cost().latency_ms
    network.budget = Budget.of(latency_ms=budget_ms)
    train_a_little(network)
    folder = RunFolder(tmp_path)
    frozen, _ = stages.freeze_and_save(network, folder)
    sizes_before = [list(a.size) for a in network.adaptors()]
    networks = {"compressed": frozen, "human": network.spec.build()}
    exported = stages.export_networks(networks, (16, 16), 3, folder, ExportConfig(exporter="torchscript"))
    timed = []

    def fake_measure(paths, runs, *, threads, batch, int8=False):  # the first frozen network runs 30% over, later fit
        timed.append(paths["compressed"].stat().st_mtime_ns)  # over in the measurement and in its confirmation
        p50 = budget_ms * (1.3 if len(timed) <= 2 * stages.LATENCY_ROUNDS else 0.95) + 0.001 * (len(timed) % 3)
        t = schema.Timing(p50, p50 * 1.1, p50 * 1.2)
        return schema.Latency(compressed=t, human=schema.Timing(2.0, 2.1, 2.2), threads=threads, batch=batch, runs=runs)

    monkeypatch.setattr(measure, "time_onnx", fake_measure)
    monkeypatch.setattr(measure, "CONFIRM_PAUSE_S", 0.0)
    recalibrated = []
    check = stages.check_latency_budget(
        network, networks, exported, (16, 16), 3, folder, ExportConfig(exporter="torchscript"),
        retrain=lambda net, teacher: recalibrated.append([list(m.size) for m in net.modules() if hasattr(m, "size")])
        or {"steps": 0, "trained": 0.5, "shrunk": 0.4, "fine_tuned": None},
    )  # fmt: skip
    lat = check.latency
    assert len(recalibrated) == 1  # once per shrink, on the shrunk network, before it was saved and exported
    assert recalibrated[0] == [a["size"] for a in check.shape["adaptors"]]
    assert lat.shrinks == 1 and lat.budget_met and lat.rounds == stages.LATENCY_ROUNDS
    assert lat.compressed.p50 <= budget_ms and lat.spread == pytest.approx(0.001)
    assert len(set(timed)) == 2 and len(timed) == 3 * stages.LATENCY_ROUNDS  # exported again before it was timed
    assert network.budget.latency_ms == budget_ms  # the user's budget is left as it is: the report states it
    assert lat.predicted <= check.budget.latency_ms < budget_ms  # the tighter budget the kept network was frozen under
    after = check.shape["adaptors"]
    assert sum(a["size"][0] * a["size"][1] for a in after) < sum(h * w for h, w in sizes_before)
    assert lat.predicted == pytest.approx(network.cost_model.latency.predict([tuple(a["size"]) for a in after]))
    assert lat.predicted < budget_ms  # aimed under the budget by the measured overshoot
    assert schema.Latency(**{**lat.__dict__}).to_dict()["budget_met"] is True


def test_the_human_size_is_its_own_resize_free_entry():
    """At its human size an adaptor exports no Resize, so that point may be cheaper than one pixel less; the
    model keeps it apart from the (monotone) table of resized sizes instead of averaging it in."""
    human = [(10, 10), (5, 5)]
    probes = [Probe(human, [0.5, 1.0, 0.4], 2.0)]  # identity: no resize in either segment
    for side in (2, 4, 6, 9):  # resized: 0.3 ms of Resize on top of the area term
        sizes = [(side, side), (max(2, side // 2), max(2, side // 2))]
        parts = [0.5, 0.3 + side * side / 100, 0.3 + 0.4 * sizes[1][0] ** 2 / 25]
        probes.append(Probe(sizes, parts, sum(parts)))
    model = LatencyModel.fit(probes, human_sizes=human)
    assert model.identity_ms == [1.0, 0.4]
    assert model.predict(human) < model.predict([(9, 9), (4, 4)])  # the Resize-free shape is the cheaper one
    assert all(a < 100 for a in model.areas[0])  # the human point is not a table point
    assert LatencyModel.from_dict(json.loads(json.dumps(model.to_dict()))) == model
    with pytest.raises(AutoscError, match="no probe at adaptor 0's human size"):
        LatencyModel.fit(probes[1:], human_sizes=human)


@pytest.mark.parametrize("mode", ["standard", "both"])
@pytest.mark.slow
def test_a_latency_budget_projects_the_standard_and_both_modes(fake_timing, mode):
    plan = autosc.plan("mobilenet_v2_cifar", latency="1ms", input_size=16, num_classes=10, mode=mode)
    assert "standard" in {a.kind for a in plan.network.adaptors()}
    lat = plan.to_dict()["latency_ms"]
    assert lat["floor"] < lat["projected"] <= 1.0 < lat["widened"]  # predicted: the same hard budget as autosc mode


@pytest.mark.parametrize("fault", ["not a folder", "disk full"])
def test_a_cache_that_cannot_be_written_is_one_warning_and_the_measurement_stands(tmp_path, monkeypatch, capsys, fault):
    """A full or read-only cache must not abort a --latency run: the model measured is used, the path named."""
    from autosc import io
    from autosc.cost import latency_model

    model = LatencyModel.fit(_probes(), key={"format": "x", "name": "m"})
    cache = tmp_path / "cache"
    if fault == "not a folder":
        cache.write_text("a file where the cache folder should be")
    else:

        def full(path, data):
            raise OSError(28, "No space left on device", str(path))

        monkeypatch.setattr(io, "write_json", full)
    assert save_cached(model, cache) is None
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: cannot write the latency cache "), lines
    assert str(latency_model.cache_path(model.key, cache)) in lines[0]
    assert "uses its measurement" in lines[0] and "Traceback" not in lines[0]
