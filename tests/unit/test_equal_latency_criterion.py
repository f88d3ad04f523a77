"""The equal-latency verdict (benchmarks/equal_latency_criterion.py): shares over several ``--measure`` runs
combined, and the pre-written criterion read off seed-paired rows (benchmarks/RESULTS.md, issue 30)."""

import pytest

from benchmarks.equal_latency_criterion import combine, judge, verdict_table


def _row(method, seed, acc, cpu="AMD EPYC"):
    return {"method": method, "budget": "60%", "seed": seed, "acc": acc, "machine": {"cpu_model": cpu}}


def _final(shares: dict, noise: float = 0.01) -> dict:
    return {"60%": {"share": shares, "noise": dict.fromkeys(shares, noise)}}


def test_combine_means_the_measurements_and_widens_the_noise_by_their_disagreement():
    first = {"60%": {"share": {"a s30": 0.60, "b s30": 0.50}, "noise": {"a s30": 0.01, "b s30": 0.02}}}
    second = {"60%": {"share": {"a s30": 0.70, "b s30": 0.50}, "noise": {"a s30": 0.03, "b s30": 0.01}},
              "35%": {"share": {"a s30": 0.30}, "noise": {"a s30": 0.01}}}
    got = combine([first, second])
    assert got["60%"]["share"] == {"a s30": pytest.approx(0.65), "b s30": pytest.approx(0.50)}
    assert got["60%"]["noise"] == {"a s30": pytest.approx(0.05), "b s30": pytest.approx(0.02)}  # range/2, within
    assert got["60%"]["measurements"] == {"a s30": 2, "b s30": 2}
    assert got["35%"]["share"] == {"a s30": 0.30} and got["35%"]["measurements"] == {"a s30": 1}


def _rows(a_accs, b_accs):
    return [_row("a", 30 + i, x) for i, x in enumerate(a_accs)] + [_row("b", 30 + i, x) for i, x in enumerate(b_accs)]


def test_ahead_by_more_than_two_standard_errors_at_no_higher_share_keeps_more():
    rows = _rows([0.90, 0.91, 0.90, 0.92, 0.91], [0.88, 0.885, 0.89, 0.895, 0.88])
    final = _final({f"{m} s{s}": 0.58 for m in "ab" for s in range(30, 35)})
    j = judge(rows, final, "60%", "a", "b")
    assert j["top1"].n == 5 and j["top1"].mean == pytest.approx(2.2)
    assert j["reading"].startswith("a keeps more")
    assert judge(rows, final, "60%", "b", "a")["reading"].startswith("a keeps more")  # either order


def test_a_lead_bought_with_a_share_above_the_noise_is_no_claim():
    rows = _rows([0.90, 0.91, 0.90, 0.92, 0.91], [0.88, 0.885, 0.89, 0.895, 0.88])
    final = _final({f"a s{s}": 0.66 for s in range(30, 35)} | {f"b s{s}": 0.58 for s in range(30, 35)})
    assert judge(rows, final, "60%", "a", "b")["reading"].startswith("no claim: a is ahead at a share 0.080")


def test_a_difference_inside_two_standard_errors_is_a_tie_and_names_the_faster():
    rows = _rows([0.90, 0.88, 0.91, 0.87, 0.90], [0.89, 0.89, 0.90, 0.88, 0.89])
    final = _final({f"a s{s}": 0.50 for s in range(30, 35)} | {f"b s{s}": 0.58 for s in range(30, 35)})
    assert judge(rows, final, "60%", "a", "b")["reading"] == "tie; a at a share 0.080 lower"


def test_fewer_than_five_seeds_or_other_cpus_give_no_verdict():
    rows = _rows([0.90, 0.91, 0.92], [0.80, 0.81, 0.82]) + [_row("a", 33, 0.9), _row("b", 33, 0.8, cpu="Intel Xeon")]
    final = _final({f"{m} s{s}": 0.58 for m in "ab" for s in range(30, 34)})
    assert judge(rows, final, "60%", "a", "b")["reading"] == "no verdict: 3 seeds of 5"  # s33 on two CPUs
    assert judge(rows[:1] + rows[3:4], final, "60%", "a", "b") is None  # one pair: nothing to judge
    unmeasured = _final({f"a s{s}": 0.58 for s in range(30, 33)})  # b never timed together: not judged
    assert judge(rows, unmeasured, "60%", "a", "b") is None
    assert "| a − b | 3 |" in verdict_table(rows, final, ("a", "b"))


def test_the_noise_is_read_over_the_paired_seeds_only():
    rows = _rows([0.90, 0.91, 0.90, 0.92, 0.91], [0.88, 0.885, 0.89, 0.895, 0.88]) + [_row("a", 35, 0.9)]
    final = _final({f"{m} s{s}": 0.58 for m in "ab" for s in range(30, 35)} | {"a s35": 0.58})
    final["60%"]["noise"]["a s35"] = 1.0  # an unpaired seed's noisy timing must not widen the tolerance
    assert judge(rows, final, "60%", "a", "b")["tol"] == 0.01
