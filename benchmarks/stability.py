"""Does the first epoch's evaluation mean something on every CPU? (issue 28)

The README main job (``budgets/fashion-mnist-quick.toml``) on fresh seeds, with the trainer's BatchNorm
re-estimation before each evaluation (``--precise-bn``, the product default). Re-estimation changes only the
statistics evaluation reads, not the weights' trajectory (autosc/train/evaluate.py: precise_batchnorm), so one
run per seed measures both arms on the same weights: a probe evaluates validation and test with the running
averages just before each re-estimation (what autosc reported before), then the trainer evaluates with the
re-estimated statistics.

Criterion, written before the runs (2026-12-06, Intel Xeon host; benchmarks/RESULTS.md, "A first epoch that
means something on every CPU"):

1. *Stable*: with re-estimation the first epoch's validation loss is below ln 10 = 2.303 (better than chance)
   on every one of the fresh seeds 30-34.
2. *No harm*: the final (epoch 4) validation accuracy with re-estimation minus with the running averages,
   paired by seed, is not below minus twice its standard error.
3. *Cost*, reported: the re-estimation's seconds as a share of the run's training time.

If both hold, re-estimation stays the default; otherwise it goes back to off and RESULTS says so.

    python -m benchmarks.stability                 # seeds 30-34, rows to results/stability.jsonl
    python -m benchmarks.stability --summary       # the tables
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

import autosc
from autosc.train.trainer import Trainer

from .runner import RESULTS, completed, load_rows, paired, run_grid

PRESET = Path(__file__).resolve().parent.parent / "budgets" / "fashion-mnist-quick.toml"
OUT = RESULTS / "stability.jsonl"
CHANCE = math.log(10)


def run_job(job: dict) -> dict:
    """One README main job at ``job['seed']``: per epoch, both arms' validation and test figures."""
    running: list[dict] = []
    spent: list[float] = []
    original = Trainer._precise_bn

    def probe(trainer: Trainer) -> None:
        val = trainer._evaluate(trainer.val_set)
        test = trainer._evaluate(trainer.test_set)
        running.append({"val_loss": val[0], "val_acc": val[1], "test_loss": test[0], "test_acc": test[1]})
        started = time.perf_counter()
        original(trainer)
        spent.append(time.perf_counter() - started)

    with tempfile.TemporaryDirectory() as out, mock.patch.object(Trainer, "_precise_bn", probe):
        started = time.perf_counter()
        result = completed(autosc.compress(preset=PRESET, seed=job["seed"], precise_bn=job["precise_bn"],
                                           out=Path(out) / "run", quiet=True))  # fmt: skip
        seconds = time.perf_counter() - started
        history = load_rows(result.run_dir / "metrics.jsonl")
    precise = [{k: e[k] for k in ("train_loss", "val_loss", "val_acc", "test_loss", "test_acc", "seconds")}
               for e in history]  # fmt: skip
    return {"precise": precise, "running": running, "precise_seconds": spent, "seconds": seconds,
            "final_test": result.report.accuracy.final}  # fmt: skip


def summary(rows: list[dict]) -> None:
    """The criterion's tables from the rows alone."""
    rows = sorted(rows, key=lambda r: r["seed"])
    print("| seed | epoch-1 train loss | epoch-1 val loss / acc, running | epoch-1 val loss / acc, re-estimated |"
          " final val acc, running | final val acc, re-estimated | re-estimation s / training s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        p, q = r["precise"], r["running"]
        train = sum(e["seconds"] for e in p)
        print(f"| {r['seed']} | {p[0]['train_loss']:.2f} | {q[0]['val_loss']:.2f} / {100 * q[0]['val_acc']:.1f}% | "
              f"{p[0]['val_loss']:.2f} / {100 * p[0]['val_acc']:.1f}% | {100 * q[-1]['val_acc']:.2f} | "
              f"{100 * p[-1]['val_acc']:.2f} | {sum(r['precise_seconds']):.1f} / {train:.0f} |")  # fmt: skip
    stable = all(r["precise"][0]["val_loss"] < CHANCE for r in rows)
    final = paired({r["seed"]: 100 * r["precise"][-1]["val_acc"] for r in rows},
                   {r["seed"]: 100 * r["running"][-1]["val_acc"] for r in rows})  # fmt: skip
    tests = paired({r["seed"]: 100 * r["precise"][-1]["test_acc"] for r in rows},
                   {r["seed"]: 100 * r["running"][-1]["test_acc"] for r in rows})  # fmt: skip
    share = statistics.fmean(sum(r["precise_seconds"]) / sum(e["seconds"] for e in r["precise"]) for r in rows)
    print(f"\n1. stable (epoch-1 val loss < ln 10 on every seed, re-estimated): {stable}")
    print(f"2. final val acc, re-estimated - running: {final} (n {final.n}); holds: "
          f"{final.mean >= -2 * final.se if final.n > 1 else 'n/a'}; test: {tests}")  # fmt: skip
    print(f"3. re-estimation: {100 * share:.1f}% of the training seconds (mean over seeds)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="30,31,32,33,34")
    parser.add_argument("--precise-bn", type=int, default=1024, help="re-estimation images (the product default)")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--summary", action="store_true")
    args = parser.parse_args(argv)
    if not args.summary:
        jobs = [{"seed": int(s), "precise_bn": args.precise_bn} for s in args.seeds.split(",")]
        run_grid(jobs, run_job, args.out, key=("seed", "precise_bn"),
                 describe=lambda r: f"seed {r['seed']}: epoch-1 val loss {r['running'][0]['val_loss']:.2f} running, "
                                    f"{r['precise'][0]['val_loss']:.2f} re-estimated")  # fmt: skip
    summary(load_rows(args.out))


if __name__ == "__main__":
    main()
