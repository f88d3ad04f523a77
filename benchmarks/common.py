"""What several benchmarks share: results files, the machine record, timing, arguments, and the networks timed
side by side at one budget (``latency``, ``plan_latency``).

Nothing here reaches into autosc: the networks come from :func:`autosc.planning.make_plan` and the public stages
:func:`autosc.run.freeze_and_save` and :func:`autosc.run.export_networks` (docs/algorithm.md, "Freeze, export,
measure").
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from autosc import ExportConfig, ModelSpec, count
from autosc.cost.width import auto_width
from autosc.freeze import collapse
from autosc.latency import environment
from autosc.planning import Plan, make_plan
from autosc.run import RunFolder, export_networks, freeze_and_save

#: Where every benchmark writes its results by default.
RESULTS = Path(__file__).resolve().parent / "results"

# -- results files ------------------------------------------------------------------------------------


def machine() -> dict:
    """Library versions, CPU and cores (:func:`autosc.latency.environment`): recorded beside a measurement."""
    return environment()


def write_json(path: str | Path, data: dict) -> None:
    """``data`` as indented JSON (the folder is made if needed): one benchmark's whole result."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def append_row(path: str | Path, row: dict) -> None:
    """One JSON line at the end of ``path``, written as soon as a job ends (a stopped run keeps what it did)."""
    with Path(path).open("a") as f:
        f.write(json.dumps(row) + "\n")


def load_rows(path: str | Path) -> list[dict]:
    """Every row of a JSON-lines results file; none if the file does not exist yet."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# -- arguments ----------------------------------------------------------------------------------------


def parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser whose description is the first line of the benchmark's docstring."""
    return argparse.ArgumentParser(description=(doc or "").strip().split("\n")[0])


def add_out(ap: argparse.ArgumentParser, name: str) -> None:
    """``--out``, by default ``benchmarks/results/<name>``."""
    ap.add_argument("--out", default=str(RESULTS / name), help=f"results file (default: results/{name})")


def ints(text: str) -> list[int]:
    """``"1,2"`` -> ``[1, 2]`` (thread counts, batch sizes, seeds)."""
    return [int(v) for v in text.split(",")]


# -- timing -------------------------------------------------------------------------------------------


def seconds(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call of ``fn``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_ms(fn: Callable[[], object], runs: int) -> float:
    """Median milliseconds of ``runs`` calls of ``fn``."""
    return statistics.median(seconds(fn) for _ in range(runs)) * 1e3


@contextmanager
def quiet() -> Iterator[None]:
    """Silence the exporters' warnings (they say nothing about the measurement)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# -- the networks timed at one budget -----------------------------------------------------------------


@dataclass
class Lineup:
    """At one budget: the plan, its frozen and collapsed networks, and the human network narrowed to it."""

    plan: Plan
    plan_seconds: float  # make_plan: width search, adaptor placement and the first projection
    frozen: nn.Module  # the plan's shape (the identity shape projected under the budget), untrained
    shape: dict  # the frozen network's shape spec (autosc.freeze)
    # one branch per adaptor: post-hoc, needs fine-tuning (docs/algorithm.md, "Freeze, export, measure")
    collapsed: nn.Module
    width: float  # the widest width at which the human network fits the budget
    human: nn.Module  # the human network at that width


def lineup_at(model: str, budget: str, size: tuple[int, int], classes: int | None = None, channels: int = 3) -> Lineup:
    """The plan at ``budget`` (``make_plan``, ``freeze_and_save``, ``collapse``) and the narrowed human network."""
    start = time.perf_counter()
    plan = make_plan(model, budget=budget, input_size=size, num_classes=classes, in_channels=channels)
    plan_seconds = time.perf_counter() - start
    frozen, shape = freeze_and_save(plan.network)
    width = auto_width(ModelSpec(model, 1.0, classes, channels), size, plan.budget, ratio=1.0)
    human = ModelSpec(model, width, classes, channels).build().eval()
    return Lineup(plan, plan_seconds, frozen, shape, collapse(frozen), width, human)


def export_counted(nets: dict[str, nn.Module], size: tuple[int, int], channels: int, folder: Path) -> dict[str, dict]:
    """Each network exported to ``folder`` (``export_networks``; all but ``"human"`` checked against PyTorch) and
    counted (``autosc.count``): ``{name: {"path", "macs", "resize_macs", "total_macs", "params"}}``."""
    with quiet():
        exported = export_networks(nets, size, channels, RunFolder(folder), ExportConfig())
    out = {}
    for name, net in nets.items():
        cost = count(net, size, cells=False)
        out[name] = {"path": exported[name].path, "macs": cost.macs, "resize_macs": cost.resize_macs,
                     "total_macs": cost.total_macs, "params": cost.params}  # fmt: skip
    return out
