"""The peer methods of the trained-network benchmark (benchmarks/trained_peers.py): Torch-Pruning to a MACs
target, a lower input resolution to a MACs target, and the cached teacher."""

import pytest
import torch
from torch import nn

from autosc import AutoscError, build_model
from autosc.data import load_data
from benchmarks import trained_peers
from benchmarks.trained_peers import LowResolution, macs, prune_to_macs, resolution_for_macs, train_teacher

SIZE = (32, 32)


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a 2-core machine with other work running, two threads contend and these many small
    forward passes (tracing, counting) ran 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def human(name: str, in_channels: int = 1) -> nn.Module:
    torch.manual_seed(0)
    return build_model(name, num_classes=10, in_channels=in_channels).eval()


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
    assert trained_peers.classifier(pruned).out_features == 10
    with torch.no_grad():
        assert pruned(torch.randn(2, in_channels, *SIZE)).shape == (2, 10)


@pytest.mark.parametrize("name", ["mobilenet_v2_cifar", "resnet18_cifar"])
def test_prune_to_half_the_macs(name):
    net = human(name)
    base = macs(net, SIZE)
    target = base // 2
    pruned = prune_to_macs(net, SIZE, 1, target, steps=5)
    found = macs(pruned, SIZE)
    assert 0.35 * base < found <= target
    check_pruned(net, pruned)
    assert macs(net, SIZE) == base  # the network pruned is a copy


@pytest.mark.parametrize("importance", ["bn", "taylor"])
def test_other_importances_reach_the_target(importance):
    net = human("resnet18_cifar")
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


def test_prune_refuses_unknown_importance_and_taylor_without_batch():
    net = human("resnet18_cifar")
    with pytest.raises(AutoscError, match="unknown importance"):
        prune_to_macs(net, SIZE, 1, 1000, importance="l3")
    with pytest.raises(AutoscError, match="needs a batch"):
        prune_to_macs(net, SIZE, 1, macs(net, SIZE) // 2, importance="taylor")


def test_prune_returns_a_copy_when_already_under_target():
    net = human("resnet18_cifar")
    same = prune_to_macs(net, SIZE, 1, macs(net, SIZE))
    assert same is not net
    assert macs(same, SIZE) == macs(net, SIZE)


def test_resolution_for_macs_is_the_largest_that_fits():
    net = human("mobilenet_v2_cifar")
    base = macs(net, SIZE)
    target = base // 2
    side, other = resolution_for_macs(net, SIZE, 1, target)
    assert side == other and 8 <= side < 32
    assert macs(LowResolution(net, (side, side)), SIZE) <= target
    assert macs(LowResolution(net, (side + 1, side + 1)), SIZE) > target
    assert resolution_for_macs(net, SIZE, 1, base) == SIZE  # the full size fits its own MACs: no resize
    assert LowResolution(net, (side, side))(torch.randn(2, 1, *SIZE)).shape == (2, 10)
    with pytest.raises(AutoscError, match="no input"):
        resolution_for_macs(net, SIZE, 1, 1000)


@pytest.mark.slow
def test_train_teacher_caches_and_loads(tmp_path, monkeypatch):
    bundle = load_data("synthetic", input_size=SIZE, subset=64, test_subset=32, seed=0)
    cache = tmp_path / "teachers"
    net, record = train_teacher(bundle, epochs=1, seed=0, cache_dir=cache, batch_size=32, lr=0.05)
    assert record["from_cache"] is False
    assert (cache / f"{record['key']}.pt").is_file() and (cache / f"{record['key']}.json").is_file()
    assert record["images"] == 64 and record["epochs"] == 1 and record["seed"] == 0
    assert 0.0 <= record["test_acc"] <= 1.0 and record["command"] and record["versions"]["torch"]
    assert not net.training

    def no_training(*args, **kwargs):
        raise AssertionError("a cached teacher must not be trained again")

    monkeypatch.setattr(trained_peers, "train", no_training)
    again, cached = train_teacher(bundle, epochs=1, seed=0, cache_dir=cache, batch_size=32, lr=0.05)
    assert cached["from_cache"] is True
    assert {k: v for k, v in cached.items() if k != "from_cache"} == {
        k: v for k, v in record.items() if k != "from_cache"
    }
    for (k, a), (_, b) in zip(net.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    # another seed is another teacher
    with pytest.raises(AssertionError, match="must not be trained"):
        train_teacher(bundle, epochs=1, seed=1, cache_dir=cache, batch_size=32, lr=0.05)
