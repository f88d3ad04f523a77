"""Re-timing the learning shape under a latency budget (issue 29, item 2; autosc/run/retime.py): nothing is timed,
the measurements are injected."""

from __future__ import annotations

import os
import socket
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import autosc
from autosc.cost.budget import Budget
from autosc.distributed import DistContext, from_main
from autosc.planning import latency as latency_planning
from autosc.run.retime import RETIME_TOLERANCE, Retimed, Retimer
from autosc.train import TrainConfig
from tests.unit.test_latency_budget import _calibrate_at, _synthetic


@pytest.fixture
def plan(monkeypatch):
    """A 50% plan on the synthetic latency model, the reference (the human network) at 2 ms: nothing is timed."""
    monkeypatch.setattr(
        latency_planning, "fit_latency_model", lambda net, names, *, cost_model, **_: _synthetic(cost_model)
    )
    monkeypatch.setattr(latency_planning, "time_spec", lambda spec, *a: 2.0)
    monkeypatch.setattr(latency_planning, "calibrate", _calibrate_at(1.0))
    return autosc.plan("mobilenet_v2_cifar", latency="50%", input_size=16, num_classes=10, width=1.0)


def host(slower: float, shape_over: float, spread: float = 0.0):
    """A measurement on a host ``slower`` times slower than planned, where the shape runs ``shape_over`` times what
    the model predicts for it (the model's own error at that shape): the reference takes 2 ms x ``slower``;
    ``spread``: half the range of the rounds' shares."""
    calls = []

    def measure(network):
        model, sizes = network.cost_model.latency, network.last_projection.sizes
        calls.append([tuple(s) for s in sizes])
        calibration = model.calibrated(sizes, slower * shape_over * model.predict(sizes)).calibration
        return Retimed(calibration, 2.0 * slower, spread)

    return measure, calls


def slower_than(network, sizes, than) -> bool:
    """``sizes`` predicted slower than ``than`` by the network's latency model as it is now (a projection moves
    pixels between maps, so the summed area need not follow the latency)."""
    model = network.cost_model.latency
    return model.predict([tuple(s) for s in sizes]) > model.predict([tuple(s) for s in than])


@pytest.mark.slow
def test_a_shape_that_measures_over_the_model_is_projected_again_under_the_same_share(plan):
    """Host 2x slower and the shape 30% over the model: the shape is projected again, smaller; the budget keeps its
    share of the reference timed with it (its milliseconds double), and the new shape's prediction is within it."""
    network = plan.network
    before = [tuple(s) for s in network.update_shape().sizes]
    measure, calls = host(slower=2.0, shape_over=1.3)
    retimer = Retimer(network, measure, log=lambda _: None)
    record = retimer.retime(epoch=1, step=10, device=torch.device("cpu"))
    assert calls == [before]
    assert record["re_projected"] and record["measured_share"] == pytest.approx(1.3 * record["predicted_share"])
    assert record["allowed_share"] == pytest.approx(0.5) and record["sizes"] == [list(s) for s in before]
    after = [tuple(s) for s in network.last_projection.sizes]
    assert record["new_sizes"] == [list(s) for s in after] and slower_than(network, before, after)
    budget = network.budget
    assert (budget.latency_share, budget.latency_reference_ms, budget.latency_ms) == (0.5, 4.0, 2.0)
    assert network.cost_model.latency.predict(after) <= budget.latency_ms
    config = network.config()  # what the checkpoint stores: a resumed run goes on at this calibration and budget
    assert config["latency_calibration"] == network.cost_model.latency.calibration
    assert Budget.from_dict(config["budget"]) == budget
    assert retimer.records == [record]


@pytest.mark.slow
def test_drift_alone_or_noise_within_the_tolerance_leaves_the_shape(plan):
    """A host 2x slower where the model is right (the share is the same), a shape measuring 1% under the model, or
    8% under when the rounds of the measurement spread by 5 points of share (10% of the allowed 50%): nothing
    moves."""
    network = plan.network
    before = [tuple(s) for s in network.update_shape().sizes]
    budget, calibration = network.budget, network.cost_model.latency.calibration
    for slower, over, spread in ((2.0, 1.0, 0.0), (1.0, 1 - RETIME_TOLERANCE / 2, 0.0), (1.0, 0.92, 0.05)):
        record = Retimer(network, host(slower, over, spread)[0], log=lambda _: None).retime(1, 10, torch.device("cpu"))
        assert not record["re_projected"] and "new_sizes" not in record
        assert [tuple(s) for s in network.update_shape().sizes] == before
        assert network.budget == budget and network.cost_model.latency.calibration == calibration


