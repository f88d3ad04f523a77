"""Issue 17 (b): accuracy at equal measured latency — autosc under ``--latency`` against the human scaling rules.

On the quality benchmark's model and data (mobilenet_v2_cifar on Fashion-MNIST, 28 px, the same 10k training
images, 5 epochs at lr 0.05, the full 10k test set), at latency budgets given as fractions of the full human
network's measured ONNX Runtime p50 (1 thread, batch 1):

- ``autosc``: ``autosc.compress(..., latency=...)``, the product end to end (latency model, projection on
  predicted latency, the measured check and shrink at the end); its report gives accuracy and measured p50.
- ``human-width``: the widest human network (0.05 steps) whose measured p50 is within the budget, trained from
  scratch with the same recipe.
- ``human-res``: the full-width human network fed the largest square input whose measured p50 is within it.

The human networks are chosen by measurement, not by MACs: the full network and every candidate width and
input are timed in one interleaved measurement in warm blocks (latency does not depend on weight values, so the
candidates are untrained), once per budget, and the budget is the fraction of the full network's p50 in that
same measurement. This host's speed drifts by up to 1.5x between minutes (benchmarks/RESULTS.md, Latency
budgets), so a budget is a fraction of the full network's p50 measured just before it is used: each autosc job
measures it as it starts (and the run calibrates its latency model at the same moment). Measurements taken at
different times do not compare; ``--measure`` therefore times every
final network of a budget (each autosc seed's exported ``model.onnx``, kept under ``--keep``, and the two chosen
human networks) together in one interleaved measurement, and the summary reports those p50s. Every job appends
a JSON line (resumable); seeds 12-14 by default (0-11 were used by the MACs-budget grid).

    python -m benchmarks.latency_quality                     # budgets 60%, 40% of the human p50; 3 seeds
    python -m benchmarks.latency_quality --measure           # the final networks, timed together
    python -m benchmarks.latency_quality --summary

``--share`` (issue 29) asks autosc's budgets as shares (``--latency 60%``: the run times the full network with
its start shape and judges the end against it timed alongside), takes seeds 30-34, runs the grid seed by seed
(a stopped grid leaves whole pairs) and records each autosc run's accuracy at its last training epoch beside
the exported network's (a shrink after training, then its fine-tune, is where they part):

    python -m benchmarks.latency_quality --share --subset 3000 --epochs 4 && python -m benchmarks.latency_quality --share --measure

With the shape re-timed during training (issue 29, item 2), on fresh seeds, into its own files:

    python -m benchmarks.latency_quality --share --subset 3000 --epochs 4 --seeds 35,36,37,38,39 \
        --out benchmarks/results/latency_quality_retime.jsonl --keep exports/latency_quality_retime
    (the same with --measure)
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from autosc import ModelSpec, compress
from autosc.cost.width import human_cost
from autosc.run import load_dataset
from benchmarks.quality_jobs import data_config, run_job
from benchmarks.runner import add_out, completed, load_rows, onnx_p50s, paired, parser, run_grid, stamp, write_json

MODEL, SIZE, CHANNELS, CLASSES = "mobilenet_v2_cifar", 28, 1, 10
METHODS = ("autosc", "human-width", "human-res")
WIDTHS = [w / 100 for w in range(20, 101, 5)]
SIDES = list(range(8, SIZE + 1))
BLOCK = 10
ROUNDS = 3  # --measure: the median of 3 interleaved measurements, half their range the noise


def time_together(nets: dict[str, tuple[torch.nn.Module | str, int]], runs: int) -> dict[str, float]:
    """p50 (ms, 1 thread, batch 1) of every network, timed in one interleaved measurement in warm blocks
    (:func:`benchmarks.runner.onnx_p50s`). ``nets`` maps a label to a module and its input side, or to an ONNX
    file (its side is then ignored)."""
    networks = {label: net for label, (net, _) in nets.items()}
    sides = {label: (side, side) for label, (_, side) in nets.items()}
    return onnx_p50s(networks, sides, CHANNELS, runs=runs, warmup=10, block=BLOCK)


def human_p50(runs: int) -> float:
    """The full human network's p50 now: a budget is a fraction of it, measured just before it is used."""
    with torch.random.fork_rng():
        return time_together({"human": (ModelSpec(MODEL, 1.0, CLASSES, CHANNELS).build(), SIZE)}, runs)["human"]


