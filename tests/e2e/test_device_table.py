"""Timing tables from the deployment device, end to end (issue 29): ``autosc probe`` writes the probe networks and
``time_probes.py``; the script runs in a virtual environment that holds only numpy and onnxruntime (the "device"
is this machine at 2 threads); ``--latency-table`` plans and compresses on its timings, and nothing is timed here
for the plan; a table for another network or setting is refused, never mixed with this machine's cache."""

from __future__ import annotations

import json
import subprocess
import venv
from pathlib import Path

import pytest

from ..conftest import assert_one_line_error

pytestmark = pytest.mark.slow  # exports probe networks, times them, trains

NET = ["mobilenet_v2_cifar", "--input-size", "16", "--width", "0.35", "--num-classes", "10"]


def _device_python(root: Path) -> Path:
    """A virtual environment with numpy and onnxruntime only (linked from this one): no torch, no autosc."""
    import numpy
    import onnxruntime

    venv.create(root, with_pip=False)
    site = next((root / "lib").glob("python*/site-packages"))
    packages = Path(numpy.__file__).parents[1]
    wanted = ("numpy", "onnxruntime", "flatbuffers", "packaging", "coloredlogs", "humanfriendly", "protobuf",
              "google", "sympy", "mpmath")  # fmt: skip
    for entry in packages.iterdir():
        if entry.name.lower().startswith(wanted):
            (site / entry.name).symlink_to(entry)
    assert Path(onnxruntime.__file__).is_relative_to(packages)
    return root / "bin" / "python"


def _run(python: Path, *args, cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run([str(python), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """The probes of the tiny network at 2 threads, and the table the standalone script measured from them."""
    from autosc.cli import main

    root = tmp_path_factory.mktemp("device")
    probes = root / "probes"
    assert main(["probe", *NET, "--latency-threads", "2", "--out", str(probes)]) == 0
    python = _device_python(root / "venv")
    no_torch = subprocess.run([str(python), "-c", "import torch"], capture_output=True, text=True)
    assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr  # really only the two
    _run(python, probes / "time_probes.py", cwd=root)
    return python, probes, json.loads((probes / "table.json").read_text())


def test_the_standalone_script_times_every_probe_on_the_device(measured):
    from autosc.cost.device_table import TABLE_FORMAT

    _, probes, table = measured
    assert table["format"] == TABLE_FORMAT  # the script's own copy of the format agrees
    manifest = json.loads((probes / "manifest.json").read_text())
    files = [f for group in manifest["measurements"] for f in group]
    assert len(files) == len(set(files)) > 20 and all((probes / f).is_file() for f in files)
    assert set(table["p50_ms"]) == set(files) and all(v > 0 for v in table["p50_ms"].values())
    assert table["threads"] == 2 and table["device"]["onnxruntime"] and table["manifest"] == manifest


def _between(table: dict) -> float:
    """A share of the reference's p50 between the fastest whole probe network on the device and the human shape
    (the first probe): a budget the adapted network can meet and has to shrink for (the device's own figures,
    whatever its speed). Not the slowest probe: on this small network a shape with Resizes can time slower than
    the Resize-free human shape, and a budget above the human shape leaves nothing to remove."""
    wholes = [table["p50_ms"][w] for w in table["manifest"]["wholes"]]
    return round((min(wholes) + wholes[0]) / 2 / table["p50_ms"]["reference.onnx"], 3)


def test_plan_uses_the_table_and_times_nothing_here(measured, cli, monkeypatch):
    _, probes, table = measured
    share = _between(table)

    def no_timing(*_a, **_k):
        raise AssertionError("a plan on a device's table must not time this machine")

    monkeypatch.setattr("autosc.latency.bench", no_timing)
    result = cli("plan", *NET, "--latency", f"{share}x", "--latency-threads", "2", "--latency-table",
                 probes / "table.json", "--json")  # fmt: skip
    assert result.code == 0, result.err
    plan = result.json()
    reference = table["p50_ms"]["reference.onnx"]
    assert plan["budget"]["latency_reference_ms"] == reference
    assert plan["budget"]["latency_ms"] == pytest.approx(share * reference)
    assert plan["latency_ms"]["projected"] <= share * reference and plan["width"] == 0.35


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--latency-threads", "1"], "threads: table 2, here 1"),
        (["--latency-threads", "2", "--width", "0.5"], "measured at width 0.35, not 0.5"),
        (["--latency-threads", "2", "--num-classes", "100"], "another network or setting"),
        (["--latency-threads", "2", "--latency", "99%"], "probe at a wider --width"),  # over the probed network
    ],
)
def test_a_table_for_another_network_or_setting_is_refused(measured, cli, args, fragment):
    _, probes, _ = measured
    result = cli("plan", *NET, "--latency", "10%", "--latency-table", probes / "table.json", *args)
    assert_one_line_error(result, fragment)


def test_a_missing_or_foreign_table_or_one_without_a_latency_budget_is_one_line(measured, cli, tmp_path):
    _, probes, _ = measured
    result = cli("plan", *NET, "--budget", "50%", "--latency-table", probes / "table.json")
    assert_one_line_error(result, "--latency-table needs a latency budget")
    (tmp_path / "x.json").write_text('{"format": "something else"}')
    for path, fragment in ((tmp_path / "none.json", "cannot read --latency-table"), (tmp_path / "x.json",
                           "is not a timing table")):  # fmt: skip
        assert_one_line_error(cli("plan", *NET, "--latency", "50%", "--latency-table", path), fragment)


def test_compress_on_the_table_reports_the_device_and_the_script_benches_the_result(measured, cli, tmp_path):
    python, probes, table = measured
    run = tmp_path / "run"
    result = cli("compress", *NET, "--latency", f"{_between(table)}x", "--latency-threads", "2", "--latency-table",
                 probes / "table.json", "--data", "synthetic", "--subset", "32", "--test-subset", "32", "--epochs",
                 "1", "--exporter", "torchscript", "--latency-runs", "3", "--out", run, "--quiet")  # fmt: skip
    assert result.code == 0, result.err
    report = json.loads((run / "report.json").read_text())
    lat = report["latency_ms"]
    assert lat["table"]["path"] == str(probes / "table.json") and lat["shrinks"] == 0
    assert lat["table"]["device"] == table["device"] and lat["budget_met"] is True
    assert lat["threads"] == 2 and lat["retimes"] is None  # timed here at the table's threads; nothing re-timed
    assert lat["share"] == pytest.approx(lat["predicted"] / table["p50_ms"]["reference.onnx"])
    assert "on the timing table of" in (run / "report.md").read_text()
    stored = json.loads((run / "run.json").read_text())["plan"]
    assert stored["latency_table"] == str(probes / "table.json")  # a resumed run reads the same table
    out = _run(python, probes / "time_probes.py", "--bench", run / "model.onnx", "--vs", run / "human.onnx",
               "--runs", "20", cwd=tmp_path).stdout  # fmt: skip
    assert "model.onnx" in out and "(model.onnx runs at" in out
