"""One shape of an adapted network timed against the reference network, in interleaved rounds: what the start
calibration (autosc/planning/latency.py) and the re-times during training (autosc/run/retime.py) measure
(docs/algorithm.md, "Calibrated as the run starts", "Re-timed while the shape learns").

Why rounds: on a shared host one measurement's share of the reference (a few hundred runs, interleaved in warm
blocks) varied by 3-6% from the next, while the rounds within one agree more closely; the middle round of three
is taken, as the end check does, and half their range is the measurement's noise.
"""

from __future__ import annotations

import copy
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .latency_probe import ProbeSettings, split_at_adaptors
from .shape_cost import Sizes

#: Interleaved rounds of one measurement, and runs of each network per round.
ROUNDS = 3
RUNS = 100


@dataclass(frozen=True)
class ShareMeasurement:
    """The middle round (by share) of a measurement: the shape's and the reference's p50 (ms), and half the range
    of the rounds' shares (the noise)."""

    shape_ms: float
    reference_ms: float
    spread: float


def middle_round(shares: list[float]) -> tuple[int, float]:
    """The index of the middle round by share (ties by order) and half the range of the shares: how a measurement
    in rounds is read, here and by the end check (autosc/run/measure.py)."""
    ranked = sorted((share, k) for k, share in enumerate(shares))
    return ranked[len(ranked) // 2][1], (ranked[-1][0] - ranked[0][0]) / 2


def measure_share(
    net: nn.Module, adaptor_names: list[str], sizes: Sizes, reference: nn.Module, *, input_size: tuple[int, int],
    in_channels: int = 3, threads: int = 1, batch: int = 1, timing: ProbeSettings | None = None,
    reference_onnx: Path | None = None,
) -> ShareMeasurement:  # fmt: skip
    """Time ``net`` at ``sizes`` (frozen as the latency model's probes are: one full branch per adaptor, on the CPU)
    with ``reference``, each exported once, in ``ROUNDS`` interleaved rounds; the caller's random state is left as
    it was (a trainer's data order and augmentation must not depend on a measurement).

    ``reference_onnx``: where the reference's export is kept between calls (written by the first, reused by the
    next: a run's reference never changes, and the re-times exported it again each time); default: each call."""
    from ..export import export_onnx
    from ..latency import int8_twin, time_together

    timing = timing or ProbeSettings()
    if any(p.device.type != "cpu" for p in net.parameters()):  # timed in ONNX Runtime on this machine's CPU
        net = copy.deepcopy(net).cpu()
    state = random.getstate()
    try:
        with torch.random.fork_rng(devices=[]), tempfile.TemporaryDirectory() as tmp:
            split, adaptors = split_at_adaptors(net, adaptor_names)
            for adaptor, size in zip(adaptors, sizes, strict=True):
                adaptor.size = (int(size[0]), int(size[1]))
            paths = {"shape": Path(tmp, "shape.onnx"), "reference": reference_onnx or Path(tmp, "reference.onnx")}
            kept = reference_onnx is not None and reference_onnx.is_file()
            for label, module in [("shape", split)] + ([] if kept else [("reference", reference)]):
                export_onnx(module.eval(), input_size, paths[label], in_channels=in_channels, opset=timing.opset,
                            exporter=timing.exporter, check=False)  # fmt: skip
            if timing.int8:  # the reference's twin is kept beside its export and quantized once, like the export
                twins = {k: Path(p).with_suffix(".int8.onnx") for k, p in paths.items()}
                paths = {k: twins[k] if k == "reference" and kept and twins[k].is_file()
                         else Path(int8_twin(p, twins[k])) for k, p in paths.items()}  # fmt: skip
            rounds = [time_together(paths, threads=threads, batch=batch, runs=RUNS, warmup=10, block=timing.block)
                      for _ in range(ROUNDS)]  # fmt: skip
    finally:
        random.setstate(state)
    k, spread = middle_round([r["shape"]["p50"] / r["reference"]["p50"] for r in rounds])
    return ShareMeasurement(rounds[k]["shape"]["p50"], rounds[k]["reference"]["p50"], spread)
