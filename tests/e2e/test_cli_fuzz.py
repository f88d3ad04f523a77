"""Bad values for every option of every command: exit 2, one line, no traceback, no file changed (docs/reliability.md)."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autosc import AutoscError
from autosc.config import RunConfig
from autosc.units import parse_bytes, parse_input_size, parse_macs

from ..conftest import REFUSED_RUN, assert_one_line_error

SLOW = pytest.mark.slow
#: bad values refused only once a network is planned (a second, not milliseconds): outside the quick loop
SLOW_CASES = {("budget", "1e30T")}
#: option -> bad values; every value must be refused before any training starts.
COMPRESS = {
    "budget": ["300m", "1e400", "0", "abc", "-5M", "1e30T"],
    "memory": ["1e308GB", "4mib", "0B", "lots"],
    "latency": ["1.5", "2min", "0ms", "fast", "1e400s", "0%", "150%", "1.5x", "abc%", "-5%", "nanx"],
    "latency_threads": ["0", "x"],
    "latency_batch": ["0", "-1"],
    "latency_table": ["/nonexistent/table.json", "."],
    "macs_convention": ["thop"],
    "input_size": ["0", "100000", "abc", "32x"],
    "width": ["0", "-1", "100", "wide", "nan"],
    "num_classes": ["0", "7", "x"],
    "adaptors": ["0", "999", "1.5"],
    "adaptor_at": ["no.such.cell"],
    "low_branch": ["median"],
    "weights": ["/nonexistent/w.pt"],
    "widen_noise": ["-1", "nan"],
    "adaptor_mix": ["average"],
    "mode": ["sideways"],
    "init_factor": ["0.5", "1", "x", "0.6"],  # 0.6: valid, but --mode autosc (the default) has no standard adaptor
    "strategy": ["both", "auto"],  # auto: valid, but from scratch there is no trained network to split
    "importance": ["l3"],
    "prune_share": ["1.5", "-0.1", "x"],
    "auto_steps": ["-1", "x"],
    "shape_search": ["-1", "x", "2"],  # 2: valid, but from scratch there are no trained weights to score shapes by
    "data": ["bogus", "imagefolder:", "imagefolder:/nonexistent/autosc", "cifar10"],
    "data_root": ["/nonexistent/autosc"],  # with --data cifar10 (below)
    "subset": ["0", "1000000", "-1"],
    "test_subset": ["0", "1000000"],
    "val_split": ["1", "-0.1", "x"],
    "data_seed": ["x", "1.5"],
    "epochs": ["0", "-3", "1.7", "ten", "99999999999999999999999", "100001"],
    "batch_size": ["0", "x", "1000000"],
    "lr": ["-1", "0", "nan", "inf", "fast"],
    "weight_decay": ["-1", "x"],
    "momentum": ["-0.5"],
    "warmup": ["1", "-0.1"],
    "distill_temperature": ["0", "-1"],
    "distill_weight": ["1.5", "-0.1"],
    "alpha_optimizer": ["rmsprop"],
    "alpha_lr": ["-1", "nan"],
    "alpha_step": ["-1", "x"],
    "alpha_pass": ["both"],
    "shape_until": ["0", "2", "-0.5"],
    "dual_lr": ["-1"],
    "penalty": ["-1", "inf"],
    "seed": ["x", "1.5", "99999999999999999999", "-99999999999999999999"],
    "workers": ["-1", "100000"],
    "device": ["tpu", "cuda:99", "gpu0"],
    "amp": ["fp8"],
    "precise_bn": ["-1", "x", "1.5"],
    "device_data": ["gpu", "yes"],
    "exporter": ["tflite"],
    "opset": ["9", "999", "x"],
    "latency_runs": ["0", "x"],
    "quantize": ["int4", "fp16"],
    "calibration_images": ["0", "-5", "x"],
    "shrink_steps": ["-1", "x", "1e9"],
    "preset": ["/nonexistent/p.toml"],
    "out": ["/dev/null/run"],
}
#: boolean flags take no value: a stray value is an unexpected argument, one line too.
FLAGS = [
    "distill",
    "cost_term",
    "collapse",
    "channels_last",
    "compile",
    "download",
    "pool_halves",
    "new_head",
    "no_budget",
    "baseline",
    "resume",
    "force",
    "quiet",
    "retime",
    "input_adaptor",
]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _cases() -> list[tuple[str, str]]:
    return [(name, value) for name, values in COMPRESS.items() for value in values]


def test_every_compress_option_has_a_bad_value_case():
    options = {f.name for _, f in RunConfig.option_fields() if f.metadata.get("cli", True)}
    covered = set(COMPRESS) | set(FLAGS)
    assert options | {"preset", "out", "resume", "force", "quiet"} <= covered


@pytest.fixture
def quiet_cwd(tmp_path, monkeypatch):
    """Run in an empty folder, so the default run folder and anything written by mistake would show."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize(
    ("name", "value"),
    [pytest.param(n, v, marks=SLOW) if (n, v) in SLOW_CASES else (n, v) for n, v in _cases()],
    ids=[f"{n}={v}" for n, v in _cases()],
)
def test_compress_refuses_bad_values(cli, quiet_cwd, name, value):
    extra = ["--data", "cifar10"] if name == "data_root" else []
    assert_one_line_error(cli("compress", *REFUSED_RUN, *extra, _flag(name), value))
    assert _files(quiet_cwd) == []  # no run folder, no stray file


