"""``shape.png``: spatial size per cell, human vs learned, with the adaptors marked (docs/algorithm.md, "The run folder").

This is the picture of the seed paper's figures; it shows at a glance whether
the learned network pays its MACs early (high resolution) or late (depth), and
where each shape adaptor (docs/algorithm.md, "The shape adaptor") cut the size.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from ..units import format_count
from ._figure import new_figure, save_png
from ._format import budget_text, model_line, size_change
from .schema import Report

SHAPE_FIGSIZE = (10.0, 5.0)  # inches: 1200 x 600 px at the report's DPI
MAX_TICK_LABELS = 36  # more cell names than this are thinned to every k-th
AXES_WIDTH_PX = 1050  # roughly, inside SHAPE_FIGSIZE: to judge how crowded the cell names are
LABEL_LEVEL_HEIGHT = 0.14  # share of the data's height kept free above it per stacked adaptor label
#: adaptor kind -> (colour, legend label): a standard adaptor replaces a human resize (docs/algorithm.md, Modes: standard and both)
KIND_STYLE = {
    "autosc": ("C3", "shape adaptor (cell in red)"),
    "standard": ("C2", "adaptor replacing a human resize (cell in green)"),
    "input": ("C0", "input adaptor: the image resized before this cell (blue)"),
}


def plot_shape(report: Report, path: str | os.PathLike) -> None:
    """Draw ``report.layers`` (human and learned size per cell) with the adaptors marked, into a PNG at ``path``."""
    fig = new_figure(SHAPE_FIGSIZE)
    _draw_shape(fig.add_subplot(), report)
    save_png(fig, path)


def _draw_shape(ax: Any, report: Report) -> None:
    human, learned = report.layers["human"], report.layers["learned"]
    names = [e["name"] for e in (human if len(human) >= len(learned) else learned)]
    human_sizes, learned_sizes = [e["size"] for e in human], [e["size"] for e in learned]
    square = all(len(s) < 2 or s[0] == s[1] for s in human_sizes + learned_sizes)
    for sizes, label, style in (
        (human_sizes, "human", {"color": "0.72", "lw": 5.0}),  # wide and pale: shows around the learned line
        (learned_sizes, "learned (AutoSC)", {"color": "C0", "lw": 2.0}),
    ):
        _step(ax, sizes, 0, label + ("" if square else ", height"), style, "-")
        if not square:
            _step(ax, sizes, 1, label + ", width", style, "--")
    top = max((max(s) for s in human_sizes + learned_sizes if s), default=1)
    _cell_ticks(ax, names, _mark_adaptors(ax, report, names, top))
    ax.set_xlabel("cell (execution order)")
    ax.set_ylabel("spatial size, px" + (" (height = width)" if square else " (solid: height, dashed: width)"))
    ax.grid(True, axis="y", alpha=0.3)
    ncol = len(ax.get_legend_handles_labels()[0])
    if ncol:  # above the axes, so it never hides data
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=ncol, fontsize=9, frameon=False)
    ax.set_title(_shape_title(report), pad=24)


def _step(ax: Any, sizes: list[list[int]], dim: int, label: str, style: dict, ls: str) -> None:
    """A staircase: cell i's output size holds from x = i to i + 1, so each drop sits on the cell that makes it."""
    if not sizes:
        return
    y = [s[min(dim, len(s) - 1)] for s in sizes]
    x = np.arange(len(y) + 1)
    ax.step(x, y + y[-1:], where="post", ls=ls, label=label, **style)
    ax.plot(x[:-1], y, "o", ms=3, color=style["color"])


def _adaptor_position(name: str, names: list[str]) -> int | None:
    """Index of the adaptor's cell: the exact name, else the longest cell name that prefixes it."""
    if name in names:
        return names.index(name)
    prefixes = [i for i, n in enumerate(names) if name.startswith(n + ".")]
    return max(prefixes, key=lambda i: len(names[i])) if prefixes else None


def _mark_adaptors(ax: Any, report: Report, names: list[str], top: float) -> dict[int, str]:
    """A dotted line per adaptor with its factor and size change; returns the marked cell indices and colours.

    Labels of neighbouring adaptors are stacked downwards instead of overlapping,
    and the y range grows to keep the stack clear of the data.
    """
    placed = sorted(
        ((x, a) for a in report.adaptors if (x := _adaptor_position(a.name, names)) is not None),
        key=lambda p: p[0],
    )
    levels = _label_levels([x for x, _ in placed], gap=(len(names) + 1) / 10)
    ax.set_ylim(0, top * (1.12 + LABEL_LEVEL_HEIGHT * (max(levels, default=0) + 1)))
    for (x, a), level in zip(placed, levels, strict=True):
        colour = KIND_STYLE[a.kind or "autosc"][0]
        ax.axvline(x, color=colour, ls=":", lw=1.4)
        ax.annotate(
            f"s={a.s:.3f}\n{size_change(a.human_size, a.size)}",
            xy=(x, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -4 - 25 * level),
            textcoords="offset points",
            va="top",
            ha="left",
            fontsize=8,
            color=colour,
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85},
        )
    for kind in dict.fromkeys(a.kind or "autosc" for _, a in placed):  # one legend entry per kind present
        ax.plot([], [], color=KIND_STYLE[kind][0], ls=":", lw=1.4, label=KIND_STYLE[kind][1])
    return {x: KIND_STYLE[a.kind or "autosc"][0] for x, a in placed}


def _label_levels(xs: list[int], gap: float) -> list[int]:
    """0 for a label with room to its left, one deeper than its neighbour's when closer than ``gap``."""
    levels: list[int] = []
    for i, x in enumerate(xs):
        levels.append(levels[-1] + 1 if i and x - xs[i - 1] < gap else 0)
    return levels


def _cell_ticks(ax: Any, names: list[str], marked: dict[int, str]) -> None:
    """Cell names as ticks, thinned to every k-th when crowded; adaptor cells always shown, in red."""
    step = max(1, math.ceil(len(names) / MAX_TICK_LABELS))
    ticks = {i for i in range(0, len(names), step) if step == 1 or all(abs(i - m) > 1 for m in marked)}
    ticks = sorted(ticks | set(marked))
    closest = min(np.diff(ticks), default=len(names)) * AXES_WIDTH_PX / (len(names) + 1)  # px between names
    rotation = 60 if closest >= 24 else 90  # steep enough that neighbouring names cannot overlap
    ax.set_xticks(ticks, [names[i] for i in ticks], rotation=rotation, ha="right", rotation_mode="anchor", fontsize=8)
    for label, i in zip(ax.get_xticklabels(), ticks, strict=True):
        if i in marked:
            label.set_color(marked[i])
    ax.set_xlim(-0.5, len(names) + 0.5)


def _shape_title(report: Report) -> str:
    macs = (
        f"MACs: human {format_count(report.macs.human)} → AutoSC {format_count(report.macs.final_total)}"
        f" (width {report.width:.2f}, incl. resize)"
    )
    return f"{model_line(report)}, budget {budget_text(report)}\n{macs}"
