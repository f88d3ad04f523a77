"""Collapsing the adaptors when the shape is fixed: training fine-tunes one branch, freeze and export keep it."""

import copy
import json

import pytest
import torch

import autosc
from autosc import AutoscError, count
from autosc.checkpoint import load_checkpoint, save_checkpoint
from autosc.data import load_data
from autosc.export import export_onnx
from autosc.freeze import FrozenAdaptor, SingleBranchAdaptor, build_frozen, freeze
from autosc.planning import network_from_config
from autosc.train import TrainConfig, Trainer


def _trainer(network, **overrides):
    data = load_data("synthetic", input_size=(32, 32), subset=96, test_subset=32)
    config = TrainConfig(epochs=2, batch_size=16, lr=0.05, weight_decay=5e-4, alpha_step=1, seed=0, **overrides)
    return Trainer(network, data.train, data.test, config)


def _plan():
    torch.manual_seed(0)
    return autosc.plan("mobilenet_v2_cifar", budget="8M", width=0.35)


@pytest.mark.slow
def test_training_collapses_when_the_shape_is_fixed_and_freeze_keeps_one_branch(tmp_path):
    plan = _plan()
    network = plan.network
    trainer = _trainer(network, collapse=True)
    trainer.run_epoch({"stop": False})  # 6 batches = the shape phase (shape_until 0.5 of 12)
    assert trainer.step == trainer.shape_steps and network.collapsed
    alphas = [float(a) for a in network.alpha_parameters()]
    sizes = network.update_shape().sizes
    assert all(not a.requires_grad for a in network.alpha_parameters())
    kept = [a.branch for a in network.adaptors()]
    assert kept == ["full"] * len(kept)  # the size holds the downsampling
    trainer.run_epoch({"stop": False})  # the weights fine-tune the collapsed network; the shape does not move
    assert [float(a) for a in network.alpha_parameters()] == alphas
    assert network.update_shape().sizes == sizes

    network.eval()
    frozen, spec = freeze(network)
    assert not any(isinstance(m, FrozenAdaptor) for m in frozen.modules())
    assert len([m for m in frozen.modules() if isinstance(m, SingleBranchAdaptor)]) == len(network.adaptors())
    assert [a["branch"] for a in spec["adaptors"]] == [a.branch for a in network.adaptors()]
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference, ours = network(x), frozen(x)
    assert reference.std().item() > 1e-3  # trained logits, not a fresh network's near-zero output
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5 * reference.abs().max().item())
    # the frozen one-branch network, counted by the counters, fits the budget
    cost = count(frozen, (32, 32), cells=False)
    assert cost.total_macs <= plan.budget.macs

    # the spec alone rebuilds the one-branch architecture, the checkpoint rebuilds the collapsed network
    rebuilt = build_frozen(spec)
    rebuilt.load_state_dict(frozen.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(x), ours)  # same function (memory layouts differ)
    path = save_checkpoint(network, tmp_path / "ckpt.pt")
    reloaded, _ = load_checkpoint(path)
    assert reloaded.collapsed and [a.branch for a in reloaded.adaptors()] == [a.branch for a in network.adaptors()]
    with torch.no_grad():
        torch.testing.assert_close(reloaded.eval()(x), reference, rtol=1e-5, atol=1e-6)

    result = export_onnx(frozen, (32, 32), tmp_path / "m.onnx", opset=18, exporter="torchscript")
    assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-3 * max(1.0, reference.abs().max().item())


@pytest.mark.slow
def test_a_run_stopped_after_the_shape_phase_resumes_collapsed():
    """Resuming rebuilds the network uncollapsed from the plan; the trainer's state collapses it again."""
    plan = _plan()
    first = _trainer(plan.network, collapse=True)
    first.run_epoch({"stop": False})
    state, weights = copy.deepcopy(first.state_dict()), copy.deepcopy(plan.network.state_dict())  # as if saved
    resumed_net = network_from_config(plan.network.config() | {"branches": None})
    resumed_net.load_state_dict(weights)
    assert not resumed_net.collapsed
    resumed = _trainer(resumed_net, collapse=True)
    resumed.load_state_dict(state)
    assert resumed_net.collapsed
    a, b = first.run_epoch({"stop": False}), resumed.run_epoch({"stop": False})
    assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
    assert a["test_acc"] == b["test_acc"]
    # a finished run reloaded for freezing (e.g. stopped between training and the report) is collapsed too
    finished = network_from_config(plan.network.config() | {"branches": None})
    _trainer(finished, collapse=True).load_state_dict(copy.deepcopy(first.state_dict()))
    assert first.finished and finished.collapsed


