"""Issue 17 (a): how well does the latency model predict the measured p50 of whole frozen networks?

For mobilenet_v2@224, resnet18@224 and the quality benchmark's model (mobilenet_v2_cifar, 28 px, 1 channel):
the adapted network of the plan at a MACs budget (``--width auto``), its latency model measured from scratch
(a fresh cache: ``autosc.cost.latency_probe.measure_latency``), then ``--shapes`` random shapes (each adaptor's
size drawn uniformly between its floor and its human size, seeded) frozen to one full branch per adaptor,
exported and timed interleaved in one run, against the model's prediction for the same sizes. Reported per
family: mean and worst absolute % error, the mean signed error (a bias), the in-sample fit at the probes, and the
seconds the model took to measure. Goal (issue 17): mean within 5% at 1 thread, batch 1.

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

from autosc.cost.latency_probe import Timing, measure_latency, split_at_adaptors
from autosc.export import export_onnx
from autosc.latency import bench
from autosc.planning import make_plan
from benchmarks.common import add_out, machine, parser, quiet, write_json

FAMILIES = {
    "mobilenet_v2": {"model": "mobilenet_v2", "size": 224, "channels": 3, "classes": 1000, "budget": "300M"},
    "resnet18": {"model": "resnet18", "size": 224, "channels": 3, "classes": 1000, "budget": "1.2G"},
    "quality": {"model": "mobilenet_v2_cifar", "size": 28, "channels": 1, "classes": 10, "budget": "15M"},
}


def random_shapes(human: list[tuple[int, int]], floor: list[tuple[int, int]], n: int, seed: int) -> list[list]:
    """``n`` shapes, each adaptor's side drawn uniformly in [floor, human] (both sides by one fraction)."""
    rng = random.Random(seed)
    shapes = []
    for _ in range(n):
        shape = []
        for (h, w), (fh, fw) in zip(human, floor, strict=True):
            t = rng.random()
            shape.append((round(fh + t * (h - fh)), round(fw + t * (w - fw))))
        shapes.append(shape)
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
    cost = network.cost_model
    shapes = random_shapes(cost.human_sizes, cost.min_sizes, args.shapes, args.seed)
    split, adaptors = split_at_adaptors(network.net, network.adaptor_names)
    with tempfile.TemporaryDirectory() as tmp, quiet():
        paths = []
        for i, shape in enumerate(shapes):
            for adaptor, s in zip(adaptors, shape, strict=True):
                adaptor.size = s
            path = Path(tmp) / f"shape{i}.onnx"
            export_onnx(split, size, path, in_channels=f["channels"], exporter="torchscript", check=False)
            paths.append(str(path))
        timing = bench(paths, labels=[f"shape{i}" for i in range(len(paths))], threads=[args.threads],
                       batches=[args.batch], runs=args.runs, warmup=10)  # fmt: skip
    rows = []
    for shape, result in zip(shapes, timing["results"], strict=True):
        predicted = model.predict(shape)
        rows.append({"sizes": [list(s) for s in shape], "measured": result["p50"], "predicted": predicted,
                     "error": predicted / result["p50"] - 1})  # fmt: skip
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
        "in_sample_worst": max(abs(e) for e in model.errors()),
        "correction": {"offset_ms": model.offset_ms, "scale": model.scale},
        "measure_seconds": measure_seconds,
        "model": model.to_dict(),
        "shapes": rows,
    }


def table(results: list[dict]) -> str:
    lines = [
        "| family | width | shapes | p50 range (ms) | mean abs error | worst abs error | mean signed | in-sample worst | correction (offset, scale) | model measured in |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ms = [s["measured"] for s in r["shapes"]]
        c = r["correction"]
        lines.append(
            f"| {r['family']}@{r['size']} | {r['width']:.2f} | {len(ms)} | {min(ms):.2f}-{max(ms):.2f} | "
            f"{100 * r['mean_abs_error']:.1f}% | {100 * r['worst_abs_error']:.1f}% | {100 * r['mean_error']:+.1f}% | "
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