@pytest.mark.slow
def test_a_shape_measured_over_the_budget_is_projected_again_however_little(plan, monkeypatch):
    """Within the tolerance of the model (here 10%) but 1% over the allowed share: shrunk now, while the weights
    still train, rather than by the end check after training."""
    from autosc.run import retime

    monkeypatch.setattr(retime, "RETIME_TOLERANCE", 0.1)
    network = plan.network
    before = [tuple(s) for s in network.update_shape().sizes]
    predicted = network.cost_model.latency.predict(before) / network.budget.latency_reference_ms
    over = 1.01 * 0.5 / predicted  # the shape measures 1% over the allowed 50%
    record = Retimer(network, host(1.0, over)[0], log=lambda _: None).retime(1, 10, torch.device("cpu"))
    assert record["measured_share"] == pytest.approx(0.505) and record["re_projected"]
    assert abs(record["measured_share"] - record["predicted_share"]) <= 0.1 * 0.5  # not off the model
    assert slower_than(network, before, network.last_projection.sizes)


@pytest.mark.slow
def test_the_last_retime_shrinks_a_shape_over_the_budget_but_never_grows_one(plan):
    """Where the shape phase ends, a shape measured 10% under the model stays (an epoch-end re-time grows it), and
    one measured over the allowed share is projected again, smaller."""
    network = plan.network
    before = [tuple(s) for s in network.update_shape().sizes]
    record = Retimer(network, host(1.0, 0.9)[0], log=lambda _: None).retime(2, 20, torch.device("cpu"), final=True)
    assert record["final"] and not record["re_projected"]
    assert [tuple(s) for s in network.update_shape().sizes] == before
    predicted = network.cost_model.latency.predict(before) / network.budget.latency_reference_ms
    record = Retimer(network, host(1.0, 1.01 * 0.5 / predicted)[0], log=lambda _: None).retime(
        2, 20, torch.device("cpu"), final=True
    )
    assert record["re_projected"] and slower_than(network, before, network.last_projection.sizes)
    grown = Retimer(network, host(1.0, 0.9)[0], log=lambda _: None).retime(1, 10, torch.device("cpu"))
    assert grown["re_projected"] and slower_than(network, network.last_projection.sizes, record["new_sizes"])


@pytest.mark.slow
def test_no_retimer_with_the_option_off_or_without_a_latency_budget_timed_here(plan):
    from autosc.run.retime import shape_retimer

    network, reference = plan.network, plan.spec.at_width(1.0)
    assert shape_retimer(network, reference, TrainConfig(retime=True), log=lambda _: None) is not None
    assert shape_retimer(network, reference, TrainConfig(retime=False)) is None
    macs = autosc.plan("mobilenet_v2_cifar", budget="2M", input_size=16, num_classes=10).network
    assert shape_retimer(macs, reference, TrainConfig()) is None


def test_an_absolute_budget_keeps_the_share_it_was_converted_to():
    budget = Budget.of(latency_ms=1.0, latency_reference_ms=4.0)
    followed = budget.followed(2.0)
    assert (followed.latency_ms, followed.latency_reference_ms, followed.latency_allowed_share) == (0.5, 2.0, 0.25)
    assert Budget.of(macs=10).followed(2.0) == Budget.of(macs=10)


