"""Issue 5, benchmark 3: does a MACs cut become a latency cut?

For mobilenet_v2@224, resnet18@224 and the quality benchmark's model (mobilenet_v2_cifar on 28 px, 1 channel), at
three budgets each: the frozen autosc network (the plan's shape: the identity shape projected under the budget;
latency does not depend on weight values, so nothing is trained), the same network collapsed to one branch per
adaptor, the human network narrowed to the same budget, and the full human network. ONNX Runtime CPU p50/p90 at
1 and 2 threads, batch 1 and 32, all models of one family interleaved in the same run; torch eager p50 beside ORT
at batch 1; MACs ratio against latency ratio; achieved MACs/s as a fraction of this machine's dense matmul peak,
measured in the same run.

Public calls: ``make_plan``, ``freeze_and_save``, ``collapse``, ``auto_width`` (benchmarks.common.lineup_at),
``export_networks`` and ``count`` (common.export_counted), ``autosc.latency.bench`` (every file, thread count and
batch interleaved: ``measure_latency`` times one setting of the compressed and human networks only) and
``environment``.

    python -m benchmarks.latency                     # ~10 min on 2 cores
    python -m benchmarks.latency --families quality  # one family
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from autosc import ModelSpec
from autosc.latency import bench
from benchmarks.common import add_out, export_counted, ints, lineup_at, machine, median_ms, parser, seconds, write_json

FAMILIES = {
    "mobilenet_v2": {"model": "mobilenet_v2", "size": 224, "channels": 3, "classes": 1000,
                     "budgets": ["100M", "200M", "300M"]},
    "resnet18": {"model": "resnet18", "size": 224, "channels": 3, "classes": 1000,
                 "budgets": ["600M", "1G", "1.4G"]},
    "quality": {"model": "mobilenet_v2_cifar", "size": 28, "channels": 1, "classes": 10,
                "budgets": ["10M", "15M", "22M"]},
}  # fmt: skip


def matmul_peak(threads: int, n: int = 1024, reps: int = 20) -> float:
    """Dense float32 matmul MACs/s at ``threads`` (best of ``reps``): the ceiling convolutions are compared with."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = min(seconds(lambda: a @ b) for _ in range(reps))
    return n**3 / best


def eager_p50(net: torch.nn.Module, shape: tuple[int, ...], threads: int, runs: int) -> float:
    torch.set_num_threads(threads)
    x = torch.randn(*shape)
    with torch.inference_mode():
        for _ in range(5):
            net(x)
        return median_ms(lambda: net(x), runs)


def family_models(cfg: dict, tmp: Path) -> list[dict]:
    """The family's networks, exported to ``tmp`` and counted: the human network, then three per budget."""
    size, classes, channels = (cfg["size"], cfg["size"]), cfg["classes"], cfg["channels"]
    torch.manual_seed(0)
    nets = {"human": ("human 1x", None, "human", ModelSpec(cfg["model"], 1.0, classes, channels).build().eval())}
    for budget in cfg["budgets"]:
        at = lineup_at(cfg["model"], budget, size, classes, channels)
        nets[f"autosc_{budget}"] = (f"autosc {budget} (w {at.plan.spec.width:g})", budget, "autosc", at.frozen)
        nets[f"collapsed_{budget}"] = (f"autosc {budget} collapsed", budget, "collapsed", at.collapsed)
        nets[f"scaled_{budget}"] = (f"human {at.width:g}x @ {budget}", budget, "human-width", at.human)
    files = export_counted({name: v[3] for name, v in nets.items()}, size, channels, tmp)
    return [
        {"label": label, "kind": kind, "budget": budget, "net": net, **files[name]}
        for name, (label, budget, kind, net) in nets.items()
    ]


