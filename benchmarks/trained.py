"""Issue 16: compress the user's trained network — autosc against channel pruning and the two scaling rules.

"The user's trained network" is the human ``mobilenet_v2_cifar`` trained on Fashion-MNIST by
``benchmarks/trained_peers.py: train_teacher`` (cached under ``results/teachers/`` with the command that made it).
Each method brings it under a MACs budget (a fraction of its own MACs) and fine-tunes with the same recipe
(epochs, lr, batch, seed) and the same distillation from it, except the from-scratch baseline:

- ``autosc-shape``: the trained weights at width 1, shape adaptors at identity (straight-through mix), shape and
  weights trained under the budget, frozen.
- ``autosc-wide``: widened first (Net2WiderNet, ``--width`` = ``--wide-width``), then as above.
- ``pruning``: Torch-Pruning, global L1-magnitude pruning of channels (rounded to 8) to the budget, fine-tuned.
- ``resolution``: the trained network fed the largest square input that fits the budget, fine-tuned.
- ``compound``: Torch-Pruning to ``--compound`` of the budget's way down (an intermediate width), then autosc's
  learned shape for the rest (the pruned network passed as a module instance).
- ``scratch-width``: the human network at the widest width that fits, trained from scratch (no teacher) for the
  teacher's epochs plus the fine-tuning epochs: what autosc did before trained starts.

Every job appends one JSON line (accuracy before and after fine-tuning on the test split, validation accuracy,
MACs, params, ONNX Runtime p50 at 1 thread, seconds) to the results file as soon as it ends; a stopped run
resumes where it stopped. ``--summary`` prints the paired table and writes the plot from the file alone.

    python -m benchmarks.trained                       # CPU protocol (about 1 h per budget on 2 cores)
    python -m benchmarks.trained --budgets 50%,25%     # both budgets
    python -m benchmarks.trained --summary             # table + plot from the results file
    python -m benchmarks.trained --device cuda --subset 0 --test-subset 0 --teacher-epochs 200 --epochs 30  # GPU
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

import autosc
from autosc import ModelSpec, RunConfig, count
from autosc.cost import parse_budget
from autosc.cost.shape_cost import Cost
from autosc.cost.width import auto_width
from autosc.errors import UnreachableBudget
from autosc.run.stages import freeze_and_save, load_dataset, train_network
from autosc.train import TrainConfig
from autosc.train.evaluate import evaluate
from benchmarks.runner import add_out, load_rows, onnx_p50s, paired, parser, run_grid, trained_to_end
from benchmarks.trained_peers import TEACHER, LowResolution, prune_to_macs, resolution_for_macs, train_teacher

SIZE = (28, 28)  # Fashion-MNIST's native size: no resize in the data


@dataclass
class Setup:
    """What every job of one benchmark run shares: the data, the trained network and the recipe."""

    bundle: object
    teacher: nn.Module
    teacher_record: dict
    teacher_file: Path
    human_macs: int
    args: object

    def recipe(self, seed: int, *, epochs: int | None = None, lr: float | None = None, distill: bool = True):
        a = self.args
        return TrainConfig(
            epochs=epochs or a.epochs,
            batch_size=a.batch_size,
            lr=lr or a.lr,
            weight_decay=4e-5,
            seed=seed,
            device=a.device,
            distill=distill and a.distill_weight > 0,
            distill_temperature=a.temperature,
            distill_weight=a.distill_weight,
            shape_until=a.shape_until,
            alpha_lr=a.alpha_lr,
            device_data=a.device_data,
        )

    def fresh_teacher(self) -> nn.Module:
        return copy.deepcopy(self.teacher)


def _acc(net: nn.Module, dataset) -> float:
    return evaluate(net, dataset, device="cpu")[1]


def _finetune(setup: Setup, net: nn.Module, seed: int, **recipe) -> tuple[nn.Module, float | None]:
    """Fine-tune ``net`` (distilling from the trained network unless told not to); (net, final val accuracy)."""
    config = setup.recipe(seed, **recipe)
    teacher = setup.fresh_teacher() if config.distill else None
    trainer = trained_to_end(train_network(net, setup.bundle, config, teacher=teacher))
    net.cpu().eval()
    return net, trainer.history[-1].get("val_acc")


#: the fine-tuning recipe recorded with every row; keys added later read as their defaults in older rows.
RECIPE_DEFAULTS = {"shape_until": 0.5, "alpha_lr": 0.05, "device_data": "off"}  # rows before device data: off
RECIPE_KEYS = ("epochs", "lr", "batch_size", "temperature", "distill_weight", *RECIPE_DEFAULTS)


def recipe_of(args) -> dict:
    return {k: getattr(args, k) for k in RECIPE_KEYS}


def same_recipe(recorded: dict, recipe: dict) -> bool:
    return {**RECIPE_DEFAULTS, **recorded} == recipe


class Unreachable(Exception):
    """The shape alone cannot reach the budget: every adapted map at its floor still costs more (a finding)."""


def _autosc(setup: Setup, seed: int, budget: int, *, start, width, weights=None) -> dict:
    try:
        plan = autosc.plan(
            start,
            budget=str(budget),
            input_size=SIZE,
            width=width,
            num_classes=setup.bundle.num_classes,
            in_channels=setup.bundle.channels,
            weights=weights,
            seed=seed,
        )
    except UnreachableBudget as exc:
        raise Unreachable(str(exc)) from exc
    before, _ = freeze_and_save(copy.deepcopy(plan.network))  # the identity shape projected under the budget
    acc_before = _acc(before, setup.bundle.test)
    torch.manual_seed(seed)
    _, val = _finetune(setup, plan.network, seed)
    frozen, shape = freeze_and_save(plan.network)
    return {
        "net": frozen,
        "acc_before": acc_before,
        "val_acc": val,
        "width": plan.spec.width,
        "sizes": [a["size"] for a in shape["adaptors"]],
    }


def autosc_shape(setup: Setup, seed: int, budget: int) -> dict:
    a = setup.args
    return _autosc(setup, seed, budget, start=a.model, width=a.teacher_width, weights=str(setup.teacher_file))


def autosc_wide(setup: Setup, seed: int, budget: int) -> dict:
    a = setup.args
    return _autosc(setup, seed, budget, start=a.model, width=a.wide_width, weights=str(setup.teacher_file))


def pruning(setup: Setup, seed: int, budget: int) -> dict:
    pruned = prune_to_macs(setup.fresh_teacher(), SIZE, setup.bundle.channels, budget)
    acc_before = _acc(pruned, setup.bundle.test)
    torch.manual_seed(seed)
    net, val = _finetune(setup, pruned, seed)
    return {"net": net, "acc_before": acc_before, "val_acc": val}


def resolution(setup: Setup, seed: int, budget: int) -> dict:
    side = resolution_for_macs(setup.fresh_teacher(), SIZE, setup.bundle.channels, budget)
    net = LowResolution(setup.fresh_teacher(), side)
    acc_before = _acc(net, setup.bundle.test)
    torch.manual_seed(seed)
    net, val = _finetune(setup, net, seed)
    return {"net": net, "acc_before": acc_before, "val_acc": val, "resolution": list(side)}


def compound(setup: Setup, seed: int, budget: int) -> dict:
    """Pruning takes ``--compound`` of the way from the trained MACs down to the budget; the shape does the rest."""
    middle = round(setup.human_macs - setup.args.compound * (setup.human_macs - budget))
    pruned = prune_to_macs(setup.fresh_teacher(), SIZE, setup.bundle.channels, middle).train()
    row = _autosc(setup, seed, budget, start=pruned, width="auto")
    return {**row, "pruned_macs": middle}


def scratch_width(setup: Setup, seed: int, budget: int) -> dict:
    b = setup.bundle
    spec = ModelSpec(setup.args.model, 1.0, b.num_classes, b.channels)
    width = auto_width(spec, SIZE, parse_budget(budget=str(budget), human=Cost(setup.human_macs, 0, 0)), ratio=1.0)
    torch.manual_seed(seed)
    net = spec.at_width(width).build()
    a = setup.args
    net, val = _finetune(setup, net, seed, epochs=a.teacher_epochs + a.epochs, lr=a.teacher_lr, distill=False)
    return {"net": net, "acc_before": None, "val_acc": val, "width": width}


#: method name -> job; the order of the table and the plot.
METHODS: dict[str, Callable[[Setup, int, int], dict]] = {
    "autosc-shape": autosc_shape,
    "autosc-wide": autosc_wide,
    "pruning": pruning,
    "resolution": resolution,
    "compound": compound,
    "scratch-width": scratch_width,
}


def _latency_ms(net: nn.Module, channels: int, runs: int) -> float:
    """ONNX Runtime p50 (1 thread, batch 1) by the runner's timer; the committed rows' protocol: up to 20
    warm-up runs, single visits."""
    return onnx_p50s({"net": net.cpu()}, SIZE, channels, runs=runs, warmup=min(20, runs), block=1)["net"]


def run_job(setup: Setup, method: str, seed: int, budget: str) -> dict:
    """One method at one budget (a share of the trained network's MACs) and seed: its row."""
    budget_text, budget = budget, parse_budget(budget=budget, human=Cost(setup.human_macs, 0, 0)).macs
    started = time.perf_counter()
    try:
        out = METHODS[method](setup, seed, budget)
    except Unreachable as exc:  # recorded, not fatal: where the adaptors' floor is above the budget
        return {"method": method, "budget": budget_text, "budget_macs": budget, "seed": seed, "acc": None,
                "unreachable": str(exc), "seconds": time.perf_counter() - started,
                "teacher_acc": setup.teacher_record["test_acc"]}  # fmt: skip
    seconds = time.perf_counter() - started
    net = out.pop("net")
    cost = count(net, SIZE, cells=False)
    return {
        "method": method,
        "budget": budget_text,
        "budget_macs": budget,
        "seed": seed,
        "acc": _acc(net, setup.bundle.test),
        **out,
        "macs": cost.total_macs,
        "params": cost.params,
        "fits": cost.total_macs <= budget,
        "latency_p50_ms": _latency_ms(net, setup.bundle.channels, setup.args.latency_runs),
        "seconds": seconds,
        "teacher_acc": setup.teacher_record["test_acc"],
        "recipe": recipe_of(setup.args),
    }


def summarise(rows: list[dict]) -> str:
    """Per budget: each method's mean accuracy, and its seed-paired difference to autosc-shape with the std error."""
    lines = []
    for budget in dict.fromkeys(r["budget"] for r in rows):
        unreachable = {r["method"]: r["unreachable"] for r in rows if r["budget"] == budget and r.get("unreachable")}
        at = [r for r in rows if r["budget"] == budget and not r.get("unreachable")]
        by = {m: {r["seed"]: r for r in at if r["method"] == m} for m in METHODS}
        ref = by["autosc-shape"]
        lines += [
            f"\nbudget {budget} ({at[0]['budget_macs'] / 1e6:.2f}M MACs; trained network {at[0]['teacher_acc']:.2%})",
            "| method | seeds | acc before | acc after | vs autosc-shape (paired) | MACs | params | p50 ms | min |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for method, seeds in by.items():
            if not seeds:
                continue
            rs = list(seeds.values())
            before = [r["acc_before"] for r in rs if r["acc_before"] is not None]
            diff = paired({s: 100 * r["acc"] for s, r in seeds.items()}, {s: 100 * r["acc"] for s, r in ref.items()})
            vs = str(diff) if method != "autosc-shape" and diff.n > 1 else "—"
            lines.append(
                f"| {method} | {len(rs)} | {100 * statistics.mean(before):.2f} | "
                if before
                else f"| {method} | {len(rs)} | — | "
            )
            lines[-1] += (
                f"{100 * statistics.mean(r['acc'] for r in rs):.2f} | {vs} | "
                f"{statistics.mean(r['macs'] for r in rs) / 1e6:.2f}M | {statistics.mean(r['params'] for r in rs) / 1e6:.2f}M | "
                f"{statistics.mean(r['latency_p50_ms'] for r in rs):.3f} | {statistics.mean(r['seconds'] for r in rs) / 60:.1f} |"
            )
        lines += [f"{method}: cannot reach the budget ({why})" for method, why in unreachable.items()]
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    """Accuracy after fine-tuning per method (one dot per seed, bar at the mean), one panel per budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if not r.get("unreachable")]
    budgets = list(dict.fromkeys(r["budget"] for r in rows))
    fig, axes = plt.subplots(1, len(budgets), figsize=(6 * len(budgets), 4), squeeze=False)
    for ax, budget in zip(axes[0], budgets, strict=True):
        at = [r for r in rows if r["budget"] == budget]
        methods = [m for m in METHODS if any(r["method"] == m for r in at)]
        for i, m in enumerate(methods):
            accs = [100 * r["acc"] for r in at if r["method"] == m]
            ax.bar(i, statistics.mean(accs), color="#9ecae1" if m.startswith("autosc") else "#d9d9d9")
            ax.scatter([i] * len(accs), accs, color="black", s=12, zorder=3)
        ax.axhline(100 * at[0]["teacher_acc"], color="#e6550d", ls="--", lw=1, label="trained network")
        ax.set_xticks(range(len(methods)), methods, rotation=30, ha="right")
        low = min(100 * r["acc"] for r in at)
        ax.set_ylim(max(0, low - 5), 100 * max(max(r["acc"] for r in at), at[0]["teacher_acc"]) + 2)
        ax.set_ylabel("test accuracy after fine-tuning (%)")
        ax.set_title(f"budget {budget} of the trained network's MACs")
        ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def arguments():
    ap = parser(__doc__)
    ap.add_argument("--budgets", default="50%", help="fractions of the trained network's MACs (default 50%%)")
    ap.add_argument("--seeds", default="12,13,14", help="fine-tuning seeds (0-11 were used by other benchmarks)")
    ap.add_argument("--methods", default="autosc-shape,pruning,resolution,autosc-wide,compound,scratch-width")
    ap.add_argument("--subset", type=int, default=8000, help="training images (0: all 60k); 10%% held out for val")
    ap.add_argument("--test-subset", type=int, default=2000, help="test images (0: all 10k)")
    ap.add_argument("--model", default=TEACHER, help="the trained network's family (mobilenet_v2_cifar, resnet18_cifar)")
    ap.add_argument("--teacher-width", type=float, default=1.0, help="the trained network's width")
    ap.add_argument("--teacher-only", action="store_true", help="train (or read) the trained network and stop")
    ap.add_argument("--teacher-epochs", type=int, default=6)
    ap.add_argument("--teacher-lr", type=float, default=0.05)
    ap.add_argument("--teacher-seed", type=int, default=12)
    ap.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs of every method")
    ap.add_argument("--lr", type=float, default=0.01, help="fine-tuning learning rate of every method")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--shape-until", type=float, default=0.5, help="fraction of the fine-tuning the shape learns")
    ap.add_argument("--alpha-lr", type=float, default=0.05, help="the shape's learning rate")
    ap.add_argument("--temperature", type=float, default=4.0)
    ap.add_argument("--distill-weight", type=float, default=0.5)
    ap.add_argument("--wide-width", type=float, default=1.25, help="autosc-wide's width")
    ap.add_argument("--compound", type=float, default=0.5, help="share of the MACs cut done by pruning in compound")
    ap.add_argument("--latency-runs", type=int, default=100)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--device-data", default="auto", help="the trainer's --device-data (off: the per-image loader)")
    ap.add_argument("--threads", type=int, default=2)
    add_out(ap, "trained.jsonl")
    return ap


def make_setup(args, results: Path) -> Setup:
    """The data and the trained network (trained once, then read from ``teachers/`` beside ``results``)."""
    torch.set_num_threads(args.threads)
    config = RunConfig.from_flat(
        {
            "model": args.model,
            "data": "fashion-mnist",
            "subset": args.subset or None,
            "test_subset": args.test_subset or None,
            "seed": args.teacher_seed,
            "val_split": 0.1,
        }
    )
    bundle = load_dataset(config, SIZE)
    print(f"data: {bundle.describe()}", flush=True)
    teachers = results.parent / "teachers"  # beside the results file (default: benchmarks/results/teachers/)
    teacher, record = train_teacher(
        bundle, epochs=args.teacher_epochs, seed=args.teacher_seed, cache_dir=teachers, lr=args.teacher_lr,
        batch_size=args.batch_size, device=args.device, model=args.model, width=args.teacher_width,
    )  # fmt: skip
    verdict = {True: "plateaued", False: "NOT plateaued", None: "plateau not judged (under 3 epochs or no validation)"}[
        record.get("plateau", {}).get("met")
    ]
    print(f"trained network: {record['test_acc']:.2%} test accuracy, {verdict} ({record['key']})", flush=True)
    return Setup(bundle, teacher, record, teachers / record["weights"], count(teacher, SIZE, cells=False).macs, args)


def jobs(args) -> list[dict]:
    """Method by method (in --methods order, the question first), every seed of one before the next: a run cut
    short leaves whole seed-paired comparisons rather than one seed of everything."""
    return [{"method": m, "budget": b, "seed": s} for b in args.budgets.split(",") for m in args.methods.split(",")
            for s in (int(v) for v in args.seeds.split(","))]  # fmt: skip


def progress(row: dict) -> str:
    """A finished job's line: accuracy before and after, MACs and minutes (or why the budget is out of reach)."""
    where = f"{row['budget']} seed {row['seed']} {row['method']}"
    if row.get("unreachable"):
        return f"{where}: unreachable ({row['unreachable']})"
    return (f"{where}: {row['acc']:.2%} (before {row['acc_before']}), {row['macs'] / 1e6:.2f}M MACs, "
            f"{row['seconds'] / 60:.1f} min")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    args = arguments().parse_args(argv)
    out = Path(args.out)
    if args.summary:
        rows = load_rows(out)
    else:
        setup = make_setup(args, out)
        if args.teacher_only:
            return
        rows = run_grid(jobs(args), lambda job: run_job(setup, **job), out, key=("method", "budget", "seed"),
                        describe=progress)  # fmt: skip
    print(summarise(rows))
    plot(rows, out.with_suffix(".png"))


if __name__ == "__main__":
    main()
