"""Issue 30, item 1: which importance criterion channel pruning ranks by, chosen on the validation split.

The converged trained network of ``benchmarks/trained`` (``--teacher-epochs``) is pruned with each registered
criterion (Torch-Pruning global, channels in 8s, the classifier kept) to each MACs share of ``--budgets``, and
fine-tuned with the benchmark's recipe (``--epochs``, lr, distillation from the trained network) per seed; the row
holds the validation and test accuracy before (BatchNorm as pruned) and after the fine-tune. ``taylor`` ranks on
the first 64 training images, as ``autosc compress`` does.

    python -m benchmarks.importance --teacher-epochs 60 --budgets 50%,30% --seeds 30,31,32,33,34 --epochs 1
    python -m benchmarks.importance --summary
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from autosc.cost import parse_budget
from autosc.cost.shape_cost import Cost
from autosc.prune import IMPORTANCES, importance_of, prune_to_macs
from autosc.run.data import prune_batch
from autosc.train.evaluate import evaluate
from benchmarks.runner import load_rows, paired, run_grid
from benchmarks.trained import SIZE, Setup, _finetune, make_setup


def _val(net, setup: Setup) -> float:
    return evaluate(net, setup.bundle.val, device="cpu")[1]


def run_job(setup: Setup, importance: str, budget: str, seed: int) -> dict:
    target = parse_budget(budget=budget, human=Cost(setup.human_macs, 0, 0)).macs
    started = time.perf_counter()
    batch = prune_batch(setup.bundle, importance)
    pruned = prune_to_macs(setup.fresh_teacher(), SIZE, setup.bundle.channels, target, importance=importance,
                           steps=7, batch=batch).eval()  # fmt: skip
    before = {"val_before": _val(pruned, setup), "acc_before": evaluate(pruned, setup.bundle.test, device="cpu")[1]}
    net, _ = _finetune(setup, pruned.train(), seed)
    return {**before, "val": _val(net, setup), "acc": evaluate(net, setup.bundle.test, device="cpu")[1],
            "target_macs": target, "seconds": time.perf_counter() - started,
            "teacher": setup.teacher_record["key"]}  # fmt: skip


def summarise(rows: list[dict]) -> str:
    """Per budget: each criterion's validation and test accuracy, and its seed-paired validation difference to l1."""
    lines = []
    for budget in dict.fromkeys(r["budget"] for r in rows):
        at = [r for r in rows if r["budget"] == budget]
        ref = {r["seed"]: 100 * r["val"] for r in at if r["importance"] == "l1"}
        lines += [f"\nbudget {budget} of the trained network's MACs ({at[0]['teacher']})",
                  "| importance | seeds | val before | val after | vs l1 (val, paired) | test after | min |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        for name in IMPORTANCES:
            rs = [r for r in at if r["importance"] == name]
            if not rs:
                continue
            diff = paired({r["seed"]: 100 * r["val"] for r in rs}, ref)
            vs = str(diff) if name != "l1" and diff.n > 1 else "—"
            lines.append(f"| {name} | {len(rs)} | {100 * statistics.mean(r['val_before'] for r in rs):.2f} | "
                         f"{100 * statistics.mean(r['val'] for r in rs):.2f} | {vs} | "
                         f"{100 * statistics.mean(r['acc'] for r in rs):.2f} | "
                         f"{statistics.mean(r['seconds'] for r in rs) / 60:.1f} |")  # fmt: skip
    return "\n".join(lines)


def arguments():
    from benchmarks.trained import arguments as trained_arguments

    ap = trained_arguments()
    ap.description = __doc__
    ap.set_defaults(budgets="50%,30%", seeds="30,31,32,33,34", teacher_epochs=60, epochs=1,
                    out=str(Path("benchmarks/results/importance.jsonl")))  # fmt: skip
    ap.add_argument("--importances", default=",".join(IMPORTANCES))
    return ap


def main(argv: list[str] | None = None) -> None:
    args = arguments().parse_args(argv)
    out = Path(args.out)
    if args.summary:
        print(summarise(load_rows(out)))
        return
    for name in args.importances.split(","):
        importance_of(name)
    setup = make_setup(args, out)
    jobs = [{"importance": i, "budget": b, "seed": int(s)} for b in args.budgets.split(",")
            for s in args.seeds.split(",") for i in args.importances.split(",")]  # fmt: skip
    rows = run_grid(jobs, lambda job: run_job(setup, **job), out, key=("importance", "budget", "seed"),
                    describe=lambda r: f"{r['budget']} s{r['seed']} {r['importance']}: val {r['val']:.2%} "
                    f"(before {r['val_before']:.2%}), {r['seconds'] / 60:.1f} min")  # fmt: skip
    print(summarise(rows))


if __name__ == "__main__":
    main()
