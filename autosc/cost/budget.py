"""Budgets: a hard cap on MACs, on activation memory, on predicted latency, or on several at once."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import AutoscError
from ..units import format_bytes, format_count, format_ms, parse_bytes, parse_latency, parse_macs
from .counters import check_convention


@dataclass(frozen=True)
class Budget:
    """``macs`` counts conv + linear + resize MACs (docs/design.md, Cost conventions); ``memory_bytes`` is activation
    memory; ``latency_ms`` is ONNX Runtime p50 as the latency model predicts it (docs/design.md, Latency budgets)."""

    macs: int | None = None
    memory_bytes: int | None = None
    convention: str = "standard"  # how ``macs`` counts: "standard" or "paper" (+ 4 per BN element)
    latency_ms: float | None = None
    latency_threads: int = 1  # what the latency budget means: p50 at this many ONNX Runtime threads ...
    latency_batch: int = 1  # ... and this batch size
    # no cap at all: the learned sizes are used as they are, never projected (``autosc transfer`` without a budget)
    free: bool = False

    @property
    def bounded(self) -> bool:
        return self.macs is not None or self.memory_bytes is not None or self.latency_ms is not None

    def __post_init__(self) -> None:
        if not self.bounded and not self.free:
            raise AutoscError(NO_BUDGET)
        check_convention(self.convention)
        check_latency_setting(self.latency_threads, self.latency_batch)

    def describe(self) -> str:
        if not self.bounded:
            return "none (the learned shape as it is)"
        parts = []
        if self.macs is not None:
            conv = " (paper convention)" if self.convention == "paper" else ""
            parts.append(f"{format_count(self.macs)} MACs{conv}")
        if self.memory_bytes is not None:
            parts.append(f"{format_bytes(self.memory_bytes)} activations")
        if self.latency_ms is not None:
            threads = "1 thread" if self.latency_threads == 1 else f"{self.latency_threads} threads"
            parts.append(f"{format_ms(self.latency_ms)} latency ({threads}, batch {self.latency_batch})")
        return " and ".join(parts)

    def to_dict(self) -> dict:
        data = {"macs": self.macs, "memory_bytes": self.memory_bytes, "convention": self.convention}
        if self.free:  # written only when set
            data["free"] = True
        if self.latency_ms is not None:  # written only when set, so MACs-only specs stay as they were
            data.update(
                latency_ms=self.latency_ms, latency_threads=self.latency_threads, latency_batch=self.latency_batch
            )
        return data


def check_latency_setting(threads: object, batch: object) -> None:
    """What a latency budget is measured at: whole numbers >= 1 (checked by the Budget and, before any data is
    read, by the run configuration)."""
    for name, value in (("--latency-threads", threads), ("--latency-batch", batch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise AutoscError(f"{name} must be a whole number >= 1, got {value!r}")


#: What a run without any budget is told.
NO_BUDGET = "no budget given: pass --budget (e.g. 300M or 60%), --memory (e.g. 4MiB) and/or --latency (e.g. 1.5ms)"


def parse_budget(
    macs: str | None = None,
    memory: str | None = None,
    *,
    human_macs: int | None = None,
    convention: str = "standard",
    latency: str | None = None,
    latency_threads: int = 1,
    latency_batch: int = 1,
    free: bool = False,
) -> Budget:
    """Read ``--budget`` / ``--memory`` / ``--latency`` text; a percentage is taken of ``human_macs`` (in
    ``convention``). ``free``: with none of them given, no budget (the learned shape is not projected)."""
    mac_budget = None
    if macs is not None:
        absolute, fraction = parse_macs(macs)
        if fraction is not None:
            if human_macs is None:
                raise AutoscError(f"budget {macs!r} is relative, but the human network's MACs are not known here")
            absolute = int(fraction * human_macs)
        mac_budget = absolute
    memory_budget = parse_bytes(memory) if memory is not None else None
    latency_ms = parse_latency(latency) if latency is not None else None
    return Budget(
        macs=mac_budget,
        memory_bytes=memory_budget,
        convention=convention,
        latency_ms=latency_ms,
        latency_threads=latency_threads,
        latency_batch=latency_batch,
        free=free and macs is None and memory is None and latency is None,
    )
