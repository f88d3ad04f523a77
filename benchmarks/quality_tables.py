"""The quality benchmark's tables, read from results rows only: the grid's summary, the pairs that decide the
comparison (same budget and seed: same images, same order), the sweep's and a study's differences.

Every table is Markdown, as ``benchmarks/RESULTS.md`` quotes it.
"""

from __future__ import annotations

import statistics

from benchmarks.quality_jobs import METHODS, budget_order, variant_name
from benchmarks.runner import Paired, paired


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def pair_row(cells: list[str], p: Paired) -> str:
    """One line of a paired table: the leading cells, then pairs, mean ± std, std error and how many are ahead."""
    se = p.std / p.n**0.5  # 0.00 for one pair, as the committed tables print it
    return f"| {' | '.join(cells)} | {p.n} | {p.mean:+.2f} ± {p.std:.2f} | {se:.2f} | {p.ahead} of {p.n} |"


def summary_line(budget: str, name: str, rs: list[dict]) -> tuple[str, dict]:
    """One (budget, method) cell of the grid: its table line and its figures."""
    acc = mean_std([100 * r["accuracy"] for r in rs])
    p50 = [r["latency_p50_ms"] for r in rs if r.get("latency_p50_ms")]
    macs = statistics.fmean(r["macs"] for r in rs)
    extra = f" (w {rs[0]['width']:g}" + (f", {rs[0]['input']} px)" if rs[0].get("input") else ")")
    line = (
        f"| {budget} | {name}{extra} | {len(rs)} | {acc[0]:.2f} ± {acc[1]:.2f} | {macs / 1e6:.2f}M | "
        f"{statistics.fmean(r['resize_macs'] for r in rs) / 1e6:.2f}M | {rs[0]['params'] / 1e6:.3f}M | "
        + (f"{statistics.fmean(p50):.3f} |" if p50 else "- |")
    )
    return line, {"budget": budget, "method": name, "n": len(rs), "mean": acc[0], "std": acc[1], "macs": macs}


def summarise(rows: list[dict]) -> tuple[str, list[dict]]:
    """The table of every (budget, method and settings) cell, then the paired table if the grid's runs are in."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        name = " ".join(filter(None, (r["method"], variant_name(r))))
        groups.setdefault(f"{r['budget']}|{name}", []).append(r)
    lines = ["| budget | method | seeds | top-1 % (mean ± std) | MACs (conv+linear) | +resize | params | p50 ms |"]
    lines.append("|---|---|---|---|---|---|---|---|")
    summary = []
    for key, rs in sorted(groups.items(), key=lambda kv: (budget_order(kv[0].split("|")[0]), kv[0])):
        line, figures = summary_line(*key.split("|"), rs)
        lines.append(line)
        summary.append(figures)
    if any(r["method"] == "autosc" and not variant_name(r) for r in rows):  # a study may have none
        lines += ["", paired_table(rows)]
    return "\n".join(lines), summary


def paired_sweep(rows: list[dict]) -> str:
    """Each sweep setting minus the defaults, seed by seed."""
    default = {r["seed"]: 100 * r["accuracy"] for r in rows if not variant_name(r)}
    groups: dict[str, dict[int, float]] = {}
    for r in rows:
        if name := variant_name(r):
            groups.setdefault(name, {})[r["seed"]] = 100 * r["accuracy"]
    out = ["| setting | seeds | minus defaults, points (mean ± std) |", "|---|---|---|"]
    for name, accs in groups.items():
        if (p := paired(accs, default)).n:
            out.append(f"| {name} | {p.n} | {p.mean:+.2f} ± {p.std:.2f} |")
    return "\n".join(out)


def accuracies(rows: list[dict]) -> dict[tuple[str, str, int], float]:
    """{(budget, method, seed): top-1 %} of the rows run with the defaults: the keys that make two runs a pair."""
    return {(r["budget"], r["method"], r["seed"]): 100 * r["accuracy"] for r in rows if not variant_name(r)}


def of(acc: dict[tuple[str, str, int], float], method: str, budgets: set[str]) -> dict[tuple[str, int], float]:
    """{(budget, seed): top-1 %} of one method at ``budgets``: one side of a pairing."""
    return {(b, s): v for (b, m, s), v in acc.items() if m == method and b in budgets}


def autosc_pairs(rows: list[dict]) -> dict[tuple[str, str], Paired]:
    """{(budget, baseline): autosc minus that baseline, seed by seed}, over the rows run with the defaults;
    budget ``"all"`` pools every budget's pairs when there are several."""
    acc = accuracies(rows)
    budgets = sorted({b for b, _, _ in acc}, key=budget_order)
    pairs: dict[tuple[str, str], Paired] = {}
    for budget in [*budgets, "all"] if len(budgets) > 1 else budgets:
        at = set(budgets) if budget == "all" else {budget}
        for method in METHODS[1:]:
            if (p := paired(of(acc, "autosc", at), of(acc, method, at))).n:
                pairs[(budget, method)] = p
    return pairs


def paired_table(rows: list[dict]) -> str:
    """autosc minus each other method, seed by seed (same seed: same training images, same order).

    The last rows pool every budget's pairs: one run's noise (1-2 points here) is larger than the effects, so
    the pooled mean and its standard error are the figure that can tell a small gain from none.
    """
    out = ["| budget | autosc minus | pairs | difference, points (mean ± std) | std error | autosc ahead |"]
    out.append("|---|---|---|---|---|---|")
    out += [pair_row([budget, method], p) for (budget, method), p in autosc_pairs(rows).items()]
    return "\n".join(out)


def paired_study(rows: list[dict], grid: list[dict]) -> str:
    """Each study variant minus the grid's runs of the same budget and seed (same images, same order).

    A variant is judged against the defaults (did the change help?) and against the width-scaled human network
    (does the changed method beat it?), per budget and pooled, as the grid's own paired table does.
    """
    acc = accuracies(grid)
    variants: dict[str, dict[tuple[str, int], float]] = {}
    for r in rows:
        variants.setdefault(variant_name(r), {})[(r["budget"], r["seed"])] = 100 * r["accuracy"]
    out = ["| variant | budget | minus | pairs | difference, points (mean ± std) | std error | variant ahead |"]
    out.append("|---|---|---|---|---|---|---|")
    for name, runs in variants.items():
        budgets = sorted({b for b, _ in runs}, key=budget_order)
        for method, label in (("autosc", "defaults"), ("uniform", "uniform"), ("human-width", "human-width")):
            for budget in [*budgets, "all"] if len(budgets) > 1 else budgets:
                at = set(budgets) if budget == "all" else {budget}
                if (p := paired({k: v for k, v in runs.items() if k[0] in at}, of(acc, method, at))).n:
                    out.append(pair_row([name, budget, label], p))
    return "\n".join(out)
