"""Issue 30: how noisy one round of ``autosc.planning.latency.time_share`` is, and what the middle of three rounds
leaves. The pruning step corrects its MACs stand-in by such a share and keeps the least pruned candidate measured
within the cap, so a low draw is kept; resnet18 ``pruning`` s37 was planned at 0.335 and measured 0.386 at its end.

The network is that run's, rebuilt from its model spec (``results/share_noise_spec.json``: the pruned channel
counts; fresh weights, as the plan times it), against the same spec unpruned. ``--rounds`` single rounds in a row,
each one round of ``time_share`` itself (``share_round``: the plan's default runs and blocks, 1 thread); reported: mean, standard deviation and
range of one round, and the standard deviation of the middle of each consecutive triple.

    python -m benchmarks.share_rounds --rounds 12
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from autosc.cost.budget import Budget
from autosc.cost.calibration import middle_round
from autosc.cost.latency_probe import ProbeSettings
from autosc.env import cpu_model
from autosc.models import ModelSpec
from autosc.planning.latency import reference_network, share_round

SPEC = Path(__file__).parent / "results" / "share_noise_spec.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=12, help="single rounds in a row (a multiple of 3)")
    args = ap.parse_args()
    stored = json.loads(SPEC.read_text())
    m, size = stored["model"], tuple(stored["input_size"])
    pruned = ModelSpec(m["name"], m["width"], m["num_classes"], m["in_channels"], channels=m["channels"])
    full = ModelSpec(m["name"], m["width"], m["num_classes"], m["in_channels"])
    networks = {"candidate": reference_network(pruned), "reference": reference_network(full)}
    began = time.perf_counter()
    budget, timing = Budget.of(latency_ms=1.0), ProbeSettings()  # the limit is not read; 1 thread, batch 1
    shares = [share_round(networks, size, m["in_channels"], budget, timing) for _ in range(args.rounds)]
    triples = [shares[i : i + 3] for i in range(0, len(shares) - 2, 3)]
    middles = [t[middle_round(t)[0]] for t in triples]
    print(f"{m['name']} pruned vs unpruned, {args.rounds} rounds, {cpu_model()}, "
          f"{time.perf_counter() - began:.0f} s")  # fmt: skip
    print(f"one round: mean {statistics.fmean(shares):.3f}, sd {statistics.stdev(shares):.3f}, "
          f"range {min(shares):.3f}-{max(shares):.3f}")  # fmt: skip
    if len(middles) > 1:
        print(f"middle of 3: sd {statistics.stdev(middles):.3f} over {len(middles)} triples {[round(x, 3) for x in middles]}")
    print("rounds:", [round(x, 3) for x in shares])


if __name__ == "__main__":
    main()