def choose_humans(fraction: float, runs: int) -> dict:
    """The widest human network and the largest input of the full one whose p50 is within ``fraction`` of the
    full network's, all timed in one measurement (the host's drift between minutes cancels in the ratio)."""
    full = ModelSpec(MODEL, 1.0, CLASSES, CHANNELS).build()
    candidates = {"full": (full, SIZE)}
    candidates |= {f"width {w:.2f}": (ModelSpec(MODEL, w, CLASSES, CHANNELS).build(), SIZE) for w in WIDTHS}
    candidates |= {f"input {s}": (full, s) for s in SIDES}
    with torch.random.fork_rng():
        p50 = time_together(candidates, runs)
    budget_ms = fraction * p50["full"]
    widths = [w for w in WIDTHS if p50[f"width {w:.2f}"] <= budget_ms]
    sides = [s for s in SIDES if p50[f"input {s}"] <= budget_ms]
    return {"width": max(widths, default=WIDTHS[0]), "input": max(sides, default=SIDES[0]), "budget_ms": budget_ms,
            "human_ms": p50["full"], "candidates_ms": p50}  # fmt: skip


def quality_args(args: argparse.Namespace) -> argparse.Namespace:
    """What benchmarks.quality_jobs.run_job reads: the quality benchmark's protocol."""
    return argparse.Namespace(model=MODEL, data="fashion-mnist", data_root=None, subset=args.subset, epochs=args.epochs,
                              lr=args.lr, device="cpu", amp="off", workers=0, input_size=SIZE, num_classes=CLASSES,
                              in_channels=CHANNELS, latency_runs=args.latency_runs)  # fmt: skip


def autosc_job(budget: str, seed: int, folder: Path, args: argparse.Namespace) -> dict:
    """The product end to end on the very images the human networks train on (the grid's seed-0 subset); its
    run folder is kept in ``folder`` for ``--measure``."""
    bundle = load_dataset(data_config(quality_args(args), args.subset), (SIZE, SIZE))
    result = completed(compress(MODEL, train_data=bundle.train, test_data=bundle.test, latency=budget,
                                epochs=args.epochs, lr=args.lr, batch_size=128, weight_decay=4e-5, seed=seed,
                                val_split=0.0, latency_runs=args.latency_runs, out=folder, quiet=True))  # fmt: skip
    r = result.report
    return {"accuracy": r.accuracy.final, "latency_p50_ms": r.latency_ms.compressed.p50,
            "predicted_ms": r.latency_ms.predicted, "budget_met": r.latency_ms.budget_met,
            "shrinks": r.latency_ms.shrinks, "width": r.width, "macs": r.macs.final + r.macs.final_resize,
            "sizes": [a.size for a in r.adaptors], "seconds": r.seconds, "onnx": str(folder / "model.onnx"),
            "last_epoch_accuracy": _last_epoch(folder),
            "share": r.latency_ms.share, "share_spread": r.latency_ms.share_spread,
            "allowed_share": r.latency_ms.allowed_share, "shrink": r.latency_ms.shrink,
            "retimes": r.latency_ms.retimes, "tolerance": r.latency_ms.tolerance}  # fmt: skip


def _last_epoch(folder: Path) -> float:
    """The test accuracy of the run's last training epoch (metrics.jsonl), before freezing and export."""
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    return json.loads(lines[-1])["test_acc"]


def human_job(method: str, choice: dict, seed: int, args: argparse.Namespace) -> dict:
    """The chosen human network, trained as the quality grid trains it (its MACs pick the same network)."""
    if method == "human-width":
        macs = human_cost(ModelSpec(MODEL, choice["width"], CLASSES, CHANNELS), (SIZE, SIZE))[0]
        extra = {"width": choice["width"]}
    else:
        macs = human_cost(ModelSpec(MODEL, 1.0, CLASSES, CHANNELS), (choice["input"], choice["input"]))[0]
        extra = {"input": choice["input"]}
    row = run_job({"budget": str(macs), "seed": seed, "method": method}, quality_args(args))
    return {"accuracy": row["accuracy"], "latency_p50_ms": row["latency_p50_ms"], "macs": row["budget_macs"],
            "seconds": row["seconds"], **extra, **{k: row[k] for k in ("width", "input") if k in row}}  # fmt: skip