def time_family(cfg: dict, threads: list[int], runs: int) -> list[dict]:
    """ORT p50/p90 of every network at every thread count and batch 1 and 32, interleaved; eager p50 beside."""
    with tempfile.TemporaryDirectory() as tmp:
        models = family_models(cfg, Path(tmp))
        paths, labels = [m["path"] for m in models], [m["label"] for m in models]
        timing = []
        for batch, n in {1: runs, 32: max(5, runs // 10)}.items():
            out = bench(paths, labels=labels, threads=threads, batches=[batch], runs=n, warmup=max(2, n // 10))
            timing += out["results"]
        shape = (1, cfg["channels"], cfg["size"], cfg["size"])
        for m in models:
            m["eager_p50_ms"] = {t: eager_p50(m["net"], shape, t, max(10, runs // 4)) for t in threads}
    for m in models:
        m["timing"] = [r for r in timing if r["label"] == m["label"]]
    return models


def family_rows(models: list[dict], peak: dict[int, float]) -> list[dict]:
    rows = []
    for m in models:
        for r in m["timing"]:
            total = m["macs"] + m["resize_macs"]
            macs_per_s = total * r["batch"] / (r["p50"] / 1e3)
            rows.append({
                "label": m["label"], "kind": m["kind"], "budget": m["budget"], "threads": r["threads"],
                "batch": r["batch"], "p50": r["p50"], "p90": r["p90"], "macs": m["macs"],
                "resize_macs": m["resize_macs"], "params": m["params"],
                "eager_p50": m["eager_p50_ms"][r["threads"]] if r["batch"] == 1 else None,
                "macs_per_s": macs_per_s,
                "fraction_of_peak": macs_per_s / peak[r["threads"]],
            })  # fmt: skip
    return rows


def ratios(rows: list[dict]) -> list[dict]:
    """autosc (and collapsed) over human-at-the-same-budget: MACs ratio against p50 ratio, per setting."""
    out = []
    for r in rows:
        if r["kind"] not in ("autosc", "collapsed"):
            continue
        ref = next(
            x for x in rows
            if x["kind"] == "human-width" and x["budget"] == r["budget"]
            and (x["threads"], x["batch"]) == (r["threads"], r["batch"])
        )  # fmt: skip
        out.append({
            "label": r["label"], "threads": r["threads"], "batch": r["batch"],
            "macs_ratio": (r["macs"] + r["resize_macs"]) / ref["macs"], "p50_ratio": r["p50"] / ref["p50"],
        })  # fmt: skip
    return out


def print_family(name: str, rows: list[dict], rat: list[dict]) -> None:
    print(f"\n{name}")
    for r in rows:
        eager = f" eager {r['eager_p50']:.2f}" if r["eager_p50"] else ""
        print(
            f"  {r['label']:<28} t{r['threads']} b{r['batch']:<3} p50 {r['p50']:8.3f} p90 {r['p90']:8.3f}{eager}  "
            f"{(r['macs'] + r['resize_macs']) / 1e6:8.1f}M  {r['macs_per_s'] / 1e9:6.1f} GMAC/s "
            f"({100 * r['fraction_of_peak']:.0f}% of peak)"
        )
    for r in rat:
        print(
            f"  {r['label']:<28} t{r['threads']} b{r['batch']:<3} MACs x{r['macs_ratio']:.3f} p50 x{r['p50_ratio']:.3f}"
        )


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--families", default=",".join(FAMILIES), help=f"some of {', '.join(FAMILIES)}")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=100, help="timed runs at batch 1 (batch 32: runs / 10)")
    add_out(ap, "latency.json")
    args = ap.parse_args(argv)
    threads = ints(args.threads)
    result: dict = {"env": machine(), "torch_threads_default": torch.get_num_threads(), "families": {}}
    result["matmul_peak_macs_per_s"] = {t: matmul_peak(t) for t in threads}
    print("matmul peak (GMAC/s):", {t: round(v / 1e9, 1) for t, v in result["matmul_peak_macs_per_s"].items()})
    for name in args.families.split(","):
        cfg = FAMILIES[name]
        rows = family_rows(time_family(cfg, threads, args.runs), result["matmul_peak_macs_per_s"])
        result["families"][name] = {"config": cfg, "rows": rows, "ratios": ratios(rows)}
        print_family(name, rows, result["families"][name]["ratios"])
        write_json(args.out, result)


if __name__ == "__main__":
    main()
