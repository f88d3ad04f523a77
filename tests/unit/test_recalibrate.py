"""BatchNorm recalibration after a shrink (autosc.train.evaluate.recalibrate_batchnorm)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from autosc.train.evaluate import evaluate, recalibrate_batchnorm


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
