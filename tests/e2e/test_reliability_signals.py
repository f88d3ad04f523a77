"""What autosc promises under faults and bad input (docs/reliability.md), part 3: signals where a run has no batch
boundary, input that used to be an internal error, edited files. One test per promise."""

import json
from pathlib import Path

import pytest

from autosc import io

from ..conftest import REFUSED_RUN, assert_one_line_error

# -- signals where a run has no batch boundary, and input that used to be an internal error (issue 28) -----


def _onnx_temporaries(run: Path) -> list[str]:
    return sorted(p.name for p in run.glob(".*.onnx.*.tmp"))


@pytest.mark.slow
def test_sigterm_between_one_batch_epochs_stops_the_run_and_resume_finishes_it(cli, tmp_path, monkeypatch):
    """29 training images in one batch: the only boundary is the end of an epoch, where the stop is now read."""
    import os
    import signal

    from autosc.run import training

    from ..conftest import QUICK_EXPORT, TINY_RUN

    real = training.save_checkpoint

    def save_then_sigterm(*args, **kwargs):  # a scheduler's SIGTERM during epoch 1's save
        real(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)

    run = tmp_path / "run"
    args = ["compress", *TINY_RUN, *QUICK_EXPORT, "--subset", "32", "--epochs", "3", "--out", run, "--quiet"]
    monkeypatch.setattr(training, "save_checkpoint", save_then_sigterm)
    assert cli(*args).code == 143
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1 and not (run / "report.json").exists()
    monkeypatch.setattr(training, "save_checkpoint", real)
    resumed = cli("compress", "--out", run, "--resume", "--quiet")
    assert resumed.code == 0, resumed.err
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3 and (run / "report.json").exists()


@pytest.mark.slow
def test_sigterm_during_the_export_removes_its_temporary_and_resume_finishes_it(cli, tmp_path, monkeypatch):
    """The signal arrives while model.onnx is being moved into place: the temporary goes, the run says it stopped."""
    import os
    import signal

    from ..conftest import QUICK_EXPORT, TINY_RUN

    real = os.replace

    def sigterm_before_the_onnx_lands(src, dst, *args, **kwargs):
        if str(dst).endswith("model.onnx"):
            assert _onnx_temporaries(run)  # the half-finished export is there when the signal comes
            os.kill(os.getpid(), signal.SIGTERM)
        return real(src, dst, *args, **kwargs)

    run = tmp_path / "run"
    monkeypatch.setattr("autosc.io.os.replace", sigterm_before_the_onnx_lands)
    result = cli("compress", *TINY_RUN, *QUICK_EXPORT, "--epochs", "1", "--out", run)
    assert result.code == 143, result.err
    assert "stopped; the state is saved" in result.err and "--resume" in result.err
    assert _onnx_temporaries(run) == [] and not (run / "model.onnx").exists() and not (run / "report.json").exists()
    monkeypatch.setattr("autosc.io.os.replace", real)
    resumed = cli("compress", "--out", run, "--resume", "--quiet")
    assert resumed.code == 0, resumed.err
    assert (run / "model.onnx").is_file() and (run / "report.json").is_file()


def test_compile_without_a_compiler_is_refused_before_anything_is_read(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no g++ (nor gcc) on it
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.delenv("CC", raising=False)
    result = cli("compress", *REFUSED_RUN, "--compile", "--out", tmp_path / "run")
    assert_one_line_error(result, "--compile needs a C", "drop --compile")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("pixels", "kind"), [(100 * 100, "error"), (50 * 50, "warning")])
def test_a_decompression_bomb_image_is_one_line_naming_it(cli, tmp_path, monkeypatch, pixels, kind):
    """PIL errs above twice MAX_IMAGE_PIXELS and warns above it; lowered here so that a small image is a bomb."""
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)
    for split in ("train", "val"):
        for name in ("a", "b"):
            (tmp_path / "img" / split / name).mkdir(parents=True)
            Image.new("RGB", (32, 32)).save(tmp_path / "img" / split / name / "1.png")
    side = int(pixels**0.5)
    Image.new("RGB", (side, side)).save(tmp_path / "img" / "train" / "a" / "0.png")
    result = cli("compress", "resnet18_cifar", "--data", f"imagefolder:{tmp_path / 'img'}", "--input-size", "32",
                 "--width", "0.25", "--budget", "10M", "--epochs", "1", "--batch-size", "4", "--out",
                 tmp_path / "run", "--quiet")  # fmt: skip
    assert_one_line_error(result, "too large to decode safely", "0.png")
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> dict[str, dict]:
    """A frozen network and a checkpoint as autosc writes them (planned, not trained): the data to edit."""
    import torch

    import autosc
    from autosc.checkpoint import save_checkpoint
    from autosc.freeze import freeze, save_frozen

    root = tmp_path_factory.mktemp("files")
    plan = autosc.plan("mobilenet_v2_cifar", budget="8M", width=0.35, input_size=32)
    save_frozen(*freeze(plan.network), root / "frozen.pt")
    save_checkpoint(plan.network, root / "checkpoint.pt")
    return {kind: torch.load(root / f"{kind}.pt", weights_only=True) for kind in ("frozen", "checkpoint")}


