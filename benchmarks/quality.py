"""Issue 5, benchmark 1 and 2: accuracy at equal budget, autosc against two human baselines; defaults sweep.

Every job trains one network from scratch and appends one JSON line to the results file as soon as it ends, so
a stopped benchmark resumes where it stopped (jobs already in the file are skipped). Methods:

- ``autosc``: widened (``--width auto``), shape adaptors at identity, weights and shapes trained under the budget
  (the product's defaults), frozen, evaluated frozen.
- ``uniform``: the same widened, adapted network with the alphas frozen: the identity shape scaled down by the
  budget projection's common P (collapsed to plain resizes at mid-run like autosc, by the same default). The
  allocation any *learned* shape has to beat (docs/algorithm.md, "Training").
- ``human-width``: the human network at the largest width that fits the budget.
- ``human-res``: the human network at full width, fed a smaller input that fits the budget (the MobileNet
  papers' other knob).

Default (about 55 min on 2 CPU cores): MobileNetV2-CIFAR on Fashion-MNIST at 28 px, budgets 10M and 15M MACs
(``--budgets 10M,15M,22M``, about 1 h 30 min, is the committed grid; the resolution baseline's integer input
sizes land close under these budgets), 3 seeds, the same 10k training images for every run, 5 epochs at lr
0.05; accuracy on the full 10k test set. ``--full`` runs the seed recipe (all training images, 200 epochs, lr
0.1) for a GPU; ``--subset 0`` uses all images with any ``--epochs``. Other data (``--data cifar100
--data-root DIR``, the seed paper's table) brings its own classes, channels and native input size, budgets
default to 50% and 100% of the human network there, and results go to ``results/quality-<data>.jsonl``.
``--sweep`` runs the defaults sweep at 15M instead.

The sweep's defaults and a study's baselines are the grid's runs of the same seeds, read from ``--grid`` (by
default the sweep file's name with ``sweep`` read as ``quality``, and ``quality.jsonl`` beside a study's file).
The pieces: the jobs and one run in ``benchmarks/quality_jobs.py`` (with the public calls they make), the tables
in ``quality_tables.py``, the plot in ``quality_plot.py``.

    python -m benchmarks.quality                 # quality at equal budget (CPU, ~55 min)
    python -m benchmarks.quality --sweep         # width ratio, alpha lr, cost term (~25 min)
    python -m benchmarks.quality --summary       # table + plot from the results file only
    python -m benchmarks.quality --variants '[{"penalty":10.0}]' --budgets 22M \
        --out benchmarks/results/study-22M.jsonl   # autosc with settings off the defaults (a study)
    python -m benchmarks.quality --full --data cifar100 --data-root DIR --device cuda   # the seed recipe (GPU)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.quality_jobs import GRID_METHODS, JOB_KEYS, METHODS, describe_data, jobs_for, run_job, variant_name
from benchmarks.quality_plot import plot
from benchmarks.quality_tables import paired_study, paired_sweep, summarise
from benchmarks.runner import RESULTS, load_rows, parser, run_grid

__all__ = ["GRID_METHODS", "METHODS", "load_rows", "main"]


def arguments() -> argparse.ArgumentParser:
    ap = parser(__doc__)
    ap.add_argument("--model", default="mobilenet_v2_cifar")
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--input-size", type=int, default=None, help="default: the dataset's native size")
    ap.add_argument(
        "--budgets",
        default=None,
        help="default 10M,15M on Fashion-MNIST, else 50%%,100%% of the human (--sweep: 15M, 50%%)",
    )
    ap.add_argument("--seeds", default=None, help="default 0,1,2 (--sweep: 0,1)")
    ap.add_argument("--methods", default=",".join(GRID_METHODS))
    ap.add_argument("--subset", type=int, default=10_000)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument(
        "--lr",
        type=float,
        default=None,
        help="default 0.05 (the seed recipe's 0.1 is unstable in 5-epoch runs); --full: 0.1",
    )
    ap.add_argument("--device", default="auto")
    ap.add_argument("--amp", default="off")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--latency-runs", type=int, default=200)
    ap.add_argument(
        "--full", action="store_true", help="the seed recipe: all training images, 200 epochs, lr 0.1 (GPU)"
    )
    ap.add_argument("--sweep", action="store_true", help="the defaults sweep (on the first budget, default 15M)")
    ap.add_argument("--variants", default=None, help="JSON list of job settings to run instead of the grid")
    ap.add_argument("--summary", action="store_true", help="only print the table and draw the plot")
    ap.add_argument("--out", default=None, help="results file (JSON lines)")
    ap.add_argument(
        "--grid",
        default=None,
        help="the grid's results file a sweep or a study is paired with "
        "(default: the --out name with sweep read as quality for --sweep, quality.jsonl beside it for a study)",
    )
    ap.add_argument("--shard", default=None, help="i/n: run only every n-th job, from the i-th (parallel runs)")
    return ap


def settle(args: argparse.Namespace) -> Path:
    """Fill the defaults that depend on the mode and the data; the results file."""
    args.seeds = args.seeds or ("0,1" if args.sweep else "0,1,2")
    fashion = args.data.lower().replace("_", "-") == "fashion-mnist"
    grid_budgets, sweep_budget = ("10M,15M", "15M") if fashion else ("50%,100%", "50%")
    args.budgets = args.budgets or (sweep_budget if args.sweep else grid_budgets)
    if args.full:
        args.subset, args.epochs = None, 200
    args.lr = args.lr if args.lr is not None else (0.1 if args.full else 0.05)
    if args.subset == 0:
        args.subset = None
    name = ("sweep" if args.sweep else "quality") + ("-full" if args.full else "")
    name += "" if fashion else "-" + args.data.split(":")[0].lower()  # one results file per dataset
    return Path(args.out) if args.out else RESULTS / f"{name}.jsonl"


def run_jobs(args: argparse.Namespace, out: Path) -> list[dict]:
    """Run the jobs not yet in ``out`` (this shard's share) on the runner's grid; every row of ``out``."""
    describe_data(args)  # a missing dataset stops here, before the results file is touched
    return run_grid(jobs_for(args), lambda job: run_job(job, args), out, key=JOB_KEYS, shard=args.shard,
                    describe=progress)  # fmt: skip


def progress(row: dict) -> str:
    """A finished job's line: its settings, accuracy, MACs and training time."""
    job = {k: row[k] for k in row if k in JOB_KEYS}
    return f"{job} -> {100 * row['accuracy']:.2f}% at {row['budget_macs'] / 1e6:.2f}M ({row['train_seconds']:.0f} s)"


def grid_file(args: argparse.Namespace, out: Path) -> Path:
    """The grid's results file that a sweep or a study is compared with."""
    if args.grid:
        return Path(args.grid)
    return out.parent / (out.name.replace("sweep", "quality") if args.sweep else "quality.jsonl")


def report(args: argparse.Namespace, out: Path, rows: list[dict]) -> None:
    """Print the tables of ``rows`` (with the grid's runs they are paired with) and draw the grid's plot."""
    if args.sweep:  # the default setting's runs come from the quality grid (same protocol, same seeds)
        budget, seeds = args.budgets.split(",")[0], {int(s) for s in args.seeds.split(",")}
        rows += [
            r
            for r in load_rows(grid_file(args, out))
            if r["method"] == "autosc" and r["budget"] == budget and r["seed"] in seeds and not variant_name(r)
        ]
    table, _ = summarise(rows)
    print(table)
    if args.sweep:
        print(paired_sweep(rows))
    variants = [r for r in rows if variant_name(r)]
    studied = bool(variants) and not args.sweep  # a study file: variants, and perhaps baselines of new seeds
    if studied:  # against the grid's defaults and baselines of the same seeds, and the file's own baselines
        grid = load_rows(grid_file(args, out)) + [r for r in rows if not variant_name(r)]
        print("\n" + paired_study(variants, grid))
    if not args.sweep and not studied and rows:  # a study's rows are variants: nothing to plot
        plot(rows, out.with_suffix(".png"), args.data)


def main(argv: list[str] | None = None) -> None:
    args = arguments().parse_args(argv)
    out = settle(args)
    rows = load_rows(out) if args.summary else run_jobs(args, out)
    report(args, out, rows)


if __name__ == "__main__":
    main()
