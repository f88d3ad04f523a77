"""The quality benchmark (``python -m benchmarks.quality``) off its Fashion-MNIST defaults: the issue's
`--data cifar100 --data-root` path.

The CPU grid only ever ran on one-channel, ten-class data; these tests run every method once on a few fake
CIFAR-100 images in torchvision's layout, so the classes, channels and input size must come from the dataset.
"""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from autosc.models import ModelSpec
from benchmarks import quality

from .helpers import write_cifar_files


def _flop_counter_macs(net: torch.nn.Module, size: int) -> int:
    """The second counter: torch's FlopCounterMode, FLOPs / 2, at batch 1."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net.eval()(torch.zeros(1, 3, size, size))
    return counter.get_total_flops() // 2


def test_cifar100_grid_runs_every_method_within_the_budget(tmp_path, skip_checksums, capsys):
    write_cifar_files(tmp_path, hundred=True)
    out = tmp_path / "q.jsonl"
    argv = ["--data", "cifar100", "--data-root", str(tmp_path), "--subset", "0", "--epochs", "1"]
    argv += ["--budgets", "50%", "--seeds", "0", "--latency-runs", "0", "--out", str(out)]
    quality.main(argv)
    rows = quality.load_rows(out)
    assert sorted(r["method"] for r in rows) == sorted(quality.METHODS)

    human = ModelSpec("mobilenet_v2_cifar", 1.0, 100, 3).build()
    budget = _flop_counter_macs(human, 32) // 2  # 50% of the human network at CIFAR's native 32 px
    human_params = sum(p.numel() for p in human.parameters())
    by_method = {r["method"]: r for r in rows}
    for row in rows:
        assert row["budget_macs"] <= budget, row["method"]
        assert row["subset"] is None and row["epochs"] == 1
    for method in ("autosc", "uniform"):  # the projection lands close under the budget
        assert by_method[method]["budget_macs"] >= 0.9 * budget
        assert by_method[method]["width"] > by_method["human-width"]["width"]
    assert by_method["human-width"]["width"] < 1.0
    res = by_method["human-res"]  # full width, 100 classes, 3 channels: the human network's own parameters
    assert res["params"] == human_params and res["input"] < 32
    assert res["macs"] == _flop_counter_macs(human, res["input"])

    quality.main(argv)  # a finished grid resumes to nothing
    assert "0 jobs to run (4 already in" in capsys.readouterr().out
    assert len(quality.load_rows(out)) == 4


def test_missing_dataset_is_one_line(tmp_path):
    argv = ["--data", "cifar100", "--data-root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "q.jsonl")]
    with pytest.raises(SystemExit) as stopped:
        quality.main(argv)
    message = str(stopped.value.code)
    assert message.startswith("error: ") and "\n" not in message
    assert "cifar" in message.lower()
    assert not (tmp_path / "q.jsonl").exists()
