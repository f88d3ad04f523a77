"""What autosc promises under faults and bad input (docs/reliability.md), part 1: no data loss, no code named by a
file, one run per folder. One test per promise."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from autosc import io
from autosc.run import RunFolder

from ..conftest import REFUSED_RUN, assert_one_line_error
from .stored_runs import evil_builder, stored_run


def _tree(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


def _previous_run(folder: Path) -> None:
    """A folder that looks like an earlier run: run.json and some of autosc's files."""
    folder.mkdir(parents=True)
    (folder / "run.json").write_text('{"model": "mobilenet_v2_cifar"}')
    (folder / "metrics.jsonl").write_text("")
    (folder / ".checkpoint.pt.abc123xy.tmp").write_text("left by a killed save")


# -- data loss ------------------------------------------------------------------------------------------


def test_force_refuses_a_folder_holding_files_autosc_did_not_write(cli, tmp_path):
    run = tmp_path / "run"
    _previous_run(run)
    (run / "thesis.tex").write_text("three years of work")
    (run / "notes").mkdir()
    before = _tree(tmp_path)
    assert_one_line_error(
        cli("compress", *REFUSED_RUN, "--out", run, "--force"), "only deletes autosc's own files", "thesis.tex"
    )
    assert _tree(tmp_path) == before


def test_force_deletes_only_autoscs_own_files_once_the_new_run_starts(tmp_path):
    run = tmp_path / "run"
    _previous_run(run)
    folder = RunFolder(run)
    with folder.session(resume=False, force=True):
        assert (run / "metrics.jsonl").exists()  # nothing of the previous run goes before the new one is accepted
        folder.write_run({"model": "mobilenet_v2_cifar", "config": {}, "command": "c", "plan": {}, "plan_summary": {}})
    assert not (run / "metrics.jsonl").exists() and not (run / ".checkpoint.pt.abc123xy.tmp").exists()
    assert json.loads((run / "run.json").read_text())["command"] == "c"


def _finished_run(folder: Path) -> None:
    """A folder holding a finished run's files (their contents do not matter to a run that is refused)."""
    stored_run(folder)
    for name in ("checkpoint.pt", "frozen.pt", "model.onnx", "report.json", "report.md", "metrics.jsonl"):
        (folder / name).write_bytes(f"the previous run's {name}".encode())
    (folder / ".lock").write_text("pid 1")


def _contents(root: Path) -> dict[str, bytes]:
    """Every file's bytes but the lock's (which records the pid of the last run that held it)."""
    return {p.name: p.read_bytes() for p in sorted(root.iterdir()) if p.name != ".lock"}


@pytest.mark.parametrize(
    "bad", [["--lr", "-1"], ["--opset", "5"], ["--data", "imagefolder:/nonexistent"]], ids=["lr", "opset", "data"]
)
def test_force_with_a_refused_option_changes_no_file(cli, tmp_path, bad):
    run = tmp_path / "run"
    _finished_run(run)
    before = _contents(run)
    assert_one_line_error(cli("compress", *REFUSED_RUN, *bad, "--out", run, "--force"))
    assert _contents(run) == before and (run / ".lock").is_file()


@pytest.mark.parametrize("name, resume", [(".lock", False), (".write-test", True), ("checkpoint.pt", True)])
def test_a_link_named_as_autoscs_own_file_is_refused_and_its_target_untouched(cli, tmp_path, name, resume):
    run, target = tmp_path / "run", tmp_path / "thesis.tex"
    target.write_text("three years of work")
    if resume:
        stored_run(run)
    else:
        run.mkdir()
    (run / name).symlink_to(target)
    args = ["--out", run, "--resume"] if resume else [*REFUSED_RUN, "--out", run]
    assert_one_line_error(cli("compress", *args), f"{run / name} is a symbolic link")
    assert target.read_text() == "three years of work" and (run / name).is_symlink()


def test_a_refused_resume_removes_no_file_that_merely_looks_temporary(cli, tmp_path):
    run = tmp_path / "run"
    stored_run(run)
    for name in (".notes.backup.tmp", ".notes.abcdefgh.tmp", ".run.json.backup.tmp"):
        (run / name).write_text("the user's")
    result = cli("compress", "--out", run, "--resume", "--budget", "10M")
    assert_one_line_error(result, "contradict", "--budget 10M")
    assert all((run / name).read_text() == "the user's" for name in (".notes.backup.tmp", ".notes.abcdefgh.tmp"))
    assert (run / ".run.json.backup.tmp").exists()


@pytest.mark.slow
def test_export_never_replaces_a_fifo_or_a_link(cli, tmp_path):
    import os
    import stat

    import autosc
    from autosc.freeze import freeze, save_frozen

    frozen, spec = freeze(autosc.plan("mobilenet_v2_cifar", budget="8M", width=0.35).network)
    save_frozen(frozen, spec, tmp_path / "frozen.pt")
    fifo, link, target = tmp_path / "fifo", tmp_path / "link.onnx", tmp_path / "thesis.tex"
    os.mkfifo(fifo)
    target.write_text("three years of work")
    link.symlink_to(target)
    before = sorted(os.listdir(tmp_path))
    assert_one_line_error(cli("export", tmp_path / "frozen.pt", "-o", fifo), "is not a regular file")
    assert_one_line_error(cli("export", tmp_path / "frozen.pt", "-o", link), "is a symbolic link")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and link.is_symlink() and target.read_text() == "three years of work"
    assert sorted(os.listdir(tmp_path)) == before


