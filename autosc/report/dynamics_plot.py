"""``dynamics.png``: each adaptor's factor s over training, and accuracy and MACs per epoch against the budget.

It answers "did the shape actually learn?" (docs/algorithm.md, "Training": runs were
measured where the alphas never moved) and whether accuracy and cost behaved
while it did. The per-epoch rows are the training log (``metrics.jsonl``), not
part of the report, so a key missing there only leaves its line out.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..adaptor.module import alpha_to_factor
from ..units import format_count
from ._figure import new_figure, save_png
from ._format import budget, model_line
from .schema import Adaptor, Report

DYNAMICS_FIGSIZE = (11.0, 5.5)  # inches: 1320 x 660 px at the report's DPI


def plot_dynamics(report: Report, metrics: list[dict], path: str | os.PathLike) -> None:
    """Draw the factors (left) and accuracy and MACs per epoch (right) from the training log, into a PNG."""
    fig = new_figure(DYNAMICS_FIGSIZE)
    grid = fig.add_gridspec(2, 2, width_ratios=(1.5, 1.0))
    factor_ax = fig.add_subplot(grid[:, 0])
    acc_ax = fig.add_subplot(grid[0, 1])
    macs_ax = fig.add_subplot(grid[1, 1], sharex=acc_ax)
    fallback = float(report.epochs or 1)
    _epoch_axis(factor_ax, _draw_factors(factor_ax, report, metrics), fallback)
    right = _draw_accuracy(acc_ax, report, metrics) + _draw_macs(macs_ax, report, metrics)
    _epoch_axis(macs_ax, right, fallback)
    acc_ax.tick_params(labelbottom=False)
    fig.suptitle(f"{model_line(report)}: learning dynamics")
    save_png(fig, path)


def _epochs(metrics: list[dict]) -> list[float]:
    return [float(m["epoch"]) for m in metrics]


def _initial_factor(a: Adaptor) -> float | None:
    """The factor before training: ``s_start`` as the run wrote it, else derived from ``alpha_start``."""
    if a.s_start is not None:
        return a.s_start
    return None if a.alpha_start is None else alpha_to_factor(a.alpha_start)


def _draw_factors(ax: Any, report: Report, metrics: list[dict]) -> list[float]:
    """One line per adaptor; returns the epochs it drew at, for the x axis."""
    rows = [(e, m["factors"]) for e, m in zip(_epochs(metrics), metrics, strict=True) if m.get("factors")]
    n = max((len(f) for _, f in rows), default=len(report.adaptors))
    start = [_initial_factor(a) for a in report.adaptors][:n]
    start += [None] * (n - len(start))
    drawn = _per_epoch_lines(ax, rows, start, n) if rows else _before_after_lines(ax, report, start)
    names = [a.name for a in report.adaptors]
    for j in range(n):
        ax.plot([], [], "o-", color=f"C{j}", label=names[j] if j < len(names) else f"adaptor {j}")
    if n == 0:
        _empty(ax, "no adaptors")
    else:
        ax.axhline(1.0, color="0.6", lw=0.8, ls="--")
        ax.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=min(n, 4), frameon=False)
    ax.set_ylabel("factor s (1 = human size)")
    ax.set_title(
        "adaptor factor s per epoch (first point: before training)"
        if rows
        else "adaptor factor s, before and after training (no per-epoch log)"
    )
    ax.grid(True, alpha=0.3)
    return drawn


def _per_epoch_lines(
    ax: Any, rows: list[tuple[float, Sequence[float]]], start: list[float | None], n: int
) -> list[float]:
    """Each adaptor's logged factor per epoch, led by its factor before training at epoch - 1."""
    values = _padded([f for _, f in rows], n)
    first = rows[0][0] - 1
    drawn: list[float] = []
    for j in range(n):
        x, y = [e for e, _ in rows], list(values[:, j])
        if start[j] is not None:
            x, y = [first, *x], [start[j], *y]
        ax.plot(x, y, "o-", color=f"C{j}", ms=5 if len(x) <= 25 else 2.5, lw=1.6)
        drawn += x
    return drawn


