#!/usr/bin/env python3
"""Time autosc's probe networks on the device you deploy on, and write the timing table autosc plans with.

This file is copied, as it is, into the folder ``autosc probe`` writes (docs/algorithm.md, Timing tables from the
deployment device). It needs Python >= 3.8, numpy and onnxruntime: no torch, no autosc. On the device:

    python time_probes.py                                   # times the probes, writes table.json
    python time_probes.py --bench model.onnx --vs human.onnx   # the final network against the start network

Bring table.json back and give it to ``autosc plan`` or ``autosc compress`` with ``--latency-table table.json``.
The networks are timed as autosc times them here: ONNX Runtime on the CPU, the manifest's threads and batch,
all files of one measurement interleaved in warm blocks (each visit runs a network once untimed, then times
``block`` runs in a row), so a device whose speed drifts slows them all alike.
"""

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import onnxruntime as ort

TABLE_FORMAT = "autosc-latency-table/1"


# _session and time_together repeat autosc.latency's session settings and warm-block interleaving on purpose:
# this file runs where autosc is not installed, and must time as autosc times here.
def _session(path, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def _feed(session, batch, rng):
    info = session.get_inputs()[0]
    shape = [batch] + [int(d) for d in info.shape[1:]]
    return {info.name: rng.standard_normal(shape).astype(np.float32)}


def time_together(paths, threads, batch, runs, warmup, block):
    """The p50 (ms) of each file, timed interleaved in warm blocks; the first file of a round rotates."""
    rng = np.random.default_rng(0)
    sessions = [_session(p, threads) for p in paths]
    feeds = [_feed(s, batch, rng) for s in sessions]
    for session, feed in zip(sessions, feeds):  # noqa: B905 (strict= needs Python 3.10; this runs on 3.8)
        for _ in range(warmup):
            session.run(None, feed)
    times = [[] for _ in paths]
    n = len(paths)
    for i in range(-(-runs // block)):
        for k in range(n):
            j = (i + k) % n
            sessions[j].run(None, feeds[j])  # the visit's untimed run: warm, as deployed
            for _ in range(min(block, runs - i * block)):
                t0 = time.perf_counter()
                sessions[j].run(None, feeds[j])
                times[j].append(time.perf_counter() - t0)
    return [float(np.percentile(np.asarray(t) * 1e3, 50)) for t in times]


def device():
    """What the table was measured on: the report names it."""
    return {
        "machine": platform.machine(),
        "system": platform.system(),
        "processor": platform.processor() or platform.machine(),
        "node": platform.node(),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
    }


def _write(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def probe(folder, threads, out):
    with open(os.path.join(folder, "manifest.json")) as f:
        manifest = json.load(f)
    threads = threads or manifest["threads"]
    settings = dict(threads=threads, batch=manifest["batch"], runs=manifest["runs"], warmup=manifest["warmup"],
                    block=manifest["block"])
    p50 = {}
    for group in manifest["measurements"]:  # each group is one interleaved measurement, as autosc times it
        paths = [os.path.join(folder, name) for name in group]
        print(f"timing {len(paths)} networks ...", file=sys.stderr, flush=True)
        p50.update(zip(group, time_together(paths, **settings)))  # noqa: B905
    table = {"format": TABLE_FORMAT, "threads": threads, "batch": manifest["batch"], "device": device(),
             "p50_ms": p50, "manifest": manifest}
    _write(out or os.path.join(folder, "table.json"), table)
    print(f"wrote {out or os.path.join(folder, 'table.json')}", file=sys.stderr)


def bench(model, others, threads, batch, runs):
    paths = [model] + list(others)
    p50 = time_together(paths, threads=threads, batch=batch, runs=runs, warmup=20, block=10)
    for path, ms in zip(paths, p50):  # noqa: B905
        share = "" if path == model else f"  ({os.path.basename(model)} runs at {100 * p50[0] / ms:.1f}% of it)"
        print(f"{os.path.basename(path):<40} p50 {ms:8.3f} ms{share}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=None, help="intra-op threads (default: the manifest's; bench: 1)")
    ap.add_argument("--out", default=None, help="where to write the table (default: table.json beside the manifest)")
    ap.add_argument("--bench", default=None, help="an ONNX file to time instead of the probes")
    ap.add_argument("--vs", action="append", default=[], help="another ONNX file timed interleaved with --bench")
    ap.add_argument("--batch", type=int, default=1, help="batch for --bench (default 1)")
    ap.add_argument("--runs", type=int, default=200, help="timed runs for --bench (default 200)")
    args = ap.parse_args(argv)
    if args.bench:
        bench(args.bench, args.vs, args.threads or 1, args.batch, args.runs)
    else:
        probe(os.path.dirname(os.path.abspath(__file__)), args.threads, args.out)


if __name__ == "__main__":
    main()
