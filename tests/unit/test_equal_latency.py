"""The equal-latency benchmark's table (benchmarks/equal_latency.py) from rows alone: paired differences to
autosc's default, shares timed together preferred to each job's own; a budget autosc refuses skips its job."""

from pathlib import Path

from autosc.errors import UnreachableBudget
from benchmarks import equal_latency
from benchmarks.equal_latency import METHODS, summarise


def _row(method, seed, acc, share, cpu="AMD EPYC"):
    return {"method": method, "budget": "60%", "seed": seed, "acc": acc, "acc_before": None, "share": share,
            "macs": 1e6, "params": 1e5, "seconds": 60, "teacher": "t", "teacher_acc": 0.9,
            "machine": {"cpu_model": cpu}}  # fmt: skip


def test_the_table_pairs_each_method_with_autosc_shape_by_seed():
    rows = [_row("autosc-shape", s, 0.80 + 0.01 * s, 0.58) for s in (30, 31, 32)]
    rows += [_row("uniform", s, 0.79 + 0.01 * s, 0.59) for s in (30, 31, 32)]
    text = summarise(rows, None)
    line = next(x for x in text.splitlines() if x.startswith("| uniform"))
    assert "-1.00 ± 0.00" in line and "0.590" in line
    timed = summarise(rows, {"60%": {"share": {f"uniform s{s}": 0.55 for s in (30, 31, 32)}}})
    assert "0.550" in next(x for x in timed.splitlines() if x.startswith("| uniform"))
    assert METHODS[0] == "autosc-shape"


def test_the_table_counts_the_networks_within_the_budget_and_its_noise():
    """A peer chosen within the budget can measure over it when timed with the rest: the table says how many met it
    (the share timed together at most the budget's plus that measurement's noise, else the job's own share)."""
    rows = [_row("uniform", s, 0.8, share) for s, share in ((30, 0.59), (31, 0.64), (32, 0.70))]
    cells = next(x for x in summarise(rows, None).splitlines() if x.startswith("| uniform")).split(" | ")
    assert cells[7] == "1/3"  # each job's own share: only 0.59 is within 60%
    final = {"60%": {"share": {"uniform s30": 0.61, "uniform s31": 0.62, "uniform s32": 0.70},
                     "noise": {"uniform s30": 0.02, "uniform s31": 0.01, "uniform s32": 0.05}}}  # fmt: skip
    cells = next(x for x in summarise(rows, final).splitlines() if x.startswith("| uniform")).split(" | ")
    assert cells[7] == "1/3"  # 0.61 within its noise; 0.62 over by more than 0.01; 0.70 over by more than 0.05


def test_pairs_are_formed_only_within_one_cpu_model():
    rows = [_row("autosc-shape", s, 0.80, 0.58) for s in (30, 31, 32)]
    rows += [_row("uniform", s, 0.78, 0.59) for s in (30, 31)] + [_row("uniform", 32, 0.90, 0.59, cpu="Intel Xeon")]
    line = next(x for x in summarise(rows, None).splitlines() if x.startswith("| uniform"))
    assert "-2.00 ± 0.00 (2 pairs)" in line and "AMD EPYC, Intel Xeon" in line  # seed 32 ran on another CPU: not paired


def test_a_budget_refused_at_planning_skips_the_job(monkeypatch, tmp_path, capsys):
    def refuse(*args, **kwargs):
        raise UnreachableBudget("budget latency <= 1.27 ms is impossible: the smallest reachable cost ...")

    monkeypatch.setattr(equal_latency, "autosc_job", refuse)
    job = {"method": "autosc-shape", "budget": "35%", "seed": 31, "model": "mobilenet_v2_cifar"}
    assert equal_latency.run_job(None, job, tmp_path, tmp_path / "choices.json") is None  # no row: tried again
    assert "35% s31 autosc-shape: refused at planning: budget latency" in capsys.readouterr().out


def test_the_plot_places_each_seed_at_its_timed_together_share(tmp_path):
    from benchmarks.equal_latency_plot import plot, points

    rows = [_row("autosc-shape", s, 0.80, 0.58) for s in (30, 31)] + [_row("uniform", 30, 0.82, 0.59)]
    pts = points(rows, "60%", {"60%": {"share": {"uniform s30": 0.55}}})
    assert pts == {"autosc-shape": [(0.58, 80.0), (0.58, 80.0)], "uniform": [(0.55, 82.0)]}  # measured, else own
    plot(rows, None, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 10_000


def test_shares_are_the_median_of_rounds_timed_together(monkeypatch):
    rounds = iter([{"trained": 2.0, "a": 1.0}, {"trained": 1.0, "a": 0.7}, {"trained": 4.0, "a": 2.0}])
    monkeypatch.setattr(equal_latency, "onnx_p50s", lambda nets, *args, **kwargs: next(rounds))
    got = equal_latency.shares_in_rounds({"trained": None, "a": None}, 1, runs=5)
    assert got["share"] == {"trained": 1.0, "a": 0.5}  # shares 0.5, 0.7, 0.5: a slow round moves no choice
    assert abs(got["noise"]["a"] - 0.1) < 1e-12 and got["trained_ms"] == 2.0


def test_a_family_keeps_its_networks_under_its_own_out(monkeypatch, tmp_path):
    kept = []
    monkeypatch.setattr(equal_latency, "make_setup", lambda args, out: None)
    monkeypatch.setattr(equal_latency, "run_job", lambda setup, job, keep, choices: kept.append((keep, choices)))
    monkeypatch.setattr(equal_latency, "run_grid", lambda jobs, fn, out, **kw: [fn(j) for j in jobs] and [])
    equal_latency.main(["--out", str(tmp_path / "equal_latency_resnet18.jsonl"), "--seeds", "30", "--methods", "uniform"])
    assert kept == [(Path("exports/equal_latency_resnet18"), tmp_path / "equal_latency_resnet18.choices.json")]
