"""ONNX Runtime CPU latency of one or more exported networks (docs/algorithm.md, Freeze, export, measure).

The networks are measured interleaved in the same process (run i times every
model once), so drift in clock speed, thermal state or background load hits
all of them alike; the run records the library versions and the CPU so the
numbers can be compared across machines (the probing lives in :mod:`autosc.env`).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
from rich.table import Table

from .env import cpu_model, environment, n_cores, onnxruntime
from .errors import AutoscError
from .export import export_onnx, load_onnx
from .resources import check_batch

if TYPE_CHECKING:
    from torch import nn

# environment(), cpu_model() and n_cores() live in autosc.env; re-exported here for existing callers.
__all__ = ["PERCENTILES", "bench", "bench_table", "cpu_model", "environment", "n_cores", "int8_twin", "op_profile", "time_together"]

PERCENTILES = (50, 90, 99)


def _check_counts(name: str, values: list[int]) -> list[int]:
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
        raise AutoscError(f"{name} must be a non-empty list of integers >= 1, got {values!r}")
    return list(dict.fromkeys(values))  # drop repeats, keep order


def _labels(paths: list[str], labels: list[str] | None) -> list[str]:
    if labels is None:
        stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
        return stems if len(set(stems)) == len(stems) else list(paths)
    if len(labels) != len(paths):
        raise AutoscError(f"got {len(labels)} labels for {len(paths)} ONNX files")
    if len(set(labels)) != len(labels):
        raise AutoscError(f"labels must be distinct, got {labels!r}")
    return [str(label) for label in labels]


def _model_info(path: str, in_shape: tuple[int, ...] | None) -> dict:
    """Read and check one file: its single input, its opset and who produced it."""
    model = load_onnx(path)
    inits = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise AutoscError(f"{path}: expected a network with one input, found {len(inputs)}")
    import onnx  # where it is used: at module level it adds ~0.9 s to every autosc start

    if inputs[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        kind = onnx.TensorProto.DataType.Name(inputs[0].type.tensor_type.elem_type)
        raise AutoscError(f"{path}: its input is {kind}; autosc times networks with one float32 image input")
    dims = inputs[0].type.tensor_type.shape.dim
    shape: list[int | None] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if in_shape is not None:
        if len(in_shape) != len(shape) - 1:
            raise AutoscError(f"{path}: in_shape {tuple(in_shape)} does not fit the input rank {len(shape)}")
        for k, (have, want) in enumerate(zip(shape[1:], in_shape, strict=True), start=1):
            if have is not None and have != want:
                raise AutoscError(f"{path}: input dim {k} is fixed to {have}, in_shape asks for {want}")
        shape = [shape[0], *in_shape]
    if not shape or None in shape[1:]:
        raise AutoscError(f"{path}: input shape {shape} has dynamic dims besides the batch; pass in_shape")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    props = {p.key: p.value for p in model.metadata_props}
    return {
        "path": path,
        "input": inputs[0].name,
        "shape": shape,
        "opset": opset,
        "exporter": props.get("autosc.exporter"),
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
    }


def _session(path: str, threads: int, profile: str | None = None):
    """A timing session; ``profile``: the prefix ONNX Runtime's profiler writes its events under."""
    ort = onnxruntime()  # telemetry off

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    if profile is not None:
        opts.enable_profiling, opts.profile_file_prefix = True, profile
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def _feed(info: dict, batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    fixed = info["shape"][0]
    if fixed is not None and fixed != batch:
        raise AutoscError(f"{info['path']} has a fixed batch of {fixed}; cannot run batch {batch}")
    return {info["input"]: rng.standard_normal((batch, *info["shape"][1:]), dtype=np.float32)}


def _stats(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    p = np.percentile(ms, PERCENTILES)
    return {"p50": float(p[0]), "p90": float(p[1]), "p99": float(p[2]), "mean": float(ms.mean())}


def _measure(sessions: list, feeds: list[dict], runs: int, warmup: int, block: int = 1) -> list[list[float]]:
    """Warm every model up, then time ``runs`` runs of each, interleaved in visits of ``block`` runs.

    The first model of a round rotates so no model always runs right after the same neighbour (cache and
    frequency effects of position cancel out). With ``block`` > 1 each visit first runs the model once untimed
    and then times ``block`` runs in a row: the model is warm, as it is when deployed (single interleaved runs
    of large networks evict each other's weights: measured 1.2-2x slower), while its runs are still spread
    over the whole measurement, so the machine's slow swings (about 10% between seconds on a shared host, see
    docs/algorithm.md, Latency budgets) hit every model alike.
    """
    for sess, feed in zip(sessions, feeds, strict=True):
        for _ in range(warmup):
            sess.run(None, feed)
    n = len(sessions)
    times: list[list[float]] = [[] for _ in sessions]
    for i in range(-(-runs // block)):
        for k in range(n):
            j = (i + k) % n
            if block > 1:
                sessions[j].run(None, feeds[j])
            for _ in range(min(block, runs - i * block)):
                t0 = time.perf_counter()
                sessions[j].run(None, feeds[j])
                times[j].append(time.perf_counter() - t0)
    return times


def bench(
    paths: list[str],
    *,
    labels: list[str] | None = None,
    threads: list[int] | None = None,
    batches: list[int] | None = None,
    runs: int = 200,
    warmup: int = 20,
    in_shape: tuple[int, ...] | None = None,
    block: int = 1,
) -> dict:
    """Latency (ms: p50/p90/p99/mean) of each ONNX file for every (threads, batch) setting.

    ``threads`` defaults to ``[1, all usable cores]``, ``batches`` to ``[1]``.
    ``in_shape`` (C, H, W) fills input dims the files leave dynamic besides the
    batch. ``block`` is how many runs of one model are timed in a row before the next (see :func:`_measure`).
    The result is JSON-serialisable: ``{"env", "runs", "warmup",
    "models", "results": [{label, path, threads, batch, p50, p90, p99, mean}]}``.
    """
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise AutoscError("no ONNX files to benchmark")
    threads = _check_counts("threads", threads if threads is not None else [1, n_cores()])
    batches = _check_counts("batches", batches if batches is not None else [1])
    if not isinstance(runs, int) or runs < 1:
        raise AutoscError(f"runs must be an integer >= 1, got {runs!r}")
    if not isinstance(warmup, int) or warmup < 0:
        raise AutoscError(f"warmup must be an integer >= 0, got {warmup!r}")
    if not isinstance(block, int) or block < 1:
        raise AutoscError(f"block must be an integer >= 1, got {block!r}")
    names = _labels(paths, labels)
    infos = [_model_info(p, tuple(in_shape) if in_shape is not None else None) for p in paths]
    for info in infos:  # before any input is drawn
        for b in batches:
            check_batch("--batch", b, tuple(info["shape"][1:]))
    results = []
    for t in threads:
        for b in batches:
            rng = np.random.default_rng(0)
            feeds = [_feed(info, b, rng) for info in infos]
            sessions = [_session(p, t) for p in paths]
            times = _measure(sessions, feeds, runs, warmup, block)
            for name, path, seconds in zip(names, paths, times, strict=True):
                results.append({"label": name, "path": path, "threads": t, "batch": b, **_stats(seconds)})
    models = [
        {
            "label": name,
            "path": info["path"],
            "input_shape": info["shape"],
            "opset": info["opset"],
            "exporter": info["exporter"],
            "producer": info["producer"],
        }
        for name, info in zip(names, infos, strict=True)
    ]
    return {"env": environment(), "runs": runs, "warmup": warmup, "block": block, "models": models, "results": results}


def time_together(
    networks: Mapping[str, nn.Module | str | os.PathLike],
    input_size: tuple[int, int] | Mapping[str, tuple[int, int]] | None = None,
    in_channels: int = 3,
    *,
    threads: int = 1,
    batch: int = 1,
    runs: int = 200,
    warmup: int = 20,
    block: int = 10,
    exporter: str = "torchscript",
    opset: int = 18,
    int8: bool = False,
) -> dict[str, dict[str, float]]:
    """Export every network and time them all in one measurement: ``{label: {"p50", "p90", "p99", "mean"}}`` (ms);
    with ``int8``, each as autosc's INT8 export writes it (:func:`int8_twin`), for a latency budget on what ships.

    Why together: a shared host's speed drifts between minutes by more than the differences being measured, so
    networks that are compared are timed interleaved (:func:`bench`), where the drift hits them alike, in visits
    of ``block`` runs (each network warm, as when deployed). A module is exported (eval mode, no parity check:
    timing does not need one) to a temporary file at ``input_size``, one (H, W) for all or a label -> (H, W)
    mapping (None when every network is a path); a path is an ONNX file already exported, timed as it is. The one place where autosc and its
    benchmarks turn networks into milliseconds: the latency model's probes (:mod:`autosc.cost.latency_probe`)
    and ``benchmarks/runner.py`` both call it.
    """
    if not networks:
        raise AutoscError("no networks to time")
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for k, (label, net) in enumerate(networks.items()):
            if isinstance(net, (str, os.PathLike)):
                paths.append(os.fspath(net))
                continue
            size = input_size[label] if isinstance(input_size, Mapping) else input_size
            if size is None:
                raise AutoscError(f"network {label!r} is a module: give the input size to export it at")
            path = os.path.join(tmp, f"{k}.onnx")
            export_onnx(net.eval(), size, path, in_channels=in_channels, opset=opset, exporter=exporter, check=False)
            paths.append(path)
        if int8:
            paths = [int8_twin(path, os.path.join(tmp, f"{k}.int8.onnx")) for k, path in enumerate(paths)]
        result = bench(paths, labels=list(networks), threads=[threads], batches=[batch], runs=runs, warmup=warmup,
                       block=block)  # fmt: skip
    return {r["label"]: {k: r[k] for k in ("p50", "p90", "p99", "mean")} for r in result["results"]}


#: Random images an INT8 twin is calibrated on: its ranges set the scales, not which kernels run or how long.
TWIN_IMAGES = 8


def int8_twin(path: str | os.PathLike, out: str | os.PathLike) -> str:
    """``path`` quantized as ``--quantize int8`` quantizes (autosc/export/quantize.py), calibrated on
    ``TWIN_IMAGES`` seeded random inputs: the same graph and kernels as the file a run ships, to time (the latency
    model's probes, the reference and the end check of a latency budget on the INT8 network)."""
    import torch

    from .export.quantize import quantize_int8

    info = _model_info(os.fspath(path), None)
    shape = [d if d is not None else 1 for d in info["shape"][1:]]
    images = torch.randn(TWIN_IMAGES, *shape, generator=torch.Generator().manual_seed(0))
    return os.fspath(quantize_int8(path, out, images).path)


def op_profile(path: str | os.PathLike, *, threads: int = 1, batch: int = 1, runs: int = 50,
               warmup: int = 10) -> dict[str, dict]:  # fmt: skip
    """Where one file's time goes, by the op type ONNX Runtime ran (after its graph optimisation fused what it
    could): ``{op: {"ms": mean per run, "nodes": nodes per run, "float_nodes": those whose first input was
    float}}``, from ORT's own profiler, largest first.

    Why the profiler and not the graph: whether a quantized graph runs in INT8 is decided when ONNX Runtime fuses
    each DequantizeLinear -> op -> QuantizeLinear group into one integer kernel; a group it does not fuse runs
    the op in float between two conversions, which only the kernels it ran show (docs/algorithm.md, INT8 export).
    """
    import json

    info = _model_info(os.fspath(path), None)
    with tempfile.TemporaryDirectory(prefix="autosc-profile-") as tmp:
        feed = _feed(info, batch, np.random.default_rng(0))
        session = _session(os.fspath(path), threads, profile=os.path.join(tmp, "profile"))
        for _ in range(warmup + runs):
            session.run(None, feed)
        with open(session.end_profiling()) as f:
            events = [e for e in json.load(f) if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    events = events[-len(events) * runs // (warmup + runs):] if events else []  # the last ``runs``: the first allocate
    totals: dict[str, list[int]] = {}  # op -> [microseconds, nodes, float nodes] over the runs
    for e in events:
        entry = totals.setdefault(e["args"]["op_name"], [0, 0, 0])
        first = (e["args"].get("input_type_shape") or [{}])[0]
        entry[0], entry[1], entry[2] = entry[0] + e["dur"], entry[1] + 1, entry[2] + ("float" in first)
    out = {op: {"ms": t[0] / 1e3 / runs, "nodes": t[1] / runs, "float_nodes": t[2] / runs} for op, t in totals.items()}
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["ms"]))


def bench_table(result: dict) -> Table:
    """One row per (threads, batch, model); with two or more models, p50 relative to the first one's."""
    labels = list(dict.fromkeys(r["label"] for r in result["results"]))
    compare = len(labels) > 1
    table = Table(title=f"ONNX Runtime CPU latency (ms, {result['runs']} interleaved runs)")
    for col in ("threads", "batch", "model", "p50", "p90", "p99"):
        table.add_column(col, justify="left" if col == "model" else "right")
    if compare:
        table.add_column(f"p50 / {labels[0]}", justify="right")
    first_p50 = {(r["threads"], r["batch"]): r["p50"] for r in result["results"] if r["label"] == labels[0]}
    for r in result["results"]:
        row = [str(r["threads"]), str(r["batch"]), r["label"], *(f"{r[k]:.3f}" for k in ("p50", "p90", "p99"))]
        if compare:
            base = first_p50.get((r["threads"], r["batch"]))
            row.append(f"{r['p50'] / base:.2f}x" if base else "-")
        table.add_row(*row)
    return table