#: (file kind, what is edited, a fragment of the one line, the edit of the stored shape spec or network config)
EDITS = [
    *[
        (kind, name, fragment, edit)
        for kind in ("frozen", "checkpoint")
        for name, fragment, edit in [
            ("a budget that is text", "budget must be a dict", lambda d: d.update(budget="8M")),
            ("a budget limit that is text", "budget macs must be a positive", lambda d: d["budget"].update(macs="8M")),
            ("a latency reference that is text", "budget latency_reference_ms must be a positive number or null",
             lambda d: d["budget"].update(latency_reference_ms="2ms")),  # a number passes (a resumed latency run)
            ("input_size missing", "input_size is missing", lambda d: d.pop("input_size")),
            ("num_classes text", "num_classes must be a whole number", lambda d: d["model"].update(num_classes="10")),
            ("an absurd width", "width must be a number in (0, 8]", lambda d: d["model"].update(width=1e6)),
            ("an absurd input size", "input_size must be [height, width]", lambda d: d.update(input_size=[10**6] * 2)),
        ]
    ],
    ("frozen", "adaptors not a list", "adaptors must be a list", lambda d: d.update(adaptors="features.2")),
    ("frozen", "an adaptor without size", "adaptor 1: size is missing", lambda d: d["adaptors"][0].pop("size")),
    ("frozen", "an absurd size", "adaptor 1: size must be", lambda d: d["adaptors"][0].update(size=[10**9] * 2)),
    ("frozen", "an unknown cell", "'features.99', which", lambda d: d["adaptors"][0].update(name="features.99")),
    ("checkpoint", "cells not a list", "cells must be a list", lambda d: d.update(cells="features.2")),
    ("checkpoint", "an unknown cell", "features.99", lambda d: d["cells"].__setitem__(0, "features.99")),
]


@pytest.mark.parametrize(("kind", "name", "fragment", "edit"), EDITS, ids=[f"{e[0]}: {e[1]}" for e in EDITS])
def test_an_edited_model_file_is_one_line_naming_the_field(cli, tmp_path, model_files, kind, name, fragment, edit):
    import copy
    import re

    import autosc

    data = copy.deepcopy(model_files[kind])
    edit(data["shape_spec" if kind == "frozen" else "config"])
    path = tmp_path / f"{kind}.pt"
    io.save(data, path)
    assert_one_line_error(cli("export", path, "-o", tmp_path / "model.onnx"), fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{kind}.pt"]  # no ONNX file, no temporary
    if kind == "frozen":  # from Python: the same line, as an AutoscError
        with pytest.raises(autosc.AutoscError, match=re.escape(fragment)):
            autosc.load_frozen(path)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("file", "fragment"),
    [("trainer", "epoch is 'two'"), ("weights", "the weights do not fit"), ("plan", "budget must be a dict")],
)
def test_resume_from_an_edited_run_is_one_line_and_changes_no_file(cli, tmp_path, tiny_run, file, fragment):
    import shutil

    import torch

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    if file == "plan":
        stored = json.loads((run / "run.json").read_text())
        stored["plan"]["budget"] = "8M"
        (run / "run.json").write_text(json.dumps(stored))
    else:
        checkpoint = torch.load(run / "checkpoint.pt", weights_only=True)
        if file == "trainer":
            checkpoint["trainer"]["epoch"] = "two"
        else:
            checkpoint["state_dict"] = {"no.such.weight": torch.zeros(1)}
        io.save(checkpoint, run / "checkpoint.pt")
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".lock"}
    assert_one_line_error(cli("compress", "--out", run, "--resume", "--quiet"), fragment)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".lock"} == before
