"""The equal-latency benchmark's verdict: shares from every ``--measure`` combined, and the pre-written criterion
(benchmarks/RESULTS.md, issue 30) applied to every pair of methods, from the rows alone.

One ``--measure`` is one state of a shared host, whose speed drifts and does not slow every network alike
(RESULTS.md, the first and second ``--measure``): a share is the mean over measurements, and its noise includes
how far the measurements disagree, so a claim must hold across host states, not in one of them.
"""

from __future__ import annotations

import itertools
import statistics

from benchmarks.runner import cpu_of, paired

#: Pairs the criterion judges need at least this many seeds (RESULTS.md, issue 30: "over at least 5 seeds").
MIN_PAIRS = 5


def combine(measurements: list[dict]) -> dict:
    """Per budget, each network's share as the mean of every measurement's median, and its noise as the larger of
    the widest within-measurement noise and half the range between measurements."""
    out: dict[str, dict] = {}
    for budget in dict.fromkeys(b for m in measurements for b in m):
        at = [m[budget] for m in measurements if budget in m]
        nets = dict.fromkeys(k for m in at for k in m["share"])
        shares = {k: [m["share"][k] for m in at if k in m["share"]] for k in nets}
        within = {k: max(m["noise"][k] for m in at if k in m["noise"]) for k in nets}
        out[budget] = {
            "share": {k: statistics.fmean(v) for k, v in shares.items()},
            "noise": {k: max(within[k], (max(v) - min(v)) / 2) for k, v in shares.items()},
            "measurements": {k: len(v) for k, v in shares.items()},
            "machine": at[-1].get("machine"), "dates": [m.get("machine", {}).get("date") for m in at],
        }  # fmt: skip
    return out


def judge(rows: list[dict], final: dict, budget: str, a: str, b: str) -> dict | None:
    """``a − b`` at ``budget``: the seed-paired top-1 (points) and share differences, the larger of the two
    methods' share noises (each the mean over the paired seeds), and the criterion's reading; ``None`` when fewer
    than two seeds pair."""
    at = final.get(budget, {})
    shares, noise = at.get("share", {}), at.get("noise", {})

    def by_seed(method: str, value) -> dict:
        return {(cpu_of(r), r["seed"]): value(r) for r in rows if r["budget"] == budget and r["method"] == method
                and f"{method} s{r['seed']}" in shares}  # fmt: skip

    top1 = paired(by_seed(a, lambda r: 100 * r["acc"]), by_seed(b, lambda r: 100 * r["acc"]))
    if top1.n < 2:
        return None
    share = paired(*(by_seed(m, lambda r, m=m: shares[f"{m} s{r['seed']}"]) for m in (a, b)))
    tol = max(statistics.fmean(v for k, v in by_seed(m, lambda r, m=m: noise[f"{m} s{r['seed']}"]).items()
                               if k in top1.seeds) for m in (a, b))  # fmt: skip
    return {"a": a, "b": b, "top1": top1, "share": share, "tol": tol, "reading": _reading(top1, share, tol, a, b)}


def _reading(top1, share, tol: float, a: str, b: str) -> str:
    """The criterion in words: ahead by more than 2 SE over ``MIN_PAIRS`` seeds, at a share not above the other's
    by more than the larger noise; else a tie, or no claim where the share is what differs."""
    if top1.n < MIN_PAIRS:
        return f"no verdict: {top1.n} seeds of {MIN_PAIRS}"
    if abs(top1.mean) <= 2 * top1.se:  # a tie in top-1; at equal accuracy the faster one is worth naming
        faster = b if share.mean > tol else a if share.mean < -tol else None
        return f"tie; {faster} at a share {abs(share.mean):.3f} lower" if faster else "tie"
    ahead = a if top1.mean > 0 else b
    extra = share.mean if ahead == a else -share.mean
    if extra > tol:
        return f"no claim: {ahead} is ahead at a share {extra:.3f} higher (noise {tol:.3f})"
    return f"{ahead} keeps more ({abs(top1.mean) / top1.se:.1f} SE)"


def verdict_table(rows: list[dict], final: dict, methods: tuple[str, ...]) -> str:
    """Per budget, every pair of methods with at least two paired seeds, judged by :func:`judge`."""
    lines = []
    for budget in dict.fromkeys(r["budget"] for r in rows):
        found = [m for m in methods if any(r["budget"] == budget and r["method"] == m for r in rows)]
        judged = [j for a, b in itertools.combinations(found, 2) if (j := judge(rows, final, budget, a, b))]
        if not judged:
            continue
        lines += [f"\nbudget {budget}: the criterion on every pair (shares over "
                  f"{len(final.get(budget, {}).get('dates', []))} --measure)",
                  "| A − B | pairs | top-1 | share | noise | by the criterion |", "|---|---|---|---|---|---|"]  # fmt: skip
        lines += [f"| {j['a']} − {j['b']} | {j['top1'].n} | {j['top1']} | {j['share'].mean:+.3f} ± "
                  f"{j['share'].se:.3f} | {j['tol']:.3f} | {j['reading']} |" for j in judged]  # fmt: skip
    return "\n".join(lines)
