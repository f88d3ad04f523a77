"""Issue 30, item 6: every way to compress the user's converged trained network, compared at equal measured latency.

The trained network is ``benchmarks/trained``'s converged teacher (``--teacher-epochs``; its plateau verdict is in
its record), on the same images (``--data-seed`` holds the subset and the validation split to the teacher's, the
fine-tuning ``--seeds`` vary). At a latency budget given as a share of the trained network's ONNX Runtime p50
(1 thread, batch 1), every method starts from the trained weights and fine-tunes with the same recipe (epochs,
lr, batch, distillation from the trained network), except the from-scratch baseline:

- ``autosc-shape``, ``autosc-auto``, ``autosc-compound``: ``autosc.compress(..., latency=budget, strategy=...)``,
  the product end to end (``shape`` is the default strategy);
- ``pruning``: ``autosc compress --strategy prune``: Torch-Pruning global, by autosc's default importance
  (``taylor``), channels in 8s, to the budget;
- ``uniform``: every layer narrowed by one ratio (Torch-Pruning's local pruning by the same importance, channels
  in 8s; the ratio alone sets the channel counts, so the choice timed on L1-pruned copies holds);
- ``resolution``: the trained network fed the largest square input that fits;
- ``scratch-width``: the width-scaled human network trained from scratch for the teacher's epochs plus the
  fine-tune's.

The peers' sizes are chosen by measurement: the trained network and every candidate (ratios, input sides, widths)
are timed together per budget in ``ROUNDS`` rounds (``<out>.choices.json``), the largest whose median share fits
chosen.
``--measure`` times every final network of a budget together with the trained network (``ROUNDS`` rounds), appends
the measurement to ``<out>_measures.jsonl`` and writes their combination (``equal_latency_criterion.combine``) to
``<out>_final.json``, whose shares the summary and the criterion's table report. Each job appends one JSON line
(resumable, seed by seed); a family is one ``--out`` (its choices, measurements and networks go by that name).

    python -m benchmarks.equal_latency --teacher-epochs 60 --budgets 60% --seeds 30,31,32,33,34
    python -m benchmarks.equal_latency --teacher-epochs 60 --budgets 60% --measure
    python -m benchmarks.equal_latency --summary  # the table, the criterion, the plot results/equal_latency.png
    python -m benchmarks.equal_latency --model resnet18_cifar --teacher-width 0.5 --teacher-epochs 60 \
        --budgets 35% --out benchmarks/results/equal_latency_resnet18.jsonl  # the second family
    python -m benchmarks.equal_latency --device cuda --subset 0 --test-subset 0 --teacher-epochs 200 --epochs 30  # GPU

Cost here: the from-scratch baseline trains for the teacher's epochs plus the fine-tune's at every seed, about
47 minutes a seed for a 60-epoch teacher on 7,200 images on this 2-core host, so one budget of one family takes
about 6 hours of CPU (the grid resumes across sessions from its rows).
"""

from __future__ import annotations

import copy
import json
import statistics
import time
from pathlib import Path

import torch

import autosc
from autosc import ModelSpec, count
from autosc.errors import UnreachableBudget, one_line
from autosc.export import export_onnx
from autosc.prune import DEFAULT_IMPORTANCE, prune_at_ratio
from autosc.run.data import prune_batch
from autosc.run.training import recalibrated_accuracy
from autosc.train.runtime import resolve_device
from benchmarks.equal_latency_criterion import combine, verdict_table
from benchmarks.runner import append_row, completed, cpu_of, load_rows, onnx_p50s, paired, run_grid, stamp, write_json
from benchmarks.trained import SIZE, Setup, _acc, _finetune, make_setup
from benchmarks.trained_peers import LowResolution

#: autosc's methods and the strategy each runs.
AUTOSC = {"autosc-shape": "shape", "autosc-auto": "auto", "autosc-compound": "compound", "pruning": "prune"}
METHODS = (*AUTOSC, "uniform", "resolution", "scratch-width")
RATIOS = [round(0.05 * k, 2) for k in range(1, 19)]
WIDTHS = [w / 100 for w in range(20, 101, 5)]
SIDES = list(range(8, SIZE[0] + 1))
ROUNDS = 3


def _share(budget: str) -> float:
    return float(budget.rstrip("%")) / 100


