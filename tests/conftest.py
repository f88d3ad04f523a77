import contextlib
import io
import json
import os
import random
import warnings
from pathlib import Path

import pytest
import torch
import torchvision
from filelock import FileLock  # a dependency of torch

from autosc.cli import main

warnings.filterwarnings("ignore", category=FutureWarning)
# One intra-op thread, in this process and in every process a test starts (the CLI runs, torchrun): the suite's
# networks are tiny and gain little from a second thread, while beside any other busy process two threads wait on
# each other at every OpenMP barrier. Measured on this 2-core machine beside one other job: test_collapse.py and
# test_cost_term.py took 25 s with one thread and had not finished after 10 minutes with two.
os.environ["OMP_NUM_THREADS"] = "1"
torch.set_num_threads(1)

# -- the tiny runs: the one set of arguments every test that trains through the CLI starts from ------------------
# Options given twice take the last value, so a test changes one setting by appending it (``[*TINY_RUN, "--subset",
# "480"]``) instead of carrying its own list.

#: the network of the tiny runs: MobileNetV2-CIFAR at width 0.35 under 8M MACs
TINY_NET = ["mobilenet_v2_cifar", "--width", "0.35", "--budget", "8M"]
#: the data of the tiny runs: 96 synthetic training images in 3 batches of 32, 64 test images
TINY_DATA = ["--data", "synthetic", "--subset", "96", "--test-subset", "64", "--batch-size", "32"]
#: a tiny compress run, less --epochs and --out: 5 latency runs, alphas that move within a few steps
TINY_RUN = [*TINY_NET, *TINY_DATA, "--latency-runs", "5", "--alpha-lr", "0.2"]
#: a run a test expects to be refused before any training (one epoch of the tiny run if it were not)
REFUSED_RUN = [*TINY_RUN, "--epochs", "1", "--quiet"]
#: the quicker exporter and 3 latency runs, for runs whose checks are not about the export or the timing
QUICK_EXPORT = ["--exporter", "torchscript", "--latency-runs", "3"]


@pytest.fixture(autouse=True)
def _seeded() -> None:
    """Every test starts from the same random state, whichever tests ran before it in its process: with one test
    process per core (pytest-xdist, work stealing) the order differs from run to run, and a test whose fresh
    weights came from the state its predecessors left would pass or fail by the order."""
    torch.manual_seed(0)
    random.seed(0)


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> dict:
        return json.loads(self.out)


@pytest.fixture
def one_thread():
    """One intra-op thread: on a 2-core machine with other work running, two threads contend and many small forward
    passes (tracing, counting) ran 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def cli(capsys):
    """Run ``autosc ARGS`` in-process and return its exit code, stdout and stderr."""

    def run(*args: str) -> CliResult:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def assert_one_line_error(result: CliResult, *fragments: str) -> None:
    """A user error: exit code 2, one line on stderr starting with 'error:', no traceback."""
    assert result.code == 2, (result.code, result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture
def skip_checksums(monkeypatch):
    """Fake files cannot match torchvision's md5s: accept any file that exists, keep everything else real."""

    def exists(fpath, md5=None):
        return os.path.isfile(fpath)

    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", exists)
    monkeypatch.setattr(torchvision.datasets.svhn, "check_integrity", exists)


def zoo_families(*quick: str) -> list:
    """Every zoo family as parameters of a test; those not named in ``quick`` carry the slow mark (their case took
    over about half a second in a --durations run)."""
    from autosc import list_models

    return [name if name in quick else pytest.param(name, marks=pytest.mark.slow) for name in list_models()]


#: the command line of the shared tiny run (the `tiny_run` fixture)
TINY_RUN_ARGS = ["compress", *TINY_RUN, "--epochs", "2", "--baseline", "--collapse", "--exporter", "torchscript",
                 "--quantize", "int8", "--calibration-images", "32", "--quiet"]  # fmt: skip


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The run folder of one tiny ``autosc compress`` (2 epochs, a baseline, collapsed after the shape phase,
    INT8 files beside the float ones, torchscript export: the dynamo exporter's three exports took 23 of its 33 s; the default exporter's run is
    test_a_run_writes_outside_its_folder_only_what_the_docs_list), made once per test session: the checks of its files, report.json, report.md and ONNX export all read
    it. Under pytest-xdist the workers share one, made by the first that needs it (a file lock; the base temporary
    folder's parent is common to the workers). Tests must not change it (copy it to tmp_path first)."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    out = shared / "tiny_run" / "run"
    with FileLock(str(shared / "tiny_run.lock")):
        if not (out / "report.json").is_file():
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                code = main([*TINY_RUN_ARGS, "--force", "--out", str(out)])
            assert code == 0, err.getvalue()
    return out
