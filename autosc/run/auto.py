"""``--strategy auto``: a few splits of the budget between channels and shape, each planned, frozen at the start it
would train from, BatchNorm re-estimated, briefly fine-tuned with distillation and scored on the validation split;
the run continues with the best (docs/algorithm.md, Strategies).
"""

from __future__ import annotations

import copy
import time
from dataclasses import replace

import torch
from torch import nn

from ..config import RunConfig
from ..data import DataBundle
from ..data.device import resident
from ..errors import AutoscError, UnreachableBudget
from ..freeze import freeze
from ..models.trained import Start
from ..planning import Plan
from ..train import TrainConfig
from ..train.fine_tune import fine_tune
from ..train.runtime import resolve_device
from .data import plan_network
from .progress import Display
from .training import recalibrated_accuracy

#: The splits ``auto`` compares, as (strategy, pruning's share of the cut): the shape alone, half and half, pruning
#: alone.
AUTO_SPLITS = (("shape", 0.0), ("compound", 0.5), ("prune", 1.0))


def check_auto(config: RunConfig, trained: bool, distributed: bool) -> None:
    """What ``auto`` needs, refused in one line before any candidate is planned."""
    if not trained:
        raise AutoscError(
            "--strategy auto compares splits of a trained network (--weights or a trained module); from scratch "
            "choose --strategy shape, prune or compound"
        )
    if distributed:
        raise AutoscError("--strategy auto scores its candidates in one process; under torchrun choose a strategy")
    if not config.dataset.val_split:
        raise AutoscError("--strategy auto scores its candidates on the validation split; set --val-split above 0")


def choose_split(
    config: RunConfig, bundle: DataBundle, size: tuple[int, int], start: Start, *, teacher: nn.Module,
    train_config: TrainConfig, mix: str, display: Display,
) -> tuple[Plan, list[dict]]:  # fmt: skip
    """The plan of the best split by validation accuracy after ``config.plan.auto_steps`` fine-tuning steps, and
    every candidate's record (a split the budget cannot reach is recorded with why, not fatal)."""
    bar = display.counter("scoring strategies (--strategy auto)")
    plans, records = {}, []
    for i, (name, share) in enumerate(AUTO_SPLITS):
        began = time.perf_counter()
        candidate = replace(config, plan=replace(config.plan, strategy=name, prune_share=share))
        try:
            plan = plan_network(candidate, bundle, size, start, mix=mix)
        except (UnreachableBudget, AutoscError) as exc:
            records.append({"strategy": name, "share": share, "unreachable": str(exc)})
            bar(i + 1, len(AUTO_SPLITS))
            continue
        with torch.random.fork_rng(devices=[]):  # scoring must not move the run's seeded RNG
            scores = score_plan(plan, bundle, teacher, train_config, steps=config.plan.auto_steps)
        plans[name] = plan
        records.append({"strategy": name, "share": share, **scores, "seconds": time.perf_counter() - began})
        bar(i + 1, len(AUTO_SPLITS))
        display.log(f"auto: {name} (pruning {share:.0%} of the cut): validation {scores['val_after']:.2%} after "
                    f"{scores['steps']} steps ({scores['val_before']:.2%} before)")  # fmt: skip
    scored = [r for r in records if "val_after" in r]
    if not scored:
        raise AutoscError("no split of the budget is reachable: " + "; ".join(r["unreachable"] for r in records))
    best = max(scored, key=lambda r: (r["val_after"], r["val_before"]))
    for record in records:
        record["chosen"] = record is best
    return plans[best["strategy"]], records


def score_plan(plan: Plan, bundle: DataBundle, teacher: nn.Module, config: TrainConfig, *, steps: int) -> dict:
    """Validation accuracy of the plan's network frozen at its projected start, BatchNorm re-estimated, before and
    after ``steps`` fine-tuning steps distilled from ``teacher`` at the run's learning rate; and its MACs."""
    from ..cost import count

    frozen, _ = freeze(copy.deepcopy(plan.network))
    device = resolve_device(config.device)
    data = resident(bundle.train, config.device_data, device)

    try:
        before = recalibrated_accuracy(frozen, bundle, bundle.val, config, device, data)
        taken = fine_tune(frozen, copy.deepcopy(teacher), bundle.train, data, config, steps=steps, device=device,
                          lr_share=1.0) if steps else 0  # fmt: skip
        after = recalibrated_accuracy(frozen, bundle, bundle.val, config, device, data) if taken else before
    finally:
        frozen.cpu()
    return {"val_before": before, "val_after": after, "steps": taken,
            "macs": count(frozen, plan.input_size, cells=False).total_macs}  # fmt: skip
