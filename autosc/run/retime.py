"""Re-timing the shape while it learns under a latency budget (docs/algorithm.md, Latency budgets).

The start calibration (autosc/planning/latency.py) rescales the latency model to what the start shape measures.
As the shape learns, the model's own error at the shape it reaches (a few percent, benchmarks/RESULTS.md, "The
predictor as a share") would let the weights train at sizes the end check then finds over and shrinks, and a
network shrunk after training has not been trained at its sizes (one such run lost 3.4 points). So at each
epoch end of the shape phase, and once at the step where it ends, the current shape is timed with the reference
network interleaved (warm, in three rounds, a few seconds), and when the share it measures is over the allowed
share, or differs from the model's by more than ``RETIME_TOLERANCE`` of the allowed share and more than the
rounds' own spread, the model is recalibrated to it and the shape projected again (the last one, where the phase ends, only when over
the budget: a shape it grew would go unchecked until the end check). The budget keeps its share of the reference timed in the same
blocks, so the host's drift cancels out.

Only rank 0 times; every rank applies its figures (the sizes must agree). What a re-time changed is in the
network's config, so the checkpoint holds it and a resumed run goes on at the same shape.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .. import distributed
from ..cost.budgeted import BudgetedNetwork
from ..cost.calibration import measure_share
from ..cost.latency_probe import ProbeSettings
from ..cost.projection import check_reachable
from ..distributed import DistContext
from ..errors import UnreachableBudget
from ..models import ModelSpec
from ..planning.latency import reference_network
from ..train import TrainConfig

#: A re-time under the budget re-projects when the measured share moved this far from the model's, as a fraction
#: of the allowed share, and further than the measurement's own noise (half the range of its rounds' shares):
#: below that, noise alone would move the shape back and forth (one measurement of a 1 ms network here varies by
#: about 3%). One over the budget always re-projects.
RETIME_TOLERANCE = 0.02


@dataclass(frozen=True)
class Retimed:
    """One re-time's figures: the model's calibration at the shape, the reference's p50 (ms) measured with it,
    and half the range of the rounds' shares (the measurement's noise, as a share of the reference)."""

    calibration: float
    reference_ms: float
    spread: float = 0.0


#: Times the network at its current shape with the reference.
Measure = Callable[[BudgetedNetwork], Retimed]


def measure_on_this_machine(reference: nn.Module, timing: ProbeSettings | None = None) -> Measure:
    """Time the current shape against ``reference`` here, as the start calibration does
    (:func:`autosc.cost.calibration.measure_share`: rounds, the middle one taken). The reference is exported once,
    into a temporary folder that lives as long as the returned function, and reused by every re-time."""
    kept = tempfile.TemporaryDirectory(prefix="autosc-reference-")

    def measure(network: BudgetedNetwork) -> Retimed:
        sizes, budget = network.last_projection.sizes, network.budget
        m = measure_share(network.net, network.adaptor_names, sizes, reference, input_size=network.input_size,
                          in_channels=network.in_channels, threads=budget.latency_threads,
                          batch=budget.latency_batch, timing=timing,
                          reference_onnx=Path(kept.name, "reference.onnx"))  # fmt: skip
        model = network.cost_model.latency.calibrated(sizes, m.shape_ms)
        return Retimed(model.calibration, m.reference_ms, m.spread)

    return measure


@dataclass
class Retimer:
    """Re-times ``network`` during its shape phase (module docstring); ``records`` has one entry per re-time."""

    network: BudgetedNetwork
    measure: Measure
    dist: DistContext = field(default_factory=DistContext)
    log: Callable[[str], None] = print
    records: list[dict] = field(default_factory=list)

    def on_batch(self, trainer) -> None:
        """At the step the shape phase ends: the shape the weights go on training at, and ship at."""
        if trainer.step == trainer.shape_steps:
            self.retime(trainer.epoch + 1, trainer.step, trainer.device, final=True)  # the epoch under way (from 1)

    def on_epoch_end(self, trainer) -> None:
        """At an epoch end inside the shape phase (before the checkpoint is saved, so it holds the result)."""
        if trainer.step < trainer.shape_steps:
            self.retime(trainer.epoch, trainer.step, trainer.device)  # the epoch just finished (from 1)

    def retime(self, epoch: int, step: int, device: torch.device, *, final: bool = False) -> dict:
        """Time the current shape and project it again if it moved (module docstring). The ``final`` one, where the
        shape phase ends, only shrinks: no later re-time would check a shape grown on one low measurement, and the
        end check found two such shapes over and shrank them after training (benchmarks/RESULTS.md, seeds 40-44)."""
        network = self.network
        sizes = network.update_shape().sizes
        calibration, reference_ms, spread = self._timed(device)
        budget, model = network.budget, network.cost_model.latency
        allowed = budget.latency_allowed_share
        predicted = model.predict(sizes) / budget.latency_reference_ms
        measured = dataclasses.replace(model, calibration=calibration).predict(sizes) / reference_ms
        # over the budget as measured: shrink now, while the weights still train (after training, a shrink cost a
        # run 4 points); off the model beyond the tolerance and the noise: the shape may grow back into the budget
        off = abs(measured - predicted) > max(RETIME_TOLERANCE * allowed, spread)
        moved = measured > allowed or (off and not final)
        record = {"epoch": epoch, "step": step, "sizes": [list(s) for s in sizes], "predicted_share": predicted,
                  "measured_share": measured, "spread": spread, "allowed_share": allowed, "final": final,
                  "re_projected": moved}  # fmt: skip
        if moved:
            record["new_sizes"] = [list(s) for s in network.retime(calibration, budget.followed(reference_ms)).sizes]
            out = self._out_of_reach()
            if out is not None:  # one measurement puts even the floor over: time the floor first
                floor = network.last_projection.sizes
                calibration, reference_ms, _ = self._timed(device)  # a slow spell had sent a run to 2x2 maps
                again = network.retime(calibration, budget.followed(reference_ms))
                record["floor_share"] = network.cost_model.latency.predict(floor) / reference_ms
                record["new_sizes"] = [list(s) for s in again.sizes]
                out = self._out_of_reach()
            if out is not None:  # the floor itself timed over: it trains on, and the end check judges it
                self.log(f"re-time: {out} (the floor itself timed so); the smallest shape trains on, and the end "
                         "check judges it")  # fmt: skip
            record["unreachable"] = out is not None
        self.records.append(record)
        self.log(_describe(record))
        return record

    def _timed(self, device: torch.device) -> list[float]:
        """(calibration, reference ms, spread) of the shape as projected now, timed on rank 0, on every rank."""
        values = [0.0, 0.0, 0.0]
        if self.dist.is_main:
            timed = self.measure(self.network)
            values = [timed.calibration, timed.reference_ms, timed.spread]
        return distributed.from_main(self.dist, values, device)

    def _out_of_reach(self) -> UnreachableBudget | None:
        """Why the budget as re-timed is out of reach even at the floor; None when the floor fits."""
        try:
            check_reachable(self.network.cost_model, self.network.budget)
        except UnreachableBudget as exc:
            return exc
        return None


def _describe(record: dict) -> str:
    """One log line per re-time."""
    where = (
        f"re-time in epoch {record['epoch']} (step {record['step']}): the shape measures "
        f"{record['measured_share']:.1%} ± {record['spread']:.1%} of the reference"
    )
    said = f"the model said {record['predicted_share']:.1%}, the budget allows {record['allowed_share']:.1%}"
    if not record["re_projected"]:
        grows = record.get("final") and record["measured_share"] < record["predicted_share"]
        return f"{where} ({said}); the shape stays" + (" (the last re-time only shrinks)" if grows else "")
    return f"{where} ({said}); projected again to {record['new_sizes']}"


def shape_retimer(
    network: BudgetedNetwork, reference: ModelSpec, config: TrainConfig, dist: DistContext | None = None,
    log: Callable[[str], None] = print,
) -> Retimer | None:  # fmt: skip
    """The re-timer of a run whose budget is a latency judged against ``reference`` (the trained start, else the
    human network), timed here; None without one, with ``config.retime`` off, or on a device's timing table
    (nothing is timed here then: the table's model is the device's own)."""
    model = network.cost_model.latency
    if not config.retime or model is None or "table" in model.key or network.budget.latency_allowed_share is None:
        return None
    timing = ProbeSettings(int8=bool(model.key.get("int8")))  # timed as the latency model was: float or INT8
    return Retimer(network, measure_on_this_machine(reference_network(reference), timing), dist or DistContext(), log)
