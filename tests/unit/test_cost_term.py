"""The alphas' cost term (a budget Lagrangian on a smooth cost), devices and mixed precision in the Trainer."""

import pytest
import torch

import autosc
from autosc import AutoscError
from autosc.adaptor.module import factor_to_alpha
from autosc.cost.projection import sizes_from_factors
from autosc.data import load_data
from autosc.train import TrainConfig, Trainer, resolve_device


@pytest.fixture(scope="module")
def plan():
    return autosc.plan("mobilenet_v2_cifar", budget="8M", width=0.35)


def _set_factors(network, factors):
    for adaptor, s in zip(network.adaptors(), factors, strict=True):
        adaptor.alpha.data.fill_(factor_to_alpha(s))


def _exact_ratio(network, factors):
    model = network.cost_model
    sizes = model.clamp(sizes_from_factors(model.human_sizes, factors))
    return model.cost(sizes).budget_macs() / network.budget.macs


def test_relaxed_cost_matches_the_exact_cost_at_the_human_shape_and_tracks_it_below(plan):
    """At factors ~1 the smooth cost is the exact widened cost; at smaller shapes it stays within rounding."""
    network = plan.network
    n = len(network.adaptors())
    _set_factors(network, [1 - 1e-7] * n)
    exact = network.cost_model.human_cost().budget_macs() / network.budget.macs
    assert network.relaxed_cost().detach().item() == pytest.approx(exact, rel=1e-5)
    for factors in ([0.75] * n, [0.6, 0.9, 0.95][:n], [0.95, 0.7, 0.55][:n]):
        _set_factors(network, factors)
        # Integer rounding of small maps (a 7 px map times 0.75 is 5, not 5.25) keeps them apart by a few percent.
        assert network.relaxed_cost().detach().item() == pytest.approx(_exact_ratio(network, factors), rel=0.12)


def test_relaxed_cost_gradient_prices_earlier_adaptors_higher(plan):
    """An earlier factor scales every later map too, so at equal alphas it is the most expensive one to keep."""
    network = plan.network
    _set_factors(network, [0.8] * len(network.adaptors()))
    grads = torch.autograd.grad(network.relaxed_cost(), list(network.alpha_parameters()))
    values = [float(g) for g in grads]
    assert all(v > 0 for v in values)
    assert values == sorted(values, reverse=True)


def _trainer(plan_, batch_size=16, **overrides):
    data = load_data("synthetic", input_size=(32, 32), subset=96, test_subset=32)
    config = TrainConfig(epochs=2, batch_size=batch_size, lr=0.05, weight_decay=5e-4, alpha_step=1, **overrides)
    return Trainer(plan_.network, data.train, data.test, config)


@pytest.mark.slow
def test_cost_term_brings_the_learned_shape_to_the_budget():
    """With the cost term the unprojected shape's cost falls towards the budget, far more than without it."""
    results = {}
    for cost_term in (True, False):
        torch.manual_seed(0)
        p = autosc.plan("mobilenet_v2_cifar", budget="8M", width=0.35)
        start = p.network.relaxed_cost().detach().item()
        trainer = _trainer(p, batch_size=8, cost_term=cost_term, alpha_lr=0.3)
        stop = {"stop": False}
        while not trainer.finished:
            row = trainer.run_epoch(stop)
        results[cost_term] = (start, row["learned_cost"], row["scale"], row["dual"])
    start, learned, scale, dual = results[True]
    assert start > 1.2  # the widened network starts well over budget
    assert learned < start - 0.1
    assert scale > results[False][2]  # the projection has less to undo
    assert dual >= 0
    assert learned < results[False][1] - 0.1  # the loss alone (here on random labels) barely moves the cost


def test_trainer_state_keeps_the_dual_variable(plan):
    trainer = _trainer(plan)
    trainer.dual = 3.25
    state = trainer.state_dict()
    other = _trainer(plan)
    other.load_state_dict(state)
    assert other.dual == 3.25