@pytest.mark.slow
def test_without_collapse_the_mix_stays_and_shape_until_one_never_collapses():
    for overrides in ({"collapse": False}, {"collapse": True, "shape_until": 1.0}):
        plan = _plan()
        trainer = _trainer(plan.network, **overrides)
        while not trainer.finished:
            trainer.run_epoch({"stop": False})
        assert not plan.network.collapsed
        frozen, spec = freeze(plan.network.eval())
        assert all(a["branch"] is None for a in spec["adaptors"])  # None: the two-branch mix
        assert any(isinstance(m, FrozenAdaptor) for m in frozen.modules())


@pytest.mark.slow
def test_explicit_branches_and_bad_ones():
    plan = _plan()
    n = len(plan.network.adaptors())
    with pytest.raises(ValueError, match="branch must be one of"):
        plan.network.adaptors()[0].collapse("middle")
    with pytest.raises(AutoscError, match="branches given"):
        plan.network.collapse(["full"])
    plan.network.collapse(["low"] + ["full"] * (n - 1))
    frozen, _ = freeze(plan.network.eval())
    singles = [m for m in frozen.modules() if isinstance(m, SingleBranchAdaptor)]
    assert [m.low for m in singles] == [True] + [False] * (n - 1)


@pytest.mark.slow
def test_cli_collapse_flag_reaches_the_frozen_model_and_the_report(tiny_run):
    """The shared tiny run (tests/conftest.py) is a CLI run with --collapse."""
    spec = json.loads((tiny_run / "frozen.shape.json").read_text())
    assert [a["branch"] for a in spec["adaptors"]] == ["full"] * len(spec["adaptors"])
    report = json.loads((tiny_run / "report.json").read_text())
    assert report["train"]["collapse"] is True
    assert "| kept |" in (tiny_run / "report.md").read_text()
    assert "--collapse" in report["command"]


@pytest.mark.slow
def test_average_pool_low_branch_is_an_adaptor_option_kept_by_freeze_and_rebuild():
    torch.manual_seed(0)
    plan = autosc.plan("mobilenet_v2_cifar", budget="8M", width=0.35, low_branch="avg")
    network = plan.network
    assert {a.pool for a in network.adaptors()} == {"avg"}
    assert network.config()["low_branch"] == "avg"
    trainer = _trainer(network, collapse=False)
    trainer.run_epoch({"stop": False})  # trained weights
    for adaptor in network.adaptors():  # sigma 0.5: half of each map is the low branch, so its kind shows
        adaptor.alpha.data.fill_(0.0)
    network.eval()
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    frozen, spec = freeze(network)
    assert spec["low_branch"] == "avg"
    with torch.no_grad():
        expected = network(x)
        assert torch.allclose(frozen(x), expected, rtol=1e-5, atol=1e-5 * expected.abs().max())
        rebuilt = build_frozen(json.loads(json.dumps(spec)))
        rebuilt.load_state_dict(frozen.state_dict())
        assert torch.allclose(rebuilt.eval()(x), expected, rtol=1e-5, atol=1e-5 * expected.abs().max())
    adaptor = network.adaptors()[0]  # the kind of pooling is what the adaptor mixes in
    feature = torch.randn(2, 4, *adaptor.human_size, generator=torch.Generator().manual_seed(2))
    halved = torch.nn.functional.avg_pool2d(feature, 2, 2, ceil_mode=True)
    with torch.no_grad():
        resized = [torch.nn.functional.interpolate(t, size=adaptor.size, mode="bilinear") for t in (halved, feature)]
        assert torch.allclose(adaptor(feature), 0.5 * resized[0] + 0.5 * resized[1], atol=1e-6)
        adaptor.pool = "max"
        assert not torch.allclose(adaptor(feature), 0.5 * resized[0] + 0.5 * resized[1], atol=1e-2)
        adaptor.pool = "avg"
    assert network_from_config(network.config()).pool == "avg"