@pytest.mark.parametrize("name", FLAGS)
def test_flags_refuse_a_value(cli, quiet_cwd, name):
    assert_one_line_error(cli("compress", *REFUSED_RUN, _flag(name), "maybe"))
    assert _files(quiet_cwd) == []


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["compress", "no_such_net", "--budget", "8M", "--data", "synthetic", "--quiet"], marks=SLOW),
        pytest.param(
            ["compress", "/nonexistent/net.py:build", "--budget", "8M", "--data", "synthetic", "--quiet"], marks=SLOW
        ),
        ["compress", "mobilenet_v2_cifar", "--data", "synthetic"],  # no budget: refused before anything is printed
        ["compress", "--budget", "8M", "--data", "synthetic"],  # no model
        ["compress", "--resume"],  # no folder to resume
        ["compress", "--resume", "--out", "/nonexistent/run"],
        # sizes no machine has memory for (a lower-bound estimate against the memory available; autosc/resources.py)
        ["compress", *REFUSED_RUN, "--input-size", "4096", "--batch-size", "65536"],
        ["compress", *REFUSED_RUN, "--input-size", "4096", "--latency", "5ms", "--latency-batch", "65536"],
        ["plan", "mobilenet_v2_cifar", "--latency", "5ms", "--input-size", "4096", "--latency-batch", "65536"],
        ["count", "mobilenet_v2", "--input-size", "4096", "--in-channels", "1000000"],
        ["count", "no_such_net"],
        ["count", "mobilenet_v2", "--input-size", "0"],
        ["count", "mobilenet_v2", "--width", "-1"],
        ["count", "mobilenet_v2", "--convention", "thop"],
        ["count", "mobilenet_v2", "--num-classes", "0"],
        ["count", "mobilenet_v2", "--in-channels", "0"],
        ["plan", "mobilenet_v2_cifar", "--budget", "1K", "--width", "0.35"],  # below the smallest reachable cost
        ["plan", "mobilenet_v2_cifar", "--budget", "8M", "--adaptors", "2", "--adaptor-at", "features.3"],
        pytest.param(["plan", "mobilenet_v2_cifar", "--budget", "80M", "--width", "0.5"], marks=SLOW),  # above widened
        ["export", "/nonexistent/frozen.pt"],
        ["export", "README.md"],
        ["export", "README.md", "--opset", "x"],
        ["bench", "/nonexistent/model.onnx"],
        ["bench", "README.md", "--threads", "0"],
        ["bench", "README.md", "--batch", "x"],
        ["bench", "README.md", "--runs", "-1"],
        ["no-such-command"],
    ],
    ids=lambda a: " ".join(a)[:60],
)
def test_other_commands_refuse_bad_input(cli, quiet_cwd, args):
    readme = Path(__file__).parents[2] / "README.md"
    args = [str(readme) if a == "README.md" else a for a in args]
    assert_one_line_error(cli(*args))
    assert _files(quiet_cwd) == []


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12))
def test_quantity_parsers_accept_or_refuse_in_one_line(text):
    """Any text a user can type: a value, or an AutoscError; never another exception."""
    for parse in (parse_macs, parse_bytes, parse_input_size):
        try:
            parse(text)
        except AutoscError as exc:
            assert "\n" not in str(exc)
