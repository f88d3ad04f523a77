"""Small text helpers shared by ``report.md`` and the pictures: sizes, shares, accuracy, tables.

They live in one place so the markdown and the picture titles write a number the
same way; the budget text in particular comes from :meth:`Budget.describe`, the
one wording the CLI uses too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..cost.budget import Budget
from ..cost.counters import CONVENTIONS
from .schema import Report

DASH = "—"


def budget(report: Report) -> Budget:
    """The run's budget as the typed :class:`Budget` (``report.budget`` is its ``to_dict()``)."""
    return Budget.from_dict(report.budget)


def budget_text(report: Report) -> str:
    """E.g. ``25.00M MACs``: the budget in the words the CLI prints, so report and terminal agree."""
    return budget(report).describe()


def model_line(report: Report) -> str:
    return f"{report.model} on {report.data}"


def convention(report: Report) -> str:
    """What the MAC counts include, named in the table so two reports are never compared across conventions."""
    name = report.macs.convention
    return CONVENTIONS.get(name, f"{name} convention")


def pct(part: float, whole: float) -> str:
    """Share with one decimal, e.g. ``95.5%``."""
    return f"{100 * part / whole:.1f}%"


def acc(a: float | None) -> str:
    """Top-1 with two decimals: run-to-run gaps are often under a tenth of a point; a dash when not measured."""
    return DASH if a is None else f"{100 * a:.2f}%"


def size(s: Sequence[int]) -> str:
    return "×".join(str(int(v)) for v in s)


def size_change(human: Sequence[int], learned: Sequence[int]) -> str:
    """``32→27`` for square maps, ``64×96→51×77`` otherwise: as short as a picture label can be."""
    if all(len(s) == 2 and s[0] == s[1] for s in (human, learned)):
        return f"{int(human[0])}→{int(learned[0])}"
    return f"{size(human)}→{size(learned)}"


def duration(seconds: float) -> str:
    """``20 min 34 s``: training time at the precision a reader cares about."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{seconds:.1f} s"


def _cell(text: Any) -> str:
    """A markdown table cell: pipes escaped so a value cannot break the table."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table; every cell escaped, so names with pipes or newlines cannot break it."""
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