def choose_peers(setup: Setup, budget: str, runs: int) -> dict:
    """The least-compressed uniform pruning, input side and width whose median share over ``ROUNDS`` rounds is
    within the budget, all timed together with the trained network (latency does not depend on the weights'
    values; one round once chose a size that later measured over the budget: benchmarks/RESULTS.md, issue 30)."""
    teacher, ch, w0 = setup.fresh_teacher(), setup.bundle.channels, setup.args.teacher_width
    nets = {"trained": teacher}
    nets |= {f"uniform {r}": prune_at_ratio(teacher, SIZE, ch, r, uniform=True) for r in RATIOS}
    nets |= {f"input {s}": LowResolution(teacher, (s, s)) for s in SIDES}
    nets |= {f"width {w:.2f}": ModelSpec(setup.args.model, w, setup.bundle.num_classes, ch).build()
             for w in WIDTHS if w <= w0}  # fmt: skip
    with torch.random.fork_rng():
        timed = shares_in_rounds(nets, ch, runs)
    share = timed["share"]

    def best(values, label, key):
        fit = [v for v in values if share[label.format(v)] <= _share(budget)]
        return key(fit) if fit else None

    return {
        "uniform": best(RATIOS, "uniform {}", min), "resolution": best(SIDES, "input {}", max),
        "scratch-width": best([w for w in WIDTHS if w <= w0], "width {:.2f}", max), "shares": share,
        "noise": timed["noise"], "trained_ms": timed["trained_ms"], "machine": stamp(),
    }  # fmt: skip


def shares_in_rounds(nets: dict, channels: int, runs: int) -> dict:
    """Every network's p50 as a share of ``nets["trained"]``'s, timed together in ``ROUNDS`` rounds: the median
    share, half the range of the shares as the noise, and the trained network's median p50 in ms (the host's
    speed at the time)."""
    rounds, trained_ms = [], []
    for _ in range(ROUNDS):
        p50 = onnx_p50s(nets, SIZE, channels, runs=runs, warmup=10, block=10)
        rounds.append({k: v / p50["trained"] for k, v in p50.items()})
        trained_ms.append(p50["trained"])
    return {"share": {k: statistics.median(r[k] for r in rounds) for k in nets},
            "noise": {k: (max(r[k] for r in rounds) - min(r[k] for r in rounds)) / 2 for k in nets},
            "trained_ms": statistics.median(trained_ms)}  # fmt: skip


def choices(setup: Setup, budget: str, path: Path, runs: int) -> dict:
    """The peers' sizes for ``budget``, measured once and kept in ``path`` (a resumed grid uses the same)."""
    known = json.loads(path.read_text()) if path.is_file() else {}
    if budget not in known:
        known[budget] = choose_peers(setup, budget, runs)
        write_json(path, known)
    return known[budget]


def autosc_job(setup: Setup, method: str, budget: str, seed: int, folder: Path) -> dict:
    """The product end to end with the method's strategy, on the teacher's images; its run folder kept."""
    a = setup.args
    result = completed(autosc.compress(
        a.model, weights=str(setup.teacher_file), latency=budget, strategy=AUTOSC[method], auto_steps=a.auto_steps,
        data="fashion-mnist", input_size=SIZE, subset=a.subset, test_subset=a.test_subset, val_split=0.1,
        data_seed=a.teacher_seed, seed=seed, epochs=a.epochs, lr=a.lr, batch_size=a.batch_size, weight_decay=4e-5,
        distill=True, distill_weight=a.distill_weight, distill_temperature=a.temperature, latency_runs=a.latency_runs,
        out=folder, force=True, quiet=True,
    ))  # fmt: skip
    r = result.report
    strategy = r.strategy or {}
    return {
        "acc": r.accuracy.final, "val_acc": r.accuracy.val, "acc_before": None, "macs": r.macs.final_total,
        "acc_before_bn": ((r.start or {}).get("before") or {}).get("test"),  # planned, BatchNorm re-estimated
        "params": r.params["final"], "share": r.latency_ms.share, "budget_met": r.latency_ms.budget_met,
        "shrinks": r.latency_ms.shrinks, "sizes": [a.size for a in r.adaptors], "onnx": str(folder / "model.onnx"),
        "chosen": strategy.get("chosen"), "pruning": strategy.get("pruning"), "candidates": strategy.get("candidates"),
        "trained_acc": r.accuracy.human,  # the trained network as the run read it: the teacher's own figure
    }  # fmt: skip


def peer_net(setup: Setup, method: str, choice: dict) -> tuple[torch.nn.Module, dict]:
    """The peer's network at its chosen size, from the trained weights (the width-scaled one fresh)."""
    b, value = setup.bundle, choice[method]
    if value is None:
        raise ValueError(f"no {method} candidate fits the budget")
    if method == "uniform":
        batch = prune_batch(b, DEFAULT_IMPORTANCE)
        net = prune_at_ratio(setup.fresh_teacher(), SIZE, b.channels, value, uniform=True,
                             importance=DEFAULT_IMPORTANCE, batch=batch)  # fmt: skip
        return net.train(), {"ratio": value}
    if method == "resolution":
        return LowResolution(setup.fresh_teacher(), (value, value)), {"resolution": value}
    return ModelSpec(setup.args.model, value, b.num_classes, b.channels).build(), {"width": value}


