"""INT8 timing tables from the deployment device (issue 31, item 3): ``autosc probe --quantize int8`` writes INT8
probes and an INT8 reference, its table carries ``int8`` in its key, and a table of the other precision is refused
in one line naming what to do. The table is synthetic: nothing is timed."""

import json
from dataclasses import replace

import onnx
import pytest

import autosc
from autosc import AutoscError

from .test_prune_on_table import NET, TIMING, nothing_timed, synthetic_table  # noqa: F401 (a fixture)
from .test_strategy import trained

# exports and quantizes the probes; a plan on a table times nothing here
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread", "nothing_timed")]


def _ops(path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def test_int8_probes_are_quantized_and_their_table_serves_only_an_int8_budget(tmp_path):
    net = trained()
    manifest = autosc.probe(net, tmp_path / "int8", timing=replace(TIMING, int8=True), **NET)
    probes = manifest.parent
    data = json.loads(manifest.read_text())
    assert data["key"]["int8"] is True
    for name in [data["reference"], data["wholes"][0], *data["parts"][0]]:
        assert "QuantizeLinear" in _ops(probes / name), name  # the files the device times are the INT8 ones
    table = str(synthetic_table(probes, 0.9))
    plan = autosc.plan(net, latency="70%", latency_table=table, timing=replace(TIMING, int8=True), **NET)
    assert plan.budget.limit("latency_ms") == pytest.approx(0.7 * plan.budget.latency_reference_ms)
    with pytest.raises(AutoscError, match="timed on INT8 probes and this budget is on the float network"):
        autosc.plan(net, latency="70%", latency_table=table, timing=TIMING, **NET)


def test_a_float_table_is_refused_for_an_int8_budget(tmp_path):
    net = trained()
    probes = autosc.probe(net, tmp_path / "float", timing=TIMING, **NET).parent
    with pytest.raises(AutoscError, match="run autosc probe with --quantize int8"):
        autosc.plan(net, latency="70%", latency_table=str(synthetic_table(probes, 0.9)),
                    timing=replace(TIMING, int8=True), **NET)  # fmt: skip
