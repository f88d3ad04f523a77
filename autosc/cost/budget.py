"""Budgets: hard caps on the figures of a network's cost, one per registered kind (docs/architecture.md,
To add a budget kind; the kinds are in autosc/cost/terms/)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import AutoscError
from .counters import check_convention
from .shape_cost import Cost
from .terms import TERMS, BudgetTerm, get_term, term_for_option

#: The settings a budget carries besides its limits, with their defaults (every one is always written).
SETTINGS = {
    "convention": "standard",
    "latency_threads": 1,
    "latency_batch": 1,
    "latency_share": None,
    "latency_reference_ms": None,
    "free": False,
}


@dataclass(frozen=True)
class Budget:
    """``limits`` maps a term's key (``macs``, ``memory_bytes``, ``latency_ms``) to its cap; the settings say how
    the caps are read: ``convention`` counts MACs (docs/algorithm.md, Cost conventions), ``latency_threads`` and
    ``latency_batch`` are what a latency is measured at, and ``free`` is no cap at all (the learned sizes are used
    as they are, ``autosc transfer`` without a budget). A latency limit is judged against the reference network
    timed alongside (docs/algorithm.md, Latency budgets): ``latency_reference_ms`` is that network's p50 when the
    limit was set, and ``latency_share``, when the budget was asked as one (``60%``), the limit over it."""

    limits: Mapping[str, float] = field(default_factory=dict)
    convention: str = "standard"
    latency_threads: int = 1
    latency_batch: int = 1
    latency_share: float | None = None
    latency_reference_ms: float | None = None
    free: bool = False

    def __post_init__(self) -> None:
        for key in self.limits:
            get_term(key)  # an unknown kind is refused by name
        object.__setattr__(self, "limits", {k: self.limits[k] for k in TERMS if self.limits.get(k) is not None})
        if not self.bounded and not self.free:
            raise AutoscError(no_budget_message())
        check_convention(self.convention)
        check_latency_setting(self.latency_threads, self.latency_batch)
        for name in ("latency_share", "latency_reference_ms"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and 0 < value < float("inf")):
                raise AutoscError(f"a budget's {name} must be a positive number, got {value!r}")

    @classmethod
    def of(cls, **values: Any) -> Budget:
        """``Budget.of(macs=25_000_000, convention="paper")``: limits by key, settings by name."""
        settings = {k: values.pop(k) for k in list(values) if k in SETTINGS}
        return cls(limits=values, **settings)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Budget:
        """The inverse of :meth:`to_dict`; keys not written yet by an older file take their defaults."""
        unknown = set(data) - set(TERMS) - set(SETTINGS)
        if unknown:
            raise AutoscError(f"unknown budget field(s) {', '.join(sorted(unknown))}; known: {', '.join([*TERMS, *SETTINGS])}")
        return cls.of(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        """Every registered kind (None where not capped) and every setting, always written."""
        return {**{k: self.limits.get(k) for k in TERMS}, **{k: getattr(self, k) for k in SETTINGS}}

    def __getattr__(self, name: str) -> float | None:
        """A kind's limit by its key (``budget.macs``, ``budget.latency_ms``): None where that kind is not capped."""
        if name in TERMS:
            return self.limits.get(name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def bounded(self) -> bool:
        return bool(self.limits)

    def limit(self, key: str) -> float | None:
        return self.limits.get(key)

    def terms(self) -> Iterator[tuple[BudgetTerm, float]]:
        """The capped kinds with their limits, in registration order."""
        return ((TERMS[k], v) for k, v in self.limits.items())

    def with_limits(self, **limits: float | None) -> Budget:
        """A copy with caps changed by key (None removes one)."""
        return replace(self, limits={**self.limits, **limits})

    def retimed(self, reference_ms: float) -> Budget:
        """This budget after its reference network was timed again at ``reference_ms``: a share keeps its share (the
        limit follows the host's speed), an absolute limit stays, and both are judged against the new timing."""
        if self.limit("latency_ms") is None:
            return self
        limit = self.latency_share * reference_ms if self.latency_share is not None else self.limit("latency_ms")
        return replace(self, limits={**self.limits, "latency_ms": limit}, latency_reference_ms=reference_ms)

    def followed(self, reference_ms: float) -> Budget:
        """This budget with its reference timed again during training: the allowed share stays what it was (an
        absolute limit was converted to one when the run was planned), so the host's drift cancels out
        (autosc/run/retime.py). A budget without a latency reference is returned as it is."""
        share = self.latency_allowed_share
        if share is None:
            return self
        return replace(self, limits={**self.limits, "latency_ms": share * reference_ms}, latency_reference_ms=reference_ms)

    @property
    def latency_allowed_share(self) -> float | None:
        """The latency limit as a share of the reference network's p50 (None: no latency limit or no reference)."""
        limit, reference = self.limit("latency_ms"), self.latency_reference_ms
        return limit / reference if limit is not None and reference is not None else None

    def fits(self, cost: Cost) -> bool:
        """Every cap holds (a figure the cost cannot say, such as latency without a model, does not hold)."""
        return all(term.fits(cost, limit, self) for term, limit in self.terms())

    def describe(self) -> str:
        if not self.bounded:
            return "none (the learned shape as it is)"
        return " and ".join(term.describe(limit, self) for term, limit in self.terms())


def check_latency_setting(threads: object, batch: object) -> None:
    """What a latency budget is measured at: whole numbers >= 1 (checked by the Budget and, before any data is
    read, by the run configuration)."""
    for name, value in (("--latency-threads", threads), ("--latency-batch", batch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise AutoscError(f"{name} must be a whole number >= 1, got {value!r}")


def no_budget_message() -> str:
    """What a run without any budget is told: every kind's option, with an example."""
    examples = [t.example for t in TERMS.values()]
    listed = ", ".join(examples[:-1]) + " and/or " + examples[-1] if len(examples) > 1 else examples[0]
    return f"no budget given: pass {listed}"


def parse_budget(
    *,
    human: Cost | None = None,
    convention: str = "standard",
    latency_threads: int = 1,
    latency_batch: int = 1,
    free: bool = False,
    **texts: str | int | None,
) -> Budget:
    """A budget from option text by option name (``budget="60%"``, ``memory="4MiB"``, ``latency="1.5ms"``; an int
    of MACs is read as its digits). A relative limit is a share of ``human``, the human network's cost. ``free``:
    with none given, no budget (the learned shape is not projected)."""
    settings = Budget(convention=convention, latency_threads=latency_threads, latency_batch=latency_batch, free=True)
    limits, implied = {}, {}
    for option, text in texts.items():
        term = term_for_option(option)
        if term is None:
            raise AutoscError(f"unknown budget option {option!r}; known: {', '.join(t.option for t in TERMS.values())}")
        if text is not None:
            figure = term.read(human, settings) if human is not None else None
            limits[term.key] = term.parse(str(text), figure)
            implied.update(term.settings(str(text), figure))
    return replace(settings, limits=limits, free=free and not limits, **implied)