def test_the_retimes_fall_at_epoch_ends_of_the_shape_phase_and_where_it_ends():
    """Epoch ends while the shape still learns (before the checkpoint), and the step the shape phase ends
    (possibly mid-epoch); never after it, where the weights fine-tune on the fixed shape."""
    retimer = Retimer(network=None, measure=None, log=lambda _: None)
    when = []
    retimer.retime = lambda epoch, step, device, final=False: when.append((step, final))
    for step in range(1, 11):  # 10 steps, 3 a epoch (the last epoch short), the shape phase ends at step 5
        trainer = SimpleNamespace(step=step, shape_steps=5, epoch=(step - 1) // 3, device=None)
        retimer.on_batch(trainer)
        if step % 3 == 0 or step == 10:
            retimer.on_epoch_end(trainer)
    assert when == [(3, False), (5, True)]


def test_the_retime_option_is_on_and_an_older_run_goes_on_without_it():
    from autosc.formats import migrate_report, migrate_run

    assert TrainConfig().retime is True
    run = migrate_run({"format": "autosc-run/4", "config": {"train": {}}, "plan": _plan_keys()})
    assert run["config"]["train"]["retime"] is False
    report = migrate_report({"format": "autosc-report/4", "train": {}, "latency_ms": {"share": 0.5}})
    assert report["train"]["retime"] is False and report["latency_ms"]["retimes"] is None
    assert report["latency_ms"]["tolerance"] == 0.0  # the end check shrank for anything over the noise then


def _plan_keys() -> dict:
    from autosc.formats import migrate_plan

    return {**migrate_plan({"model": {"name": "m"}, "budget": {"macs": 1}}), "start": {"sha256": None}}


def _rank(rank: int, port: int, out) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        ctx = DistContext(rank=rank, world_size=2, local_rank=rank)
        out.put((rank, from_main(ctx, [1.0 + rank, 2.5 * (rank + 1)], torch.device("cpu"))))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_every_rank_applies_what_rank_0_measured():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_rank, args=(r, port, out)) for r in range(2)]
    for p in procs:
        p.start()
    got = dict(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert got == {0: [1.0, 2.5], 1: [1.0, 2.5]}


def _measured_network() -> SimpleNamespace:
    """What a measurement reads of a budgeted network: a plain module with no adaptors, and a model to calibrate."""
    return SimpleNamespace(
        net=torch.nn.Linear(1, 1), adaptor_names=[], last_projection=SimpleNamespace(sizes=[]),
        budget=Budget.of(latency_ms=1.0), input_size=(8, 8), in_channels=3,
        cost_model=SimpleNamespace(latency=SimpleNamespace(calibrated=lambda sizes, ms: SimpleNamespace(calibration=ms))),
    )  # fmt: skip


def test_the_measurement_takes_the_middle_round_even_when_rounds_tie(monkeypatch):
    """The shape and the reference exported once, timed in 3 rounds (autosc/cost/calibration.py, shared with the
    start calibration); equal shares do not break the choice of the middle one (they once compared the rounds'
    dicts)."""
    import autosc.export
    import autosc.latency
    from autosc.cost import calibration
    from autosc.run import retime

    exported, timed = [], iter([(1.0, 2.0), (1.0, 2.0), (1.2, 2.0)])

    def fake_time(paths, **_):
        shape, reference = next(timed)
        return {"shape": {"p50": shape}, "reference": {"p50": reference}}

    monkeypatch.setattr(autosc.export, "export_onnx", lambda module, size, path, **_: exported.append(path.name))
    monkeypatch.setattr(autosc.latency, "time_together", fake_time)
    network = _measured_network()
    monkeypatch.setattr(calibration, "split_at_adaptors", lambda net, names: (net, []))
    got = retime.measure_on_this_machine(torch.nn.Identity())(network)
    assert exported == ["shape.onnx", "reference.onnx"]
    assert (got.calibration, got.reference_ms, got.spread) == (1.0, 2.0, pytest.approx(0.05))


def test_the_re_times_export_the_reference_once(monkeypatch):
    """The reference never changes during a run: the second re-time reuses its export and exports only the shape
    (each re-time exported both before)."""
    import autosc.export
    import autosc.latency
    from autosc.cost import calibration
    from autosc.run import retime

    exported = []

    def fake_export(module, size, path, **_):
        exported.append(path.name)
        path.write_bytes(b"onnx")

    monkeypatch.setattr(autosc.export, "export_onnx", fake_export)
    monkeypatch.setattr(autosc.latency, "time_together",
                        lambda paths, **_: {"shape": {"p50": 1.0}, "reference": {"p50": 2.0}})  # fmt: skip
    network = _measured_network()
    monkeypatch.setattr(calibration, "split_at_adaptors", lambda net, names: (net, []))
    measure = retime.measure_on_this_machine(torch.nn.Identity())
    measure(network)
    measure(network)
    assert exported == ["shape.onnx", "reference.onnx", "shape.onnx"]
    other = retime.measure_on_this_machine(torch.nn.Identity())  # another run: its own reference export
    other(network)
    assert exported[3:] == ["shape.onnx", "reference.onnx"]


@pytest.mark.slow
def test_a_retime_that_finds_the_budget_out_of_reach_trains_on_at_the_floor(plan):
    """A slow spell measured the floor itself over the budget (a benchmark run crashed here, a traceback mid-run):
    the shape goes to the floor, the log says so once, every later projection keeps it, and nothing raises."""
    network = plan.network
    floor = [tuple(s) for s in network.cost_model.min_sizes]
    said = []
    record = Retimer(network, host(1.0, 20.0)[0], log=said.append).retime(1, 10, torch.device("cpu"))
    assert record["re_projected"] and record["unreachable"]
    assert [tuple(s) for s in record["new_sizes"]] == floor
    assert [tuple(s) for s in network.update_shape().sizes] == floor
    assert sum("the smallest shape trains on" in line for line in said) == 1
    assert record["floor_share"] > 0.5  # the floor was timed too, and found over


@pytest.mark.slow
def test_a_retime_that_finds_the_floor_over_times_the_floor_before_believing_it(plan):
    """One slow measurement (20x the model) put even the floor over the budget; the floor itself, timed next, runs as
    the model says: the shape is projected from that measurement, not left at the floor (a benchmark run that
    believed the first one trained at 2x2 maps and lost 22 points)."""
    network = plan.network
    floor = [tuple(s) for s in network.cost_model.min_sizes]
    planned, calls = network.cost_model.latency, []

    def measure(net):  # 20x what the plan's model predicts at the first call, then as it predicts
        sizes = net.last_projection.sizes
        calls.append([tuple(s) for s in sizes])
        over = 20.0 if len(calls) == 1 else 1.0
        return Retimed(net.cost_model.latency.calibrated(sizes, over * planned.predict(sizes)).calibration, 2.0, 0.0)

    record = Retimer(network, measure, log=lambda _: None).retime(1, 10, torch.device("cpu"))
    assert calls[1] == floor and record["floor_share"] < 0.5 and not record["unreachable"]
    assert [tuple(s) for s in record["new_sizes"]] != floor
    assert network.cost_model.latency.predict(record["new_sizes"]) <= network.budget.latency_ms
