"""The peer methods of the trained-network benchmark (benchmarks/trained_peers.py): a lower input resolution to a
MACs target and the cached teacher (its Torch-Pruning peer is autosc's own stage, tests/unit/test_prune.py)."""

import pytest
import torch

from autosc import AutoscError
from autosc.data import load_data
from benchmarks import trained_peers
from benchmarks.trained_peers import LowResolution, macs, resolution_for_macs, train_teacher

from ..helpers import zoo_net

SIZE = (32, 32)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_resolution_for_macs_is_the_largest_that_fits():
    net = zoo_net("mobilenet_v2_cifar")
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


def test_plateau_reads_the_rule_off_the_validation_history():
    from benchmarks.trained_peers import plateau

    def history(vals):
        return [{"epoch": i + 1, "val_acc": v / 100} for i, v in enumerate(vals)]

    flat = plateau(history([50, 80, 88.0, 88.2, 88.1]))
    assert flat["met"] is True and flat["spread"] == pytest.approx(0.2) and flat["best_val"] == pytest.approx(88.2)
    assert plateau(history([50, 80, 86.0, 87.0, 88.0]))["met"] is False  # still climbing: spread 2 points
    noisy_peak = plateau(history([50, 89.0, 88.0, 88.1, 88.0]))  # flat, a point under one noisy epoch: recorded
    assert noisy_peak["met"] is True and noisy_peak["below_best"] == pytest.approx(1.0)
    assert plateau(history([80, 81]))["met"] is None  # too short to say
    assert plateau([{"epoch": 1, "test_acc": 0.5}] * 4)["met"] is None  # no validation split
