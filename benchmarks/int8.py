"""Issue 31: does shape compression compose with INT8, and where does the Resize cost go?

The final networks of ``benchmarks/equal_latency`` (the converged trained network compressed by each method to the
same share of its float p50, then fine-tuned) are quantized by autosc's own INT8 export (U8S8, per-channel 7-bit
weights, ``--calibration-images`` training images drawn by the seed; :mod:`autosc.run.quantized`), and measured:
ONNX Runtime top-1 on test and validation of the float and the INT8 file; the p50 of every float and INT8 file of
one (budget, seed), the trained network's two files included, timed together in ``ROUNDS`` interleaved rounds
(median of each ratio); and ONNX Runtime's profile of each INT8 file (the Resize time, the compute left in float).

    python -m benchmarks.int8 --budgets 60% --seeds 30,31,32,33,34
    python -m benchmarks.int8 --summary

A (budget, seed) is measured once every method named has its network on this machine (``exports/equal_latency``,
not committed: run it in the session whose grid made them); its rows go to ``results/int8.jsonl``.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from autosc.export import export_onnx
from autosc.export.quantize import quantize_int8
from autosc.latency import op_profile
from autosc.run.quantized import calibration_images, measure_pair
from benchmarks.runner import cpu_of, load_rows, onnx_p50s, paired, run_grid
from benchmarks.trained import SIZE, make_setup

#: The methods whose networks are quantized (those equal_latency makes from the trained weights; scratch-width too
#: once it has run).
METHODS = ("autosc-shape", "pruning", "uniform", "autosc-compound", "autosc-auto", "resolution", "scratch-width")
ROUNDS = 3
#: Runs of ONNX Runtime's profiler per INT8 file.
PROFILE_RUNS = 50


def arguments():
    from benchmarks.trained import arguments as trained_arguments

    ap = trained_arguments()
    ap.description = __doc__
    ap.set_defaults(budgets="60%", seeds="30,31,32,33,34", methods="autosc-shape,pruning,uniform,autosc-compound",
                    teacher_epochs=60, latency_runs=200, out=str(Path("benchmarks/results/int8.jsonl")))  # fmt: skip
    ap.add_argument("--rows", default="benchmarks/results/equal_latency.jsonl", help="the equal_latency rows")
    ap.add_argument("--calibration-images", type=int, default=256)
    return ap


def measure_seed(setup, rows: list[dict], budget: str, seed: int, args) -> list[dict]:
    """Every method's network of one (budget, seed) and the trained network: quantized, scored, timed together."""
    images = calibration_images(setup.bundle, args.calibration_images, seed)
    with tempfile.TemporaryDirectory(prefix="autosc-int8-") as tmp:
        floats = {"trained": Path(tmp) / "trained.onnx"}
        export_onnx(setup.fresh_teacher().eval(), SIZE, floats["trained"], in_channels=setup.bundle.channels,
                    exporter="torchscript")  # fmt: skip
        floats.update({r["method"]: Path(r["onnx"]) for r in rows})
        int8 = {k: quantize_int8(p, Path(tmp) / f"{k}.int8.onnx", images) for k, p in floats.items()}
        files = {**floats, **{f"{k} int8": r.path for k, r in int8.items()}}
        rounds = [onnx_p50s(files, SIZE, setup.bundle.channels, runs=args.latency_runs) for _ in range(ROUNDS)]
        out = []
        for row in [{"method": "trained"}, *rows]:
            k = row["method"]
            acc, (worst, relative, _) = measure_pair(floats[k], int8[k].path, setup.bundle)
            profile = op_profile(int8[k].path, runs=PROFILE_RUNS)
            out.append({
                "method": k, "budget": budget, "seed": seed, "acc_float": acc["float"], "acc_int8": acc["int8"],
                "val_float": acc["float_val"], "val_int8": acc["int8_val"], "logit_diff": worst,
                "logit_diff_rel": relative,
                "share_float": _median(rounds, k, "trained"), "share_int8": _median(rounds, f"{k} int8", "trained"),
                "share_int8_of_int8": _median(rounds, f"{k} int8", "trained int8"),
                "speedup": _median(rounds, k, f"{k} int8"),
                "p50_float": _median(rounds, k), "p50_int8": _median(rounds, f"{k} int8"),
                "resize_ms_int8": profile.get("Resize", {}).get("ms", 0.0),
                "resize_ms_float": op_profile(floats[k], runs=PROFILE_RUNS).get("Resize", {}).get("ms", 0.0),
                "float_compute_ms": sum(e["ms"] for op, e in profile.items() if e["float_nodes"] >= 0.5
                                        and op not in ("QuantizeLinear", "DequantizeLinear", "Shape")),
                "convert_ms": sum(profile.get(op, {}).get("ms", 0.0) for op in ("QuantizeLinear", "DequantizeLinear")),
                "profile_int8": profile, "calibration_images": len(images), "equal_latency_commit": row.get(
                    "machine", {}).get("commit"),
            })  # fmt: skip
    return out