@pytest.mark.slow
def test_bf16_autocast_trains_on_cpu():
    """--amp bf16 runs the network under autocast; the loss stays finite and the alphas stay float32."""
    torch.manual_seed(0)
    p = autosc.plan("mobilenet_v2_cifar", budget="8M", width=0.35)
    trainer = _trainer(p, amp="bf16")
    row = trainer.run_epoch({"stop": False})
    assert torch.isfinite(torch.tensor(row["train_loss"]))
    assert all(a.dtype == torch.float32 for a in p.network.alpha_parameters())
    assert row["alpha_moved"] > 0


@pytest.mark.parametrize(
    ("name", "message"),
    [("gpu", "--device must be auto, cpu, cuda or cuda:N"), ("mps", "--device must be auto, cpu, cuda or cuda:N")],
)
def test_bad_device_names_are_refused(name, message):
    with pytest.raises(AutoscError, match=message):
        resolve_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_cuda_without_a_gpu_is_one_clear_error():
    with pytest.raises(AutoscError, match="no CUDA device is visible here; use --device cpu"):
        resolve_device("cuda")


def test_bad_amp_mode_is_refused():
    with pytest.raises(AutoscError, match="--amp must be one of off, bf16, fp16"):
        TrainConfig(amp="fp8").validate()


@pytest.mark.slow
def test_shape_stops_learning_after_shape_until():
    """--shape-until 0.5: the alphas move in the first epoch of two and not at all in the second."""
    torch.manual_seed(0)
    p = autosc.plan("mobilenet_v2_cifar", budget="8M", width=0.35)
    trainer = _trainer(p, shape_until=0.5, alpha_lr=0.2)
    start = [float(a.detach()) for a in p.network.alpha_parameters()]
    first = trainer.run_epoch({"stop": False})["alphas"]
    second = trainer.run_epoch({"stop": False})["alphas"]
    assert first != pytest.approx(start, abs=1e-3)
    assert second == first
    assert trainer.shape_steps == trainer.batches_per_epoch  # 2 epochs x 6 batches x 0.5


def test_shape_until_out_of_range_is_refused():
    with pytest.raises(AutoscError, match="--shape-until must be in"):
        TrainConfig(shape_until=0).validate()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here: the GPU check is skipped (not failed)")
def test_cuda_bf16_trains_and_the_frozen_export_matches(tmp_path):
    """On a GPU: the network trains under bf16 autocast on CUDA; frozen on the CPU, its ONNX export matches."""
    from autosc.export import export_onnx
    from autosc.freeze import freeze

    torch.manual_seed(0)
    p = autosc.plan("mobilenet_v2_cifar", budget="8M", width=0.35)
    trainer = _trainer(p, amp="bf16", device="cuda")
    row = trainer.run_epoch({"stop": False})
    assert trainer.device.type == "cuda" and torch.isfinite(torch.tensor(row["train_loss"]))
    p.network.cpu().to(memory_format=torch.contiguous_format).eval()
    frozen, _ = freeze(p.network)
    result = export_onnx(frozen, (32, 32), tmp_path / "m.onnx", exporter="torchscript")
    assert result.max_abs_diff is not None and result.max_abs_diff < 1e-3


@pytest.mark.slow
def test_penalty_weighs_the_cost_by_how_far_over_budget_and_not_at_all_under_it():
    """penalty > 0 replaces dual ascent: the cost's weight is penalty x (ratio - 1) over the budget, 0 under it."""
    torch.manual_seed(0)
    p = autosc.plan("mobilenet_v2_cifar", budget="8M", width=0.35)
    trainer = _trainer(p, penalty=10.0)
    n = len(p.network.adaptors())
    for factors in ([0.99] * n, [0.6] * n):
        _set_factors(p.network, factors)
        ratio = p.network.relaxed_cost().detach().item()
        for a in p.network.alpha_parameters():
            a.grad = torch.ones_like(a)
        trainer.dual = 123.0  # no memory: the previous value must not matter
        trainer._alpha_update()
        assert trainer.dual == pytest.approx(10.0 * max(0.0, ratio - 1.0), rel=1e-6)
    assert ratio < 1  # the second shape was under budget: no cost pressure at all
    with pytest.raises(AutoscError, match="penalty must be >= 0"):
        TrainConfig(penalty=-1).validate()
