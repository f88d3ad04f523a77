"""What autosc promises under faults and bad input (docs/reliability.md): one test per promise."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from autosc import io
from autosc.config import RunConfig
from autosc.run import RunFolder

from ..conftest import REFUSED_RUN, TINY_NET, assert_one_line_error


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
    _stored_run(folder)
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
        _stored_run(run)
    else:
        run.mkdir()
    (run / name).symlink_to(target)
    args = ["--out", run, "--resume"] if resume else [*REFUSED_RUN, "--out", run]
    assert_one_line_error(cli("compress", *args), f"{run / name} is a symbolic link")
    assert target.read_text() == "three years of work" and (run / name).is_symlink()


def test_a_refused_resume_removes_no_file_that_merely_looks_temporary(cli, tmp_path):
    run = tmp_path / "run"
    _stored_run(run)
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


def _evil_builder(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "imported"
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(marker)!r}, 'w').write('ran')\ndef build(**kw):\n    raise SystemExit(0)\n")
    return evil, marker


@pytest.mark.parametrize("kind", ["frozen", "checkpoint"])
def test_export_never_imports_a_builder_named_inside_a_file(cli, tmp_path, kind):
    evil, marker = _evil_builder(tmp_path)
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

    evil, marker = _evil_builder(tmp_path)
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


# -- resume and arguments ------------------------------------------------------------------------------


def _stored_run(folder: Path) -> None:
    folder.mkdir()
    config = RunConfig.from_flat({"model": "mobilenet_v2_cifar", "budget": "8M", "data": "synthetic", "epochs": 1})
    stored = {"model": "mobilenet_v2_cifar", "config": config.to_dict(), "command": "autosc compress ...", "plan": {}}
    io.write_json(folder / "run.json", stored)  # version 1 (no format tag), as every run.json had a command


def test_resume_refuses_flags_that_contradict_the_stored_run(cli, tmp_path):
    run = tmp_path / "run"
    _stored_run(run)
    result = cli("compress", "resnet18_cifar", "--out", run, "--resume", "--budget", "10M", "--epochs", "1")
    assert_one_line_error(result, "contradict", "--budget 10M (the run has 8M)", "MODEL resnet18_cifar")
    # an option the run left to its default is named so, not "the run has None"
    result = cli("compress", "--out", run, "--resume", "--lr", "5")
    assert_one_line_error(result, "--lr 5.0 (the run left it to its default)")
    assert "None" not in result.err
    assert_one_line_error(cli("compress", "--out", run, "--resume", "--force"), "give one of them")


def test_resume_of_a_corrupt_run_file_is_one_line(cli, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{not json")
    assert_one_line_error(cli("compress", "--out", run, "--resume"), "not a readable autosc run file")


def test_export_options_are_checked_before_training(cli, tmp_path):
    run = tmp_path / "run"
    result = cli("compress", *REFUSED_RUN, "--opset", "9", "--out", run)
    assert_one_line_error(result, "--opset must be an integer from 17")
    assert not run.exists()


# -- silent nonsense and the error boundary -------------------------------------------------------------


def test_compress_without_data_says_what_to_pass(cli, tmp_path):
    result = cli("compress", "mobilenet_v2", "--budget", "300M", "--out", tmp_path / "run")
    assert_one_line_error(result, "compress needs --data", "fashion-mnist", "e.g. --data")


def test_an_internal_error_is_one_line_pointing_to_the_traceback(cli, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("something autosc got wrong")

    monkeypatch.setattr("autosc.api.count_model", broken)
    result = cli("count", "mobilenet_v2")
    assert result.code == 1 and len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    assert "internal error in autosc (a bug" in result.err and "something autosc got wrong" in result.err
    log = Path(result.err.strip().rsplit("full traceback in ", 1)[1])
    assert "Traceback" in log.read_text() and "broken" in log.read_text()
    log.unlink()


def test_a_builder_that_exits_is_an_error_not_a_silent_success(cli, tmp_path):
    evil, _ = _evil_builder(tmp_path)
    assert_one_line_error(cli("count", f"{evil}:build"), "called sys.exit(0)")


def test_a_corrupt_image_is_one_line_naming_it(cli, tmp_path):
    from PIL import Image

    for split in ("train", "val"):
        for name in ("a", "b"):
            (tmp_path / "img" / split / name).mkdir(parents=True)
            Image.new("RGB", (32, 32)).save(tmp_path / "img" / split / name / "0.png")
    (tmp_path / "img" / "train" / "a" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    result = cli("compress", "resnet18_cifar", "--data", f"imagefolder:{tmp_path / 'img'}", "--input-size", "32",
                 "--width", "0.25", "--budget", "10M", "--epochs", "1", "--batch-size", "4", "--out",
                 tmp_path / "run", "--quiet")  # fmt: skip
    assert_one_line_error(result, "cannot read image", "1.png")
    assert not (tmp_path / "run").exists()  # refused once the plan was written: no run.json left to refuse the retry


def test_a_data_root_that_is_a_file_or_lacks_the_files_is_refused_not_replaced(cli, tmp_path):
    """A named --data-root is used or refused; autosc never falls back to the system copy behind the user's back."""
    readme = Path(__file__).parents[2] / "README.md"
    base = ["compress", *TINY_NET, "--data", "fashion-mnist", "--quiet"]
    assert_one_line_error(cli(*base, "--data-root", readme, "--out", tmp_path / "a"), "is a file")
    assert_one_line_error(cli(*base, "--data-root", tmp_path, "--out", tmp_path / "b"), "Fashion-MNIST not found in")


