"""What autosc promises under faults and bad input (docs/reliability.md), part 2: resume and arguments, the error
boundary, what used to be silent or misleading. One test per promise."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from autosc import io
from autosc.config import RunConfig

from ..conftest import REFUSED_RUN, TINY_NET, assert_one_line_error
from .stored_runs import evil_builder, stored_run

# -- resume and arguments ------------------------------------------------------------------------------


def test_resume_refuses_flags_that_contradict_the_stored_run(cli, tmp_path):
    run = tmp_path / "run"
    stored_run(run)
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
    evil, _ = evil_builder(tmp_path)
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
    stored_run(old)
    stored_run(new)
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
    stored_run(other)
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