@pytest.mark.parametrize("out", ["", ".", "HOME"])
def test_force_never_clears_the_current_or_home_folder(cli, tmp_path, monkeypatch, out):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "run.json").write_text("{}")
    (tmp_path / "metrics.jsonl").write_text("")
    before = _tree(tmp_path)
    target = str(tmp_path) if out == "HOME" else out
    assert_one_line_error(cli("compress", *REFUSED_RUN, "--out", target, "--force"), "current, home or root folder")
    assert _tree(tmp_path) == before


def test_a_refused_run_leaves_nothing_behind(cli, tmp_path):
    run = tmp_path / "new" / "run"
    assert_one_line_error(cli("compress", *REFUSED_RUN, "--num-classes", "7", "--out", run), "does not match")
    assert not run.exists()


def test_a_run_refused_after_its_run_json_leaves_none_so_the_retry_is_accepted(tmp_path):
    """A refusal found once the plan is written (the device cannot hold the data, an unreadable image, a loss that
    is NaN from the start) leaves no run.json that would refuse the retry; after the first checkpoint it stays."""
    from autosc.errors import AutoscError

    run = tmp_path / "run"
    folder, record = RunFolder(run), {"model": "m", "config": {}, "command": "c", "plan": {}, "plan_summary": {}}
    for keep in (False, True):
        with pytest.raises(AutoscError), folder.session(resume=False, force=False):
            folder.write_run(record)
            if keep:
                (run / "checkpoint.pt").write_bytes(b"an epoch's state")
            raise AutoscError("refused after run.json")
        assert (run / "run.json").exists() == keep and run.exists() == keep


def test_stale_temporary_files_are_removed_on_the_next_start(tmp_path):
    run = tmp_path / "run"
    _previous_run(run)
    (run / ".notes.abcdefgh.tmp").write_text("the user's: not a temporary of autosc's own files")
    with RunFolder(run).session(resume=True, force=False):
        assert not (run / ".checkpoint.pt.abc123xy.tmp").exists()
        assert (run / "run.json").exists() and (run / "metrics.jsonl").exists()
        assert (run / ".notes.abcdefgh.tmp").exists()


# -- code named by a file ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["frozen", "checkpoint"])
def test_export_never_imports_a_builder_named_inside_a_file(cli, tmp_path, kind):
    evil, marker = evil_builder(tmp_path)
    model = {"name": f"{evil}:build", "width": 1.0, "num_classes": 10, "in_channels": 3}
    path = tmp_path / f"{kind}.pt"
    if kind == "frozen":
        spec = {"format": "autosc-shape/1", "model": model, "input_size": [32, 32], "adaptors": []}
        io.save({"format": io.FROZEN_FORMAT, "shape_spec": spec, "state_dict": {}}, path)
    else:
        config = {"model": model, "input_size": [32, 32], "budget": {"macs": 1}, "cells": []}
        io.save({"format": io.CHECKPOINT_FORMAT, "config": config, "state_dict": {}}, path)
    result = cli("export", path, "-o", tmp_path / "model.onnx")
    assert_one_line_error(result, "never imports code a file names", f"--model {evil}:build")
    assert not marker.exists()
    # named by the user, the builder is theirs to run (this one exits, which is one line too)
    assert_one_line_error(cli("export", path, "-o", tmp_path / "m.onnx", "--model", f"{evil}:build"), "sys.exit(0)")
    assert marker.exists()


def test_a_preset_never_imports_a_builder(cli, tmp_path):
    import autosc
    from autosc.errors import AutoscError

    evil, marker = evil_builder(tmp_path)
    preset = tmp_path / "evil.toml"
    preset.write_text(f'model = "{evil}:build"\nbudget = "8M"\ndata = "synthetic"\nepochs = 1\n')
    result = cli("compress", "--preset", preset, "--out", tmp_path / "run", "--quiet")
    assert_one_line_error(result, "never imports code a file names", f"autosc compress {evil}:build --preset")
    with pytest.raises(AutoscError, match="never imports code a file names"):
        autosc.compress(preset=preset, out=tmp_path / "run", quiet=True)
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_export_refuses_its_own_input_and_a_folder_as_output(cli, tmp_path):
    frozen = tmp_path / "frozen.pt"
    frozen.write_bytes(b"not a model")
    assert_one_line_error(cli("export", frozen, "-o", frozen), "is the file being exported")
    assert frozen.read_bytes() == b"not a model"
    assert_one_line_error(cli("export", frozen, "-o", tmp_path), "is a folder")


# -- one run per folder --------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_second_run_on_a_locked_folder_is_refused(cli, tmp_path, monkeypatch):
    # each refusal waits LOCK_GRACE for a just-killed holder to exit; this holder is alive, so a short wait will do
    monkeypatch.setattr("autosc.run.folder.LOCK_GRACE", 0.3)
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\nfrom autosc.run import RunFolder\n"
         f"with RunFolder(Path({str(run)!r})).session(resume=False, force=False):\n"
         "    print('held', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        assert_one_line_error(cli("compress", *REFUSED_RUN, "--out", run), "in use by another autosc run", "pid")
        assert_one_line_error(cli("compress", *REFUSED_RUN, "--out", run, "--force"), "in use by another autosc run")
    finally:
        holder.kill()  # SIGKILL: the OS releases the lock with the process
        holder.wait()
    with RunFolder(run).session(resume=False, force=False):  # a crashed holder never blocks the next run
        pass
