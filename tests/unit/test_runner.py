"""The benchmarks' runner (benchmarks/runner.py): a grid of fake jobs (no training) skips what its results file
already holds and resumes after a stop; the paired difference matches a hand computation; the machine stamp
names the CPU; the product's time-together timer times two tiny networks in one measurement; a job whose
training a real SIGTERM stops ends the grid without a row."""

import json
import os
import signal
import statistics
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from autosc.data.bundle import DataBundle
from autosc.env import cpu_model
from autosc.latency import time_together
from benchmarks import runner
from benchmarks.trained import Setup, _finetune


def grid(seeds=(0, 1, 2), methods=("a", "b")) -> list[dict]:
    return [{"method": m, "seed": s} for s in seeds for m in methods]


def fake(calls: list[dict], stop_at: int | None = None):
    """A job that records its call and returns a figure (stopping like Ctrl-C at the ``stop_at``-th call)."""

    def run(job: dict) -> dict:
        calls.append(job)
        if stop_at is not None and len(calls) == stop_at:
            raise KeyboardInterrupt
        return {"accuracy": 0.5 + 0.01 * job["seed"]}

    return run


def test_done_keys_skip_jobs_already_in_the_file(tmp_path, capsys):
    out, calls = tmp_path / "r.jsonl", []
    rows = runner.run_grid(grid(), fake(calls), out, key=("method", "seed"))
    assert len(rows) == len(calls) == 6 and len(runner.load_rows(out)) == 6
    assert all(r["machine"]["cpu_model"] and r["accuracy"] > 0 for r in rows)  # job, figures and stamp in one row
    again = runner.run_grid(grid(), fake(calls), out, key=("method", "seed"))
    assert len(calls) == 6 and len(again) == 6  # nothing ran twice
    assert "0 jobs to run (6 already in" in capsys.readouterr().out
    runner.run_grid(grid(seeds=(0, 1, 2, 3)), fake(calls), out, key=("method", "seed"))  # a grown grid: only the new
    assert calls[6:] == [{"method": "a", "seed": 3}, {"method": "b", "seed": 3}]


def test_a_stopped_grid_resumes_where_it_stopped(tmp_path):
    out, calls = tmp_path / "r.jsonl", []
    with pytest.raises(KeyboardInterrupt):
        runner.run_grid(grid(), fake(calls, stop_at=3), out, key=("method", "seed"))
    assert [(r["method"], r["seed"]) for r in runner.load_rows(out)] == [("a", 0), ("b", 0)]  # finished jobs kept
    resumed: list[dict] = []
    rows = runner.run_grid(grid(), fake(resumed), out, key=("method", "seed"))
    assert resumed == grid()[2:] and len(rows) == 6  # the stopped job and the rest, nothing else


def test_a_skipped_job_leaves_no_row_and_runs_again(tmp_path, capsys):
    out, calls = tmp_path / "r.jsonl", []

    def refuse_a1(job: dict) -> dict | None:  # a job refused (a timing on a slow spell): no row, the grid goes on
        calls.append(job)
        return None if job == {"method": "a", "seed": 1} else {"accuracy": 0.5}

    rows = runner.run_grid(grid(), refuse_a1, out, key=("method", "seed"))
    kept = [(r["method"], r["seed"]) for r in runner.load_rows(out)]
    assert len(calls) == 6 and len(rows) == 5 and ("a", 1) not in kept and len(kept) == 5
    assert "skipped, no row" in capsys.readouterr().out
    again: list[dict] = []
    runner.run_grid(grid(), fake(again), out, key=("method", "seed"))
    assert again == [{"method": "a", "seed": 1}]  # the next call tries only the skipped job


def test_shards_split_the_grid_and_keys_ignore_other_fields(tmp_path):
    calls: list[dict] = []
    for i in range(3):  # parallel processes, each with its own file (benchmarks/gpu_session.sh)
        runner.run_grid(grid(), fake(calls), tmp_path / f"r.{i}.jsonl", key=("method", "seed"), shard=f"{i}/3")
    assert sorted(map(json.dumps, calls)) == sorted(map(json.dumps, grid()))
    row = {"method": "a", "seed": 0, "accuracy": 0.9, "machine": {}}
    assert runner.done_key(row, ("seed", "method", "width")) == runner.done_key({"seed": 0, "method": "a"}, ["method", "seed"])


def test_paired_difference_and_standard_error_by_hand():
    a = {12: 80.0, 13: 82.0, 14: 81.0}
    b = {12: 79.0, 13: 82.5, 14: 79.0, 15: 50.0}  # seed 15 has no pair
    p = runner.paired(a, b)
    assert p.seeds == (12, 13, 14) and p.diffs == (1.0, -0.5, 2.0)
    mean = (1.0 - 0.5 + 2.0) / 3
    std = (((1.0 - mean) ** 2 + (-0.5 - mean) ** 2 + (2.0 - mean) ** 2) / 2) ** 0.5
    assert p.mean == pytest.approx(mean) and p.std == pytest.approx(std)
    assert p.se == pytest.approx(std / 3**0.5) and p.se == pytest.approx(0.7265, abs=1e-4)
    assert (p.n, p.ahead, str(p)) == (3, 2, "+0.83 ± 0.73")
    one = runner.paired({1: 2.0}, {1: 1.0})
    assert one.std == 0.0 and one.se != one.se  # one pair: no spread, no standard error (NaN)
    assert statistics.fmean(runner.paired(a, a).diffs) == 0.0


