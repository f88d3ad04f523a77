"""``--width auto``: the widest human network whose cost is a fixed ratio above the budget (docs/algorithm.md, Width and budget projection)."""

from __future__ import annotations

import functools

import torch

from ..models import ModelSpec, is_zoo_model, model_entry
from .budget import Budget
from .counters import count
from .shape_cost import Cost

#: The widened human network costs this much more than the budget; the adaptors then remove the excess.
#: The seed paper's models sit at about 1.2-1.3x (ImageNet 300M: 1.1x width), to be tuned by benchmark.
AUTO_WIDTH_RATIO = 1.25


#: Up to this many input pixels, networks are counted on the CPU; above it on the meta device, where no
#: arithmetic is done but every operator costs ~0.5 ms of Python (faster only for ImageNet-size inputs).
CPU_PIXELS = 128 * 128


def human_network_cost(spec: ModelSpec, input_size: tuple[int, int]) -> Cost:
    """The cost of the human network ``spec`` at ``input_size``, as a :class:`Cost` every budget kind can read.

    A built-in or timm network's cost is counted once per process (``--width auto``, the floor and latency
    planning ask for the same widths again and again, ~0.2 s each); a user's builder or instance is counted
    every time, since its code may change between calls.
    """
    if spec.module is None and is_zoo_model(spec.name):
        entry = model_entry(spec.name)  # its builder in the key: a name registered again is counted again
        return _counted(spec, (int(input_size[0]), int(input_size[1])), entry.build if entry else None)
    return _count(spec, input_size)


@functools.lru_cache(maxsize=4096)
def _counted(spec: ModelSpec, input_size: tuple[int, int], builder: object) -> Cost:  # noqa: ARG001 - the key
    return _count(spec, input_size)


def _count(spec: ModelSpec, input_size: tuple[int, int]) -> Cost:
    """Built on the meta device so no weights are initialised (the values do not matter for counting), then
    given uninitialised CPU memory for small inputs."""
    with torch.device("meta"):
        net = spec.build()
    if input_size[0] * input_size[1] <= CPU_PIXELS:
        net = net.to_empty(device="cpu")
    report = count(net, input_size, cells=False)
    return Cost(report.macs, report.resize_macs, report.activation_bytes, report.norm_elements)


def human_cost(spec: ModelSpec, input_size: tuple[int, int], convention: str = "standard") -> tuple[int, int]:
    """(conv + linear MACs in ``convention``, activation bytes) of the human network at ``input_size``."""
    cost = human_network_cost(spec, input_size)
    return cost.budget_macs(convention) - cost.resize_macs, cost.activation_bytes


#: The widest network ``--width auto`` builds; a budget above its cost needs no compression (it is refused).
MAX_WIDTH = 8.0


def auto_width(spec: ModelSpec, input_size: tuple[int, int], budget: Budget, ratio: float = AUTO_WIDTH_RATIO) -> float:
    """The largest width (in steps of 0.01) whose human network costs at most ``ratio`` x every cap of the budget."""

    def ok(hundredths: int) -> bool:
        cost = human_network_cost(ModelSpec(spec.name, hundredths / 100, spec.num_classes, spec.in_channels), input_size)
        return all(
            (value := term.read(cost, budget)) is None or value <= ratio * limit for term, limit in budget.terms()
        )  # a kind the human cost cannot say (latency) is sized by autosc.planning through a MACs stand-in

    lo, hi = 1, round(100 * MAX_WIDTH)  # widths 0.01 .. MAX_WIDTH
    if not ok(lo):
        return lo / 100
    if ok(hi):
        return hi / 100
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo / 100