def peer_job(setup: Setup, method: str, budget: str, seed: int, folder: Path, choice: dict) -> dict:
    torch.manual_seed(seed)
    net, extra = peer_net(setup, method, choice)
    a = setup.args
    before = None if method == "scratch-width" else _acc(net, setup.bundle.test)
    before_bn = None if method == "scratch-width" else _acc_bn(setup, net, seed)
    if method == "scratch-width":
        net, val = _finetune(setup, net, seed, epochs=a.teacher_epochs + a.epochs, lr=a.teacher_lr, distill=False)
    else:
        net, val = _finetune(setup, net, seed)
    folder.mkdir(parents=True, exist_ok=True)
    export_onnx(net.eval(), SIZE, folder / "model.onnx", in_channels=setup.bundle.channels, exporter="torchscript")
    cost = count(net, SIZE, cells=False)
    return {"acc": _acc(net, setup.bundle.test), "val_acc": val, "acc_before": before, "acc_before_bn": before_bn,
            "macs": cost.total_macs,
            "params": cost.params, "share": choice["shares"][_label(method, extra)], "onnx": str(folder / "model.onnx"),
            **extra}  # fmt: skip


def _acc_bn(setup: Setup, net: torch.nn.Module, seed: int) -> float:
    """Test top-1 of a copy of ``net`` with BatchNorm re-estimated: the cut's cost apart from stale statistics,
    scored as autosc's report scores its planned network (``start.before``)."""
    config = setup.recipe(seed)
    return recalibrated_accuracy(copy.deepcopy(net), setup.bundle, setup.bundle.test, config,
                                 resolve_device(config.device))  # fmt: skip


def _label(method: str, extra: dict) -> str:
    if method == "uniform":
        return f"uniform {extra['ratio']}"
    return f"input {extra['resolution']}" if method == "resolution" else f"width {extra['width']:.2f}"


def run_job(setup: Setup, job: dict, keep: Path, choices_path: Path) -> dict | None:
    """One job's row; ``None`` (skipped, tried again by the next call) where autosc refuses the budget at
    planning: the refusal rests on one timing of this host, whose speed drifts (benchmarks/RESULTS.md, 35% s31)."""
    method, budget, seed = job["method"], job["budget"], job["seed"]
    folder = keep / f"{budget.rstrip('%')}pct-{method}-s{seed}"
    started = time.perf_counter()
    if method in AUTOSC:
        try:
            row = autosc_job(setup, method, budget, seed, folder)
        except UnreachableBudget as exc:
            print(f"{budget} s{seed} {method}: refused at planning: {one_line(exc)}", flush=True)
            return None
    else:
        row = peer_job(setup, method, budget, seed, folder, choices(setup, budget, choices_path, setup.args.latency_runs))
    return {**row, "seconds": time.perf_counter() - started, "teacher": setup.teacher_record["key"],
            "teacher_acc": setup.teacher_record["test_acc"]}  # fmt: skip


def measure(rows: list[dict], setup: Setup, runs: int) -> dict:
    """Per budget, every final ONNX file timed together with the trained network (:func:`shares_in_rounds`)."""
    out = {}
    for budget in dict.fromkeys(r["budget"] for r in rows):
        nets = {f"{r['method']} s{r['seed']}": r["onnx"] for r in rows if r["budget"] == budget
                and Path(r.get("onnx", "")).is_file()}  # fmt: skip
        nets["trained"] = setup.fresh_teacher()
        out[budget] = {**shares_in_rounds(nets, setup.bundle.channels, runs), "machine": stamp()}
    return out


def summarise(rows: list[dict], final: dict | None) -> str:
    """Per budget: each method's accuracy before the fine-tune (as cut, and with BatchNorm re-estimated) and
    after, its seed-paired difference to autosc's default (shape) with the standard error, the measured share
    (timed together with --measure, else each job's own), how many of its networks meet the budget (that share at
    most the budget's, plus its noise when measured together), MACs, params and minutes. A pair is formed only within
    one CPU model (oneDNN gives other numbers for the same seed on another)."""
    lines = []
    for budget in dict.fromkeys(r["budget"] for r in rows):
        at = [r for r in rows if r["budget"] == budget]
        timed = (final or {}).get(budget, {})
        shares, noise = timed.get("share", {}), timed.get("noise", {})
        ref = {(cpu_of(r), r["seed"]): 100 * r["acc"] for r in at if r["method"] == "autosc-shape"}
        lines += [f"\nbudget {budget} of the trained network's p50 ({at[0]['teacher']}, {at[0]['teacher_acc']:.2%})",
                  "| method | seeds | before, as cut | before, BN re-estimated | after | vs autosc-shape | p50 share "
                  "| within budget | MACs | params | min | CPU |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        lines += [_method_row(method, rs, ref, shares, _within(rs, shares, noise, _share(budget))) for method in METHODS
                  if (rs := [r for r in at if r["method"] == method])]  # fmt: skip
    return "\n".join(lines)