def test_bench_of_a_model_without_a_float_input_is_one_line(cli, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "ints",
        [helper.make_tensor_value_info("x", TensorProto.INT64, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, [1, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, tmp_path / "ints.onnx")
    assert_one_line_error(cli("bench", tmp_path / "ints.onnx", "--runs", "3"), "its input is INT64")


def test_a_run_started_before_device_data_resumes_on_the_loader(tmp_path):
    """Device-resident data draws its augmentation differently: an older run goes on with the batches it had."""
    from autosc.run.compress import _stored
    from autosc.run.folder import RunFolder

    old, new = tmp_path / "old", tmp_path / "new"
    _stored_run(old)
    _stored_run(new)
    stored = json.loads((old / "run.json").read_text())
    del stored["config"]["train"]["device_data"]  # what a run.json written before the option holds
    (old / "run.json").write_text(json.dumps(stored))
    assert _stored(RunFolder(old), {})[0].train.device_data == "off"
    assert _stored(RunFolder(new), {})[0].train.device_data == "auto"


# -- silent or misleading (issue 28) ---------------------------------------------------------------------


def _stored_transfer_run(folder: Path) -> None:
    """The run.json of an ``autosc transfer`` started under a budget (so its own defaults say --no-budget off)."""
    folder.mkdir()
    flat = {"model": "resnet18_cifar", "budget": "8M", "data": "synthetic", "epochs": 1, "weights": "/w.pt",
            "mode": "standard", "new_head": True, "init_factor": 0.55, "adaptor_mix": "blend", "distill": False}  # fmt: skip
    stored = {"model": flat["model"], "config": RunConfig.from_flat(flat).to_dict(), "command": "autosc transfer ...",
              "plan": {}}  # fmt: skip
    io.write_json(folder / "run.json", stored)


def test_transfer_resume_compares_only_the_options_typed(cli, tmp_path, monkeypatch):
    """transfer's own defaults are not options the user typed: its run resumes, and on a compress run only what
    was typed is named as contradicting it."""
    from autosc.run import pipeline

    resumed = []

    def run(config, folder, *args):
        resumed.append(config)  # the stored run goes on from here (training is not what this test checks)
        return pipeline.Result(folder.root, None, None)

    monkeypatch.setattr(pipeline, "run", run)
    own = tmp_path / "transfer"
    _stored_transfer_run(own)
    result = cli("transfer", "--out", own, "--resume", "--quiet")
    assert result.code == 0 and result.err == "", result.err
    assert (resumed[0].plan.mode, resumed[0].plan.budget, resumed[0].plan.no_budget) == ("standard", "8M", False)
    other = tmp_path / "compress"
    _stored_run(other)
    result = cli("transfer", "--out", other, "--resume", "--epochs", "3")
    assert_one_line_error(result, "contradict it: --epochs 3 (the run has 1). Drop them")
    for untyped in ("--mode", "--new-head", "--init-factor", "--no-budget", "--adaptor-mix", "--distill"):
        assert untyped not in result.err
    assert len(resumed) == 1


def test_init_factor_is_refused_where_no_adaptor_uses_it(cli, tmp_path):
    """--init-factor starts standard adaptors; --mode autosc has none, so the value would be silently unused."""
    result = cli("compress", *REFUSED_RUN, "--init-factor", "0.6", "--out", tmp_path / "run")
    assert_one_line_error(result, "--init-factor starts the standard adaptors, and --mode autosc has none")
    assert not (tmp_path / "run").exists()
    # transfer's own start factor is its default for standard adaptors only: --mode autosc drops it, not refuses
    from autosc.run.transfer import _with_defaults

    assert "init_factor" not in _with_defaults({"mode": "autosc"})
    assert _with_defaults({})["init_factor"] == 0.55
    assert _with_defaults({"mode": "autosc", "init_factor": 0.6})["init_factor"] == 0.6  # typed: refused later


def _tiny_onnx(path: Path) -> Path:
    """An ONNX file with one float image input of dynamic batch (3x32x32), for bench's size checks."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3, 32, 32])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, path)
    return path


def test_bench_refuses_a_batch_larger_than_memory(cli, tmp_path):
    """10^9 images of 3x32x32 float32 are 12 TB: refused with the limit, before any input is drawn."""
    onnx_file = _tiny_onnx(tmp_path / "tiny.onnx")
    result = cli("bench", onnx_file, "--batch", "1000000000", "--runs", "2", "--threads", "1")
    assert_one_line_error(result, "--batch: a batch of 1000000000 at 3x32x32 needs at least", "available")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.onnx"]


def test_internal_error_logs_do_not_pile_up(cli, tmp_path, monkeypatch):
    """Each internal error writes a log; only the newest KEEP_ERROR_LOGS of them stay in the temporary folder."""
    import os
    import tempfile

    from autosc.cli import KEEP_ERROR_LOGS

    def broken(*args, **kwargs):
        raise RuntimeError("something autosc got wrong")

    monkeypatch.setattr("autosc.api.count_model", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for age in range(KEEP_ERROR_LOGS + 3):  # older logs, the oldest first
        old = tmp_path / f"autosc-error-old{age:02d}.log"
        old.write_text("an old traceback")
        os.utime(old, ns=(10**18 + age, 10**18 + age))
    (tmp_path / "autosc-error-notes.txt").write_text("not a log")
    result = cli("count", "mobilenet_v2")
    log = Path(result.err.strip().rsplit("full traceback in ", 1)[1])
    logs = sorted(p.name for p in tmp_path.glob("autosc-error-*.log"))
    assert len(logs) == KEEP_ERROR_LOGS and log.name in logs and "autosc-error-old00.log" not in logs
    assert (tmp_path / "autosc-error-notes.txt").exists()


#: What a compress run leaves outside its run folder, with HOME and TMPDIR its own: only the empty cache folder
#: PyTorch makes when its exporter is imported (docs/reliability.md, What autosc writes outside the run folder).
WRITTEN_OUTSIDE = ["tmp/torchinductor_{user}"]


@pytest.mark.slow
def test_a_run_writes_outside_its_folder_only_what_the_docs_list(tmp_path):
    """A tiny compress run in a subprocess, HOME and TMPDIR empty folders: the files left there are the list."""
    import getpass
    import os
    import re

    from ..conftest import TINY_RUN

    home, tmp, work = tmp_path / "home", tmp_path / "tmp", tmp_path / "work"
    for folder in (home, tmp, work):
        folder.mkdir()
    # the test process's own settings (torch sets TORCHINDUCTOR_CACHE_DIR once imported) must not leak in
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "MPL", "TORCHINDUCTOR_", "ORT_"))}
    env.update(HOME=str(home), TMPDIR=str(tmp), OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-m", "autosc", "compress", *TINY_RUN, "--epochs", "1", "--out", "run", "--quiet"],
        cwd=work, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    user = re.sub(r'[\\/:*?"<>|]', "_", getpass.getuser())  # as torch names its folder
    expected = [w.format(user=user) for w in WRITTEN_OUTSIDE]
    assert sorted(str(p.relative_to(tmp_path)) for root in (home, tmp) for p in root.rglob("*")) == expected
    assert sorted(p.name for p in work.iterdir()) == ["run"]
    # the one end-to-end run with the default exporter (the shared tiny run exports with torchscript, for time)
    onnx = json.loads((work / "run" / "report.json").read_text())["onnx"]
    assert onnx["opset"] >= 17 and onnx["exporter"] == "dynamo" and onnx["max_abs_diff"] < 1e-3


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
