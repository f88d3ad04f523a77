"""Benchmark for `autosc plan` + freeze + export (issue 3): projection cost, budget use, ONNX latency.

For mobilenet_v2 at 224 px and budgets 100M/200M/300M with --width auto, the
identity shape is projected under the budget and frozen (no training: this
measures the shape machinery, not accuracy). Reported: frozen MACs / budget
(counted by the counters on the frozen network), and ONNX Runtime p50/p90 at 1
and 2 threads, batch 1, interleaved with the human network (width 1), the
human network at the widest width that fits the same budget, and the frozen
network collapsed to one branch per adaptor.

Public calls: ``make_plan``, ``freeze_and_save``, ``collapse``, ``auto_width`` (benchmarks.common.lineup_at),
``export_networks`` and ``count`` (common.export_counted), ``network.update_shape()`` and the adaptors' ``alpha``
(the projection's cost), ``autosc.latency.bench`` (many files at two thread counts, interleaved).

    python -m benchmarks.plan_latency --out benchmarks/results/plan_latency.json
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

import torch

from autosc import ModelSpec
from autosc.latency import bench
from autosc.planning import Plan, make_plan
from benchmarks.common import Lineup, add_out, export_counted, ints, lineup_at, seconds, write_json

MODEL, SIZE = "mobilenet_v2", (224, 224)


def projection_cost(plan: Plan, calls: int = 200) -> dict:
    """Mean ms of one projection with the tables warm, and with fresh random alphas each call."""
    network = plan.network
    network.update_shape()
    warm = seconds(lambda: [network.update_shape() for _ in range(calls)]) / calls * 1000
    rng = random.Random(0)

    def moving() -> None:
        for _ in range(calls):
            for adaptor in network.adaptors():
                adaptor.alpha.data.fill_(rng.uniform(-3, 5))
            network.update_shape()

    return {"warm_ms": warm, "random_alphas_ms": seconds(moving) / calls * 1000, "calls": calls}


def budget_row(budget: str, at: Lineup, files: dict[str, dict]) -> dict:
    """What the plan at ``budget`` uses of it: the frozen, collapsed and narrowed human networks' MACs."""
    frozen, collapsed, scaled = files[f"autosc_{budget}"], files[f"collapsed_{budget}"], files[f"scaled_{budget}"]
    return {
        "budget": budget,
        "budget_macs": at.plan.budget.macs,
        "width": at.plan.spec.width,
        "plan_seconds": at.plan_seconds,
        "sizes": [a["size"] for a in at.shape["adaptors"]],
        "frozen_macs": frozen["macs"],
        "frozen_resize_macs": frozen["resize_macs"],
        "frozen_total_over_budget": frozen["total_macs"] / at.plan.budget.macs,
        "collapsed_total_macs": collapsed["total_macs"],
        "scaled_width": at.width,
        "scaled_macs": scaled["macs"],
        "scaled_over_budget": scaled["macs"] / at.plan.budget.macs,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budgets", default="100M,200M,300M")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--threads", default="1,2")
    add_out(ap, "plan_latency.json")
    args = ap.parse_args(argv)
    budgets = args.budgets.split(",")
    torch.manual_seed(0)
    nets, labels, lineups = {"human": ModelSpec(MODEL).build().eval()}, ["human 1.0x"], {}
    for budget in budgets:
        at = lineups[budget] = lineup_at(MODEL, budget, SIZE)
        nets.update({f"autosc_{budget}": at.frozen, f"collapsed_{budget}": at.collapsed, f"scaled_{budget}": at.human})
        labels += [f"autosc {budget}", f"autosc {budget} collapsed", f"human {at.width:g}x @ {budget}"]
    measured = "300M" if "300M" in budgets else budgets[0]  # on a plan of its own: it moves the alphas
    cost_of_projection = {"budget": measured, **projection_cost(make_plan(MODEL, budget=measured, input_size=SIZE))}
    with tempfile.TemporaryDirectory() as tmp:
        files = export_counted(nets, SIZE, 3, Path(tmp))
        rows = [budget_row(budget, at, files) for budget, at in lineups.items()]
        paths = [files[name]["path"] for name in nets]
        timing = bench(paths, labels=labels, threads=ints(args.threads), batches=[1], runs=args.runs)
    result = {"model": MODEL, "input_size": list(SIZE), "projection": cost_of_projection, "budgets": rows,
              "latency": timing}  # fmt: skip
    write_json(args.out, result)
    print(json.dumps({"projection": cost_of_projection, "budgets": rows}, indent=2))
    for r in timing["results"]:
        print(f"{r['label']:<24} threads {r['threads']} p50 {r['p50']:.3f} ms p90 {r['p90']:.3f} ms")


if __name__ == "__main__":
    main()
