"""Which shapes a latency model is measured at (docs/algorithm.md, Latency budgets): the human shape, a diagonal,
random shapes of the kind training produces, and shapes whose first adaptors keep their human size.

Kept apart from the measuring (``cost.latency_probe``) because the same shapes are exported for a device's timing
table (``cost.device_table``) and drawn again by the benchmarks.
"""

from __future__ import annotations

import random

from .shape_cost import ShapeCostModel, Sizes


def _shapes_from(model: ShapeCostModel, rng: random.Random, n: int, kept: int = 0) -> list[Sizes]:
    from ..adaptor.module import LOWER_BOUND
    from .projection import sizes_from_factors

    count = len(model.human_sizes)
    return [
        model.clamp(sizes_from_factors(
            model.human_sizes, [1.0 if k < kept else rng.uniform(LOWER_BOUND, 1.0) for k in range(count)]))
        for _ in range(n)
    ]  # fmt: skip


def random_shapes(model: ShapeCostModel, n: int, seed: int) -> list[Sizes]:
    """``n`` shapes of the kind training produces: every factor uniform in [0.5, 1] (the adaptor's range), the
    sizes by the global rule (each the human size times the product of the factors so far), clamped to the floors."""
    return _shapes_from(model, random.Random(seed), n)


def identity_shapes(model: ShapeCostModel, each: int, seed: int) -> list[Sizes]:
    """For every j from 1 to the number of adaptors less one, ``each`` random shapes whose first j adaptors keep
    their human size (no Resize there; under the global rule a kept size keeps every earlier one too).

    A start shape projected under a mild budget often keeps its first map whole, and a run calibrates on it; the
    part of a Resize-free segment timed alone missed what the whole network saves there (measured: such a start
    shape predicted 4-5% slow, so every other shape 4-5% fast, benchmarks/RESULTS.md, "The latency model as a
    ratio, tenth run"). These probes let the fit measure that saving on whole networks
    (:meth:`autosc.cost.latency_model.LatencyModel.fit`).
    """
    rng = random.Random(seed)
    return [s for j in range(1, len(model.human_sizes)) for s in _shapes_from(model, rng, each, kept=j)]


def probe_shapes(
    model: ShapeCostModel, probes: int, random_probes: int = 0, seed: int = 0, identity_probes: int = 0
) -> list[Sizes]:
    """Every adaptor at its human size (no Resize), then ``probes - 1`` shapes evenly from every adaptor at its
    floor to every adaptor one pixel under its human size (a Resize each): the two regimes are told apart; then
    ``random_probes`` :func:`random_shapes`, where the later adaptors shrink more than the earlier ones (the
    diagonal alone left the tables 4-19% off at such shapes, benchmarks/RESULTS.md, Latency budgets); then
    ``identity_probes`` of each :func:`identity_shapes` kind."""
    pairs = list(zip(model.human_sizes, model.min_sizes, strict=True))
    top = [(max(fh, h - 1), max(fw, w - 1)) for (h, w), (fh, fw) in pairs]
    shapes = [list(model.human_sizes)]
    for i in range(probes - 1):
        t = i / max(1, probes - 2)
        shapes.append(
            [
                (round(fh + t * (h - fh)), round(fw + t * (w - fw)))
                for (h, w), (_, (fh, fw)) in zip(top, pairs, strict=True)
            ]
        )
    return shapes + random_shapes(model, random_probes, seed) + identity_shapes(model, identity_probes, seed + 1)
