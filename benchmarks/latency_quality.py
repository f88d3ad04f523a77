"""Issue 17 (b): accuracy at equal measured latency — autosc under ``--latency`` against the human scaling rules.

On the quality benchmark's model and data (mobilenet_v2_cifar on Fashion-MNIST, 28 px, the same 10k training
images, 5 epochs at lr 0.05, the full 10k test set), at latency budgets given as fractions of the full human
network's measured ONNX Runtime p50 (1 thread, batch 1):

- ``autosc``: ``autosc.compress(..., latency=...)``, the product end to end (latency model, projection on
  predicted latency, the measured check and shrink at the end); its report gives accuracy and measured p50.
- ``human-width``: the widest human network whose measured p50 is within the budget (bisection on the width,
  each step timed), trained from scratch with the same recipe.
- ``human-res``: the full-width human network fed the largest square input whose measured p50 is within it.

The human networks are chosen by measurement, not by MACs, so all three meet the same measured latency; each
row records the measured p50 of its final network. Every job appends a JSON line (resumable); seeds 12-14 by
default (0-11 were used by the MACs-budget grid).

    python -m benchmarks.latency_quality                     # budgets 60%, 40% of the human p50; 3 seeds
    python -m benchmarks.latency_quality --summary
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from autosc import ModelSpec, compress
from autosc.cost.latency_probe import Timing, time_network
from autosc.cost.width import human_cost
from autosc.run import load_dataset
from benchmarks.common import add_out, append_row, load_rows, machine, parser, quiet
from benchmarks.quality_jobs import data_config, run_job

MODEL, SIZE, CHANNELS, CLASSES = "mobilenet_v2_cifar", 28, 1, 10
METHODS = ("autosc", "human-width", "human-res")


def _p50(spec: ModelSpec, side: int, runs: int) -> float:
    with quiet(), torch.random.fork_rng():
        return time_network(spec.build(), (side, side), CHANNELS, threads=1, batch=1, timing=Timing(runs=runs))


def widest_within(budget_ms: float, runs: int) -> float:
    """The largest width (0.01 steps) whose human network's measured p50 is within ``budget_ms``."""
    lo, hi = 1, 100
    if _p50(ModelSpec(MODEL, lo / 100, CLASSES, CHANNELS), SIZE, runs) > budget_ms:
        return lo / 100
    while hi - lo > 1:
        mid = (lo + hi) // 2
        fits = _p50(ModelSpec(MODEL, mid / 100, CLASSES, CHANNELS), SIZE, runs) <= budget_ms
        lo, hi = (mid, hi) if fits else (lo, mid)
    return lo / 100


def largest_within(budget_ms: float, runs: int) -> int:
    """The largest square input (<= 28) at which the full human network's measured p50 is within ``budget_ms``."""
    human = ModelSpec(MODEL, 1.0, CLASSES, CHANNELS)
    lo, hi = 2, SIZE + 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if _p50(human, mid, runs) <= budget_ms else (lo, mid)
    return lo


def quality_args(args: argparse.Namespace) -> argparse.Namespace:
    """What benchmarks.quality_jobs.run_job reads: the quality benchmark's protocol."""
    return argparse.Namespace(model=MODEL, data="fashion-mnist", data_root=None, subset=args.subset, epochs=args.epochs,
                              lr=args.lr, device="cpu", amp="off", workers=0, input_size=SIZE, num_classes=CLASSES,
                              in_channels=CHANNELS, latency_runs=args.latency_runs)  # fmt: skip


def autosc_job(budget_ms: float, seed: int, args: argparse.Namespace) -> dict:
    """The product end to end on the very images the human networks train on (the grid's seed-0 subset)."""
    bundle = load_dataset(data_config(quality_args(args), args.subset), (SIZE, SIZE))
    with tempfile.TemporaryDirectory() as tmp:
        result = compress(MODEL, train_data=bundle.train, test_data=bundle.test, latency=f"{budget_ms:.6f}ms",
                          epochs=args.epochs, lr=args.lr, batch_size=128, weight_decay=4e-5, seed=seed,
                          val_split=0.0, latency_runs=args.latency_runs, out=Path(tmp) / "run", quiet=True)  # fmt: skip
    r = result.report
    return {"accuracy": r.accuracy.final, "latency_p50_ms": r.latency_ms.compressed.p50,
            "predicted_ms": r.latency_ms.predicted, "budget_met": r.latency_ms.budget_met,
            "shrinks": r.latency_ms.shrinks, "width": r.width, "macs": r.macs.final + r.macs.final_resize,
            "sizes": [a.size for a in r.adaptors], "seconds": r.seconds}  # fmt: skip


