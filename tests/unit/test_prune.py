"""Channel pruning as a stage of autosc (autosc/prune/): Torch-Pruning to a MACs target with a named importance,
and the pruned channel counts recorded as plain data that rebuild the network from a file."""

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autosc import AutoscError
from autosc.cost.budget import Budget
from autosc.freeze import build_frozen, freeze, load_frozen, save_frozen
from autosc.models import ModelSpec, instance_spec, spec_from_file
from autosc.planning import adapt_network
from autosc.prune import IMPORTANCES, apply_channels, channel_record, classifier, prune_to_macs
from autosc.prune.pruner import macs

from ..helpers import sgd_a_little, train_a_little, zoo_net

SIZE = (32, 32)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def fit_a_little(net: nn.Module) -> nn.Module:
    sgd_a_little(net, 1, SIZE[0], steps=6)
    return net.eval()


def check_pruned(original: nn.Module, pruned: nn.Module, in_channels: int = 1) -> None:
    """Changed convs have a multiple of 8 outputs, the classifier keeps its 10, and the network still runs."""
    before = dict(original.named_modules())
    changed = 0
    for name, module in pruned.named_modules():
        if isinstance(module, nn.Conv2d) and module.out_channels != before[name].out_channels:
            assert module.out_channels % 8 == 0, (name, module.out_channels)
            assert module.out_channels < before[name].out_channels
            changed += 1
    assert changed > 0
    assert classifier(pruned).out_features == 10
    with torch.no_grad():
        assert pruned(torch.randn(2, in_channels, *SIZE)).shape == (2, 10)


@pytest.mark.parametrize("name", ["mobilenet_v2_cifar", "resnet18_cifar"])
def test_prune_to_half_the_macs(name):
    net = zoo_net(name)
    base = macs(net, SIZE)
    target = base // 2
    pruned = prune_to_macs(net, SIZE, 1, target, steps=5)
    found = macs(pruned, SIZE)
    assert 0.35 * base < found <= target
    check_pruned(net, pruned)
    assert macs(net, SIZE) == base  # the network pruned is a copy