def test_stamp_names_the_cpu_versions_date_and_commit():
    stamp = runner.stamp()
    assert stamp["cpu_model"] == cpu_model() and stamp["cpu_model"] not in ("", "unknown")
    with open("/proc/cpuinfo") as f:
        names = [line.split(":", 1)[1].strip() for line in f if line.lower().startswith("model name")]
    if names:
        assert stamp["cpu_model"] == names[0]
    assert stamp["torch"] == torch.__version__ and stamp["onnxruntime"]
    assert stamp["date"][:2] == "20" and "T" in stamp["date"]
    assert stamp["commit"] is None or len(stamp["commit"].split("+")[0]) >= 7


def test_whole_file_results_are_read_not_appended(tmp_path):
    """Older benchmarks wrote one JSON file at the end: --summary reads its rows; the grid will not append to it."""
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"env": {}, "rows": [{"family": "x", "fraction": 0.5}]}))
    assert runner.load_rows(old) == [{"family": "x", "fraction": 0.5}]
    (tmp_path / "other.json").write_text(json.dumps({"env": {}, "results": [{"family": "y"}]}))
    assert runner.load_rows(tmp_path / "other.json") == [{"family": "y"}]
    with pytest.raises(SystemExit, match="older benchmark"):
        runner.run_grid(grid(), fake([]), old, key=("method", "seed"))
    assert runner.load_rows(tmp_path / "missing.jsonl") == []


def tiny(width: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(width, 4))  # fmt: skip


@pytest.mark.slow
def test_time_together_times_two_tiny_conv_nets(tmp_path):
    timed = time_together({"narrow": tiny(4), "wide": tiny(32)}, (16, 16), 3, runs=6, warmup=1, block=3)
    assert list(timed) == ["narrow", "wide"]
    for t in timed.values():
        assert 0 < t["p50"] <= t["p90"] <= t["p99"] and t["mean"] > 0
    # the runner's p50s: one network at its own input size, one already exported, in the same measurement
    path = tmp_path / "wide.onnx"
    from autosc.export import export_onnx

    export_onnx(tiny(32).eval(), (16, 16), path, exporter="torchscript", check=False)
    p50 = runner.onnx_p50s({"small": tiny(4), "file": str(path)}, {"small": (8, 8), "file": (16, 16)}, 3, runs=4,
                           warmup=1, block=2)  # fmt: skip
    assert set(p50) == {"small", "file"} and all(v > 0 for v in p50.values())


class _SignalOnRead(torch.utils.data.Dataset):
    """Eight images; reading the ``at``-th sends SIGTERM to this process: a scheduler stopping a job mid-epoch."""

    def __init__(self, at: int | None = None):
        g = torch.Generator().manual_seed(1)
        self.x, self.y = torch.randn(8, 1, 8, 8, generator=g), torch.randint(0, 3, (8,), generator=g)
        self.at, self.reads = at, 0

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int):
        self.reads += 1
        if self.reads == self.at:
            os.kill(os.getpid(), signal.SIGTERM)
        return self.x[i], self.y[i]


def _setup(data: torch.utils.data.Dataset) -> Setup:
    bundle = DataBundle("tiny", data, _SignalOnRead(), 3, 1, (8, 8), "test")
    args = SimpleNamespace(epochs=3, batch_size=4, lr=0.05, device="cpu", distill_weight=0.0, temperature=4.0,
                           shape_until=0.5, alpha_lr=0.05, device_data="off")  # fmt: skip
    return Setup(bundle, nn.Identity(), {}, None, 0, args)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(144, 3))


def test_a_job_whose_training_a_signal_stops_ends_the_grid_without_a_row(tmp_path):
    """The fine-tune every trained-start benchmark shares (benchmarks.trained._finetune): SIGTERM mid-epoch stops
    the training with its state saved and returns normally; the job must not become a row (it once did)."""
    out, data = tmp_path / "r.jsonl", {0: _SignalOnRead(), 1: _SignalOnRead(at=11)}  # seed 1: in epoch 2

    def job(j: dict) -> dict:
        net, val = _finetune(_setup(data[j["seed"]]), _net(), j["seed"], distill=False)
        return {"trained": True}

    with pytest.raises(SystemExit, match="stopped"):
        runner.run_grid(grid(seeds=(0, 1), methods=("a",)), job, out, key=("method", "seed"))
    assert [r["seed"] for r in runner.load_rows(out)] == [0]  # the finished job kept, the stopped one not written
    assert data[1].reads < 3 * 8  # it did stop early: three full epochs read every image three times
