"""The quality benchmark's jobs: which runs a grid, a sweep or a study holds, and one run from network to row.

A job is ``{"budget", "seed", "method"}`` plus, for a sweep or a study, settings off the defaults
(:data:`VARIANT_KEYS`). The settings autosc itself has (the training ones, ``low_branch``) go through
:class:`autosc.RunConfig` under their own option names; ``width_ratio`` and ``init_factor`` act on the plan.

Public calls: ``RunConfig.from_flat``; ``autosc.plan`` with its ``width_ratio`` and ``low_branch`` options
(``plan_network`` has no width-ratio option); ``factor_to_alpha`` and the adaptors' ``alpha`` (``init_factor``);
``auto_width``, ``human_cost``, ``parse_budget`` (the human baselines); ``load_dataset``, ``train_network``,
``freeze_and_save`` (autosc.run); ``evaluate``; ``autosc.count``; ``autosc.latency.time_together`` (through
:func:`benchmarks.runner.onnx_p50s`) for the p50 of the final network.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import torch
from torch.utils.data import Subset

import autosc
from autosc import AutoscError, Budget, ModelSpec, RunConfig, count, parse_budget
from autosc.adaptor.module import factor_to_alpha
from autosc.cost.width import AUTO_WIDTH_RATIO, auto_width, human_cost, human_network_cost
from autosc.data import DataBundle
from autosc.run import freeze_and_save, load_dataset, train_network
from autosc.train import Trainer, evaluate
from autosc.units import parse_macs
from benchmarks.runner import done_key, onnx_p50s, trained_to_end

METHODS = ("autosc", "uniform", "human-width", "human-res", "both", "standard")
ADAPTED = ("autosc", "uniform", "both", "standard")  # the methods with shape adaptors: frozen before they are evaluated
GRID_METHODS = METHODS[:4]  # the quality grid's own (the default); both, standard: the modes study (issue 18)
MODES = {"both": "both", "standard": "standard"}  # method -> autosc's --mode (the others: autosc)
VARIANT_KEYS = (
    "width_ratio",
    "alpha_step",
    "alpha_lr",
    "dual_lr",
    "cost_term",
    "shape_until",
    "low_branch",
    "collapse",
    "penalty",
    "init_factor",
)  # sweep settings, off the defaults
JOB_KEYS = ("budget", "seed", "method", *VARIANT_KEYS)


def job_key(job: dict) -> str:
    """The job's done-key in the results file (:func:`benchmarks.runner.done_key` over :data:`JOB_KEYS`)."""
    return done_key(job, JOB_KEYS)


def budget_order(text: str) -> float:
    """Sort key for budget labels (MACs, or a fraction of the human network for percentages)."""
    absolute, fraction = parse_macs(text)
    return float(absolute if absolute is not None else fraction)


def variant_name(row: dict) -> str:
    """The settings off the defaults a row was run with ("" for the grid's own runs)."""
    return " ".join(f"{k}={row[k]}" for k in VARIANT_KEYS if k in row)


def jobs_for(args: argparse.Namespace) -> list[dict]:
    budgets, seeds = args.budgets.split(","), [int(s) for s in args.seeds.split(",")]
    if args.variants:
        return [
            {"budget": b, "seed": s, "method": "autosc", **v}
            for b in budgets
            for v in json.loads(args.variants)
            for s in seeds
        ]
    if not args.sweep:
        return [{"budget": b, "seed": s, "method": m} for b in budgets for s in seeds for m in args.methods.split(",")]
    # The defaults themselves (width ratio 1.25, alpha step auto = every batch here, alpha lr 0.05, shape learned
    # for the first half, cost term on) are the quality grid's autosc runs, read from its results file.
    b = budgets[0]
    # (The schedule was swept on the GPU grid: benchmarks/RESULTS.md.)
    variants: list[dict] = [{"width_ratio": r} for r in (1.5, 2.0)]
    variants += [{"alpha_step": k} for k in (4, 16)]
    variants += [{"alpha_lr": lr} for lr in (0.01, 0.2)]
    variants += [{"cost_term": False}]
    return [{"budget": b, "seed": s, "method": "autosc", **v} for v in variants for s in seeds]


# -- the data and the networks ------------------------------------------------------------------------


def data_config(args: argparse.Namespace, subset: int | None) -> RunConfig:
    """Where the images come from; seed 0 for every job, so the seed varies initialisation and order only."""
    return RunConfig.from_flat({"model": args.model, "data": args.data, "data_root": args.data_root,
                                "subset": subset, "seed": 0, "val_split": 0.0})  # fmt: skip


def describe_data(args: argparse.Namespace) -> None:
    """Set the classes, channels and (unless given) input size from the dataset; a bad dataset is one line."""
    size = args.input_size or 32
    try:
        bundle = load_dataset(data_config(args, subset=None), (size, size))  # the whole dataset, described
    except AutoscError as e:
        raise SystemExit(f"error: {e}") from None
    args.num_classes, args.in_channels = bundle.num_classes, bundle.channels
    args.input_size = args.input_size or bundle.native_size[0]
    print(bundle.describe(), flush=True)


