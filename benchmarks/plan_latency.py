"""Benchmark for `autosc plan` + freeze + export (issue 3): projection cost, budget use, ONNX latency.

For mobilenet_v2 at 224 px and budgets 100M/200M/300M with --width auto, the
identity shape is projected under the budget and frozen (no training: this
measures the shape machinery, not accuracy). Reported: frozen MACs / budget
(counted by the counters on the frozen network), and ONNX Runtime p50/p90 at 1
and 2 threads, batch 1, interleaved with the human network (width 1), the
human network at the widest width that fits the same budget, and the frozen
network collapsed to one branch per adaptor.

    .venv/bin/python benchmarks/plan_latency.py --out benchmarks/results/plan_latency.json
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import torch

from autosc import count
from autosc.cost.width import auto_width
from autosc.export import export_onnx
from autosc.freeze import collapse, freeze
from autosc.latency import bench
from autosc.models import ModelSpec
from autosc.planning import make_plan

MODEL, SIZE = "mobilenet_v2", (224, 224)


def projection_cost(plan, calls: int = 200) -> dict:
    """Mean ms of one projection with the tables warm, and with fresh random alphas each call."""
    network = plan.network
    network.update_shape()
    start = time.perf_counter()
    for _ in range(calls):
        network.update_shape()
    warm = (time.perf_counter() - start) / calls * 1000
    rng = random.Random(0)
    start = time.perf_counter()
    for _ in range(calls):
        for adaptor in network.adaptors():
            adaptor.alpha.data.fill_(rng.uniform(-3, 5))
        network.update_shape()
    moving = (time.perf_counter() - start) / calls * 1000
    return {"warm_ms": warm, "random_alphas_ms": moving, "calls": calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", default="100M,200M,300M")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--out", default="benchmarks/results/plan_latency.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    rows, paths, labels = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        human = ModelSpec(MODEL).build().eval()
        export_onnx(human, SIZE, Path(tmp) / "human.onnx", check=False)
        paths.append(str(Path(tmp) / "human.onnx"))
        labels.append("human 1.0x")
        cost_of_projection = None
        for budget in args.budgets.split(","):
            start = time.perf_counter()
            plan = make_plan(MODEL, budget=budget, input_size=SIZE)
            plan_seconds = time.perf_counter() - start
            if budget == "300M" or cost_of_projection is None:
                cost_of_projection = {"budget": budget, **projection_cost(plan)}
                plan = make_plan(MODEL, budget=budget, input_size=SIZE)  # back to the identity shape
            frozen, spec = freeze(plan.network)
            counted = count(frozen, SIZE, cells=False)
            name = f"autosc {budget}"
            export_onnx(frozen, SIZE, Path(tmp) / f"autosc_{budget}.onnx")
            # the single-branch variant (SPEC §6, optional; needs fine-tuning): what the second branch costs
            export_onnx(collapse(frozen), SIZE, Path(tmp) / f"collapsed_{budget}.onnx", check=False)
            collapsed_cost = count(collapse(frozen), SIZE, cells=False)
            width = auto_width(ModelSpec(MODEL), SIZE, plan.budget, ratio=1.0)
            scaled = ModelSpec(MODEL, width).build().eval()
            scaled_cost = count(scaled, SIZE, cells=False)
            export_onnx(scaled, SIZE, Path(tmp) / f"scaled_{budget}.onnx", check=False)
            paths += [
                str(Path(tmp) / f"autosc_{budget}.onnx"),
                str(Path(tmp) / f"collapsed_{budget}.onnx"),
                str(Path(tmp) / f"scaled_{budget}.onnx"),
            ]
            labels += [name, f"{name} collapsed", f"human {width:g}x @ {budget}"]
            rows.append(
                {
                    "budget": budget,
                    "budget_macs": plan.budget.macs,
                    "width": plan.spec.width,
                    "plan_seconds": plan_seconds,
                    "sizes": [a["size"] for a in spec["adaptors"]],
                    "frozen_macs": counted.macs,
                    "frozen_resize_macs": counted.resize_macs,
                    "frozen_total_over_budget": counted.total_macs / plan.budget.macs,
                    "collapsed_total_macs": collapsed_cost.total_macs,
                    "scaled_width": width,
                    "scaled_macs": scaled_cost.macs,
                    "scaled_over_budget": scaled_cost.macs / plan.budget.macs,
                }
            )
        timing = bench(
            paths, labels=labels, threads=[int(t) for t in args.threads.split(",")], batches=[1], runs=args.runs
        )
    result = {
        "model": MODEL,
        "input_size": list(SIZE),
        "projection": cost_of_projection,
        "budgets": rows,
        "latency": timing,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"projection": cost_of_projection, "budgets": rows}, indent=2))
    for r in timing["results"]:
        print(f"{r['label']:<24} threads {r['threads']} p50 {r['p50']:.3f} ms p90 {r['p90']:.3f} ms")


if __name__ == "__main__":
    main()
