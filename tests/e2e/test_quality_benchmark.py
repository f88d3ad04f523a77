"""The quality benchmark (``python -m benchmarks.quality``) off its Fashion-MNIST defaults: the issue's
`--data cifar100 --data-root` path.

The CPU grid only ever ran on one-channel, ten-class data; these tests run every method once on a few fake
CIFAR-100 images in torchvision's layout, so the classes, channels and input size must come from the dataset.
"""

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from autosc.models import ModelSpec
from autosc.run import freeze_and_save
from benchmarks import quality, quality_jobs

from ..helpers import write_cifar_files

pytestmark = pytest.mark.slow  # every test here trains or starts processes

ROOT = Path(__file__).resolve().parents[2]


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
    assert sorted(r["method"] for r in rows) == sorted(quality.GRID_METHODS)  # the grid default (not the modes study)

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


def _grid_args(**extra) -> argparse.Namespace:
    """The Fashion-MNIST grid's settings, as ``main`` leaves them after reading the data."""
    values = {"model": "mobilenet_v2_cifar", "num_classes": 10, "in_channels": 1, "input_size": 28,
              "data": "fashion-mnist", "data_root": None, "subset": 10_000, "epochs": 5, "lr": 0.05,
              "device": "cpu", "amp": "off", "workers": 0}  # fmt: skip
    return argparse.Namespace(**{**values, **extra})


def test_low_branch_variant_is_an_adaptor_option():
    """``low_branch: avg`` reaches the adaptors and the frozen network through make_plan, and nothing else."""
    args = _grid_args()
    avg, size, _ = quality_jobs.build({"budget": "10M", "seed": 0, "method": "autosc", "low_branch": "avg"}, args)
    ref, _, _ = quality_jobs.build({"budget": "10M", "seed": 0, "method": "autosc"}, args)  # the next job
    assert avg.pool == "avg" and ref.pool == "max"
    frozen = {name: freeze_and_save(net)[0] for name, net in (("avg", avg), ("max", ref))}
    for name, net in frozen.items():
        pools = [m.pool for m in net.modules() if hasattr(m, "pool")]
        assert pools and set(pools) == {name}
    x = torch.randn(2, 1, *size)
    with torch.no_grad():  # same seed, same weights: only the pool differs (the logits start tiny: relative)
        assert not torch.allclose(frozen["avg"](x), frozen["max"](x), rtol=1e-3, atol=0.0)


def test_job_settings_are_run_options():
    """A job's training settings and low branch are autosc's own options; width_ratio and init_factor are not."""
    args = _grid_args()
    job = {"budget": "22M", "seed": 3, "method": "autosc", "penalty": 10.0, "shape_until": 0.2,
           "low_branch": "avg", "width_ratio": 1.1, "init_factor": 0.95}  # fmt: skip
    config = quality_jobs.run_config(job, args)
    assert (config.train.penalty, config.train.shape_until, config.train.seed) == (10.0, 0.2, 3)
    assert (config.plan.low_branch, config.plan.budget, config.dataset.subset) == ("avg", "22M", 10_000)
    assert config.train.resolved and (config.train.epochs, config.train.lr) == (5, 0.05)
    uniform = quality_jobs.run_config({"budget": "22M", "seed": 0, "method": "uniform"}, args)
    assert (uniform.train.alpha_lr, uniform.train.cost_term) == (0.0, False)


def test_documented_command_runs_from_the_repository_root():
    """``python -m benchmarks.quality --help``: the benchmark imports autosc like any user, no path edits."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.quality", "--help"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage:") and "--summary" in done.stdout and "--grid" in done.stdout
