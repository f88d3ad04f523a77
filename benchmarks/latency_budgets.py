"""Issue 17 (c): does a latency budget hold when measured? mobilenet_v2@224 and resnet18@224, untrained.

For each family, three latency budgets (fractions of the human network's measured p50 at 1 thread, batch 1):
``autosc.plan(latency=...)`` with ``--width auto`` (the latency model measured here, cached), the identity shape
projected under the budget on predicted latency, collapsed to one full branch per adaptor (what a trained run
exports), frozen, then measured against the budget by the product's own end-of-run check
(``autosc.run.stages.check_latency_budget``: 3 interleaved rounds, shrink and re-measure while over by more
than the noise). Latency does not depend on weight values, so nothing is trained. Reported: the width chosen,
predicted and measured p50 against the budget, the noise, shrinks, and the MACs the network ends with.

One row per (family, budget) on :mod:`benchmarks.runner`'s grid (resumable). The committed results were written
whole at the end by an earlier version: ``--summary --out benchmarks/results/latency_budgets.json`` reads them.
``--share`` asks the budgets as shares (``--latency 80%``, issue 29): the plan times the human network with the
start shape and the check judges the share of the human network timed in the same rounds.

    python -m benchmarks.latency_budgets                       # both families, budgets 80%, 60%, 40%
    python -m benchmarks.latency_budgets --share               # the same as shares (results/latency_budgets_share.jsonl)
    python -m benchmarks.latency_budgets --families resnet18 --fractions 0.5
    python -m benchmarks.latency_budgets --summary --out benchmarks/results/latency_budgets.json
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

import autosc
from autosc import ExportConfig, ModelSpec, count
from autosc.cost.latency_probe import ProbeSettings, time_network
from autosc.run import RunFolder, export_networks, freeze_and_save
from autosc.run.stages import check_latency_budget
from benchmarks.runner import add_out, load_rows, parser, quiet, run_grid

FAMILIES = {
    "mobilenet_v2": {"model": "mobilenet_v2", "size": 224, "classes": 1000},
    "resnet18": {"model": "resnet18", "size": 224, "classes": 1000},
}


def run_one(name: str, fraction: float, human_ms: float | None, args) -> dict:
    f = FAMILIES[name]
    size = (f["size"], f["size"])
    asked = f"{100 * fraction:g}%" if human_ms is None else f"{fraction * human_ms}ms"
    started = time.perf_counter()
    with quiet():
        plan = autosc.plan(f["model"], latency=asked, input_size=size, num_classes=f["classes"],
                           timing=ProbeSettings(cache_dir=args.cache))  # fmt: skip
    budget_ms = plan.network.budget.latency_ms  # a share's milliseconds at the reference's speed when planned
    plan_seconds = time.perf_counter() - started
    network = plan.network
    network.collapse()
    with tempfile.TemporaryDirectory() as tmp, quiet():
        folder = RunFolder(Path(tmp))
        frozen, _ = freeze_and_save(network, folder)
        human = ModelSpec(f["model"], 1.0, f["classes"], 3).build().eval()
        networks = {"compressed": frozen, "human": human}
        exported = export_networks(networks, size, 3, folder, ExportConfig(exporter="torchscript"))
        check = check_latency_budget(
            network, networks, exported, size, 3, folder, ExportConfig(exporter="torchscript")
        )
    lat = check.latency
    cost = count(check.frozen, size, cells=False)
    return {
        "family": name,
        "fraction": fraction,
        "budget_ms": budget_ms,
        "width": plan.spec.width,
        "plan_seconds": plan_seconds,
        "predicted_ms": lat.predicted,
        "measured_p50_ms": lat.compressed.p50,
        "measured_p90_ms": lat.compressed.p90,
        "human_p50_ms": lat.human.p50,
        # the host's speed drifts between minutes: the compressed network against the human one timed with it
        "ratio_to_human": lat.compressed.p50 / lat.human.p50,
        "spread_ms": lat.spread,
        "measured_over_budget": lat.compressed.p50 / budget_ms,
        "budget_met": lat.budget_met,
        "shrinks": lat.shrinks,
        "asked": asked,
        "share": lat.share,
        "share_spread": lat.share_spread,
        "allowed_share": lat.allowed_share,
        "macs": cost.total_macs,
        "sizes": [list(a.size) for a in network.adaptors()],
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| family | budget (of human p50) | width | predicted | measured p50 | measured / budget | noise | met | shrinks | p50 / human p50 timed with it | MACs |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['family']}@224 | {r['budget_ms']:.2f} ms ({100 * r['fraction']:.0f}%) | {r['width']:.2f} | "
            f"{r['predicted_ms']:.2f} ms | {r['measured_p50_ms']:.2f} ms | {r['measured_over_budget']:.3f} | "
            f"±{r['spread_ms']:.3f} | {'yes' if r['budget_met'] else 'no'} | {r['shrinks']} | "
            f"{r['ratio_to_human']:.2f} | {r['macs'] / 1e6:.0f}M |"
        )
    return "\n".join(lines)


def share_table(rows: list[dict]) -> str:
    lines = [
        "| family | asked | width | measured share of the human p50 (middle round) | noise (half range) | over the asked share | met | shrinks | measured p50 | MACs |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['family']}@224 | {r['asked']} | {r['width']:.2f} | {r['share']:.3f} | ±{r['share_spread']:.3f} | "
            f"{100 * (r['share'] / r['allowed_share'] - 1):+.1f}% | {'yes' if r['budget_met'] else 'no'} | "
            f"{r['shrinks']} | {r['measured_p50_ms']:.2f} ms | {r['macs'] / 1e6:.0f}M |"
        )
    return "\n".join(lines)


def human_p50(name: str) -> float:
    """The human network's p50 (1 thread, batch 1, 100 runs) by the product's timer: the budgets' reference."""
    f = FAMILIES[name]
    human = ModelSpec(f["model"], 1.0, f["classes"], 3).build()
    with quiet():
        human_ms = time_network(human, (f["size"], f["size"]), 3, threads=1, batch=1, timing=ProbeSettings(runs=100))
    print(f"{name}: human network p50 {human_ms:.2f} ms", flush=True)
    return human_ms


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--fractions", default="0.8,0.6,0.4", help="budgets as fractions of the human network's p50")
    ap.add_argument("--cache", default=None, help="latency-model cache folder (default: the user cache)")
    ap.add_argument("--share", action="store_true", help="ask the budgets as shares (--latency 80%%), issue 29")
    add_out(ap, "latency_budgets.jsonl")
    args = ap.parse_args(argv)
    if args.share and Path(args.out).name == "latency_budgets.jsonl":
        args.out = str(Path(args.out).with_name("latency_budgets_share.jsonl"))
    render = share_table if args.share else table
    if args.summary:
        print(render(load_rows(args.out)))
        return
    torch.set_num_threads(1)
    humans: dict[str, float] = {}  # each family's human p50, measured once, before its first budget

    def run(job: dict) -> dict:
        if args.share:  # the plan times the human network itself, with the start shape
            return run_one(job["family"], job["fraction"], None, args)
        if job["family"] not in humans:
            humans[job["family"]] = human_p50(job["family"])
        return run_one(job["family"], job["fraction"], humans[job["family"]], args)

    jobs = [{"family": n, "fraction": float(v)} for n in args.families.split(",") for v in args.fractions.split(",")]
    rows = run_grid(jobs, run, args.out, key=("family", "fraction"), describe=lambda r: render([r]).splitlines()[-1])
    print(render(rows))


if __name__ == "__main__":
    main()