def measure_final(rows: list[dict], runs: int) -> dict:
    """Per budget, every final network timed together, in ``ROUNDS`` measurements: each autosc seed's ONNX file
    and the human networks."""
    out = {}
    for fraction in dict.fromkeys(r["fraction"] for r in rows):
        at = [r for r in rows if r["fraction"] == fraction]
        nets: dict = {}
        for r in at:
            if r["method"] == "autosc" and Path(r.get("onnx", "")).is_file():
                nets[f"autosc seed {r['seed']}"] = (r["onnx"], SIZE)
            elif r["method"] == "human-width":
                nets["human-width"] = (ModelSpec(MODEL, r["width"], CLASSES, CHANNELS).build(), SIZE)
            elif r["method"] == "human-res":
                nets["human-res"] = (ModelSpec(MODEL, 1.0, CLASSES, CHANNELS).build(), r["input"])
        nets["human (full)"] = (ModelSpec(MODEL, 1.0, CLASSES, CHANNELS).build(), SIZE)
        with torch.random.fork_rng():
            rounds = [time_together(nets, runs) for _ in range(ROUNDS)]
        out[str(fraction)] = {
            "budget_ms": {f"{r['method']} seed {r['seed']}": r["budget_ms"] for r in at},
            "p50": {k: statistics.median(r[k] for r in rounds) for k in nets},
            "noise": {k: (max(r[k] for r in rounds) - min(r[k] for r in rounds)) / 2 for k in nets},
            "rounds": rounds,
        }
    return out


