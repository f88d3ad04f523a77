"""Issue 17 (a): how well does the latency model predict the measured p50 of whole frozen networks?

For mobilenet_v2@224, resnet18@224 and the quality benchmark's model (mobilenet_v2_cifar, 28 px, 1 channel):
the adapted network of the plan at a MACs budget (``--width auto``), its latency model measured from scratch
(a fresh cache: ``autosc.cost.latency_probe.fit_latency_model``), then ``--shapes`` random shapes autosc can
produce (every factor uniform in [0.5, 1], sizes by the global rule, seeded from ``--seed``, which the model's
own random probes do not use), frozen to one full branch per adaptor; the whole networks and their parts timed
the way the model is (``time_shapes``: all shapes interleaved in warm blocks), twice. The measured p50 of a
shape is the mean of the two passes; their disagreement is the noise floor a prediction cannot beat here.
Reported per family: mean and worst absolute % error, the mean signed error (a bias), the noise floor (mean
absolute difference of the two passes, relative to their mean), and where the error comes from: the tables
(predicted against measured sum of parts) and additivity (whole against the sum of its parts); the in-sample
fit at the probes; the seconds the model took. Goal (issue 17): mean within 5% at 1 thread, batch 1.

One row per family (and threads, batch) on :mod:`benchmarks.runner`'s grid (resumable). The committed results
were written whole at the end by an earlier version: ``--summary --out benchmarks/results/latency_model.json``
reads them.

    python -m benchmarks.latency_model                   # 3 families, 20 shapes each, 1 thread, batch 1
    python -m benchmarks.latency_model --families quality --shapes 30
    python -m benchmarks.latency_model --summary --out benchmarks/results/latency_model.json
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch

import autosc
from autosc.cost.latency_model import LatencyModel
from autosc.cost.latency_probe import (
    PROBES,
    RANDOM_PROBES,
    ProbeSettings,
    fit_latency_model,
    split_at_adaptors,
    time_shapes,
)
from autosc.cost.probe_shapes import probe_shapes, random_shapes
from benchmarks.runner import add_out, load_rows, parser, quiet, run_grid

FAMILIES = {
    "mobilenet_v2": {"model": "mobilenet_v2", "size": 224, "channels": 3, "classes": 1000, "budget": "300M"},
    "resnet18": {"model": "resnet18", "size": 224, "channels": 3, "classes": 1000, "budget": "1.2G"},
    "quality": {"model": "mobilenet_v2_cifar", "size": 28, "channels": 1, "classes": 10, "budget": "15M"},
}


def shape_row(shape, a, b, models: list[LatencyModel], model: LatencyModel) -> dict:
    """One test shape: measured (mean of the passes ``a``, ``b``) against the product's ``model`` and against the
    models fitted in each pass (same session), with where the error comes from."""
    measured = (a.whole_ms + b.whole_ms) / 2
    parts = [(x + y) / 2 for x, y in zip(a.parts_ms, b.parts_ms, strict=True)]
    same = [m.predict(shape) / p.whole_ms - 1 for m, p in zip(models, (a, b), strict=True)]
    predicted = model.predict(shape)
    return {
        "sizes": [list(s) for s in shape], "measured": measured, "passes": [a.whole_ms, b.whole_ms],
        "predicted": predicted, "error": predicted / measured - 1, "noise": abs(a.whole_ms - b.whole_ms) / measured,
        "same_session_errors": same,
        # where the same-session error comes from: the tables (predicted sum of parts vs the parts measured
        # with it) and additivity (the whole network vs the sum of its parts, both measured together)
        "parts_measured_ms": parts,
        "table_error": statistics.mean(m._sum(shape) / sum(p.parts_ms) - 1 for m, p in zip(models, (a, b), strict=True)),
        "additivity_error": statistics.mean(p.whole_ms / sum(p.parts_ms) - 1 for p in (a, b)),
    }  # fmt: skip


def run_family(name: str, args) -> dict:
    """One family's row: its plan, its latency model measured from scratch, and the test shapes timed twice."""
    f = FAMILIES[name]
    size = (f["size"], f["size"])
    plan = autosc.plan(f["model"], budget=f["budget"], input_size=size, num_classes=f["classes"],
                     in_channels=f["channels"])  # fmt: skip
    network = plan.network
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache, quiet():
        model = fit_latency_model(
            network.net, network.adaptor_names, input_size=size, in_channels=f["channels"],
            identity=plan.spec.to_dict(), threads=args.threads, batch=args.batch,
            timing=ProbeSettings(cache_dir=cache), cost_model=network.cost_model,
        )  # fmt: skip
    measure_seconds = time.perf_counter() - started
    shapes = random_shapes(network.cost_model, args.shapes, 1000 + args.seed)  # not the model's probe seed
    probes = probe_shapes(network.cost_model, PROBES, RANDOM_PROBES)
    split, adaptors = split_at_adaptors(network.net, network.adaptor_names)
    timing = ProbeSettings(runs=args.runs)
    humans = [tuple(s) for s in network.cost_model.human_sizes]
    passes, models = [], []
    with tempfile.TemporaryDirectory() as tmp, quiet():
        for k in range(2):  # the probes and the test shapes timed together: the host's drift hits both alike
            timed = time_shapes(split, adaptors, probes + shapes, size, f["channels"], threads=args.threads,
                                batch=args.batch, timing=timing, folder=Path(tmp), tag=f"p{k}-")  # fmt: skip
            models.append(LatencyModel.fit(timed[: len(probes)], human_sizes=humans))
            passes.append(timed[len(probes) :])
    rows = [shape_row(shape, a, b, models, model) for shape, a, b in zip(shapes, *passes, strict=True)]
    errors = [r["error"] for r in rows]
    same = [e for r in rows for e in r["same_session_errors"]]
    return {
        "family": name,
        **f,
        "width": plan.spec.width,
        "adaptors": network.adaptor_names,
        "threads": args.threads,
        "batch": args.batch,
        "mean_abs_error": statistics.mean(abs(e) for e in same),
        "worst_abs_error": max(abs(e) for e in same),
        "mean_error": statistics.mean(same),
        "pass_mean_abs_errors": [statistics.mean(abs(r["same_session_errors"][k]) for r in rows) for k in range(2)],
        "cross_mean_abs_error": statistics.mean(abs(e) for e in errors),
        "cross_worst_abs_error": max(abs(e) for e in errors),
        "cross_mean_error": statistics.mean(errors),
        "noise_floor": statistics.mean(r["noise"] for r in rows),
        "pass_ratio": statistics.mean(r["passes"][1] / r["passes"][0] for r in rows),
        "mean_table_error": statistics.mean(r["table_error"] for r in rows),
        "mean_additivity_error": statistics.mean(r["additivity_error"] for r in rows),
        "in_sample_worst": max(abs(e) for m in models for e in m.errors()),
        "correction": {"offset_ms": model.offset_ms, "scale": model.scale},
        "measure_seconds": measure_seconds,
        "model": model.to_dict(),
        "session_models": [m.to_dict() for m in models],
        "shapes": rows,
    }


