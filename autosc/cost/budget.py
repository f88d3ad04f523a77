"""Budgets: a hard cap on MACs, on activation memory, or on both."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import AutoscError
from ..units import format_bytes, format_count, parse_bytes, parse_macs
from .counters import check_convention


@dataclass(frozen=True)
class Budget:
    """``macs`` counts conv + linear + resize MACs (docs/design.md, Cost conventions); ``memory_bytes`` is activation memory."""

    macs: int | None = None
    memory_bytes: int | None = None
    convention: str = "standard"  # how ``macs`` counts: "standard" or "paper" (+ 4 per BN element)

    def __post_init__(self) -> None:
        if self.macs is None and self.memory_bytes is None:
            raise AutoscError("no budget given: pass --budget (e.g. 300M or 60%) and/or --memory (e.g. 4MiB)")
        check_convention(self.convention)

    def describe(self) -> str:
        parts = []
        if self.macs is not None:
            conv = " (paper convention)" if self.convention == "paper" else ""
            parts.append(f"{format_count(self.macs)} MACs{conv}")
        if self.memory_bytes is not None:
            parts.append(f"{format_bytes(self.memory_bytes)} activations")
        return " and ".join(parts)

    def to_dict(self) -> dict:
        return {"macs": self.macs, "memory_bytes": self.memory_bytes, "convention": self.convention}


def parse_budget(
    macs: str | None = None, memory: str | None = None, *, human_macs: int | None = None, convention: str = "standard"
) -> Budget:
    """Read ``--budget`` / ``--memory`` text; a percentage is taken of ``human_macs`` (in ``convention``)."""
    mac_budget = None
    if macs is not None:
        absolute, fraction = parse_macs(macs)
        if fraction is not None:
            if human_macs is None:
                raise AutoscError(f"budget {macs!r} is relative, but the human network's MACs are not known here")
            absolute = int(fraction * human_macs)
        mac_budget = absolute
    memory_budget = parse_bytes(memory) if memory is not None else None
    return Budget(macs=mac_budget, memory_bytes=memory_budget, convention=convention)
