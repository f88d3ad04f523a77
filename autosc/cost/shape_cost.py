"""Exact cost of an adapted network for any adaptor sizes, cheap enough for every forward pass.

The budget projection evaluates the cost dozens of times per training step, so
counting by running the network each time is far too slow. Every operator's
spatial output size depends on at most one adaptor's size (the last one before
it), and its MACs, resize MACs and fresh bytes are a per-operator constant
times its output height times its output width. One traced pass gives the
constants, one pass per adaptor tells which adaptor each operator follows, and
each further pass tabulates how output heights and widths follow every
adaptor's size at once. Tabulation is lazy: a size is probed the first time it
is asked for, so a projection costs a few passes once and table lookups after.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import random
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..adaptor import MIN_SIZE, ShapeAdaptor
from ..errors import AutoscError
from .latency_model import LatencyModel
from .trace import OpRecord, record_ops

#: Networks above this many MACs are probed on the meta device (no arithmetic) instead of the CPU.
META_PROBE_MACS = 2_000_000_000


@dataclass(frozen=True)
class Cost:
    """Cost of one forward pass at batch 1: conv+linear MACs, resize MACs, activation bytes."""

    macs: int
    resize_macs: int
    activation_bytes: int
    norm_elements: int = 0
    latency_ms: float | None = None  # predicted, when the cost model has a latency model (cost.latency_model)

    @property
    def total_macs(self) -> int:
        return self.macs + self.resize_macs

    def budget_macs(self, convention: str = "standard") -> int:
        """MACs as a budget counts them: conv + linear + resize, plus 4 per BN element in the paper convention."""
        return self.total_macs + (4 * self.norm_elements if convention == "paper" else 0)


Sizes = list[tuple[int, int]]


class ShapeCostModel:
    """``cost(sizes)`` for an adapted network at a fixed input size; exact (checked against a traced pass)."""

    def __init__(self, net: nn.Module, adaptor_names: list[str], input_size: tuple[int, int], in_channels: int) -> None:
        self.latency: LatencyModel | None = None  # set by with_latency(); then every Cost carries latency_ms
        self.adaptor_names = list(adaptor_names)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self._probe = copy.deepcopy(net).eval().cpu()
        self._adaptors: list[ShapeAdaptor] = [self._probe.get_submodule(n) for n in adaptor_names]
        self.human_sizes: Sizes = [a.human_size for a in self._adaptors]
        self._x = torch.zeros(1, in_channels, *self.input_size)
        base = self._trace(self.human_sizes)
        if sum(r.macs for r in base) > META_PROBE_MACS:
            self._probe, self._x = self._probe.to("meta"), self._x.to("meta")
        self._base = base
        self.min_sizes: Sizes = self._floors()
        self._deps = self._dependencies(base)
        self._coef, self._const = self._coefficients(base)
        vmax = max(max(s) for s in self.human_sizes)
        self._f_h = np.zeros((len(base), vmax + 1), dtype=np.int64)
        self._f_w = np.zeros((len(base), vmax + 1), dtype=np.int64)
        self._known_h = [np.zeros(vmax + 1, dtype=bool) for _ in self.human_sizes]
        self._known_w = [np.zeros(vmax + 1, dtype=bool) for _ in self.human_sizes]
        self._ops_of = [np.flatnonzero(self._deps == k) for k in range(len(self.human_sizes))]
        self._work: dict[tuple[int, int, int], int] = {}  # segment_work, per (adaptor, height, width)
        self._fill(self.human_sizes, base)
        self._segments = self._segment_costs()
        self._self_check()

    # -- probing -----------------------------------------------------------------
    def _trace(self, sizes: Sizes) -> list[OpRecord]:
        for adaptor, size in zip(self._adaptors, sizes, strict=True):
            adaptor.size = size
        # The projection runs inside the training forward; an enclosing autocast (--amp) would add casts to the
        # probe's operators. Cost is a float32 matter: probe without it.
        cuda = torch.autocast("cuda", enabled=False) if torch.cuda.is_available() else contextlib.nullcontext()
        with torch.autocast("cpu", enabled=False), cuda:
            return record_ops(self._probe, self._x)

    def _runs(self, sizes: Sizes) -> bool:
        try:
            self._trace(sizes)
        except RuntimeError:
            return False
        return True

    def _aligned(self, other: list[OpRecord]) -> None:
        base = self._base
        if len(base) != len(other) or any(a.op != b.op for a, b in zip(base, other, strict=True)):
            raise AutoscError(
                "the network runs different operators at different feature-map sizes; autosc needs a static network"
            )

    def _dependencies(self, base: list[OpRecord]) -> np.ndarray:
        """Which adaptor each operator's output size follows (-1: none).

        Probed at each adaptor's floor: output sizes are monotone in the
        adaptor's size, so an operator unchanged there is unchanged everywhere.
        """
        deps = np.full(len(base), -1)
        for k in range(len(self.human_sizes)):
            sizes = list(self.human_sizes)
            sizes[k] = self.min_sizes[k]
            rec = self._trace(sizes)
            self._aligned(rec)
            for i, (a, b) in enumerate(zip(base, rec, strict=True)):
                if a.shape != b.shape:
                    if deps[i] != -1:
                        raise AutoscError(
                            f"operator {a.op} depends on two adaptors' sizes (a skip connection across an adaptor?)"
                        )
                    if len(a.shape) < 3:
                        raise AutoscError(
                            f"operator {a.op} has a size-dependent non-spatial output {a.shape}; pool globally before the classifier"
                        )
                    deps[i] = k
        return deps

    def _coefficients(self, base: list[OpRecord]) -> tuple[np.ndarray, np.ndarray]:
        """Per dependent operator, its cost per output pixel; the summed cost of all other operators."""
        coef = np.zeros((len(base), 4), dtype=np.int64)
        const = np.zeros(4, dtype=np.int64)
        for i, r in enumerate(base):
            values = (r.macs, r.resize_macs, r.new_bytes, r.norm_elements)
            if self._deps[i] < 0:
                const += values
                continue
            area = r.shape[-2] * r.shape[-1]
            if any(v % area for v in values):
                raise AutoscError(
                    f"operator {r.op}'s cost is not proportional to its output area; autosc cannot budget it"
                )
            coef[i] = [v // area for v in values]
        return coef, const

    def _fill(self, sizes: Sizes, rec: list[OpRecord] | None = None) -> None:
        """Probe once at ``sizes`` and record every dependent operator's output height and width."""
        rec = self._trace(sizes) if rec is None else rec
        self._aligned(rec)
        for k, (h, w) in enumerate(sizes):
            ops = self._ops_of[k]
            self._f_h[ops, h] = [rec[i].shape[-2] for i in ops]
            self._f_w[ops, w] = [rec[i].shape[-1] for i in ops]
            self._known_h[k][h] = self._known_w[k][w] = True

    def _floors(self) -> Sizes:
        """Per adaptor, the smallest size (>= 2) at which the rest of the network still runs."""
        floors = []
        for k, (h, w) in enumerate(self.human_sizes):
            lo, hi = MIN_SIZE, max(h, w)  # hi always runs (the human size)

            def runs(v: int, k: int = k) -> bool:
                sizes = list(self.human_sizes)
                sizes[k] = (min(v, self.human_sizes[k][0]), min(v, self.human_sizes[k][1]))
                return self._runs(sizes)

            if not runs(lo):
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    lo, hi = (lo, mid) if runs(mid) else (mid, hi)
                lo = hi
            floors.append((min(lo, h), min(lo, w)))
        return floors

    def _self_check(self) -> None:
        """Compare against a real traced pass at random sizes; a mismatch is a bug, never a silent error."""
        rng = random.Random(0)
        sizes = [
            (rng.randint(fh, h), rng.randint(fw, w))
            for (h, w), (fh, fw) in zip(self.human_sizes, self.min_sizes, strict=True)
        ]
        rec = self._trace(sizes)
        traced = Cost(
            sum(r.macs for r in rec),
            sum(r.resize_macs for r in rec),
            sum(r.new_bytes for r in rec),
            sum(r.norm_elements for r in rec),
        )
        if traced != dataclasses.replace(self.cost(sizes), latency_ms=None):
            raise AutoscError(
                f"internal error: the cost model disagrees with a traced pass at sizes {sizes}: {self.cost(sizes)} vs {traced}"
            )

    def with_latency(self, latency: LatencyModel) -> ShapeCostModel:
        """Attach a latency model measured for this network (same adaptors); returns self."""
        if len(latency.areas) != len(self.human_sizes):
            raise AutoscError(
                f"the latency model has {len(latency.areas)} segments for {len(self.human_sizes)} adaptors; "
                "it was measured for another network: measure it again"
            )
        if latency.axis == "work":  # read its tables with this network's exact counts
            latency = latency.on(self.segment_work)
        self.latency = latency
        self._segments = self._segment_costs()
        return self

    # -- queries -----------------------------------------------------------------
    def clamp(self, sizes: Sizes) -> Sizes:
        """Sizes limited to [floor, human size] per adaptor."""
        return [
            (min(max(h, fh), hh), min(max(w, fw), hw))
            for (h, w), (fh, fw), (hh, hw) in zip(sizes, self.min_sizes, self.human_sizes, strict=True)
        ]

    def cost(self, sizes: Sizes) -> Cost:
        if any(not (self._known_h[k][h] and self._known_w[k][w]) for k, (h, w) in enumerate(sizes)):
            self._fill(sizes)
        total = self._const.copy()
        for k, size in enumerate(sizes):
            total += self._segment_total(k, size)
        latency = self.latency.predict(sizes) if self.latency is not None else None
        return Cost(int(total[0]), int(total[1]), int(total[2]), int(total[3]), latency)

    def _segment_total(self, k: int, size: tuple[int, int]) -> np.ndarray:
        """MACs, resize MACs, fresh bytes and norm elements of the operators that follow adaptor ``k`` (sizes known)."""
        ops = self._ops_of[k]
        area = self._f_h[ops, size[0]] * self._f_w[ops, size[1]]
        return (self._coef[ops] * area[:, None]).sum(axis=0)

    def segment_work(self, k: int, size: tuple[int, int]) -> int:
        """The MACs (resizes included) of the operators whose size follows adaptor ``k``, at its ``size``: the axis
        of the latency model's tables (autosc/cost/latency_model.py), exact where a stride makes it a step.
        Remembered per size: every latency prediction asks for it, inside the projection's bisection."""
        key = (k, int(size[0]), int(size[1]))
        if key not in self._work:
            h, w = key[1:]
            if not (self._known_h[k][h] and self._known_w[k][w]):
                sizes = list(self.human_sizes)
                sizes[k] = (h, w)
                self._fill(sizes)
            total = self._segment_total(k, (h, w))
            self._work[key] = int(total[0] + total[1])
        return self._work[key]

    def segments(self) -> tuple[list[Cost], Cost]:
        """Per adaptor, the cost of the operators whose size follows it (at the human shape); and the rest.

        Each segment's cost scales with its map's area, so ``rest + sum_k segment_k * prod_{j<=k} s_j^2`` is a
        smooth stand-in for the exact cost that the alphas can be differentiated through. Fixed for the
        network, so computed once (every alpha step asks for it).
        """
        return self._segments

    def _segment_costs(self) -> tuple[list[Cost], Cost]:
        parts = []
        for k, (h, w) in enumerate(self.human_sizes):
            total = self._segment_total(k, (h, w))
            latency = self.latency.segment_share(k, (h, w)) if self.latency is not None else None
            parts.append(Cost(*(int(v) for v in total), latency))
        rest = self.latency.fixed_share() if self.latency is not None else None
        return parts, Cost(*(int(v) for v in self._const), rest)

    def floor_cost(self) -> Cost:
        """The smallest reachable cost: every adapted map at its floor."""
        return self.cost(self.min_sizes)

    def human_cost(self) -> Cost:
        """Cost of the identity shape (every adaptor at its human size)."""
        return self.cost(self.human_sizes)
