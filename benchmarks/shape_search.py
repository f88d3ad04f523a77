"""Issue 30, item 4: does a shape chosen by data (``--shape-search N``) beat the projected identity shape?

From ``benchmarks/trained``'s converged teacher, on its images (``--data-seed`` holds the split), each seed runs
``autosc compress --weights ... --budget B`` twice with the same recipe: ``--shape-search 0`` (the projected
identity start, today's default) and ``--shape-search N``. The row holds validation and test accuracy, the
start sizes and minutes; ``--summary`` pairs them seed by seed.

    python -m benchmarks.shape_search --teacher-epochs 60 --budgets 50%,30% --seeds 30,31,32,33,34
    python -m benchmarks.shape_search --summary
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import autosc
from benchmarks.runner import completed, load_rows, paired, run_grid
from benchmarks.trained import SIZE, Setup, make_setup


def run_job(setup: Setup, budget: str, seed: int, search: int, keep: Path) -> dict:
    a = setup.args
    folder = keep / f"{budget.rstrip('%')}pct-search{search}-s{seed}"
    started = time.perf_counter()
    result = completed(autosc.compress(
        a.model, weights=str(setup.teacher_file), budget=budget, shape_search=search, data="fashion-mnist",
        input_size=SIZE, subset=a.subset, test_subset=a.test_subset, val_split=0.1, data_seed=a.teacher_seed,
        seed=seed, epochs=a.epochs, lr=a.lr, batch_size=a.batch_size, weight_decay=4e-5, distill=True,
        distill_weight=a.distill_weight, distill_temperature=a.temperature, latency_runs=a.latency_runs,
        out=folder, force=True, quiet=True,
    ))  # fmt: skip
    r = result.report
    found = (r.strategy or {}).get("shape_search") or []
    chosen = next((c for c in found if c["chosen"]), None)
    plan = json.loads((folder / "run.json").read_text())["plan_summary"]
    return {"acc": r.accuracy.final, "val_acc": r.accuracy.val, "macs": r.macs.final_total,
            "start_sizes": chosen["sizes"] if chosen else [a["size"] for a in plan["adaptors"]],
            "chosen": chosen["label"] if chosen else "identity", "final_sizes": [a.size for a in r.adaptors],
            "seconds": time.perf_counter() - started, "teacher": setup.teacher_record["key"]}  # fmt: skip


def summarise(rows: list[dict]) -> str:
    lines = []
    for budget in dict.fromkeys(r["budget"] for r in rows):
        at = [r for r in rows if r["budget"] == budget]
        by = {n: {r["seed"]: r for r in at if r["search"] == n} for n in dict.fromkeys(r["search"] for r in at)}
        ref = by.get(0, {})
        lines += [f"\nbudget {budget} of the trained network's MACs",
                  "| --shape-search | seeds | val | test | vs 0 (val) | vs 0 (test) | chosen | min |",
                  "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for n, seeds in by.items():
            rs = list(seeds.values())
            val = paired({s: 100 * r["val_acc"] for s, r in seeds.items()}, {s: 100 * r["val_acc"] for s, r in ref.items()})
            test = paired({s: 100 * r["acc"] for s, r in seeds.items()}, {s: 100 * r["acc"] for s, r in ref.items()})
            chosen = ", ".join(sorted({r["chosen"] for r in rs}))
            lines.append(f"| {n} | {len(rs)} | {100 * statistics.mean(r['val_acc'] for r in rs):.2f} | "
                         f"{100 * statistics.mean(r['acc'] for r in rs):.2f} | {val if n else '—'} | "
                         f"{test if n else '—'} | {chosen} | {statistics.mean(r['seconds'] for r in rs) / 60:.1f} |")  # fmt: skip
    return "\n".join(lines)


def arguments():
    from benchmarks.trained import arguments as trained_arguments

    ap = trained_arguments()
    ap.description = __doc__
    ap.set_defaults(budgets="50%,30%", seeds="30,31,32,33,34", teacher_epochs=60,
                    out=str(Path("benchmarks/results/shape_search.jsonl")))  # fmt: skip
    ap.add_argument("--search", type=int, default=16, help="random candidate shapes of the searched arm")
    ap.add_argument("--keep", default="exports/shape_search")
    return ap


def main(argv: list[str] | None = None) -> None:
    args = arguments().parse_args(argv)
    out = Path(args.out)
    if args.summary:
        print(summarise(load_rows(out)))
        return
    setup = make_setup(args, out)
    jobs = [{"budget": b, "seed": int(s), "search": n} for b in args.budgets.split(",")
            for s in args.seeds.split(",") for n in (0, args.search)]  # fmt: skip
    rows = run_grid(jobs, lambda job: run_job(setup, **job, keep=Path(args.keep)), out, key=("budget", "seed", "search"),
                    describe=lambda r: f"{r['budget']} s{r['seed']} search {r['search']}: val {r['val_acc']:.2%}, "
                    f"test {r['acc']:.2%} ({r['chosen']}), {r['seconds'] / 60:.1f} min")  # fmt: skip
    print(summarise(rows))


if __name__ == "__main__":
    main()
