"""``report.md``'s INT8 section (``--quantize int8``): what quantizing did to the network that ships, measured
beside the float file and the human network's (docs/algorithm.md, INT8 export)."""

from __future__ import annotations

from ._format import DASH, acc, table
from .schema import Quantized, Report

NAMES = {"compressed": "autosc", "human": "human"}


def int8_section(report: Report) -> str | None:
    """The INT8 table and its notes; None without ``--quantize``."""
    q = report.quantized
    if q is None:
        return None
    threads = f"{q.threads} thread" + ("" if q.threads == 1 else "s")
    rows = [_row(q, label) for label in ("compressed", "human")]
    header = ["network", "float top-1 (val)", "INT8 top-1 (val)", f"float p50 / p90 ({threads}, batch {q.batch})",
              "INT8 p50 / p90", "INT8 speed-up"]  # fmt: skip
    lines = [
        "## INT8",
        _loss_line(q),
        table(header, rows),
        f"ONNX Runtime static quantization (QDQ, U8S8: 8-bit activations, per-channel 7-bit weights) calibrated on "
        f"{q.calibration_images} training images drawn with seed {q.seed}; files {', '.join(q.files.values())}. "
        f"Largest logit difference from the float file on {q.logit_images} test images: {q.logit_diff:.3g} "
        f"({100 * q.logit_diff_rel:.1f}% of the largest float logit). All four files timed together, "
        f"{q.runs} runs each.",
        _float_note(q),
        *([line] if (line := _profile_note(q)) else []),
    ]
    return "\n\n".join(lines)


def _row(q: Quantized, label: str) -> list[str]:
    a, t = q.accuracy[label], q.latency
    f, i = t[label], t[f"{label}_int8"]
    return [NAMES[label], _acc_pair(a["float"], a["float_val"]), _acc_pair(a["int8"], a["int8_val"]),
            f"{f.p50:.2f} / {f.p90:.2f} ms", f"{i.p50:.2f} / {i.p90:.2f} ms", f"{f.p50 / i.p50:.2f}×"]  # fmt: skip


def _acc_pair(test: float | None, val: float | None) -> str:
    return acc(test) + (f" ({acc(val)})" if val is not None else "")


def _loss_line(q: Quantized) -> str:
    """The verdict first: within the stated loss, or plainly not."""
    a = q.accuracy["compressed"]
    gap = f"{100 * abs(q.lost):.2f} points"
    if q.lost > q.loss_limit:
        return (f"> **INT8 loses {gap} of test top-1** ({acc(a['float'])} float, {acc(a['int8'])} INT8), more than "
                f"the {100 * q.loss_limit:.0f} point autosc accepts silently: ship the float file, or calibrate on "
                "more images (`--calibration-images`).")  # fmt: skip
    change = f"loses {gap}" if q.lost > 0 else f"gains {gap}" if q.lost < 0 else "loses nothing"
    versus = q.latency["human_int8"].p50 / q.latency["compressed_int8"].p50
    return (f"In INT8 autosc's network {change} of test top-1 against its float file (within the "
            f"{100 * q.loss_limit:.0f} point limit) and runs at {versus:.2f}× the INT8 human network's speed.")  # fmt: skip


def _float_note(q: Quantized) -> str:
    """Which nodes each INT8 file still computes in float: where a float round trip costs time."""
    parts = []
    for label, ops in q.float_ops.items():
        listed = ", ".join(f"{n} {op}" for op, n in ops.items()) if ops else DASH
        parts.append(f"{NAMES.get(label, label)}: {listed}")
    if not any(q.float_ops.values()):
        return "Every node of both INT8 files takes INT8 inputs (dequantized just before it): none runs in float."
    return "Nodes left computing in float (no dequantized INT8 input): " + "; ".join(parts) + "."


#: Ops a profile names one by one; the rest are summed as "other".
PROFILE_TOP = 4


def _profile_note(q: Quantized) -> str | None:
    """Where the INT8 file's time goes by op (ONNX Runtime's profiler), and the ops it ran in float with their cost
    in both files: a Resize left in float is paid for here."""
    if not q.profile:
        return None
    int8, float_ = q.profile["compressed_int8"], q.profile["compressed"]
    ops = list(int8.items())
    parts = [f"{op} {e['ms']:.3f} ms ({e['nodes']:.0f})" for op, e in ops[:PROFILE_TOP]]
    rest = sum(e["ms"] for _, e in ops[PROFILE_TOP:])
    ran = [f"{e['float_nodes']:.0f} {op} ({e['ms']:.3f} ms; {float_.get(op, {}).get('ms', 0.0):.3f} ms in the float file)"
           for op, e in ops if e["float_nodes"] >= 0.5 and op not in _BOOKKEEPING]  # fmt: skip
    text = (f"Where autosc's INT8 file spends a run (ONNX Runtime's profiler, ms per run and nodes): "
            f"{', '.join(parts)}, other ops {rest:.3f} ms.")  # fmt: skip
    return text + (f" Run in float: {', '.join(ran)}." if ran else " No compute node ran in float.")


#: Ops whose float input is bookkeeping, not compute: the conversions themselves and shape reads.
_BOOKKEEPING = {"QuantizeLinear", "DequantizeLinear", "Shape"}
