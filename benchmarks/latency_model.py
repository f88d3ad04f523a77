"""Issue 17 (a): how well does the latency model predict the measured p50 of whole frozen networks?

For mobilenet_v2@224, resnet18@224 and the quality benchmark's model (mobilenet_v2_cifar, 28 px, 1 channel):
the adapted network of the plan at a MACs budget (``--width auto``), its latency model measured from scratch
(a fresh cache: ``autosc.cost.latency_probe.measure_latency``), then ``--shapes`` random shapes autosc can
produce (every factor uniform in [0.5, 1], sizes by the global rule, seeded), frozen to one full branch per
adaptor; for each, the whole network is timed alone (warm, as deployed) and its parts interleaved, against the
model's prediction (the first version timed all 20 whole networks interleaved: their weights left the cache
between runs and they measured 1.2-2x slower than alone). Reported per family: mean and worst absolute % error, the mean signed error (a bias), and where it
comes from: the tables (predicted against measured sum of parts) and additivity (whole against the sum of its
parts); the in-sample fit at the probes; the seconds the model took. Goal (issue 17): mean within 5% at 1
thread, batch 1.

    python -m benchmarks.latency_model                   # 3 families, 20 shapes each, 1 thread, batch 1
    python -m benchmarks.latency_model --families quality --shapes 30
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from pathlib import Path

import torch

from autosc.adaptor.module import LOWER_BOUND
from autosc.cost.latency_probe import Timing, measure_latency, split_at_adaptors, time_shape
from autosc.cost.projection import sizes_from_factors
from autosc.planning import make_plan
from benchmarks.common import add_out, machine, parser, quiet, write_json

FAMILIES = {
    "mobilenet_v2": {"model": "mobilenet_v2", "size": 224, "channels": 3, "classes": 1000, "budget": "300M"},
    "resnet18": {"model": "resnet18", "size": 224, "channels": 3, "classes": 1000, "budget": "1.2G"},
    "quality": {"model": "mobilenet_v2_cifar", "size": 28, "channels": 1, "classes": 10, "budget": "15M"},
}


def random_shapes(cost, n: int, seed: int) -> list[list]:
    """``n`` shapes autosc can produce: every factor drawn uniformly in [0.5, 1] (the adaptor's range), sizes by
    the global rule (each size is its human size times the product of the factors so far), clamped to the floors."""
    rng = random.Random(seed)
    shapes = []
    for _ in range(n):
        factors = [rng.uniform(LOWER_BOUND, 1.0) for _ in cost.human_sizes]
        shapes.append(cost.clamp(sizes_from_factors(cost.human_sizes, factors)))
    return shapes


def run_family(name: str, args) -> dict:
    f = FAMILIES[name]
    size = (f["size"], f["size"])
    plan = make_plan(f["model"], budget=f["budget"], input_size=size, num_classes=f["classes"],
                     in_channels=f["channels"])  # fmt: skip
    network = plan.network
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache, quiet():
        model = measure_latency(
            network.net, network.adaptor_names, input_size=size, in_channels=f["channels"],
            identity=plan.spec.to_dict(), threads=args.threads, batch=args.batch,
            timing=Timing(cache_dir=cache), cost_model=network.cost_model,
        )  # fmt: skip
    measure_seconds = time.perf_counter() - started
    shapes = random_shapes(network.cost_model, args.shapes, args.seed)
    split, adaptors = split_at_adaptors(network.net, network.adaptor_names)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, quiet():
        for i, shape in enumerate(shapes):  # one shape at a time: its parts interleaved, then the whole alone
            probe = time_shape(split, adaptors, shape, size, f["channels"], threads=args.threads, batch=args.batch,
                               timing=Timing(runs=args.runs), folder=Path(tmp), tag=f"s{i}")  # fmt: skip
            measured, parts_sum = probe.whole_ms, sum(probe.parts_ms)
            predicted = model.predict(shape)
            rows.append({
                "sizes": [list(s) for s in shape], "measured": measured, "predicted": predicted,
                "error": predicted / measured - 1,
                # where the error comes from: the tables (predicted sum of parts vs the parts measured here) and
                # additivity (the whole network vs the sum of its parts, both measured here)
                "parts_measured_ms": probe.parts_ms,
                "table_error": model._sum(shape) / parts_sum - 1,
                "additivity_error": measured / parts_sum - 1,
            })  # fmt: skip
    errors = [r["error"] for r in rows]
    return {
        "family": name,
        **f,
        "width": plan.spec.width,
        "adaptors": network.adaptor_names,
        "threads": args.threads,
        "batch": args.batch,
        "mean_abs_error": statistics.mean(abs(e) for e in errors),
        "worst_abs_error": max(abs(e) for e in errors),
        "mean_error": statistics.mean(errors),
        "mean_table_error": statistics.mean(r["table_error"] for r in rows),
        "mean_additivity_error": statistics.mean(r["additivity_error"] for r in rows),
        "in_sample_worst": max(abs(e) for e in model.errors()),
        "correction": {"offset_ms": model.offset_ms, "scale": model.scale},
        "measure_seconds": measure_seconds,
        "model": model.to_dict(),
        "shapes": rows,
    }


def table(results: list[dict]) -> str:
    lines = [
        "| family | width | shapes | p50 range (ms) | mean abs error | worst abs error | mean signed | tables (signed) | whole / sum of parts | in-sample worst | correction (offset, scale) | model measured in |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ms = [s["measured"] for s in r["shapes"]]
        c = r["correction"]
        lines.append(
            f"| {r['family']}@{r['size']} | {r['width']:.2f} | {len(ms)} | {min(ms):.2f}-{max(ms):.2f} | "
            f"{100 * r['mean_abs_error']:.1f}% | {100 * r['worst_abs_error']:.1f}% | {100 * r['mean_error']:+.1f}% | "
            f"{100 * r['mean_table_error']:+.1f}% | {100 * r['mean_additivity_error']:+.1f}% | "
            f"{100 * r['in_sample_worst']:.1f}% | {c['offset_ms']:+.3f} ms, {c['scale']:.3f} | {r['measure_seconds']:.0f} s |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--shapes", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=int, default=100, help="timed runs per random shape")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    add_out(ap, "latency_model.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    results = []
    for name in args.families.split(","):
        results.append(run_family(name, args))
        print(table(results[-1:]).splitlines()[-1], flush=True)
    write_json(args.out, {"env": machine(), "args": vars(args), "results": results})
    print(table(results))


if __name__ == "__main__":
    main()
