"""Before training: the data (a named data set or Python datasets), the start network and the plan, each a public
stage with typed inputs and outputs (docs/architecture.md, The pipeline)."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..config import PlanConfig, RunConfig, require_data
from ..cost.latency_probe import ProbeSettings
from ..data import PYTHON_DATA, DataBundle, from_datasets, load_data, split_validation
from ..data.bundle import flatten_subsets, take_subset, without_augmentation
from ..errors import AutoscError
from ..models import ModelSpec, default_input_size
from ..models.trained import Start, load_start
from ..planning import Plan, make_plan, parse_width
from ..prune.importance import importance_of
from ..prune.strategies import strategy_of
from ..units import parse_input_size
from .progress import Display


def input_size(config: RunConfig) -> tuple[int, int]:
    """The network's input (height, width): the configured one, else the family's own."""
    plan = config.plan
    return parse_input_size(plan.input_size if plan.input_size is not None else default_input_size(plan.model))


def human_spec(config: RunConfig, bundle: DataBundle, width: float = 1.0) -> ModelSpec:
    """The user's network at ``width``, shaped for the data's classes and channels."""
    return ModelSpec(config.plan.model, width, bundle.num_classes, bundle.channels)


# -- data and plan ------------------------------------------------------------------------------------


def load_dataset(
    config: RunConfig,
    size: tuple[int, int] | None,
    *,
    train_data: Dataset | DataLoader | None = None,
    test_data: Dataset | DataLoader | None = None,
) -> DataBundle:
    """Train, validation and test splits at the network's input size; a contradicting ``--num-classes`` is refused.

    ``train_data``/``test_data`` are datasets given in Python (then ``size`` may be None: the data's own);
    otherwise ``config.dataset`` names the source. The validation split (``val_split``) is carved from
    the training images, seeded by ``--data-seed`` (default the run's seed).
    """
    d = config.dataset
    seed = d.seed(config.train.seed)
    if train_data is not None or test_data is not None:
        if train_data is None or test_data is None:
            raise AutoscError("give both train_data and test_data (the test split is what the report states)")
        bundle = from_datasets(train_data, test_data, num_classes=config.plan.num_classes)
        if size is not None and tuple(size) != bundle.native_size:
            h, w = bundle.native_size
            raise AutoscError(f"input_size {size[0]}x{size[1]} does not match the data's {h}x{w} images")
        bundle.train = take_subset(bundle.train, d.subset, seed, "train_data", "subset")
        bundle.test = take_subset(bundle.test, d.test_subset, seed, "test_data", "test_subset")
    elif d.data == PYTHON_DATA:
        raise AutoscError(
            "this run trains on datasets given in Python: pass train_data= and test_data= to autosc.compress "
            "(a resumed run needs them again)"
        )
    else:
        bundle = load_data(
            require_data(d),
            input_size=size,
            data_root=d.data_root,
            subset=d.subset,
            test_subset=d.test_subset,
            seed=seed,
            download=d.download,
        )
    classes = config.plan.num_classes
    if classes is not None and classes != bundle.num_classes:
        raise AutoscError(f"--num-classes {classes} does not match the {bundle.num_classes} classes of {bundle.name}")
    return split_validation(bundle, d.val_split, seed)


def load_start_network(config: RunConfig, bundle: DataBundle, model: nn.Module | None = None) -> Start:
    """The network the run starts from: ``--weights`` read and matched to the data, a module instance, or fresh."""
    p = config.plan
    width = parse_width(p.width)  # a file's weights are tried first at the width asked for (ignored for a module)
    return load_start(
        model if model is not None else p.model,
        weights=p.weights,
        width_hint=width if width is not None else 1.0,
        num_classes=bundle.num_classes,
        in_channels=bundle.channels,
        new_head=p.new_head,
        seed=config.train.seed,
    )


def plan_network(
    config: RunConfig,
    bundle: DataBundle,
    size: tuple[int, int],
    start: Start | None = None,
    *,
    mix: str | None = None,
    display: Display | None = None,
    calibrate: bool = True,
) -> Plan:
    """Width, adaptor places and the identity shape projected under the budget (autosc/planning.py).

    ``mix`` overrides ``--adaptor-mix`` (compress decides it once it knows whether the start is trained);
    ``display`` draws the latency model's measurement (latency budgets only); ``calibrate`` off projects on the
    model as measured (ranks of a distributed run must all project alike, and each would time its own moment).
    """
    plan = config.plan if mix is None else replace(config.plan, adaptor_mix=mix)
    progress = display.counter("measuring the latency model") if display is not None else None
    return make_plan(
        start.spec.module if start is not None and start.spec.module is not None else plan.model,
        plan,
        input_size=size,
        num_classes=bundle.num_classes,
        in_channels=bundle.channels,
        seed=config.train.seed,
        start=start,
        timing=ProbeSettings(progress=progress, calibrate=calibrate, int8=config.export.int8),
        prune_batch=prune_batch(bundle, plan.importance) if _prunes(plan) else None,
    )


def _prunes(plan: PlanConfig) -> bool:
    strategy = strategy_of(plan.strategy)
    return strategy.searched or strategy.prune_share(plan.prune_share) > 0


#: Training images a pruning criterion that takes gradients (``taylor``) ranks channels on.
PRUNE_IMAGES = 64


def prune_batch(bundle: DataBundle, importance: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The first :data:`PRUNE_IMAGES` training images and labels, read without augmentation (the same batch at every
    call, so the same channels are pruned), where the criterion needs a labelled batch."""
    if not importance_of(importance).needs_batch:
        return None
    base, indices = flatten_subsets(bundle.train)
    plain = without_augmentation(base, bundle.test)
    items = [plain[i] for i in indices[:PRUNE_IMAGES]]
    return torch.stack([x for x, _ in items]), torch.as_tensor([int(y) for _, y in items])
