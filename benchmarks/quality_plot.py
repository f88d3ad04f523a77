"""The quality benchmark's plot: accuracy against MACs per method (left) and, seed by seed, autosc minus the
baselines it ties with (right).

The right panel is the one that decides the claim: with one run's noise near a point, the spread of the pairs
around zero shows at a glance whether a gain is larger than that noise.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from benchmarks.quality_jobs import METHODS, budget_order, variant_name
from benchmarks.quality_tables import autosc_pairs, mean_std

COLOURS = {"autosc": "C0", "uniform": "C1", "human-width": "C2", "human-res": "C3", "both": "C4", "standard": "C5"}
MARKERS = {"autosc": "o", "uniform": "s", "human-width": "^", "human-res": "v", "both": "D", "standard": "P"}


def accuracy_panel(ax, rows: list[dict], data: str) -> None:
    """Mean ± std top-1 over seeds against MACs including resize, one line per method run with the defaults."""
    for method in METHODS:
        rs = [r for r in rows if r["method"] == method and not variant_name(r)]
        if not rs:
            continue
        xs, ys, es = [], [], []
        for b in sorted({r["budget"] for r in rs}, key=budget_order):
            br = [r for r in rs if r["budget"] == b]
            m, s = mean_std([100 * r["accuracy"] for r in br])
            xs.append(statistics.fmean((r["macs"] + r["resize_macs"]) / 1e6 for r in br))
            ys.append(m)
            es.append(s)
        ax.errorbar(xs, ys, yerr=es, marker=MARKERS[method], capsize=3, label=method, color=COLOURS[method])
    ax.set_xlabel("MACs incl. resize (M)")
    ax.set_ylabel(f"top-1 % ({data} test, mean ± std over seeds)")
    ax.set_title("Accuracy at equal budget")
    ax.grid(alpha=0.3)
    ax.legend()


def pairs_panel(ax, rows: list[dict]) -> None:
    """One dot per seed of autosc minus uniform and minus human-width, with the mean ± 2 standard errors."""
    pairs = {k: p for k, p in autosc_pairs(rows).items() if k[1] in ("uniform", "human-width") and k[0] != "all"}
    budgets = sorted({b for b, _ in pairs}, key=budget_order)
    for (budget, method), p in pairs.items():
        x = budgets.index(budget) + (-0.15 if method == "uniform" else 0.15)
        colour = COLOURS[method]
        ax.scatter([x + 0.03 * (i - p.n / 2) for i in range(p.n)], p.diffs, s=14, color=colour, alpha=0.6)
        ax.errorbar([x], [p.mean], yerr=[2 * p.std / p.n**0.5], fmt="_", markersize=16, capsize=4, color=colour)
    for method in sorted({m for _, m in pairs}, key=METHODS.index):
        ax.scatter([], [], color=COLOURS[method], label=f"autosc minus {method} (bar: mean ± 2 std errors)")
    ax.axhline(0, color="k", linewidth=0.8)
    ax.set_xticks(range(len(budgets)), budgets)
    ax.set_xlabel("budget")
    ax.set_ylabel("difference, points (one dot per seed)")
    ax.set_title("Seed by seed (same images, same order)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)


def plot(rows: list[dict], path: Path, data: str) -> None:
    """Both panels side by side, saved to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11.5, 4.4), gridspec_kw={"width_ratios": [1.2, 1]})
    accuracy_panel(left, rows, data)
    pairs_panel(right, rows)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