def run_config(job: dict, args: argparse.Namespace) -> RunConfig:
    """The job's data, budget and training settings as a compress run's configuration."""
    flat = {
        "model": args.model, "budget": job["budget"], "input_size": args.input_size, "data": args.data,
        "data_root": args.data_root, "subset": args.subset, "epochs": args.epochs, "batch_size": 128,
        "lr": args.lr, "weight_decay": 4e-5, "seed": job["seed"], "device": args.device, "amp": args.amp,
        "workers": args.workers,
        "val_split": 0.0,  # the protocol of the committed results: every training image trains, none validates
    }  # fmt: skip
    if job["method"] == "uniform":  # the identity shape, scaled by the projection alone: the alphas never move
        flat.update(alpha_lr=0.0, cost_term=False)
    flat.update({k: job[k] for k in VARIANT_KEYS if k in job and k in RunConfig.option_names()})
    return RunConfig.from_flat(flat, where=f"job {job_key(job)}")


def parse_count(text: str, args: argparse.Namespace) -> int:
    """A budget in MACs; a percentage is of the human network at the benchmark's input size (counted only then)."""
    human = None
    if parse_macs(text)[1] is not None:
        spec = ModelSpec(args.model, 1.0, args.num_classes, args.in_channels)
        human = human_network_cost(spec, (args.input_size, args.input_size))
    return parse_budget(budget=text, human=human).macs


def human_res_size(spec: ModelSpec, budget_macs: int, native: int) -> int:
    """The largest square input (<= native) at which the full-width human network fits the budget."""
    for r in range(native, 1, -1):
        if human_cost(spec, (r, r))[0] <= budget_macs:
            return r
    raise SystemExit(f"no input size fits {budget_macs} MACs")


def build(job: dict, args: argparse.Namespace) -> tuple[torch.nn.Module, tuple[int, int], dict]:
    """The job's network, its input size and what to record of it (width; input for human-res)."""
    size = (args.input_size, args.input_size)
    budget = parse_count(job["budget"], args)
    classes, channels = args.num_classes, args.in_channels
    human = ModelSpec(args.model, 1.0, classes, channels)
    info: dict = {}
    torch.manual_seed(job["seed"])
    if job["method"] in ADAPTED:
        plan = autosc.plan(
            args.model,
            budget=job["budget"],
            input_size=size,
            width="auto",
            width_ratio=job.get("width_ratio", AUTO_WIDTH_RATIO),
            num_classes=classes,
            in_channels=channels,
            low_branch=job.get("low_branch", "max"),  # the adaptors' (and the frozen network's) half branch
            mode=MODES.get(job["method"], "autosc"),
        )
        info["width"] = plan.spec.width
        if "init_factor" in job:  # experiment switch: every adaptor starts at this factor instead of identity
            for adaptor in plan.network.adaptors():
                adaptor.alpha.data.fill_(factor_to_alpha(job["init_factor"]))
            plan.network.update_shape()
        return plan.network, size, info
    if job["method"] == "human-width":
        width = auto_width(human, size, Budget.of(macs=budget), ratio=1.0)
        info["width"] = width
        return ModelSpec(args.model, width, classes, channels).build(), size, info
    r = human_res_size(human, budget, args.input_size)
    info["width"], info["input"] = 1.0, r
    return human.build(), (r, r), info


# -- one job ------------------------------------------------------------------------------------------


def train_job(job: dict, net: torch.nn.Module, bundle: DataBundle, config: RunConfig) -> Trainer:
    """Train to the end, monitoring ~1000 test images per epoch; Ctrl-C ends the benchmark (finished jobs stay)."""
    monitor = Subset(bundle.test, range(0, len(bundle.test), max(1, len(bundle.test) // 1000)))
    return trained_to_end(train_network(net, dataclasses.replace(bundle, test=monitor), config.train,
                                        name=job["method"]))  # fmt: skip


def run_job(job: dict, args: argparse.Namespace) -> dict:
    """Build, train, freeze and evaluate one job's network; its results row."""
    started = time.perf_counter()
    config = run_config(job, args)
    net, size, info = build(job, args)
    bundle = load_dataset(data_config(args, args.subset), size)
    trainer = train_job(job, net, bundle, config)
    train_seconds = time.perf_counter() - started
    images_per_second = args.epochs * len(bundle.train) / sum(h["seconds"] for h in trainer.history)
    final = freeze_and_save(net)[0] if job["method"] in ADAPTED else net.eval()
    final = final.to(trainer.device)
    _, acc = evaluate(final, bundle.test, device=trainer.device, channels_last=config.train.channels_last)
    final = final.cpu().to(memory_format=torch.contiguous_format).eval()
    cost = count(final, size, cells=False)
    row = {
        **job,
        **info,
        "accuracy": acc,
        "macs": cost.macs,
        "resize_macs": cost.resize_macs,
        "budget_macs": cost.macs + cost.resize_macs,
        "params": cost.params,
        "epochs": args.epochs,
        "subset": args.subset,
        "train_seconds": train_seconds,
        "images_per_second": images_per_second,
        "seconds": time.perf_counter() - started,
        "device": str(trainer.device),
        "history": trainer.history,
    }
    if job["method"] in ADAPTED:
        last = trainer.history[-1]
        row.update(sizes=last["sizes"], factors=last["factors"], alpha_moved=last["alpha_moved"])
        row.update(human_sizes=[list(a.start_size) for a in net.adaptors()], scale=last.get("scale"))
        row.update(stride1_sizes=[list(a.human_size) for a in net.adaptors()], kinds=[a.kind for a in net.adaptors()])
    if args.latency_runs:  # 1 thread, batch 1; the committed rows' protocol: 20 warm-up runs, single visits
        row["latency_p50_ms"] = onnx_p50s({"m": final}, size, args.in_channels, runs=args.latency_runs, warmup=20,
                                          block=1)["m"]  # fmt: skip
    return row
