"""What a budget kind is: one :class:`BudgetTerm` per capped quantity, found in one registry (docs/architecture.md,
To add a budget kind).

A term says which option sets it and how that text reads, which figure of a :class:`~autosc.cost.shape_cost.Cost`
it caps, and how it describes itself (the plan, the report, the run-folder name, the warnings). Everything that
handles budgets (fitting, reachability, the relaxed cost, ``--width auto``, the report) loops over the terms of a
:class:`~autosc.cost.budget.Budget`, so a new kind is one module and one :func:`register_term`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from ...errors import AutoscError

if TYPE_CHECKING:
    from ...report.schema import Report
    from ..budget import Budget
    from ..shape_cost import Cost


class BudgetTerm:
    """One kind of budget. Subclasses set the class attributes and :meth:`parse_value`, :meth:`read`, :meth:`format`."""

    key: ClassVar[str]  # its name in Budget.limits, in the budget of plan/run/report files ("macs")
    option: ClassVar[str]  # the configuration field and CLI option that sets it ("budget": --budget)
    help: ClassVar[str] = ""  # the option's help text
    option_type: ClassVar[Any] = str | None  # what the option holds in a config (the CLI always reads text)
    example: ClassVar[str] = ""  # what to type, for the message of a run without any budget ("300M or 60%")
    noun: ClassVar[str] = ""  # in "% of the <noun> budget used"
    relative: ClassVar[bool] = False  # "60%" is read as a share of the human network's figure
    #: the figure is exact, so a frozen network over the limit is a bug worth a loud warning; a measured one
    #: (latency) can be over within its noise, and says so in its own sentence instead
    exact: ClassVar[bool] = True

    def parse_value(self, text: str) -> float | int:
        """The absolute limit ``text`` states (grammar errors name the option)."""
        raise NotImplementedError

    def read(self, cost: Cost, budget: Budget) -> float | int | None:
        """The figure of ``cost`` this term caps (None: the cost cannot say, e.g. no latency model)."""
        raise NotImplementedError

    def format(self, value: float) -> str:
        """``25.00M MACs``: a figure in this term's unit, as the CLI, plan and report print it."""
        raise NotImplementedError

    # -- shared behaviour ---------------------------------------------------------------------------------
    def is_share(self, text: str) -> bool:
        """Whether ``text`` is relative (a share of the human network's figure) rather than an absolute limit."""
        return self.relative and str(text).strip().endswith("%")

    def parse(self, text: str, human: float | None) -> float | int:
        """``text`` as a limit; a relative one (``60%``) is a share of ``human`` (the human network's figure)."""
        stripped = str(text).strip()
        if not self.is_share(stripped):
            return self.parse_value(stripped)
        fraction = self.parse_fraction(stripped)
        if human is None:
            raise AutoscError(f"budget {text!r} is relative, but the human network's {self.noun} is not known here")
        return int(fraction * human) if isinstance(human, int) else fraction * human

    def parse_fraction(self, text: str) -> float:
        """``60%`` -> 0.6 (terms with ``relative`` override this with their own grammar)."""
        raise AutoscError(f"--{self.option.replace('_', '-')} does not take a percentage, got {text!r}")

    def check(self, text: str) -> None:
        """Refuse bad grammar before any data is read (a relative value is checked without the human figure)."""
        if self.is_share(text):
            self.parse_fraction(str(text).strip())
        else:
            self.parse_value(str(text).strip())

    def describe(self, limit: float, budget: Budget) -> str:
        """The limit in words, as ``Budget.describe`` joins them (``25.00M MACs``)."""
        return self.format(limit)

    def tag(self, text: str) -> str:
        """What the limit adds to the default run-folder name: the text as typed (``25M``, ``4MiB``, ``60%``)."""
        return str(text)

    def fits(self, cost: Cost, limit: float, budget: Budget) -> bool:
        value = self.read(cost, budget)
        return value is not None and value <= limit

    def shortfall(self, floor: Cost, limit: float, budget: Budget) -> str | None:
        """Why the smallest shape misses the limit, or None when it meets it."""
        value = self.read(floor, budget)
        if value is None:
            raise AutoscError(f"a {self.noun} budget needs the cost model to predict {self.noun}, and it cannot here")
        return None if value <= limit else f"{self.format(value)} against {self.format(limit)}"

    def report_figures(self, report: Report) -> dict[str, float | None]:
        """The capped figure of the human, final and baseline networks in a report (None where not recorded)."""
        return {}

    def settings(self, text: str, human: float | None) -> dict[str, Any]:
        """Budget settings ``text`` implies besides the limit (the latency term keeps the share and the reference
        it was read against, so the limit can follow the reference when it is timed again)."""
        return {}

    def option_flag(self) -> str:
        return "--" + self.option.replace("_", "-")


#: Every budget kind by key, in registration order (the order of messages, descriptions and report rows).
TERMS: dict[str, BudgetTerm] = {}


def register_term(cls: type[BudgetTerm]) -> type[BudgetTerm]:
    """Class decorator: make a budget kind known everywhere budgets are handled. A key or option used twice is refused."""
    if cls.key in TERMS:
        raise ValueError(f"budget term {cls.key!r} is already registered")
    if any(t.option == cls.option for t in TERMS.values()):
        raise ValueError(f"budget option {cls.option!r} is already taken")
    TERMS[cls.key] = cls()
    return cls


def unregister_term(key: str) -> None:
    """Remove a term (for tests that register one of their own)."""
    TERMS.pop(key, None)


def get_term(key: str) -> BudgetTerm:
    try:
        return TERMS[key]
    except KeyError:
        raise AutoscError(f"unknown budget kind {key!r}; known: {', '.join(TERMS)}") from None


def term_for_option(option: str) -> BudgetTerm | None:
    return next((t for t in TERMS.values() if t.option == option), None)
