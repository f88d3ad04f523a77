"""Pruning strategies under a deployment device's timing table (autosc/planning/make.py: probed_start, the plan on
the table): ``autosc probe`` writes the probes of the network pruned to the latency share, the plan on the table
prunes the same channels without timing anything here, and what cannot hold is one line. The table is synthetic
(each part's p50 grows with its map's area, the reference set to a chosen share): no test times anything."""

import json
from pathlib import Path

import pytest

import autosc
from autosc import AutoscError
from autosc.config import PlanConfig
from autosc.cost import count
from autosc.cost.device_table import TABLE_FORMAT
from autosc.cost.latency_probe import ProbeSettings
from autosc.freeze import freeze

from .test_strategy import batch, trained

SIZE = (32, 32)
TIMING = ProbeSettings(probes=4, random_probes=2, identity_probes=1)
NET = {"input_size": SIZE, "in_channels": 1, "num_classes": 10}

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]  # exports the probe networks


def _part_ms(k: int, sizes: list) -> float:
    """The stem takes 0.2 ms; the part after adaptor k grows with the area of the map it runs at."""
    return 0.2 if k == 0 else 0.05 + 1e-3 * sizes[k - 1][0] * sizes[k - 1][1]


def synthetic_table(probes: Path, identity_share: float) -> Path:
    """A table as time_probes.py writes it, with synthetic p50s: the probed network at its own (human) shape takes
    ``identity_share`` of the reference's p50."""
    manifest = json.loads((probes / "manifest.json").read_text())
    p50 = {}
    for sizes, parts, whole in zip(manifest["shapes"], manifest["parts"], manifest["wholes"], strict=True):
        times = [_part_ms(k, sizes) for k in range(len(parts))]
        p50 |= dict(zip(parts, times, strict=True)) | {whole: sum(times)}
    human = manifest["human_sizes"]
    p50[manifest["reference"]] = sum(_part_ms(k, human) for k in range(len(human) + 1)) / identity_share
    path = probes / f"table-{identity_share}.json"
    path.write_text(json.dumps({"format": TABLE_FORMAT, "manifest": manifest, "p50_ms": p50,
                                "device": {"name": "synthetic"}, "threads": manifest["threads"]}))  # fmt: skip
    return path


@pytest.fixture
def nothing_timed(monkeypatch):
    def refuse(*_a, **_k):
        raise AssertionError("a plan on a device's table must not time this machine")

    monkeypatch.setattr("autosc.latency.bench", refuse)
    monkeypatch.setattr("autosc.planning.latency.time_share", refuse)


def _probe(tmp_path: Path, net, strategy: str, latency: str = "70%") -> Path:
    manifest = autosc.probe(net, tmp_path / strategy, latency=latency, strategy=strategy, timing=TIMING,
                            prune_batch=batch(), **NET)  # fmt: skip
    return manifest.parent


def test_compound_plans_on_the_table_of_its_pruned_network_and_meets_the_cap(tmp_path, nothing_timed):
    net = trained()
    probes = _probe(tmp_path, net, "compound")
    manifest = json.loads((probes / "manifest.json").read_text())
    assert manifest["key"]["model"]["channels"]  # the probes are of the pruned network
    plan = autosc.plan(net, latency="70%", strategy="compound", latency_table=str(synthetic_table(probes, 0.9)),
                       timing=TIMING, prune_batch=batch(), **NET)  # fmt: skip
    assert plan.spec.channels == manifest["key"]["model"]["channels"]  # the same channels, pruned without timing
    assert plan.pruning.latency_share is None and not plan.network.collapsed
    limit, reference = plan.budget.limit("latency_ms"), plan.budget.latency_reference_ms
    assert limit == pytest.approx(0.7 * reference)  # the share is of the unpruned network's p50 on the device
    assert plan.projected.cost.latency_ms <= limit  # the shape took the rest of the cut, on the device's figures
    frozen, _ = freeze(plan.network)
    assert count(frozen, SIZE, cells=False).total_macs < count(net, SIZE, cells=False).total_macs


def test_prune_on_the_table_holds_the_shape_and_refuses_a_pruned_network_over_the_cap(tmp_path, nothing_timed):
    net = trained()
    probes = _probe(tmp_path, net, "prune")
    plan = autosc.plan(net, latency="70%", strategy="prune", latency_table=str(synthetic_table(probes, 0.6)),
                       timing=TIMING, prune_batch=batch(), **NET)  # fmt: skip
    assert plan.network.identity_held and plan.projected.cost.latency_ms <= plan.budget.limit("latency_ms")
    with pytest.raises(AutoscError, match=r"on the device's table the pruned network takes 8\d% .* over the budget's "
                       r"70%.*--strategy compound"):  # fmt: skip
        autosc.plan(net, latency="70%", strategy="prune", latency_table=str(synthetic_table(probes, 0.85)),
                    timing=TIMING, prune_batch=batch(), **NET)  # fmt: skip
    with pytest.raises(AutoscError, match="measured for a network pruned otherwise: run autosc probe with the same"):
        autosc.plan(net, latency="70%", strategy="compound", latency_table=str(synthetic_table(probes, 0.6)),
                    timing=TIMING, prune_batch=batch(), **NET)  # fmt: skip


def test_what_a_table_cannot_serve_is_one_line(tmp_path):
    net = trained()
    with pytest.raises(AutoscError, match=r"give it as a share \(--latency 60%\)"):
        _probe(tmp_path, net, "prune", latency="1.5ms")
    with pytest.raises(AutoscError, match=r"give it as a share"):
        autosc.probe(net, tmp_path / "none", budget="50%", strategy="prune", timing=TIMING, prune_batch=batch(), **NET)
    table = synthetic_table(_probe(tmp_path, net, "compound"), 0.9)
    with pytest.raises(AutoscError, match="--strategy auto compares networks pruned three ways"):
        PlanConfig(latency="70%", strategy="auto", latency_table=str(table)).validate()