def human_job(method: str, budget_ms: float, seed: int, args: argparse.Namespace) -> dict:
    """Chosen by measured latency, then trained as the quality grid trains it (its MACs pick the same network)."""
    human = ModelSpec(MODEL, 1.0, CLASSES, CHANNELS)
    if method == "human-width":
        width = widest_within(budget_ms, args.search_runs)
        macs = human_cost(ModelSpec(MODEL, width, CLASSES, CHANNELS), (SIZE, SIZE))[0]
        extra = {"width": width}
    else:
        side = largest_within(budget_ms, args.search_runs)
        macs = human_cost(human, (side, side))[0]
        extra = {"input": side}
    row = run_job({"budget": str(macs), "seed": seed, "method": method}, quality_args(args))
    return {"accuracy": row["accuracy"], "latency_p50_ms": row["latency_p50_ms"], "macs": row["budget_macs"],
            "seconds": row["seconds"], **extra, **{k: row[k] for k in ("width", "input") if k in row}}  # fmt: skip


def summarise(rows: list[dict]) -> str:
    lines = []
    for fraction in dict.fromkeys(r["fraction"] for r in rows):
        at = [r for r in rows if r["fraction"] == fraction]
        ref = {r["seed"]: r["accuracy"] for r in at if r["method"] == "autosc"}
        lines += [f"\nbudget {100 * fraction:.0f}% of the human p50 = {at[0]['budget_ms']:.3f} ms",
                  "| method | seeds | accuracy | autosc minus it (paired) | measured p50 (ms) | MACs |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for method in METHODS:
            rs = [r for r in at if r["method"] == method]
            if not rs:
                continue
            diffs = [100 * (ref[r["seed"]] - r["accuracy"]) for r in rs if r["seed"] in ref]
            paired = (f"{statistics.mean(diffs):+.2f} ± {statistics.stdev(diffs) / len(diffs) ** 0.5:.2f}"
                      if method != "autosc" and len(diffs) > 1 else "—")  # fmt: skip
            p50s = " / ".join(f"{r['latency_p50_ms']:.3f}" for r in rs)
            lines.append(
                f"| {method} | {len(rs)} | {100 * statistics.mean(r['accuracy'] for r in rs):.2f} | {paired} | "
                f"{p50s} | {statistics.mean(r['macs'] for r in rs) / 1e6:.2f}M |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--fractions", default="0.6,0.4", help="latency budgets as fractions of the human p50")
    ap.add_argument("--seeds", default="12,13,14")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--subset", type=int, default=10000)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--latency-runs", type=int, default=200, help="timed runs for each final network's p50")
    ap.add_argument("--search-runs", type=int, default=100, help="timed runs per step of the width/input search")
    ap.add_argument("--summary", action="store_true")
    add_out(ap, "latency_quality.jsonl")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.summary:
        print(summarise(load_rows(out)))
        return
    torch.set_num_threads(2)
    human_ms = _p50(ModelSpec(MODEL, 1.0, CLASSES, CHANNELS), SIZE, args.latency_runs)
    print(f"human network p50 {human_ms:.3f} ms (1 thread, batch 1)", flush=True)
    done = {(r["fraction"], r["method"], r["seed"]) for r in load_rows(out)}
    for fraction in (float(v) for v in args.fractions.split(",")):
        budget_ms = fraction * human_ms
        for method in args.methods.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                if (fraction, method, seed) in done:
                    continue
                row = (
                    autosc_job(budget_ms, seed, args)
                    if method == "autosc"
                    else human_job(method, budget_ms, seed, args)
                )
                row = {"fraction": fraction, "budget_ms": budget_ms, "human_ms": human_ms, "method": method,
                       "seed": seed, **row, "machine": machine()}  # fmt: skip
                append_row(out, row)
                print(f"{fraction:.0%} {method} seed {seed}: {row['accuracy']:.2%}, p50 {row['latency_p50_ms']:.3f} ms "
                      f"(budget {budget_ms:.3f})", flush=True)  # fmt: skip
    print(summarise(load_rows(out)))


if __name__ == "__main__":
    main()
