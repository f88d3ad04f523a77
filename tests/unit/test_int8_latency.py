"""Latency budgets on the INT8 network (issue 31, item 3): what is timed is each network's INT8 twin, the latency
model's cache key says so, and a rebuilt plan times as it was planned (docs/algorithm.md, INT8 export)."""

import onnx
import pytest

from autosc.cost.latency_probe import ProbeSettings
from autosc.export import export_onnx
from autosc.formats import migrate_plan
from autosc.latency import int8_twin, op_profile, time_together
from autosc.models import build_model

SIZE = (16, 16)


def test_an_int8_latency_model_is_cached_apart_from_the_float_one():
    assert ProbeSettings(int8=True).key() != ProbeSettings().key()
    assert "int8" not in ProbeSettings().key()  # float models keep the keys they were cached under
    assert migrate_plan({"budget": None})["latency_int8"] is False  # a stored plan from before: float


@pytest.mark.slow
def test_the_int8_twin_is_the_quantized_graph_and_is_what_gets_timed(tmp_path):
    net = build_model("mobilenet_v2_cifar", width=0.25, num_classes=10, in_channels=3).eval()
    export_onnx(net, SIZE, tmp_path / "m.onnx", exporter="torchscript", check=False)
    twin = int8_twin(tmp_path / "m.onnx", tmp_path / "m.int8.onnx")
    ops = {n.op_type for n in onnx.load(twin).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert "QLinearConv" in op_profile(twin, runs=3, warmup=1)  # ONNX Runtime runs it in integer kernels
    timed = time_together({"a": net, "b": net}, SIZE, 3, runs=3, warmup=1, block=1, int8=True)
    assert set(timed) == {"a", "b"} and all(t["p50"] > 0 for t in timed.values())
