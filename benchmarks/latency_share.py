"""Issue 29 item 4: the latency model as a ratio. How well does a run's model predict a shape's p50 as a share of
the reference (the human network at width 1), which is what a share budget is judged by?

For mobilenet_v2@224, resnet18@224 and the quality benchmark's model (mobilenet_v2_cifar, 28 px, 1 channel):
``autosc.plan(latency="60%", --width auto)`` as a run plans (its latency model measured or read from the cache,
then calibrated on the start shape with the reference timed alongside), then ``--shapes`` random shapes autosc can
produce (``random_shapes``, a seed the model's own probes do not use), each frozen to one full branch per
adaptor, and the reference, all timed together in one measurement (``autosc.latency.time_together``: warm blocks,
interleaved, one process). For each shape: predicted share = the calibrated model's p50 over the reference's
p50 at the calibration; measured share = the shape's p50 over the reference's in the measurement. Reported per
family: mean and worst absolute error of the share, the mean signed error, the reference's drift between the
calibration and the measurement (which the share cancels), and the seconds. Goal (issue 29): mean within 3%.

With ``--repeat 2`` the same networks are timed together a second time right after the first: the predictor's
error against the second measurement, and the two measurements' own mean absolute difference (how well a
measured share repeats on this host: the floor under any predictor's error), are reported too. With ``--repeat 3``
also the error against each shape's median share over the three measurements (a single measurement's own spell
of the host weighs less). Always reported beside: the model alone, each shape predicted relative to the run's
start shape timed in the same measurement (the plan's calibration measurement, a minute earlier and pairwise
with the reference, taken out).

    python -m benchmarks.latency_share                      # 3 families, 20 shapes each, 1 thread, batch 1
    python -m benchmarks.latency_share --repeat 2             # and a second measurement: how shares repeat
    python -m benchmarks.latency_share --summary
"""

from __future__ import annotations

import statistics
import time

import torch

import autosc
from autosc.cost.calibration import measure_share
from autosc.cost.latency_probe import ProbeSettings, split_at_adaptors
from autosc.cost.probe_shapes import random_shapes
from autosc.latency import time_together
from autosc.models import ModelSpec
from benchmarks.latency_model import FAMILIES
from benchmarks.runner import add_out, load_rows, parser, quiet, run_grid


def _shape_networks(network, shapes) -> dict:
    """Each shape as its own plain network (the split network with its adaptors set; one copy per shape)."""
    import copy

    out = {}
    for i, sizes in enumerate(shapes):
        split, adaptors = split_at_adaptors(copy.deepcopy(network.net), network.adaptor_names)
        for adaptor, size in zip(adaptors, sizes, strict=True):
            adaptor.size = (int(size[0]), int(size[1]))
        out[f"shape{i}"] = split.eval()
    return out


def run_family(name: str, args) -> dict:
    f = FAMILIES[name]
    size = (f["size"], f["size"])
    started = time.perf_counter()
    with quiet():
        plan = autosc.plan(f["model"], latency="60%", input_size=size, num_classes=f["classes"],
                           in_channels=f["channels"], timing=ProbeSettings(cache_dir=args.cache))  # fmt: skip
    network, budget = plan.network, plan.network.budget
    model, reference_ms = network.cost_model.latency, budget.latency_reference_ms
    shapes = random_shapes(network.cost_model, args.shapes, 2000 + args.seed)
    affine = affine_calibration(network, f, args) if args.affine else None
    start = [tuple(s) for s in network.update_shape().sizes]
    networks = _shape_networks(network, [*shapes, start])
    networks["start"] = networks.pop(f"shape{len(shapes)}")
    networks["reference"] = ModelSpec(f["model"], 1.0, f["classes"], f["channels"]).build().eval()
    with quiet():
        timings = [time_together(networks, size, f["channels"], threads=1, batch=1, runs=args.runs, warmup=10,
                                 block=10) for _ in range(args.repeat)]  # fmt: skip
    measured_ref = timings[0]["reference"]["p50"]
    rows, extra = [], {}
    for i, sizes in enumerate(shapes):
        predicted_ms = model.predict([tuple(s) for s in sizes])
        predicted = predicted_ms / reference_ms
        measured = [t[f"shape{i}"]["p50"] / t["reference"]["p50"] for t in timings]
        rows.append({"sizes": [list(s) for s in sizes], "predicted_share": predicted, "measured_share": measured[0],
                     "error": predicted / measured[0] - 1, "measured_again": measured[1:]})  # fmt: skip
        if affine is not None:
            rows[-1]["affine_share"] = affine[0] + affine[1] * predicted_ms / model.calibration
    errors = [r["error"] for r in rows]
    extra["start"] = start_view(model.predict(start) / reference_ms, start, rows, timings[0])
    if affine is not None:
        extra["affine"] = {"a": affine[0], "b": affine[1], "mean_abs_error": statistics.mean(
            abs(r["affine_share"] / r["measured_share"] - 1) for r in rows)}  # fmt: skip
    if args.repeat > 1:
        pairs = [(r, r["measured_again"][0]) for r in rows]
        extra |= {
            "mean_abs_error_again": statistics.mean(abs(r["predicted_share"] / m - 1) for r, m in pairs),
            "repeat_abs_difference": statistics.mean(abs(m / r["measured_share"] - 1) for r, m in pairs),
            "reference_ms_again": timings[1]["reference"]["p50"],
        }
    return {
        "axis": model.axis,
        **extra,
        "width": plan.spec.width,
        "mean_abs_error": statistics.mean(abs(e) for e in errors),
        "worst_abs_error": max(abs(e) for e in errors),
        "mean_error": statistics.mean(errors),
        "share_range": [min(r["measured_share"] for r in rows), max(r["measured_share"] for r in rows)],
        "reference_ms_at_calibration": reference_ms,
        "reference_ms_measured": measured_ref,
        "calibration": model.calibration,
        "seconds": time.perf_counter() - started,
        "shapes": rows,
    }


