"""The planned network's top-1 before any step (the report's ``start.before``): scored with BatchNorm re-estimated,
as every evaluation is, and the network handed back exactly as it was, so the run trains from the same state."""

import copy

import torch
from torch import nn
from torch.utils.data import TensorDataset

from autosc.data import DataBundle
from autosc.run.training import planned_accuracy, recalibrated_accuracy
from autosc.train import TrainConfig
from autosc.train.evaluate import evaluate


def _net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(8, 2))  # fmt: skip
    net[1].running_mean.fill_(3.0)  # statistics of other feature maps, as after a resize or a prune
    return net


def _bundle() -> DataBundle:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(128, 1, 8, 8, generator=g)
    x[:64, :, :4] += 1.0
    data = TensorDataset(x, torch.tensor([1] * 64 + [0] * 64))
    return DataBundle("t", data, data, 2, 1, (8, 8), "tests", val=TensorDataset(x[::2], data.tensors[1][::2]))


def test_planned_accuracy_reestimates_batchnorm_and_restores_the_network():
    net, bundle, config = _net(), _bundle(), TrainConfig(batch_size=32)
    for _ in range(20):  # a few steps, so the figures are not those of a fresh network
        loss = nn.functional.cross_entropy(net(bundle.train.tensors[0]), bundle.train.tensors[1])
        net.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in net.parameters():
                p -= 0.1 * p.grad
    net[1].running_mean.fill_(3.0)
    before = copy.deepcopy(net.state_dict())
    twin = copy.deepcopy(net)
    got = planned_accuracy(net, bundle, config)
    assert got["test"] == recalibrated_accuracy(twin, bundle, bundle.test, config, torch.device("cpu"))
    assert got["val"] == evaluate(twin, bundle.val)[1]
    assert got["test"] > evaluate(copy.deepcopy(net), bundle.test)[1]  # the stale statistics score lower
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())  # statistics restored
    assert planned_accuracy(net, DataBundle("t", bundle.train, bundle.test, 2, 1, (8, 8), "tests"), config)["val"] is None
