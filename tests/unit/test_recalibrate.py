"""BatchNorm recalibration after a shrink (autosc.train.evaluate.recalibrate_batchnorm)."""

import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

import autosc
from autosc.data import load_data
from autosc.train import TrainConfig, Trainer
from autosc.train.evaluate import evaluate, precise_batchnorm, recalibrate_batchnorm


class Net(nn.Module):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return self.fc(F.adaptive_avg_pool2d(F.relu(self.bn(self.conv(x))), 1).flatten(1))


def _data(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 1, 16, 16, generator=g) * 0.2
    x[y == 1, :, 4:12, 4:12] += 1.0  # class 1: a bright square in the middle
    return TensorDataset(x, y)


def test_recalibration_sets_the_statistics_of_the_new_sizes_and_leaves_the_weights():
    torch.manual_seed(0)
    net, data = Net(16), _data()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    for _ in range(60):
        x, y = data.tensors
        loss = F.cross_entropy(net.train()(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    trained = evaluate(net, data)[1]
    net.size = 5  # shrunk after training: the statistics were measured at 16x16
    net.bn.running_mean.fill_(3.0)
    net.bn.running_var.fill_(9.0)  # and deliberately wrong, so the test cannot pass by chance
    weights = {k: v.clone() for k, v in net.state_dict().items() if "running" not in k and "num_batches" not in k}
    stale = evaluate(net.eval(), data)[1]
    assert recalibrate_batchnorm(net, data, images=256, batch_size=64) == 1
    with torch.no_grad():
        features = net.conv(F.interpolate(data.tensors[0], size=(5, 5), mode="bilinear", align_corners=False))
    assert torch.allclose(net.bn.running_mean, features.mean((0, 2, 3)), atol=1e-4)
    assert net.bn.momentum == pytest.approx(0.1) and not net.training
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in weights.items())
    recalibrated = evaluate(net, data)[1]
    assert trained > 0.9 and recalibrated > stale and recalibrated > 0.8


def test_a_network_without_batchnorm_is_left_alone():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert recalibrate_batchnorm(net, _data(32)) == 0
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())


def test_precise_batchnorm_measures_the_current_weights_and_leaves_every_random_state():
    """Before an evaluation the statistics are those of the weights now, and the data order and augmentation of
    the rest of the run draw exactly what they would have (autosc/train/evaluate.py: precise_batchnorm)."""
    torch.manual_seed(0)
    net, data = Net(16), _data()
    net.bn.running_mean.fill_(3.0)  # lagging statistics, far from those of the current weights
    torch_state, python_state = torch.get_rng_state(), random.getstate()
    assert precise_batchnorm(net, data, images=256, batch_size=64) == 1
    assert torch.equal(torch.get_rng_state(), torch_state) and random.getstate() == python_state
    with torch.no_grad():
        features = net.conv(data.tensors[0])
    assert torch.allclose(net.bn.running_mean, features.mean((0, 2, 3)), atol=1e-4)
    net.bn.running_mean.fill_(3.0)
    assert precise_batchnorm(net, data, images=0, batch_size=64) == 0  # off: nothing measured
    assert torch.equal(net.bn.running_mean, torch.full((8,), 3.0))


@pytest.mark.slow
def test_precise_bn_changes_what_evaluation_reads_and_nothing_the_weights_learn():
    """Two tiny runs on the per-image loader (whose augmentation draws from the global RNG), re-estimation off
    and on: the same weights and alphas after every epoch (training reads batch statistics only), other BatchNorm
    statistics, and evaluations that read them."""
    data = load_data("synthetic", input_size=(32, 32), subset=96, test_subset=32)
    runs = []
    for images in (0, 64):
        torch.manual_seed(0)
        network = autosc.plan("mobilenet_v2_cifar", budget="8M", width=0.35).network
        config = TrainConfig(epochs=2, batch_size=16, lr=0.05, weight_decay=5e-4, alpha_step=1, seed=0,
                             device_data="off", precise_bn=images)  # fmt: skip
        trainer = Trainer(network, data.train, data.test, config)
        runs.append((trainer, [trainer.run_epoch({"stop": False}) for _ in range(2)]))
    (off, off_rows), (on, on_rows) = runs
    learned = [k for k in off.net.state_dict() if "running" not in k and "num_batches" not in k]
    assert all(torch.equal(off.net.state_dict()[k], on.net.state_dict()[k]) for k in learned)
    assert [r["train_loss"] for r in off_rows] == [r["train_loss"] for r in on_rows]
    assert not torch.equal(*(t.net.state_dict()[_first_running_mean(t.net)] for t in (off, on)))
    assert [r["test_loss"] for r in off_rows] != [r["test_loss"] for r in on_rows]


def _first_running_mean(net: nn.Module) -> str:
    return next(k for k in net.state_dict() if k.endswith("running_mean"))
