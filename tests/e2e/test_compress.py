"""`autosc compress` end to end on small data: run folder, report keys, budget, resume, bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

import autosc
from autosc.run import RUN_FILE

from ..conftest import TINY_RUN, TINY_RUN_ARGS, assert_one_line_error

# The shared tiny run (the `tiny_run` fixture of tests/conftest.py) is checked here by what it wrote: its files,
# report.json, the ONNX export, the latency, metrics.jsonl and report.md.


@pytest.mark.slow
def test_compress_writes_the_whole_run_folder(tiny_run):
    for name in ("model.onnx", "frozen.pt", "frozen.shape.json", "checkpoint.pt", "metrics.jsonl", "report.json",
                 "report.md", "shape.png", "dynamics.png", "baseline.onnx", "human.onnx", RUN_FILE):  # fmt: skip
        assert (tiny_run / name).is_file(), name


@pytest.mark.slow
def test_compress_report_keys_and_budget(tiny_run):
    report = json.loads((tiny_run / "report.json").read_text())
    # the report.json keys other tools rely on (docs/algorithm.md, The run folder)
    assert report["budget"]["macs"] == 8_000_000 and report["budget"]["memory_bytes"] is None
    assert isinstance(report["width"], float)
    for key in ("human", "widened", "final"):
        assert isinstance(report["macs"][key], int)
    assert report["macs"]["convention"] == "standard"
    assert report["macs"]["final"] + report["macs"]["final_resize"] <= report["budget"]["macs"]
    assert set(report["params"]) >= {"human", "final"}
    for a in report["adaptors"]:
        assert {"name", "human_size", "size", "s", "sigma"} <= set(a)
        assert a["size"][0] <= a["human_size"][0]
    assert 0.0 <= report["accuracy"]["final"] <= 1.0
    assert report["baseline"]["macs"] <= report["budget"]["macs"]


@pytest.mark.slow
def test_compress_report_onnx_export_and_latency(tiny_run):
    report = json.loads((tiny_run / "report.json").read_text())
    assert report["onnx"]["opset"] >= 17 and report["onnx"]["exporter"] == "torchscript"  # as asked (the default's run:
    # test_reliability.test_a_run_writes_outside_its_folder_only_what_the_docs_list)
    assert report["onnx"]["max_abs_diff"] < 1e-3
    for who in ("compressed", "human", "baseline"):
        assert report["latency_ms"][who]["p50"] <= report["latency_ms"][who]["p90"]
    assert report["latency_ms"]["threads"] == 1 and report["latency_ms"]["batch"] == 1


@pytest.mark.slow
def test_compress_metrics_and_markdown(tiny_run):
    metrics = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert "alpha_moved" in metrics[-1] and metrics[-1]["alpha_moved"] > 0
    md = (tiny_run / "report.md").read_text()
    assert "shape.png" in md and "autosc compress mobilenet_v2_cifar" in md


@pytest.mark.slow
def test_an_existing_run_is_not_overwritten(cli, tiny_run):
    before = {p.name: p.stat().st_mtime_ns for p in tiny_run.iterdir()}
    assert_one_line_error(cli(*TINY_RUN_ARGS[:-1], "--out", tiny_run), "already holds a run")
    assert {p.name: p.stat().st_mtime_ns for p in tiny_run.iterdir()} == before


#: the tiny run with more batches per epoch (14 instead of 3), so that a signal sent just after epoch 1 lands inside
#: training on a fast host too (with 3 batches the run could finish first: seen on a fast EPYC host)
RESUMABLE = [*TINY_RUN, "--subset", "480"]


def _compress_process(out: Path, *extra: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "autosc", "compress", *RESUMABLE, "--epochs", "4",
            "--exporter", "torchscript", "--out", str(out), "--quiet", *extra]  # fmt: skip
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _resume_process(out: Path, *extra: str) -> subprocess.Popen:
    """The run comes from its folder alone (no MODEL); the options that do not change training may change."""
    args = [sys.executable, "-m", "autosc", "compress", "--out", str(out), "--resume", "--quiet", *extra]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _epochs(out: Path) -> int:
    metrics = out / "metrics.jsonl"
    return len(metrics.read_text().splitlines()) if metrics.is_file() else 0


def _wait_for_epochs(out: Path, proc: subprocess.Popen, n: int, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if _epochs(out) >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"run ended early: {proc.returncode} {proc.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for epoch {n}")


def _outcome(out: Path) -> tuple:
    report = json.loads((out / "report.json").read_text())
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    sizes = [a["size"] for a in report["adaptors"]]
    numbers = [(m["train_loss"], m["test_acc"], m["test_loss"], *m["factors"]) for m in metrics]
    return sizes, numbers


def _same(a: tuple, b: tuple) -> None:
    assert a[0] == b[0]  # identical adaptor sizes
    for row_a, row_b in zip(a[1], b[1], strict=True):
        assert row_a == pytest.approx(row_b, rel=1e-6, abs=1e-7)  # float noise only


@pytest.mark.slow
def test_stopped_run_resumes_to_the_same_result(tmp_path):
    """One run of 4 epochs stopped three ways, each resumed: SIGKILL after epoch 1 (resume from the epoch
    checkpoint); Ctrl-C mid-epoch 3 and SIGTERM mid-epoch 4 (resume mid-epoch). The last resume changes
    --latency-runs. It ends where one uninterrupted run ends."""
    reference = tmp_path / "reference"
    proc = _compress_process(reference)
    assert proc.wait(timeout=600) == 0, proc.stderr.read()
    stopped = tmp_path / "stopped"
    proc = _compress_process(stopped)
    _wait_for_epochs(stopped, proc, 1)
    proc.kill()
    proc.wait()
    assert not (stopped / "report.json").exists()
    for sig, code, epochs in ((signal.SIGINT, 130, 2), (signal.SIGTERM, 143, 3)):
        proc = _resume_process(stopped)
        _wait_for_epochs(stopped, proc, epochs)  # this process trains: the signal lands in its next epoch
        time.sleep(0.05)  # inside the next epoch (its 14 batches take longer than this on any host)
        proc.send_signal(sig)
        assert proc.wait(timeout=120) == code, proc.stderr.read()
        assert _epochs(stopped) == epochs  # stopped mid-epoch: that epoch has no metrics yet
        assert not (stopped / "report.json").exists()
    resumed = _resume_process(stopped, "--latency-runs", "3")
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()
    _same(_outcome(stopped), _outcome(reference))
    assert json.loads((stopped / "report.json").read_text())["latency_ms"]["runs"] == 3
    assert json.loads((reference / "report.json").read_text())["latency_ms"]["runs"] == 5


def _image_folder(root: Path, classes: list[str], per_class: int = 6) -> Path:
    for split in ("train", "val"):
        for i, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for j in range(per_class):
                Image.new("RGB", (36, 30), color=(40 * i, 255 - 30 * j, 90)).save(folder / f"{j}.png")
    return root


@pytest.mark.slow
def test_image_folder_trains(cli, tmp_path):
    root = _image_folder(tmp_path / "images", ["cat", "dog", "owl"])
    result = cli(
        "compress", "resnet18_cifar", "--data", f"imagefolder:{root}", "--input-size", "32", "--epochs", "1",
        "--batch-size", "6", "--width", "0.25", "--budget", "10M", "--latency-runs", "3",
        "--exporter", "torchscript", "--out", tmp_path / "run", "--quiet",
    )  # fmt: skip
    assert result.code == 0, result.err
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["data"].startswith("imagefolder:") and len(report["adaptors"]) == 3


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--data", "cifar11"], "cifar10"),
        (["--data", "cifar10", "--data-root", "/nonexistent/autosc"], "/nonexistent/autosc"),
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--out", "/dev/null/run"], "cannot write"),
    ],
)
def test_compress_bad_input(cli, args, fragment, tmp_path, monkeypatch):
    # in a folder of its own: the default run folder (exports/...) would be shared with a test process beside it,
    # whose lock would refuse this run for another reason than the one checked
    monkeypatch.chdir(tmp_path)
    base = ["compress", "mobilenet_v2_cifar", "--budget", "8M", "--data", "synthetic", "--quiet"]
    assert_one_line_error(cli(*base, *args), fragment)


def test_compress_bad_image_folders(cli, tmp_path):
    empty = tmp_path / "empty"
    (empty / "train").mkdir(parents=True)
    (empty / "val").mkdir()
    single = _image_folder(tmp_path / "single", ["only"])
    for root in (empty, single):
        result = cli(
            "compress", "resnet18_cifar", "--budget", "10M", "--data", f"imagefolder:{root}", "--out", tmp_path / "x"
        )
        assert_one_line_error(result, str(root))


def test_preset_unknown_key_and_override(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # its refused runs' default run folder: its own, not the repository's exports/
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "mobilenet_v2_cifar"\nbudget = "8M"\nlearning_rate = 0.1\n')
    assert_one_line_error(cli("compress", "--preset", bad), "unknown key(s) learning_rate")
    good = tmp_path / "good.toml"
    good.write_text('model = "mobilenet_v2_cifar"\nbudget = "8M"\ndata = "synthetic"\nepochs = 0\n')
    assert_one_line_error(cli("compress", "--preset", good, "--quiet"), "--epochs must be at least 1")  # from the file
    assert os.environ.get("AUTOSC_NEVER_SET") is None


@pytest.mark.parametrize(
    "preset", sorted(Path(__file__).parents[2].joinpath("budgets").glob("*.toml")), ids=lambda p: p.name
)
@pytest.mark.slow
def test_shipped_presets_are_valid(preset):
    from autosc.run import read_preset

    options = read_preset(preset)
    assert options["model"] and (options.get("budget") or options.get("memory"))
    plan = autosc.plan(
        options["model"],
        budget=options.get("budget"),
        input_size=options.get("input_size"),
        num_classes=100 if options.get("data") == "cifar100" else None,
        macs_convention=options.get("macs_convention", "standard"),
    )
    assert plan.projected.cost.budget_macs(plan.budget.convention) <= plan.budget.macs


@pytest.mark.slow
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    """A loss that becomes inf/nan stops training with one clear message; the checkpoint of the last epoch stays."""
    import torch

    from autosc import AutoscError, io
    from autosc.checkpoint import load_checkpoint, save_checkpoint
    from autosc.data import load_data
    from autosc.train import TrainConfig, Trainer, train

    data = load_data("synthetic", input_size=(32, 32), subset=64, test_subset=32)
    plan = autosc.plan("mobilenet_v2_cifar", budget="8M", width=0.35)
    trainer = Trainer(
        plan.network, data.train, data.test, TrainConfig(epochs=3, batch_size=32, lr=0.05, weight_decay=5e-4)
    )
    ckpt = tmp_path / "checkpoint.pt"

    def save(t):
        save_checkpoint(plan.network, ckpt, trainer=t.state_dict())
        if t.epoch == 1:  # after a good first epoch, make the next step explode
            for group in t.weight_opt.param_groups:
                group["lr"] = 1e38
            with torch.no_grad():
                for p in plan.network.weight_parameters():
                    p.mul_(1e30)

    with pytest.raises(AutoscError, match="the loss became (nan|inf).*last good checkpoint is kept"):
        train(trainer, save=save)
    _, stored = load_checkpoint(ckpt)
    assert stored["trainer"]["epoch"] == 1
    assert io.load(ckpt)["format"] == io.CHECKPOINT_FORMAT