def _mean(values: list, scale: float = 100, digits: int = 2, of: int | None = None) -> str:
    """The mean of the values that were measured, a dash for none, and how many when fewer than ``of``."""
    got = [v for v in values if v is not None]
    if not got:
        return "—"
    return f"{scale * statistics.mean(got):.{digits}f}" + (f" ({len(got)})" if of is not None and len(got) < of else "")


def _within(rs: list[dict], shares: dict, noise: dict, allowed: float) -> str:
    """How many of a method's networks meet the budget: the share timed together (else the job's own) at most the
    allowed one plus that measurement's noise."""
    met = 0
    for r in rs:
        key = f"{r['method']} s{r['seed']}"
        met += shares.get(key, r.get("share") or float("inf")) <= allowed + noise.get(key, 0.0)
    return f"{met}/{len(rs)}"


def _method_row(method: str, rs: list[dict], ref: dict, shares: dict, within: str) -> str:
    diff = paired({(cpu_of(r), r["seed"]): 100 * r["acc"] for r in rs}, ref)
    n = len(rs)
    cells = [method, str(n), _mean([r.get("acc_before") for r in rs], of=n),
             _mean([r.get("acc_before_bn") for r in rs], of=n), _mean([r["acc"] for r in rs]),
             f"{diff} ({diff.n} pairs)" if method != "autosc-shape" and diff.n > 1 else "—",
             _mean([shares.get(f"{method} s{r['seed']}", r.get("share")) for r in rs], 1, 3), within,
             _mean([r["macs"] for r in rs], 1e-6) + "M", _mean([r["params"] for r in rs], 1e-6, 3) + "M",
             _mean([r["seconds"] for r in rs], 1 / 60, 1), ", ".join(sorted({cpu_of(r) for r in rs}))]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def arguments():
    from benchmarks.trained import arguments as trained_arguments

    ap = trained_arguments()
    ap.description = __doc__
    ap.set_defaults(budgets="60%", seeds="30,31,32,33,34", methods=",".join(METHODS), teacher_epochs=60,
                    out=str(Path("benchmarks/results/equal_latency.jsonl")))  # fmt: skip
    ap.add_argument("--auto-steps", type=int, default=100, help="autosc-auto's fine-tuning steps per candidate")
    ap.add_argument("--keep", default=None, help="where the final networks are kept (default: exports/<out's stem>, "
                    "so a second family's --out keeps its networks apart)")
    ap.add_argument("--measure", action="store_true", help="time every final network of a budget together")
    return ap


def _plot(rows: list[dict], final: dict | None, path: Path) -> None:
    from benchmarks.equal_latency_plot import plot  # imports this module's METHODS

    plot(rows, final, path)
    print(f"plot: {path}")


def main(argv: list[str] | None = None) -> None:
    args = arguments().parse_args(argv)
    out = Path(args.out)
    final_path, measures_path = out.with_name(out.stem + "_final.json"), out.with_name(out.stem + "_measures.jsonl")
    if args.summary:
        rows, final = load_rows(out), json.loads(final_path.read_text()) if final_path.is_file() else None
        print(summarise(rows, final))
        print(verdict_table(rows, final or {}, METHODS))
        _plot(rows, final, out.with_suffix(".png"))
        return
    setup = make_setup(args, out)
    if args.measure:
        append_row(measures_path, measure(load_rows(out), setup, args.latency_runs))
        write_json(final_path, combine(load_rows(measures_path)))  # every measurement so far, combined
        print(summarise(load_rows(out), json.loads(final_path.read_text())))
        return
    jobs = [{"method": m, "budget": b, "seed": int(s), "model": args.model} for b in args.budgets.split(",")
            for s in args.seeds.split(",") for m in args.methods.split(",")]  # fmt: skip
    choices_path = out.with_name(out.stem + ".choices.json")
    keep = Path(args.keep or Path("exports") / out.stem)
    rows = run_grid(jobs, lambda job: run_job(setup, job, keep, choices_path), out,
                    key=("method", "budget", "seed", "model"), describe=lambda r: f"{r['budget']} s{r['seed']} "
                    f"{r['method']}: {r['acc']:.2%}, share {r['share']}, {r['seconds'] / 60:.1f} min")  # fmt: skip
    print(summarise(rows, None))


if __name__ == "__main__":
    main()