def table(results: list[dict]) -> str:
    lines = [
        "| family | width | shapes | p50 range (ms) | same session: mean abs error | worst | mean signed | tables (signed) | whole / sum of parts | in-sample worst | product's model, measured minutes before: mean abs error | worst | mean signed | the two passes: mean abs difference | pass 2 / pass 1 | product's correction (offset, scale) | product's model measured in |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ms = [s["measured"] for s in r["shapes"]]
        c = r["correction"]
        lines.append(
            f"| {r['family']}@{r['size']} | {r['width']:.2f} | {len(ms)} | {min(ms):.2f}-{max(ms):.2f} | "
            f"{100 * r['mean_abs_error']:.1f}% | {100 * r['worst_abs_error']:.1f}% | {100 * r['mean_error']:+.1f}% | "
            f"{100 * r['mean_table_error']:+.1f}% | {100 * r['mean_additivity_error']:+.1f}% | "
            f"{100 * r['in_sample_worst']:.1f}% | {100 * r['cross_mean_abs_error']:.1f}% | "
            f"{100 * r['cross_worst_abs_error']:.1f}% | {100 * r['cross_mean_error']:+.1f}% | "
            f"{100 * r['noise_floor']:.1f}% | {r['pass_ratio']:.2f} | "
            f"{c['offset_ms']:+.3f} ms, {c['scale']:.3f} | {r['measure_seconds']:.0f} s |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--shapes", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=int, default=60, help="timed runs per shape (the product's model: 60)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    add_out(ap, "latency_model.jsonl")
    args = ap.parse_args(argv)
    if args.summary:
        print(table(load_rows(args.out)))
        return
    torch.set_num_threads(1)
    jobs = [{"family": name, "threads": args.threads, "batch": args.batch} for name in args.families.split(",")]
    rows = run_grid(jobs, lambda job: {**run_family(job["family"], args), "settings": vars(args)}, args.out,
                    key=("family", "threads", "batch"), describe=lambda r: table([r]).splitlines()[-1])  # fmt: skip
    print(table(rows))


if __name__ == "__main__":
    main()
