"""The equal-latency benchmark's picture: per budget, each method's test top-1 against its measured share of the
trained network's p50, one dot per seed and the mean with 2 standard errors.

At equal latency the question is who sits highest near the budget line; a table of means hides how far apart the
seeds are and whether a method bought its accuracy with a larger share, which the dots show at a glance.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from benchmarks.equal_latency import METHODS

COLOURS = {m: f"C{i}" for i, m in enumerate(METHODS)}
MARKERS = dict(zip(METHODS, "o^DsvPX", strict=False))


def points(rows: list[dict], budget: str, final: dict | None) -> dict[str, list[tuple[float, float]]]:
    """Per method at ``budget``: (share, top-1 %) of each seed, the share timed together (``--measure``) where it
    was, else the job's own."""
    shares = (final or {}).get(budget, {}).get("share", {})
    out: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        if r["budget"] == budget and r.get("share") is not None:
            share = shares.get(f"{r['method']} s{r['seed']}", r["share"])
            out.setdefault(r["method"], []).append((share, 100 * r["acc"]))
    return out


def _error(values: list[float]) -> float:
    return 2 * statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0


def budget_panel(ax, rows: list[dict], budget: str, final: dict | None) -> None:
    """One budget: dots per seed, the mean ± 2 standard errors on both axes, the budget as a vertical line."""
    for method, pts in sorted(points(rows, budget, final).items(), key=lambda kv: METHODS.index(kv[0])):
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        colour, marker = COLOURS[method], MARKERS[method]
        ax.scatter(xs, ys, s=14, color=colour, marker=marker, alpha=0.45)
        ax.errorbar([statistics.fmean(xs)], [statistics.fmean(ys)], xerr=[_error(xs)], yerr=[_error(ys)],
                    marker=marker, markersize=8, capsize=3, color=colour, label=f"{method} ({len(pts)})")  # fmt: skip
    ax.axvline(float(budget.rstrip("%")) / 100, color="k", linewidth=0.8, linestyle="--")
    ax.set_xlabel("measured share of the trained network's p50")
    ax.set_ylabel("top-1 % (test)")
    ax.set_title(f"budget {budget}")
    ax.grid(alpha=0.3)
    # Below the panel, not inside it: inside, the legend covered the seeds' dots it names.
    ax.legend(fontsize=7, title="method (seeds)", title_fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16),
              ncol=3, frameon=False)  # fmt: skip


def plot(rows: list[dict], final: dict | None, path: Path) -> None:
    """One panel per budget, saved to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = list(dict.fromkeys(r["budget"] for r in rows))
    fig, axes = plt.subplots(1, len(budgets), figsize=(max(5.5 * len(budgets), 7.5), 5.4), squeeze=False)
    for ax, budget in zip(axes[0], budgets, strict=True):
        budget_panel(ax, rows, budget, final)
    models = ", ".join(dict.fromkeys(str(r.get("model", "?")) for r in rows))
    fig.suptitle(f"{models} at equal measured latency: accuracy kept from the converged network\n"
                 "(one dot per seed; mean ± 2 standard errors)", fontsize=10)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