def summarise(rows: list[dict], final: dict | None = None) -> str:
    """Per budget: accuracy, autosc's paired difference with its standard error, and the p50s measured together
    (``--measure``; the p50 measured by each job at its own time in brackets when there is none)."""
    lines = []
    for fraction in dict.fromkeys(r["fraction"] for r in rows):
        at = [r for r in rows if r["fraction"] == fraction]
        measured = (final or {}).get(str(fraction), {})
        together, noise = measured.get("p50", {}), measured.get("noise", {})
        ref = {r["seed"]: 100 * r["accuracy"] for r in at if r["method"] == "autosc"}
        head = f"\nbudget {100 * fraction:.0f}% of the full human network's p50"
        if "human (full)" in together:
            head += f" (measured with the others: {together['human (full)']:.3f} ms)"
        lines += [head, "| method | seeds | accuracy | autosc minus it (paired) | p50 measured together (ms, ± half the range of 3 rounds) | MACs |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for method in METHODS:
            rs = [r for r in at if r["method"] == method]
            if not rs:
                continue
            diff = paired(ref, {r["seed"]: 100 * r["accuracy"] for r in rs})
            vs = str(diff) if method != "autosc" and diff.n > 1 else "—"
            if method == "autosc":
                p50s = " / ".join(_p50_text(together, noise, f"autosc seed {r['seed']}", r) for r in rs)
            else:
                p50s = _p50_text(together, noise, method, rs[0])
            lines.append(
                f"| {method} | {len(rs)} | {100 * statistics.mean(r['accuracy'] for r in rs):.2f} | {vs} | "
                f"{p50s} | {statistics.mean(r['macs'] for r in rs) / 1e6:.2f}M |"
            )
        kept = [r for r in at if r["method"] == "autosc" and "last_epoch_accuracy" in r]
        if kept:  # issue 29: what the end of the run cost each autosc network (shrinks, then the fine-tune)
            lines.append("autosc, last training epoch -> exported network: " + "; ".join(
                f"seed {r['seed']}: {100 * r['last_epoch_accuracy']:.2f} -> {100 * r['accuracy']:.2f} "
                f"({r['shrinks']} shrink{'s' if r['shrinks'] != 1 else ''}, share {r['share']:.3f} of "
                f"{r['allowed_share']:.2f})" for r in kept))  # fmt: skip
    return "\n".join(lines)


def _p50_text(together: dict, noise: dict, label: str, row: dict) -> str:
    if label not in together:
        return f"({row['latency_p50_ms']:.3f})"
    return f"{together[label]:.3f} ± {noise[label]:.3f}"


def run_jobs(args: argparse.Namespace, out: Path) -> list[dict]:
    """The grid (budget, method, seed) on the runner; the human networks of a budget are chosen once, when its
    first human job runs, and each autosc job measures the budget as it starts (the host drifts)."""
    choices: dict[float, dict] = {}

    def run(job: dict) -> dict:
        fraction, method, seed = job["fraction"], job["method"], job["seed"]
        if method == "autosc" and args.share:  # the run times the full network with its start shape
            row = autosc_job(f"{100 * fraction:g}%", seed, Path(args.keep) / f"{fraction:g}-seed{seed}", args)
            return {"budget_ms": None, "human_ms": None, **row}
        if method == "autosc":  # the budget in ms of the host as it is now; the run calibrates alike
            human_ms = human_p50(args.latency_runs)
            budget_ms = fraction * human_ms
            row = autosc_job(f"{budget_ms:.6f}ms", seed, Path(args.keep) / f"{fraction:g}-seed{seed}", args)
            return {"budget_ms": budget_ms, "human_ms": human_ms, **row}
        if fraction not in choices:
            choices[fraction] = choose_humans(fraction, args.latency_runs)
        choice = choices[fraction]
        return {"budget_ms": choice["budget_ms"], "human_ms": choice["human_ms"],
                **human_job(method, choice, seed, args), "candidates_ms": choice["candidates_ms"]}  # fmt: skip

    jobs = [{"fraction": f, "method": m, "seed": s} for f in (float(v) for v in args.fractions.split(","))
            for m in args.methods.split(",") for s in (int(v) for v in args.seeds.split(","))]  # fmt: skip
    if args.share:  # seed by seed: a grid stopped part-way leaves whole pairs
        jobs.sort(key=lambda j: j["seed"])
    return run_grid(jobs, run, out, key=("fraction", "method", "seed"), describe=progress)


def progress(row: dict) -> str:
    budget = f"share {row['share']:.3f} of {row['allowed_share']:.2f}" if row.get("share") is not None else (
        f"budget {row['budget_ms']:.3f}")
    return (f"{row['fraction']:.0%} {row['method']} seed {row['seed']}: {row['accuracy']:.2%}, p50 "
            f"{row['latency_p50_ms']:.3f} ms ({budget})")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--fractions", default="0.6,0.4", help="latency budgets as fractions of the human p50")
    ap.add_argument("--seeds", default="12,13,14")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--subset", type=int, default=10000)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--latency-runs", type=int, default=200, help="timed runs per network")
    ap.add_argument("--keep", default="exports/latency_quality", help="where the autosc run folders are kept")
    ap.add_argument("--measure", action="store_true", help="time every final network of a budget together")
    ap.add_argument("--share", action="store_true", help="autosc's budgets as shares, seeds 30-34 (issue 29)")
    add_out(ap, "latency_quality.jsonl")
    args = ap.parse_args(argv)
    if args.share:
        args.out = str(Path(args.out).with_name("latency_quality_share.jsonl")) if Path(
            args.out).name == "latency_quality.jsonl" else args.out
        args.seeds = "30,31,32,33,34" if args.seeds == "12,13,14" else args.seeds
        args.keep = "exports/latency_quality_share" if args.keep == "exports/latency_quality" else args.keep
    out = Path(args.out)
    final_path = out.with_name(out.stem + "_final.json")
    if not (args.summary or args.measure):
        torch.set_num_threads(2)
        print(summarise(run_jobs(args, out)))
        return
    rows = load_rows(out)
    if args.measure:
        torch.set_num_threads(1)
        write_json(final_path, {"env": stamp(), "runs": args.latency_runs, "block": BLOCK,
                                "budgets": measure_final(rows, args.latency_runs)})  # fmt: skip
    final = json.loads(final_path.read_text())["budgets"] if final_path.is_file() else None
    print(summarise(rows, final))


if __name__ == "__main__":
    main()