@pytest.mark.parametrize("importance", ["bn", "taylor"])
def test_other_importances_reach_the_target(importance):
    net = zoo_net("resnet18_cifar")
    with torch.no_grad():  # trained-looking batch-norm scales (untrained ones all tie at 1)
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.1, 1.0)
    base = macs(net, SIZE)
    g = torch.Generator().manual_seed(0)
    batch = (torch.randn(8, 1, *SIZE, generator=g), torch.randint(0, 10, (8,), generator=g))
    pruned = prune_to_macs(net, SIZE, 1, base // 2, importance=importance, steps=3, batch=batch)
    assert macs(pruned, SIZE) <= base // 2
    check_pruned(net, pruned)
    assert all(p.grad is None for p in net.parameters()) and all(p.grad is None for p in pruned.parameters())


def test_prune_refuses_unknown_importance_taylor_without_batch_and_a_network_without_classifier():
    net = zoo_net("resnet18_cifar")
    with pytest.raises(AutoscError, match="unknown importance 'l3'; use one of l1, bn, taylor"):
        prune_to_macs(net, SIZE, 1, 1000, importance="l3")
    with pytest.raises(AutoscError, match="needs a batch"):
        prune_to_macs(net, SIZE, 1, macs(net, SIZE) // 2, importance="taylor")
    headless = nn.Sequential(nn.Conv2d(1, 16, 3), nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 10, 1),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten())  # fmt: skip
    with pytest.raises(AutoscError, match="no nn.Linear classifier"):
        prune_to_macs(headless, SIZE, 1, macs(headless, SIZE) // 2)
    assert set(IMPORTANCES) == {"l1", "bn", "taylor"} and IMPORTANCES["taylor"].needs_batch


class HardCoded(nn.Module):
    """A forward that reshapes by a channel count written in the code: pruning breaks it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 32, 3)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        return self.head(self.conv(x).reshape(x.shape[0], 32, -1).mean(-1))


def test_a_network_whose_pruned_copy_cannot_run_is_refused_in_one_line():
    with pytest.raises(AutoscError, match=r"^Torch-Pruning cannot prune HardCoded \(.*\); compress its shape only$"):
        prune_to_macs(HardCoded(), SIZE, 1, macs(HardCoded(), SIZE) // 2)


def test_prune_returns_a_copy_when_already_under_target():
    net = zoo_net("resnet18_cifar")
    same = prune_to_macs(net, SIZE, 1, macs(net, SIZE))
    assert same is not net
    assert macs(same, SIZE) == macs(net, SIZE)


@pytest.mark.parametrize("name", ["mobilenet_v2_cifar", "resnet18_cifar", "timm:resnet18", "timm:mobilenetv3_small_050"])
def test_a_pruned_zoo_network_is_rebuilt_from_its_spec_as_plain_data(name):
    """The channel record goes into the model spec, through JSON, and the spec read back builds a network the
    pruned weights load into strictly, computing the same logits (trained a little: not near-zero ones). timm's
    networks too (squeeze-excite gates and hard-swish in MobileNetV3)."""
    if name.startswith("timm:"):
        pytest.importorskip("timm")
    net = fit_a_little(zoo_net(name))
    pruned = prune_to_macs(net, SIZE, 1, macs(net, SIZE) // 2, steps=3)
    record = channel_record(pruned, zoo_net(name))
    assert record and all(isinstance(v, int) for entry in record.values() for k, v in entry.items() if k != "type")
    spec = ModelSpec(name, 1.0, 10, 1).pruned(record)
    stored = json.loads(json.dumps(spec.to_dict()))
    rebuilt = spec_from_file(stored, source="test").build()
    rebuilt.load_state_dict(pruned.state_dict(), strict=True)
    x = torch.randn(4, 1, *SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = pruned.eval()(x)
        assert expected.std() > 1e-3
        torch.testing.assert_close(rebuilt.eval()(x), expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())
    assert macs(rebuilt, SIZE) == macs(pruned, SIZE)
    with pytest.raises(AutoscError, match="no other width"):
        spec.at_width(0.5)


class Small(nn.Module):
    """A user's own network: two conv blocks and a classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                                  nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU())  # fmt: skip
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        return self.head(F.adaptive_avg_pool2d(self.body(x), 1).flatten(1))


def test_a_pruned_user_module_is_rebuilt_from_a_fresh_instance_and_its_record():
    torch.manual_seed(0)
    net = fit_a_little(Small())
    pruned = prune_to_macs(net, SIZE, 1, macs(net, SIZE) // 2, steps=3)
    check_pruned(Small(), pruned)
    spec = instance_spec(Small(), num_classes=10, in_channels=1).pruned(channel_record(pruned, Small()))
    again = spec_from_file(json.loads(json.dumps(spec.to_dict())), source="test", model=Small())
    rebuilt = again.build()
    rebuilt.load_state_dict(pruned.state_dict(), strict=True)
    x = torch.randn(3, 1, *SIZE)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(x), pruned.eval()(x))


def test_a_channel_record_from_a_file_is_checked_entry_by_entry():
    net = Small()
    for record, words in [
        ({"body.9": {"type": "Conv2d", "in_channels": 1, "out_channels": 8, "groups": 1}}, "does not have"),
        ({"body.0": {"type": "Linear", "in_features": 1, "out_features": 8}}, "does not fit its Conv2d"),
        ({"body.0": {"type": "Conv2d", "in_channels": 1, "out_channels": 0, "groups": 1}}, "positive integer"),
        ({"body.0": {"type": "Conv2d", "in_channels": 1, "out_channels": "8", "groups": 1}}, "positive integer"),
        (["body.0"], "must map module names"),
    ]:
        with pytest.raises(AutoscError, match=words):
            apply_channels(Small(), record)
    assert apply_channels(net, {}) is net


@pytest.mark.slow
def test_a_pruned_network_with_a_learned_shape_freezes_and_loads_back_from_its_files(tmp_path, cli):
    """The pruned channel counts are recorded with the learned shape: load_frozen rebuilds the pruned, adapted
    network from the saved spec alone (and the CLI exports it); a tampered record is refused in one line."""
    name = "mobilenet_v2_cifar"
    net = fit_a_little(zoo_net(name))
    pruned = prune_to_macs(net, SIZE, 1, macs(net, SIZE) // 2, steps=3)
    spec = ModelSpec(name, 1.0, 10, 1).pruned(channel_record(pruned, zoo_net(name)))
    budget = Budget.of(macs=int(0.7 * macs(pruned, SIZE)))
    network, _, _ = adapt_network(spec, SIZE, budget, net=pruned)
    train_a_little(network)
    frozen, shape = freeze(network)
    assert shape["model"]["channels"] == spec.channels
    path = save_frozen(frozen, shape, tmp_path / "frozen.pt")
    reloaded, _ = load_frozen(path)
    x = torch.randn(4, 1, *SIZE, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = frozen.eval()(x)
        assert expected.std() > 1e-3
        torch.testing.assert_close(reloaded(x), expected, rtol=0, atol=0)
    assert macs(reloaded, SIZE) <= budget.macs
    assert cli("export", str(path), "-o", str(tmp_path / "m.onnx")).code == 0  # the CLI rebuilds it as well
    stored = json.loads(path.with_suffix(".shape.json").read_text())
    for channels, words in [("all of them", "must map module names"), ({"features.99": {"type": "Conv2d"}}, "does not have")]:
        with pytest.raises(AutoscError, match=words):
            build_frozen({**stored, "model": {**stored["model"], "channels": channels}})
    data = torch.load(path, weights_only=True)
    data["shape_spec"]["model"]["channels"] = ["features.0.0"]
    torch.save(data, tmp_path / "tampered.pt")
    with pytest.raises(AutoscError, match="channels must map module names to their pruned channel counts"):
        load_frozen(tmp_path / "tampered.pt")
