"""``--shape-search N``: with a trained start, the shape the run trains from chosen by data, not by the projection
alone (docs/algorithm.md, The shape chosen by data).

The candidates are the projected identity shape, each adaptor taking the whole cut alone (its factor at the
lower bound, the others at 1), and ``N`` random factor vectors; every one is projected under the budget (so all
meet it), frozen, BatchNorm re-estimated on training images and scored on the validation split. The run's shape
starts from the best; the weights are not touched.
"""

from __future__ import annotations

import copy

import torch

from ..adaptor.module import LOWER_BOUND, factor_to_alpha
from ..cost.budgeted import BudgetedNetwork
from ..data import DataBundle
from ..data.device import resident
from ..errors import AutoscError
from ..freeze import freeze
from ..train import TrainConfig
from ..train.runtime import resolve_device
from .progress import Display
from .training import recalibrated_accuracy


def candidate_factors(identity: list[float], random: int, seed: int) -> list[tuple[str, list[float]]]:
    """(label, factors) of every candidate: the identity, the cut at each adaptor alone, ``random`` seeded draws."""
    k = len(identity)
    out = [("identity", list(identity))]
    out += [(f"cut at adaptor {i + 1}", [LOWER_BOUND if j == i else 1.0 for j in range(k)]) for i in range(k)]
    g = torch.Generator().manual_seed(seed)
    draws = LOWER_BOUND + (1 - LOWER_BOUND) * torch.rand(random, k, generator=g, dtype=torch.float64)
    out += [(f"random {n + 1}", [float(v) for v in row]) for n, row in enumerate(draws)]
    return out


def set_factors(network: BudgetedNetwork, factors: list[float]) -> list[tuple[int, int]]:
    """Every adaptor's alpha set to give ``factors``; the shape projected under the budget; its sizes."""
    with torch.no_grad():
        for adaptor, s in zip(network.adaptors(), factors, strict=True):
            adaptor.alpha.fill_(factor_to_alpha(min(max(s, LOWER_BOUND + 1e-6), 1 - 1e-6)))
    return [tuple(size) for size in network.update_shape().sizes]


def search_shape(
    network: BudgetedNetwork, bundle: DataBundle, config: TrainConfig, *, random: int, display: Display
) -> list[dict]:
    """Score every candidate shape (:func:`candidate_factors`) on validation after BatchNorm re-estimation, leave
    ``network`` at the best (ties: the earlier, so the identity wins a tie), and return every candidate's record."""
    if bundle.val is None or not len(bundle.val):
        raise AutoscError("--shape-search scores shapes on the validation split; set --val-split above 0")
    if network.identity_held:
        raise AutoscError("--shape-search chooses a shape, and --strategy prune holds it at the identity; drop one")
    device = resolve_device(config.device)
    data = resident(bundle.train, config.device_data, device)
    candidates = candidate_factors(network.factors(), random, config.seed)
    bar = display.counter("scoring shapes (--shape-search)")
    records = []
    for i, (label, factors) in enumerate(candidates):
        sizes = set_factors(network, factors)
        frozen, _ = freeze(copy.deepcopy(network))
        with torch.random.fork_rng(devices=[]):
            val = recalibrated_accuracy(frozen, bundle, bundle.val, config, device, data)
        records.append({"label": label, "factors": factors, "sizes": [list(s) for s in sizes], "val": val})
        bar(i + 1, len(candidates))
    best = max(range(len(records)), key=lambda i: (records[i]["val"], -i))
    for i, record in enumerate(records):
        record["chosen"] = i == best
    set_factors(network, candidates[best][1])
    network.searched_alphas = [float(a.alpha.detach()) for a in network.adaptors()]
    display.log(f"shape search: {records[best]['label']} scored best on validation ({records[best]['val']:.2%}; "
                f"the projected identity {records[0]['val']:.2%}), sizes {records[best]['sizes']}")  # fmt: skip
    return records
