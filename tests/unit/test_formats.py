"""The versioned files (docs/algorithm.md, File formats): ``run.json``, ``report.json`` and the shape spec written by
an older autosc read back through their one ``migrate_*``, the current writers write the version and every key,
a newer version is refused in one line, and migrating twice changes nothing.

The version 1 files under tests/fixtures/v1/ were written by autosc at b421554 (``synth``: the synthetic compress
run with --baseline; ``main``: the README's Fashion-MNIST job); ``older/`` holds hand-made run files of the shapes
older still (flat arguments, no validation split, no device-resident data). No training here.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

import autosc
from autosc.config import RunConfig
from autosc.cost.budget import Budget
from autosc.errors import AutoscError
from autosc.formats import (
    REPORT_FORMAT,
    RUN_FORMAT,
    SHAPE_FORMAT,
    migrate_plan,
    migrate_report,
    migrate_run,
    migrate_shape,
)
from autosc.freeze import FrozenAdaptor, SingleBranchAdaptor, build_frozen, shape_spec
from autosc.planning import network_from_config
from autosc.report import Report
from autosc.run.compress import _stored
from autosc.run.folder import RunFolder

V1 = Path(__file__).resolve().parents[1] / "fixtures" / "v1"
RUNS = ("synth", "main")
MIGRATE = {"run.json": migrate_run, "report.json": migrate_report, "frozen.shape.json": migrate_shape}
CURRENT = {"run.json": RUN_FORMAT, "report.json": REPORT_FORMAT, "frozen.shape.json": SHAPE_FORMAT}
OLDER = sorted((V1 / "older").glob("*.json"))


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def same_keys(a: object, b: object) -> bool:
    """The same keys in nested dicts and lists of dicts, where both hold one (a value may be null in one file and a
    record in another: a run without ``--baseline``): what a reader may index."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_keys(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return all(same_keys(x, y) for x in a for y in b)
    return True


def contains(new: object, old: object) -> bool:
    """Every key and value of ``old`` is in ``new`` (a migration adds keys, never changes what was written)."""
    if isinstance(old, dict):
        return isinstance(new, dict) and all(k in new and contains(new[k], v) for k, v in old.items())
    if isinstance(old, list):
        return isinstance(new, list) and len(new) == len(old) and all(map(contains, new, old))
    return new == old


@pytest.fixture(scope="module")
def tiny_plan():
    """The tiny runs' network (tests/conftest.py), planned: what the current writers write from."""
    return autosc.plan("mobilenet_v2_cifar", budget="8M", width=0.35, input_size=32, num_classes=10)


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("name", list(MIGRATE))
def test_a_version_1_file_migrates_to_the_current_version_keeping_what_it_held(run, name):
    old = read(V1 / run / name)
    kept = copy.deepcopy(old)
    new = MIGRATE[name](old)
    assert new["format"] == CURRENT[name]
    assert old == kept  # the file read is not changed
    assert contains(new, {k: v for k, v in old.items() if k != "format"})
    assert MIGRATE[name](new) == new  # idempotent: a current file goes through unchanged
    assert MIGRATE[name](json.loads(json.dumps(new))) == new


@pytest.mark.parametrize("run", RUNS)
def test_a_version_1_run_file_reads_back(run):
    stored = migrate_run(read(V1 / run / "run.json"))
    config = RunConfig.from_dict(stored["config"])
    assert config.plan.model == stored["model"] == "mobilenet_v2_cifar"
    assert stored["plan"]["start"] == {"sha256": None} and stored["plan_summary"]["latency_ms"] is None
    assert Budget.from_dict(stored["plan"]["budget"]).to_dict() == stored["plan"]["budget"]


def test_a_version_1_plan_rebuilds_the_network_planned_today(tiny_plan):
    """The synthetic run's plan is the tiny runs' network: rebuilt, it is what planning it today gives."""
    plan = migrate_run(read(V1 / "synth" / "run.json"))["plan"]
    network = network_from_config(plan)
    assert network.config() == tiny_plan.network.config() == {k: v for k, v in plan.items() if k != "start"}
    # a fresh network starts at identity: projected, it has the plan's start sizes
    summary = read(V1 / "synth" / "run.json")["plan_summary"]
    assert [list(s) for s in network.update_shape().sizes] == [a["size"] for a in summary["adaptors"]]


@pytest.mark.parametrize("run", RUNS)
def test_a_version_1_report_and_shape_spec_read_back(run):
    report = Report.from_dict(read(V1 / run / "report.json"))
    assert report.to_dict() == migrate_report(read(V1 / run / "report.json"))
    assert Budget.from_dict(report.budget).to_dict() == report.budget
    assert all(a.kind == "autosc" and a.stride1_size == a.human_size for a in report.adaptors)
    spec = read(V1 / run / "frozen.shape.json")
    net = build_frozen(spec).eval()
    fixed = [m for m in net.modules() if isinstance(m, (FrozenAdaptor, SingleBranchAdaptor))]
    assert [list(m.size) for m in fixed] == [a["size"] for a in spec["adaptors"]] == [a.size for a in report.adaptors]
    with torch.no_grad():
        out = net(torch.zeros(1, spec["model"]["in_channels"], *spec["input_size"]))
    assert out.shape == (1, spec["model"]["num_classes"])


