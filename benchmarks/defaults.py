"""Issue 16: the defaults of a trained start (distillation, fine-tuning lr) and the from-scratch warm-up, chosen on
the validation split.

Two sweeps, each a registry of variants (name -> overrides) compared seed by seed with its default:

- ``trained``: ``benchmarks/trained``'s ``autosc-shape`` job (the trained network compressed to ``--budget`` of
  its MACs, 3 epochs of fine-tuning with distillation) with the distillation temperature, weight or learning
  rate changed. The default variant's rows are read from ``benchmarks/trained``'s results file when it has them
  (same recipe, seed and budget), not rerun.
- ``warmup``: the README main job (``budgets/fashion-mnist-quick.toml``) with and without a linear warm-up,
  recording the first epoch as well as the end.

Every job appends one JSON line (``variant``, ``seed``, validation and test accuracy, seconds) as it ends; a
stopped run resumes where it stopped. The criterion is in ``benchmarks/RESULTS.md`` ("Defaults for a trained
start"), written before the runs.

    python -m benchmarks.defaults                              # both sweeps, selection seeds
    python -m benchmarks.defaults --sweeps trained --seeds 15,16,17 --variants default,lam0.9   # confirmation
    python -m benchmarks.defaults --summary
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

from autosc import compress
from benchmarks import trained
from benchmarks.common import RESULTS, append_row, load_rows, machine, parser

PRESET = Path(__file__).resolve().parent.parent / "budgets" / "fashion-mnist-quick.toml"

#: sweep -> variant -> overrides. ``trained``: ``benchmarks/trained`` arguments; ``warmup``: compress options.
SWEEPS: dict[str, dict[str, dict]] = {
    "trained": {
        "default": {},
        "no-distill": {"distill_weight": 0.0},
        "lam0.9": {"distill_weight": 0.9},
        "T1": {"temperature": 1.0},
        "lr0.03": {"lr": 0.03},
        "lr0.003": {"lr": 0.003},
        "epochs6": {"epochs": 6},
        "shape0.8": {"shape_until": 0.8},
        "alpha0.2": {"alpha_lr": 0.2},
    },
    "warmup": {
        "default": {"warmup": 0.0},
        "warmup0.05": {"warmup": 0.05},
    },
}


def _trained_job(setup: trained.Setup, overrides: dict, seed: int, budget: str) -> dict:
    args = argparse.Namespace(**{**vars(setup.args), **overrides})
    row = trained.run_job(trained.Setup(**{**vars(setup), "args": args}), "autosc-shape", seed, budget)
    return {"val_acc": row["val_acc"], "test_acc": row["acc"], "acc_before": row["acc_before"],
            "macs": row["macs"], "sizes": row.get("sizes"), "recipe": row["recipe"], "seconds": row["seconds"],
            "teacher_acc": row["teacher_acc"]}  # fmt: skip


def _reused(setup: trained.Setup, seed: int, budget: str) -> dict | None:
    """The default variant's row from ``benchmarks/trained``'s results file (same recipe, seed and budget)."""
    recipe = trained.recipe_of(setup.args)
    for r in load_rows(setup.args.trained_results):
        same_start = (r["method"], r["seed"], r["budget"], r["teacher_acc"]) == (
            "autosc-shape",
            seed,
            budget,
            setup.teacher_record["test_acc"],
        )  # the same trained network: another machine's CPU kernels train another one from the same seed
        if same_start and trained.same_recipe(r["recipe"], recipe):
            return {"val_acc": r["val_acc"], "test_acc": r["acc"], "acc_before": r["acc_before"], "macs": r["macs"],
                    "sizes": r.get("sizes"), "recipe": recipe, "seconds": r["seconds"],
                    "teacher_acc": r["teacher_acc"], "source": str(Path(setup.args.trained_results).name)}  # fmt: skip
    return None


def _warmup_job(overrides: dict, seed: int) -> dict:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = compress(preset=PRESET, seed=seed, out=Path(tmp) / "run", quiet=True, **overrides)
        epochs = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    first = epochs[0]
    return {
        "val_acc": result.report.accuracy.val,
        "test_acc": result.report.accuracy.final,
        "first_epoch": {k: first.get(k) for k in ("train_loss", "val_loss", "val_acc", "test_acc")},
        "macs": result.report.macs.final,
        "seconds": time.perf_counter() - started,
    }


def _paired(rows: list[dict], variant: str, key: str) -> str:
    ref = {r["seed"]: r[key] for r in rows if r["variant"] == "default"}
    diffs = [100 * (r[key] - ref[r["seed"]]) for r in rows if r["variant"] == variant and r["seed"] in ref]
    if variant == "default" or len(diffs) < 2:
        return "—"
    return f"{statistics.mean(diffs):+.2f} ± {statistics.stdev(diffs) / len(diffs) ** 0.5:.2f}"


def summarise(rows: list[dict]) -> str:
    """Per sweep: each variant's mean validation and test accuracy and its seed-paired difference to the default."""
    lines = []
    for sweep, variants in SWEEPS.items():
        for teacher in dict.fromkeys(r.get("teacher_acc") for r in rows if r["sweep"] == sweep):
            at = [r for r in rows if r["sweep"] == sweep and r.get("teacher_acc") == teacher]
            lines += _sweep_tables(sweep, variants, at, teacher)
    lines.append(f"\n(ln 10 = {math.log(10):.2f}: a first-epoch validation loss above it is worse than chance)")
    return "\n".join(lines)


