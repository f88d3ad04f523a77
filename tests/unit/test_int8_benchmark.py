"""The INT8 benchmark's table (benchmarks/int8.py) from rows alone: INT8 loss with its standard error, speed-ups,
and the seed-paired comparisons of the shape's network with the width-scaled one, within one CPU model."""

from benchmarks.int8 import summarise


def _row(method, seed, speedup, acc_int8=0.88, cpu="AMD EPYC"):
    return {"method": method, "budget": "60%", "seed": seed, "acc_float": 0.89, "acc_int8": acc_int8,
            "speedup": speedup, "share_float": 0.55, "share_int8": 0.55 / speedup, "share_int8_of_int8": 0.6,
            "resize_ms_float": 0.03, "resize_ms_int8": 0.02, "float_compute_ms": 0.05, "convert_ms": 0.04,
            "machine": {"cpu_model": cpu}}  # fmt: skip


def test_the_table_gives_the_int8_loss_and_pairs_the_speed_ups_by_seed():
    rows = [_row("autosc-shape", s, 1.8 + 0.01 * s, acc_int8=0.87 + 0.001 * s) for s in (30, 31, 32)]
    rows += [_row("uniform", s, 1.3 + 0.01 * s) for s in (30, 31, 32)]
    text = summarise(rows)
    shape = next(x for x in text.splitlines() if x.startswith("| autosc-shape"))
    assert "| 3 | 89.00 | 90.10 | -1.10 ± 0.06 | 2.11× |" in shape and "| AMD EPYC |" in shape
    assert "- autosc-shape − uniform, INT8 speed-up: +0.50 ± 0.00 (3 pairs)" in text


def test_int8_pairs_are_formed_only_within_one_cpu_model():
    rows = [_row("autosc-shape", s, 1.8) for s in (30, 31, 32)]
    rows += [_row("uniform", s, 1.3) for s in (30, 31)] + [_row("uniform", 32, 3.0, cpu="Intel Xeon")]
    assert "+0.50 ± 0.00 (2 pairs)" in summarise(rows)  # seed 32 of uniform ran on another CPU: not paired