@pytest.mark.parametrize("path", OLDER, ids=[p.stem for p in OLDER])
def test_an_older_run_file_goes_on_as_it_started(path):
    """Flat arguments (before the typed config), no validation split, no device-resident data: each resumes with
    what the run had (every training image, the per-image loader)."""
    stored = migrate_run(read(path))
    assert "args" not in stored and stored["format"] == RUN_FORMAT
    config = RunConfig.from_dict(stored["config"])
    assert config.train.device_data == "off"
    assert config.dataset.val_split == (0.1 if path.stem == "run_before_device_data" else 0.0)
    assert (config.plan.budget, config.plan.width, config.train.epochs) == ("8M", "0.35", 2)
    assert migrate_run(stored) == stored


def test_resume_reads_a_version_1_run_folder(tmp_path):
    (tmp_path / "run.json").write_text((V1 / "synth" / "run.json").read_text())
    config, command, plan = _stored(RunFolder(tmp_path), {})
    assert config.baseline and config.dataset.val_split == 0.1 and command.startswith("autosc compress")
    assert plan == migrate_run(read(V1 / "synth" / "run.json"))["plan"]


def test_the_current_writers_write_the_version_and_every_key(tiny_plan, tmp_path):
    network = tiny_plan.network
    config = network.config()
    assert migrate_plan(config) == config  # nothing left to fill
    assert same_keys(config, migrate_plan(read(V1 / "synth" / "run.json")["plan"]))
    summary = json.loads(json.dumps(tiny_plan.to_dict()))
    assert summary["latency_ms"] is None
    assert same_keys(summary, migrate_run(read(V1 / "main" / "run.json"))["plan_summary"])
    spec = json.loads(json.dumps(shape_spec(network)))
    assert spec["format"] == SHAPE_FORMAT and migrate_shape(spec) == spec
    assert same_keys(spec, migrate_shape(read(V1 / "synth" / "frozen.shape.json")))
    report = Report.from_dict(read(V1 / "synth" / "report.json")).to_dict()
    assert report["format"] == REPORT_FORMAT and migrate_report(report) == report
    assert same_keys(report, migrate_report(read(V1 / "main" / "report.json")))
    folder = RunFolder(tmp_path)
    folder.write_run({"model": "m", "config": {}, "command": "c", "plan": {}, "plan_summary": {}})
    assert read(folder.run_file)["format"] == RUN_FORMAT and folder.read_run() == read(folder.run_file)


def test_a_latency_plan_from_before_calibration_projects_with_ratio_one():
    """Version 1 wrote a run's latency calibration only once it measured one; a run from before projected with 1."""
    plan = read(V1 / "synth" / "run.json")["plan"]
    assert migrate_plan(plan)["latency_calibration"] is None
    latency = {**plan, "budget": {"latency_ms": 1.5, "convention": "standard"}}
    assert migrate_plan(latency)["latency_calibration"] == 1.0
    assert migrate_plan(latency)["budget"] == Budget.of(latency_ms=1.5).to_dict()


@pytest.mark.parametrize("name", list(MIGRATE))
def test_a_file_from_a_newer_version_is_refused_in_one_line(name):
    kind = CURRENT[name].rsplit("/", 1)[0]
    newer = {**MIGRATE[name](read(V1 / "synth" / name)), "format": f"{kind}/99"}
    with pytest.raises(AutoscError, match="newer than this autosc reads") as err:
        MIGRATE[name](newer)
    assert "\n" not in str(err.value) and f"{kind}/99" in str(err.value)


def test_the_readers_refuse_a_newer_version(tmp_path):
    report = {**read(V1 / "synth" / "report.json"), "format": "autosc-report/99"}
    with pytest.raises(AutoscError, match="newer than this autosc reads"):
        Report.from_dict(report)
    with pytest.raises(AutoscError, match="newer than this autosc reads"):
        build_frozen({**read(V1 / "synth" / "frozen.shape.json"), "format": "autosc-shape/99"})
    (tmp_path / "run.json").write_text(json.dumps({**read(V1 / "synth" / "run.json"), "format": "autosc-run/99"}))
    with pytest.raises(AutoscError, match=r"run.json is autosc-run/99, newer than this autosc reads") as err:
        _stored(RunFolder(tmp_path), {})
    assert "cannot resume" not in str(err.value)  # one clear line, not wrapped


def test_a_file_of_another_kind_is_refused():
    with pytest.raises(AutoscError, match="not an autosc shape spec"):
        migrate_shape(read(V1 / "synth" / "report.json"))
    with pytest.raises(AutoscError, match="not an autosc report"):
        migrate_report({**read(V1 / "synth" / "report.json"), "format": "autosc-shape/2"})
    with pytest.raises(AutoscError, match="not an autosc run file"):
        migrate_run([1, 2])


def test_a_trained_start_from_before_the_before_score_reads_it_as_unknown():
    run = migrate_run({**migrate_run(read(V1 / "synth" / "run.json")), "format": "autosc-run/6"})
    assert run["plan_summary"]["before"] is None and run["format"] == RUN_FORMAT
    current = migrate_report(read(V1 / "main" / "report.json"))
    report = migrate_report({**current, "format": "autosc-report/7", "start": {"weights": "w.pt"}})
    assert report["start"] == {"before": None, "weights": "w.pt"} and report["format"] == REPORT_FORMAT
