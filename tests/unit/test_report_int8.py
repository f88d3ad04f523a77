"""report.json's ``quantized`` record and report.md's INT8 section (autosc/report/quantized_md.py; issue 31)."""

import json

from autosc.report import Report, render_markdown
from autosc.report.schema import Quantized

from .test_report import make_report_dict


def _quantized(int8: float = 0.9120, float_ops: dict | None = None) -> dict:
    timing = {"compressed": 1.21, "compressed_int8": 0.61, "human": 1.52, "human_int8": 0.80}
    return {
        "kind": "int8", "calibration_images": 256, "seed": 0,
        "files": {"compressed": "model.int8.onnx", "human": "human.int8.onnx"},
        "accuracy": {"compressed": {"float": 0.9137, "int8": int8, "float_val": 0.92, "int8_val": 0.918},
                     "human": {"float": 0.93, "int8": 0.927, "float_val": 0.935, "int8_val": 0.93}},
        "logit_diff": 0.42, "logit_diff_rel": 0.031, "logit_images": 256,
        "latency": {k: {"p50": v, "p90": v * 1.1, "p99": v * 1.2} for k, v in timing.items()},
        "threads": 1, "batch": 1, "runs": 200,
        "float_ops": float_ops or {"compressed": {}, "human": {}}, "loss_limit": 0.01,
        "profile": {"compressed": {"Conv": {"ms": 1.0, "nodes": 52.0, "float_nodes": 52.0},
                                   "Resize": {"ms": 0.030, "nodes": 3.0, "float_nodes": 3.0}},
                    "compressed_int8": {"QLinearConv": {"ms": 0.40, "nodes": 52.0, "float_nodes": 0.0},
                                        "DequantizeLinear": {"ms": 0.08, "nodes": 10.0, "float_nodes": 0.0},
                                        "QuantizeLinear": {"ms": 0.05, "nodes": 7.0, "float_nodes": 7.0},
                                        "Resize": {"ms": 0.035, "nodes": 3.0, "float_nodes": 3.0},
                                        "Shape": {"ms": 0.01, "nodes": 3.0, "float_nodes": 3.0},
                                        "Flatten": {"ms": 0.004, "nodes": 1.0, "float_nodes": 0.0}}},
    }  # fmt: skip


def _report(**kwargs) -> Report:
    return Report.from_dict({**make_report_dict(), "quantized": _quantized(**kwargs)})


def test_the_quantized_record_round_trips_with_its_derived_figures():
    report = _report()
    written = report.to_dict()["quantized"]
    assert written["lost"] == 0.9137 - 0.9120 and written["within_limit"] is True
    assert Report.from_dict(json.loads(json.dumps(report.to_dict()))) == report
    assert isinstance(report.quantized, Quantized) and report.quantized.latency["human_int8"].p50 == 0.80
    assert Report.from_dict(make_report_dict()).quantized is None  # an older report: no INT8 file then


def test_the_int8_section_gives_accuracy_speed_and_the_verdict():
    md = render_markdown(_report())
    section = md[md.index("## INT8") :]
    assert "loses 0.17 points of test top-1" in section and "within the 1 point limit" in section
    assert "| autosc | 91.37% (92.00%) | 91.20% (91.80%) | 1.21 / 1.33 ms | 0.61 / 0.67 ms | 1.98× |" in section
    assert f"runs at {0.80 / 0.61:.2f}× the INT8 human network's speed" in section
    assert "256 training images drawn with seed 0" in section and "none runs in float" in section
    assert render_markdown(Report.from_dict(make_report_dict())).count("## INT8") == 0


def test_a_loss_over_the_limit_and_float_nodes_are_said_plainly():
    md = render_markdown(_report(int8=0.85, float_ops={"compressed": {"Resize": 2}, "human": {}}))
    assert "**INT8 loses 6.37 points of test top-1** (91.37% float, 85.00% INT8)" in md
    assert "ship the float file" in md
    assert "Nodes left computing in float (no dequantized INT8 input): autosc: 2 Resize; human: —." in md


def test_the_profile_says_where_the_int8_time_goes_and_what_ran_in_float():
    md = render_markdown(_report())
    assert ("QLinearConv 0.400 ms (52), DequantizeLinear 0.080 ms (10), QuantizeLinear 0.050 ms (7), "
            "Resize 0.035 ms (3), other ops 0.014 ms.") in md  # fmt: skip
    # conversions and shape reads are not compute: only the Resize is named as run in float
    assert "Run in float: 3 Resize (0.035 ms; 0.030 ms in the float file)." in md
    data = _quantized()
    del data["profile"]  # a record written before the profile: no sentence, no error
    assert "profiler" not in render_markdown(Report.from_dict({**make_report_dict(), "quantized": data}))