def _sweep_tables(sweep: str, variants: dict, at: list[dict], teacher: float | None) -> list[str]:
    """One table per group of seeds that ran the same variants (rows of one trained network)."""
    lines = []
    start = f", trained network {teacher:.2%}" if teacher is not None else ""
    for seeds in dict.fromkeys(tuple(sorted({r["seed"] for r in at if r["variant"] == v})) for v in variants):
        if not seeds:
            continue
        group = [r for r in at if r["seed"] in seeds]
        lines += [f"\n{sweep}{start}, seeds {', '.join(map(str, seeds))}",
                  "| variant | seeds | val acc | vs default (val, paired) | test acc | vs default (test, paired) |"
                  + (" first-epoch val loss / acc |" if sweep == "warmup" else " min |"),
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        for variant in variants:
            rs = [r for r in group if r["variant"] == variant]
            if not rs:
                continue
            extra = (
                " / ".join(f"{r['first_epoch']['val_loss']:.2f}, {100 * r['first_epoch']['val_acc']:.1f}%" for r in rs)
                if sweep == "warmup"
                else f"{statistics.mean(r['seconds'] for r in rs) / 60:.1f}"
            )
            lines.append(
                f"| {variant} | {len(rs)} | {100 * statistics.mean(r['val_acc'] for r in rs):.2f} | "
                f"{_paired(group, variant, 'val_acc')} | {100 * statistics.mean(r['test_acc'] for r in rs):.2f} | "
                f"{_paired(group, variant, 'test_acc')} | {extra} |"
            )
    return lines


def arguments() -> argparse.ArgumentParser:
    ap = trained.arguments()  # the trained sweep runs benchmarks/trained's job: same data and recipe options
    ap.description = parser(__doc__).description
    ap.add_argument("--sweeps", default="trained,warmup", help="which sweeps (default both, in this order)")
    ap.add_argument("--variants", default=None, help="only these variants (default: all of each sweep)")
    ap.add_argument("--budget", default="50%", help="the trained sweep's budget (default 50%%)")
    ap.add_argument("--warmup-seeds", default="15,16,17", help="the warm-up sweep's seeds (default 15,16,17)")
    ap.add_argument("--trained-results", default=str(RESULTS / "trained.jsonl"),
                    help="benchmarks/trained's results file, whose default rows are reused")  # fmt: skip
    ap.set_defaults(out=str(RESULTS / "defaults.jsonl"))
    return ap


def main(argv: list[str] | None = None) -> None:
    args = arguments().parse_args(argv)
    out = Path(args.out)
    if args.summary:
        print(summarise(load_rows(out)))
        return
    wanted = set(args.variants.split(",")) if args.variants else None
    done = {(r["sweep"], r["variant"], r["seed"], r.get("teacher_acc")) for r in load_rows(out)}
    out.parent.mkdir(parents=True, exist_ok=True)
    setup = None
    for sweep in args.sweeps.split(","):
        if sweep not in SWEEPS:
            raise SystemExit(f"unknown sweep {sweep!r}: choose from {', '.join(SWEEPS)}")
        seeds = [int(s) for s in (args.seeds if sweep == "trained" else args.warmup_seeds).split(",")]
        if sweep == "trained":
            setup = setup or trained.make_setup(args, Path(args.trained_results))
        teacher = setup.teacher_record["test_acc"] if sweep == "trained" else None
        for variant, overrides in SWEEPS[sweep].items():
            if wanted is not None and variant not in wanted:
                continue
            for seed in seeds:
                if (sweep, variant, seed, teacher) in done:
                    continue
                if sweep == "trained":
                    row = (_reused(setup, seed, args.budget) if variant == "default" else None) or _trained_job(
                        setup, overrides, seed, args.budget
                    )
                else:
                    row = _warmup_job(overrides, seed)
                row = {"sweep": sweep, "variant": variant, "seed": seed, "overrides": overrides, **row,
                       "machine": machine()}  # fmt: skip
                append_row(out, row)
                print(f"{sweep} {variant} seed {seed}: val {row['val_acc']:.2%}, test {row['test_acc']:.2%}, "
                      f"{row['seconds'] / 60:.1f} min", flush=True)  # fmt: skip
    print(summarise(load_rows(out)))


if __name__ == "__main__":
    main()