def _before_after_lines(ax: Any, report: Report, start: list[float | None]) -> list[float]:
    """Without a per-epoch log: a dashed line from each factor before training to the final one."""
    end = float(report.epochs or 1)
    drawn: list[float] = []
    for j, a in enumerate(report.adaptors):
        y = [np.nan if start[j] is None else start[j], a.s]
        ax.plot([0.0, end], y, "o--", color=f"C{j}", ms=5, lw=1.2)
        drawn += [0.0, end]
    return drawn


def _padded(rows: list[Sequence[float]], n: int) -> np.ndarray:
    """Ragged factor lists as an array, NaN where an entry is missing (NaN points are simply not drawn)."""
    out = np.full((len(rows), n), np.nan)
    for i, row in enumerate(rows):
        kept = list(row)[:n]
        out[i, : len(kept)] = [np.nan if v is None else v for v in kept]
    return out


def _series(metrics: list[dict], key: str) -> tuple[list[float], list[float]]:
    pairs = [(e, m[key]) for e, m in zip(_epochs(metrics), metrics, strict=True) if m.get(key) is not None]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _draw_accuracy(ax: Any, report: Report, metrics: list[dict]) -> list[float]:
    """Test and train top-1 per epoch, with the baseline's final accuracy as the line to beat."""
    drawn: list[float] = []
    for key, label, style, color in (("test_acc", "test", "o-", "C0"), ("train_acc", "train", "s--", "0.5")):
        x, y = _series(metrics, key)
        if x:
            ax.plot(x, [100 * v for v in y], style, ms=4, label=label, color=color)
            drawn += x
    if report.baseline is not None:
        base_acc = report.baseline.accuracy
        ax.axhline(100 * base_acc, color="C2", ls=":", lw=1.5, label=f"baseline {100 * base_acc:.2f}%")
    if drawn:
        ax.legend(fontsize=8, loc="best", framealpha=0.9)
        ax.set_ylabel("top-1 %")
    else:
        _empty(ax, "no accuracy logged")
    ax.set_title("accuracy per epoch")
    ax.grid(True, alpha=0.3)
    return drawn


def _draw_macs(ax: Any, report: Report, metrics: list[dict]) -> list[float]:
    """Logged MACs against the budget line, in K/M/G with plain tick labels (no offset notation)."""
    x, y = _series(metrics, "macs")
    cap = budget(report).macs
    top = max([*y, cap or 0]) or 1
    unit, scale = next(((u, f) for u, f in (("G", 1e9), ("M", 1e6), ("K", 1e3)) if top >= f), ("", 1.0))
    if x:
        ax.plot(x, [v / scale for v in y], "o-", ms=4, color="C1", label="MACs of the shape in use")
    if x and cap is not None:
        ax.axhline(cap / scale, color="C3", ls="--", lw=1.5, label=f"budget {format_count(cap)}")
    if x:
        low, high = min([*y, cap or min(y)]) / scale, max([*y, cap or 0]) / scale
        pad = (high - low) * 0.2 or high * 0.02
        ax.set_ylim(low - pad, high + pad)
        ax.legend(fontsize=8, loc="best", framealpha=0.9)
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)
        conv = report.macs.convention
        ax.set_ylabel(f"MACs, {unit} ({conv})" if unit else f"MACs ({conv})")
    else:
        _empty(ax, "no MACs logged")
    ax.set_title("MACs per epoch vs budget" if cap is not None else "MACs per epoch (no MAC budget)")
    ax.grid(True, alpha=0.3)
    return x


def _epoch_axis(ax: Any, xs: list[float], fallback: float) -> None:
    """Whole-epoch ticks, with room around a lone epoch so single points are not pinned to the frame."""
    xs = xs or [fallback]
    low, high = min(xs), max(xs)
    pad = 0.5 if high - low < 2 else 0.04 * (high - low)
    ax.set_xlim(low - pad, high + pad)
    whole = list(range(math.ceil(low), math.floor(high) + 1))
    if 0 < len(whole) <= 12:
        ax.set_xticks(whole)
    else:
        from matplotlib.ticker import MaxNLocator  # matplotlib is imported only to draw (autosc/report/_figure.py)

        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlabel("epoch")


def _empty(ax: Any, message: str) -> None:
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center", color="0.4")
    ax.set_yticks([])
