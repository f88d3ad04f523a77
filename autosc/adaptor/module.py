"""The shape adaptor: a learnable, downsampling-only resizing module (docs/algorithm.md, The shape adaptor)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Lower bound r of a factor: the low branch halves the map (2x2 max-pool), so s = r + (1 - r) sigma lies in (0.5, 1).
LOWER_BOUND = 0.5
#: No map is resized below 2x2: a 1-pixel bilinear resize exports wrongly or divides by zero in some runtimes.
MIN_SIZE = 2


def resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize to an integer size (never ``scale_factor``, so ONNX gets constant sizes)."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


BRANCHES = ("full", "low")  # what a collapsed adaptor keeps


def _max_half(x: Tensor) -> Tensor:
    return F.max_pool2d(x, kernel_size=2, stride=2, ceil_mode=True)


def _avg_half(x: Tensor) -> Tensor:
    return F.avg_pool2d(x, kernel_size=2, stride=2, ceil_mode=True)


#: The parameter-free x0.5 resize of the block output, by name: 2x2 max-pool with ceil_mode (the reference)
#: or 2x2 average-pool (a measured variant, benchmarks/RESULTS.md).
LOW_BRANCHES = {"max": _max_half, "avg": _avg_half}


def low_branch(x: Tensor, pool: str = "max") -> Tensor:
    """The half-resolution copy of ``x`` that the adaptor mixes in (``pool``: a :data:`LOW_BRANCHES` name)."""
    return LOW_BRANCHES[pool](x)


def one_branch(x: Tensor, size: tuple[int, int], *, low: bool, pool: str = "max") -> Tensor:
    """A collapsed adaptor's function: the map (or its half-resolution copy) resized to ``size``.

    Shared by the training module and the frozen one so that both compute the same thing; the full
    branch skips a resize to its own size (the identity).
    """
    if low:
        return resize(low_branch(x, pool), size)
    return x if tuple(x.shape[-2:]) == tuple(size) else resize(x, size)


#: How an adaptor combines its branches while the shape learns: ``blend`` is the seed paper's mix; with
#: ``straight-through`` the forward is the full branch alone (so at the human size the adaptor is exactly the
#: identity and a trained network keeps its function) while alpha gets the blend's gradient.
MIXES = ("blend", "straight-through")

#: What an adaptor is to the human network: ``autosc`` follows a cell that does not resize (its human factor
#: is 1); ``standard`` replaces a human resize, its cell rebuilt at stride 1 (its human factor is 0.5).
KINDS = ("autosc", "standard", "input")


def factor_to_alpha(s: float, lower: float = LOWER_BOUND) -> float:
    """The alpha whose factor r + (1 - r) sigmoid(alpha) equals ``s``."""
    sigma = (s - lower) / (1 - lower)
    return math.log(sigma / (1 - sigma))


def alpha_to_factor(alpha: float, lower: float = LOWER_BOUND) -> float:
    """The factor s = r + (1 - r) sigmoid(alpha) of an alpha (the inverse of :func:`factor_to_alpha`)."""
    return lower + (1 - lower) / (1 + math.exp(-alpha))


class ShapeAdaptor(nn.Module):
    """Mixes a halved and an unchanged copy of its input, both resized to ``self.size``.

    ``out = (1 - sigma) R(low(x), size) + sigma R(x, size)``, sigma = sigmoid(alpha).
    ``size`` is not read from ``x``: the owning :class:`~autosc.adaptor.AdaptedNetwork`
    sets it before every forward from the tracked product of all factors and the
    budget. It is not differentiable; alpha learns through the mixing weights only.
    While training, both branches are always resized (even at the human size) so
    that the work done, and therefore the cost model, does not depend on the size
    chosen; the frozen and collapsed forms skip a resize to a map's own size.
    """

    def __init__(
        self,
        human_size: tuple[int, int],
        *,
        alpha: float = 0.0,
        pool: str = "max",
        mix: str = "blend",
        kind: str = "autosc",
        start_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind = kind  # "standard": it replaces a human resize, and its cell runs at stride 1
        # the human network's size here, where the identity start puts it (a standard adaptor: half its map)
        self.start_size = tuple(int(v) for v in start_size) if start_size is not None else tuple(human_size)
        if pool not in LOW_BRANCHES:
            raise ValueError(f"pool must be one of {tuple(LOW_BRANCHES)}, got {pool!r}")
        if mix not in MIXES:
            raise ValueError(f"mix must be one of {MIXES}, got {mix!r}")
        self.pool = pool
        self.mix = mix
        self.alpha = nn.Parameter(torch.tensor(float(alpha)))
        self.human_size = (int(human_size[0]), int(human_size[1]))
        self.size = self.human_size
        self.branch: str | None = None  # None: the two-branch mix; "full" or "low" once collapsed

    def place_keys(self) -> dict:
        """What a plan and a shape spec say about this adaptor's place: its ``kind`` (``standard``: it replaces a
        human resize) and ``stride1_size``, the map it resizes (its start size unless a cell at or before it runs
        at stride 1). Both always written (docs/algorithm.md, File formats)."""
        return {"kind": self.kind, "stride1_size": list(self.human_size)}

    def collapse(self, branch: str) -> None:
        """Keep one branch from now on; the mix and alpha's gradient are gone.

        Once the shape is fixed the mix only blurs: at sigma 0.6 two fifths of the
        map are the half-resolution copy. Collapsing lets the weights finish on a
        plain resize at the learned size (docs/algorithm.md, Collapse when the shape phase ends).
        """
        if branch not in BRANCHES:
            raise ValueError(f"branch must be one of {BRANCHES}, got {branch!r}")
        self.branch = branch

    def sigma(self) -> Tensor:
        return torch.sigmoid(self.alpha)

    def factor(self) -> float:
        """The reshaping factor s = r + (1 - r) sigma in (0.5, 1)."""
        return float(self.factor_tensor().detach())

    def factor_tensor(self) -> Tensor:
        """The factor as a differentiable function of alpha (float32), for the cost term of the alpha update."""
        return LOWER_BOUND + (1 - LOWER_BOUND) * torch.sigmoid(self.alpha.float())

    def forward(self, x: Tensor) -> Tensor:
        if self.branch is not None:
            return one_branch(x, self.size, low=self.branch == "low", pool=self.pool)
        sigma = self.sigma().to(x.dtype)
        low, full = resize(low_branch(x, self.pool), self.size), resize(x, self.size)
        if self.mix == "blend":
            return (1 - sigma) * low + sigma * full
        # The value (and the input's gradient) of the full branch alone; alpha gets the blend's gradient,
        # d/d alpha of (1 - sigma)(low - full). ``b - b.detach()`` is exactly zero, so the value is exact.
        blend = (1 - sigma) * (low - full).detach()
        return full + (blend - blend.detach())

    def extra_repr(self) -> str:
        branch = f", branch={self.branch}" if self.branch else ""
        pool = f", pool={self.pool}" if self.pool != "max" else ""
        mix = f", mix={self.mix}" if self.mix != "blend" else ""
        kind = f", kind={self.kind}" if self.kind != "autosc" else ""
        return f"human_size={self.human_size}, size={self.size}{branch}{pool}{mix}{kind}"


class AdaptedCell(nn.Module):
    """A network cell followed by its shape adaptor (the adaptor acts on the cell's output); ``before``: the input
    adaptor, which resizes the network's input before its first cell (docs/algorithm.md, The input adaptor)."""

    def __init__(self, cell: nn.Module, adaptor: nn.Module, *, before: bool = False) -> None:
        super().__init__()
        self.cell = cell
        self.adaptor = adaptor
        self.before = before

    def forward(self, x: Tensor) -> Tensor:
        return self.cell(self.adaptor(x)) if self.before else self.adaptor(self.cell(x))


def identity_alpha(human_sizes: list[tuple[int, int]]) -> float:
    """The common initial alpha under which every adaptor keeps its human size (docs/algorithm.md, Placement and identity initialisation).

    Adaptor k (1-based) sits behind k factors, so its size is round(H s0^k);
    it stays H when H (1 - s0^k) < 0.5. The smallest s0 that satisfies this
    for every adaptor and both sides keeps the most gradient in sigma(1 - sigma).
    """
    s0 = max((1 - 0.49 / max(h, w)) ** (1 / k) for k, (h, w) in enumerate(human_sizes, start=1))
    return factor_to_alpha(max(s0, LOWER_BOUND + 1e-6))