def _median(rounds: list[dict], a: str, b: str | None = None) -> float:
    """The median over the rounds of ``a``'s p50 (over ``b``'s in the same round when given)."""
    return statistics.median(r[a] / (r[b] if b else 1.0) for r in rounds)


def summarise(rows: list[dict]) -> str:
    """Per budget and method: INT8's top-1 loss, its speed-up over the same network in float, the INT8 file's share
    of the trained network's float and INT8 p50, where its time goes, and the seed-paired comparisons with the
    width-scaled network (``uniform``) that say whether the shape composes with INT8."""
    lines = []
    for budget in dict.fromkeys(r["budget"] for r in rows):
        at = [r for r in rows if r["budget"] == budget]
        lines += [f"\nbudget {budget}: INT8 (U8S8) against float, {len({r['seed'] for r in at})} seeds",
                  "| method | n | top-1 float | top-1 INT8 | INT8 loss | INT8 speed-up | share float | share INT8 "
                  "| of trained INT8 | Resize ms float / INT8 | float compute ms | conversions ms | CPU |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for method in ("trained", *METHODS):
            rs = [r for r in at if r["method"] == method]
            if rs:
                lines.append(_row(method, rs))
        lines += _pairs(at)
    return "\n".join(lines)


def _row(method: str, rs: list[dict]) -> str:
    def m(key: str, scale: float = 1.0) -> float:
        return statistics.fmean(scale * r[key] for r in rs)

    loss = [100 * (r["acc_float"] - r["acc_int8"]) for r in rs]
    se = f" ± {statistics.stdev(loss) / len(loss) ** 0.5:.2f}" if len(loss) > 1 else ""  # one seed: no spread
    return (f"| {method} | {len(rs)} | {m('acc_float', 100):.2f} | {m('acc_int8', 100):.2f} | "
            f"{statistics.fmean(loss):+.2f}{se} | {m('speedup'):.2f}× | {m('share_float'):.3f} | "
            f"{m('share_int8'):.3f} | {m('share_int8_of_int8'):.3f} | {m('resize_ms_float'):.3f} / "
            f"{m('resize_ms_int8'):.3f} | {m('float_compute_ms'):.3f} | {m('convert_ms'):.3f} | "
            f"{', '.join(sorted({cpu_of(r) for r in rs}))} |")  # fmt: skip


def _pairs(at: list[dict]) -> list[str]:
    """autosc-shape against uniform and pruning, seed by seed: INT8 speed-up and INT8 top-1."""
    out = []
    for other in ("uniform", "pruning"):
        for key, what, scale in (("speedup", "INT8 speed-up", 1.0), ("acc_int8", "INT8 top-1 (points)", 100.0)):
            def by_seed(method: str) -> dict:  # pairs only within one CPU model: oneDNN and ORT differ across them
                return {(cpu_of(r), r["seed"]): scale * r[key] for r in at if r["method"] == method}  # noqa: B023

            diff = paired(by_seed("autosc-shape"), by_seed(other))
            if diff.n > 1:
                out.append(f"- autosc-shape − {other}, {what}: {diff} ({diff.n} pairs)")
    return out


def main(argv: list[str] | None = None) -> None:
    args = arguments().parse_args(argv)
    out = Path(args.out)
    if args.summary:
        print(summarise(load_rows(out)))
        return
    methods = args.methods.split(",")
    made = [r for r in load_rows(args.rows) if r["method"] in methods and Path(r.get("onnx", "")).is_file()]
    jobs = []
    for budget in args.budgets.split(","):
        for seed in map(int, args.seeds.split(",")):
            rows = [r for r in made if r["budget"] == budget and r["seed"] == seed]
            if {r["method"] for r in rows} == set(methods):
                jobs.append({"budget": budget, "seed": seed, "rows": rows})
    print(f"{len(jobs)} (budget, seed) with every method's network here", flush=True)
    setup = make_setup(args, Path(args.rows)) if jobs else None  # the trained network cached beside its rows
    done = {(r["budget"], r["seed"]) for r in load_rows(out)}
    for job in jobs:
        if (job["budget"], job["seed"]) in done:
            continue
        rows = measure_seed(setup, job["rows"], job["budget"], job["seed"], args)
        run_grid(rows, lambda row: {}, out, key=("method", "budget", "seed"))  # appends the seed's rows at once
    print(summarise(load_rows(out)))


if __name__ == "__main__":
    main()