def affine_calibration(network, family: dict, args) -> tuple[float, float]:
    """A second calibration point beside the plan's (its start shape, measured with the reference): the smallest
    of 5 other random shapes (seed 9000 + ``--seed``), timed with the reference now as the plan times its start
    (``measure_share``). Returns (a, b) with share = a + b * the uncalibrated model's ms through both points."""
    model, budget = network.cost_model.latency, network.budget
    start = network.update_shape().sizes
    others = [[tuple(s) for s in sizes] for sizes in random_shapes(network.cost_model, 5, 9000 + args.seed)]
    small = min(others, key=model.predict)
    reference = ModelSpec(family["model"], 1.0, family["classes"], family["channels"]).build().eval()
    with quiet():
        m = measure_share(network.net, network.adaptor_names, small, reference, input_size=network.input_size,
                          in_channels=family["channels"], threads=1, batch=1)  # fmt: skip
    x1, y1 = model.predict(start) / model.calibration, model.predict(start) / budget.latency_reference_ms
    x2, y2 = model.predict(small) / model.calibration, m.shape_ms / m.reference_ms
    b = (y1 - y2) / (x1 - x2)
    return y1 - b * x1, b


def start_view(start_predicted: float, start, rows: list[dict], timing: dict) -> dict:
    """The model alone, without the plan's calibration measurement: each shape predicted relative to the run's
    start shape (predicted share ``start_predicted``), which is timed in the same measurement (share = the start's
    measured share x the model's ratio)."""
    start_share = timing["start"]["p50"] / timing["reference"]["p50"]
    errors = [start_share * r["predicted_share"] / start_predicted / r["measured_share"] - 1 for r in rows]
    return {"sizes": [list(s) for s in start], "measured_share": start_share, "predicted_share": start_predicted,
            "mean_abs_error": statistics.mean(abs(e) for e in errors), "mean_error": statistics.mean(errors)}  # fmt: skip


def median_error(row: dict) -> float:
    """The mean absolute error against each shape's median share over its measurements (``--repeat 3``)."""
    shapes = row["shapes"]
    return statistics.mean(
        abs(r["predicted_share"] / statistics.median([r["measured_share"], *r["measured_again"]]) - 1) for r in shapes)


def table(rows: list[dict]) -> str:
    lines = [
        "| family | width | measured shares | mean abs error | worst | mean signed | against a second measurement | "
        "the two measurements' own difference | reference p50 at calibration / in the measurement | calibration | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lo, hi = r["share_range"]
        again = "—" if "mean_abs_error_again" not in r else f"{100 * r['mean_abs_error_again']:.1f}%"
        if len(r["shapes"][0]["measured_again"]) > 1:
            again += f" (median of 3: {100 * median_error(r):.1f}%)"
        if "start" in r:
            again += f"; model alone (start in the measurement): {100 * r['start']['mean_abs_error']:.1f}%"
        if "affine" in r:
            again += f"; affine calibration: {100 * r['affine']['mean_abs_error']:.1f}% against the 1st"
        floor = "—" if "repeat_abs_difference" not in r else f"{100 * r['repeat_abs_difference']:.1f}%"
        lines.append(
            f"| {r['family']} | {r['width']:.2f} | {lo:.2f}-{hi:.2f} | {100 * r['mean_abs_error']:.1f}% | "
            f"{100 * r['worst_abs_error']:.1f}% | {100 * r['mean_error']:+.1f}% | {again} | {floor} | "
            f"{r['reference_ms_at_calibration']:.2f} / {r['reference_ms_measured']:.2f} ms | {r['calibration']:.2f} | "
            f"{r['seconds']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--shapes", type=int, default=20)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1,
                    help="time the networks together this many times (2: repeatability; 3: and the median)")
    ap.add_argument("--affine", action="store_true",
                    help="also a two-point calibration: the start shape and a small shape timed with the reference")
    ap.add_argument("--cache", default=None, help="latency-model cache folder (default: the user cache)")
    add_out(ap, "latency_share.jsonl")
    args = ap.parse_args(argv)
    if args.summary:
        print(table(load_rows(args.out)))
        return
    torch.set_num_threads(1)
    if args.repeat not in (1, 2, 3):
        ap.error("--repeat is 1, 2 or 3")
    jobs = [{"family": n, "shapes": args.shapes, "seed": args.seed} for n in args.families.split(",")]
    rows = run_grid(jobs, lambda job: run_family(job["family"], args), args.out, key=("family", "shapes", "seed"),
                    describe=lambda r: table([r]).splitlines()[-1])  # fmt: skip
    print(table(rows))


if __name__ == "__main__":
    main()
