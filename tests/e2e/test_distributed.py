"""torchrun + DDP (gloo on CPU): a killed 2-process run resumes and equals a 1-process run of the same global batch.

The test network has no batch norm: with per-rank batch statistics (SyncBatchNorm needs a GPU) two processes of
batch 16 and one of batch 32 compute different functions, so only a BN-free network can be compared exactly. The
gradients are then the same mean over the same 32 images, summed in another order: the tolerance is float noise
(relative 1e-4 on losses and alphas after 3 epochs of 3 steps), and the integer sizes must be equal.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..conftest import QUICK_EXPORT, TINY_DATA

pytestmark = pytest.mark.slow  # every test here trains or starts processes

NET = """
from torch import nn

def cell(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.ReLU())

def build(num_classes=10, in_channels=3, width=1.0):
    c = max(8, int(16 * width))
    return nn.Sequential(
        cell(in_channels, c), cell(c, c), cell(c, 2 * c, stride=2), cell(2 * c, 2 * c), cell(2 * c, 2 * c),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * c, num_classes),
    )
"""


def _args(model: str, out: Path, epochs: int, batch: int, shape_until: str = "1") -> list[str]:
    return [
        "compress", model, *TINY_DATA, "--batch-size", str(batch), "--epochs", str(epochs), "--width", "1.5",
        "--budget", "60%", "--adaptors", "2", "--alpha-lr", "0.2", "--shape-until", shape_until, *QUICK_EXPORT,
        "--out", str(out), "--quiet",
    ]  # fmt: skip


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("WORLD_SIZE", None)
    return env


def _torchrun(nproc: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        str(nproc),
        "-m",
        "autosc",
    ]


def _single() -> list[str]:
    return [sys.executable, "-m", "autosc"]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("net") / "net.py"
    path.write_text(NET)
    return f"{path}:build"


def _run(cmd: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _descendants(pid: int) -> list[int]:
    """Every live process under ``pid``, read from /proc: torchrun starts each worker in a session of its own, so
    killing torchrun's process group leaves the workers running (and holding the run folder's lock)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we read
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL torchrun and every worker under it, as a crash of the machine would, and wait until all are gone."""
    victims = _descendants(proc.pid)
    os.killpg(proc.pid, signal.SIGKILL)
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 30
    while any(Path(f"/proc/{pid}").exists() and not _is_zombie(pid) for pid in victims) and time.time() < deadline:
        time.sleep(0.05)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_a_killed_two_process_run_resumes_and_equals_one_process_of_the_same_global_batch(model, tmp_path):
    """SIGKILL torchrun and its workers after epoch 1's checkpoint; --resume with 2 processes finishes the run, and
    it ends where an uninterrupted 1-process run of the same global batch ends (float noise only). The shape phase
    ends in epoch 2 (step 4 of 9), so the resumed group also collapses the adaptors and re-wraps DDP without the
    alphas on the way (the alphas stop there in both runs)."""
    killed, one = tmp_path / "killed", tmp_path / "one"
    cmd = _torchrun(2) + _args(model, killed, epochs=3, batch=16, shape_until="0.5")
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            if (killed / "metrics.jsonl").is_file() and len(_metrics(killed)) >= 1:
                break
            if proc.poll() is not None:
                pytest.fail(f"the run ended before it could be killed: {proc.stderr.read()[-2000:]}")
            time.sleep(0.05)
        else:
            pytest.fail("no checkpoint within 240 s")
    finally:
        _kill_tree(proc)
    done = len(_metrics(killed))
    assert done < 3, "the run finished before the kill; make it longer"
    assert not (killed / "report.json").exists()
    # not --quiet: rank 0 alone prints the summary line (rank 1 has no report and must not fail on it)
    loud = _run(_torchrun(2) + ["compress", model, "--out", str(killed), "--resume"])
    assert loud.stdout.count("done: ") == 1, loud.stdout[-2000:]
    _run(_single() + _args(model, one, epochs=3, batch=32, shape_until="0.5"))
    # one run folder each: rank 1 wrote nothing anywhere
    assert sorted(p.name for p in tmp_path.iterdir()) == ["killed", "one"]
    assert (killed / "report.json").is_file() and (killed / "model.onnx").is_file()
    r2, r1 = json.loads((killed / "report.json").read_text()), json.loads((one / "report.json").read_text())
    assert [a["size"] for a in r2["adaptors"]] == [a["size"] for a in r1["adaptors"]]
    for a2, a1 in zip(r2["adaptors"], r1["adaptors"], strict=True):
        assert a2["alpha_end"] == pytest.approx(a1["alpha_end"], rel=1e-4, abs=1e-6)
        assert a2["alpha_end"] != pytest.approx(a2["alpha_start"], abs=1e-3)  # the alphas did learn
    m2, m1 = _metrics(killed), _metrics(one)
    assert [m["epoch"] for m in m2] == [1, 2, 3]
    assert [m["train_loss"] for m in m2] == pytest.approx([m["train_loss"] for m in m1], rel=1e-4)
    assert [m["sizes"] for m in m2] == [m["sizes"] for m in m1]
    assert abs(r2["accuracy"]["final"] - r1["accuracy"]["final"]) <= 1 / 64  # at most one test image flips
    assert r2["macs"]["final"] + r2["macs"]["final_resize"] <= r2["budget"]["macs"]
    assert [a.get("branch") for a in r2["adaptors"]] == ["full", "full"]  # collapsed under DDP after the resume
    # a resume without --latency-runs keeps the run's 3 (QUICK_EXPORT), not the default
    assert r2["latency_ms"]["runs"] == 3
