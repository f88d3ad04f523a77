"""Issue 5, benchmark 3: does a MACs cut become a latency cut?

For mobilenet_v2@224, resnet18@224 and the quality benchmark's model (mobilenet_v2_cifar on 28 px, 1 channel), at
three budgets each: the frozen autosc network (the plan's shape: the identity shape projected under the budget;
latency does not depend on weight values, so nothing is trained), the same network collapsed to one branch per
adaptor, the human network narrowed to the same budget, and the full human network. ONNX Runtime CPU p50/p90 at
1 and 2 threads, batch 1 and 32, all models of one family interleaved in the same run; torch eager p50 beside ORT
at batch 1; MACs ratio against latency ratio; achieved MACs/s as a fraction of this machine's dense matmul peak,
measured in the same run.

    .venv/bin/python benchmarks/latency.py                     # ~10 min on 2 cores
    .venv/bin/python benchmarks/latency.py --families quality  # one family
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from autosc import count  # noqa: E402
from autosc.cost.width import auto_width  # noqa: E402
from autosc.export import export_onnx  # noqa: E402
from autosc.freeze import collapse, freeze  # noqa: E402
from autosc.latency import bench, environment  # noqa: E402
from autosc.models import ModelSpec  # noqa: E402
from autosc.planning import make_plan  # noqa: E402

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
    best = min(_timed(lambda: a @ b) for _ in range(reps))
    return n**3 / best


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def eager_p50(net: torch.nn.Module, shape: tuple[int, ...], threads: int, runs: int) -> float:
    torch.set_num_threads(threads)
    x = torch.randn(*shape)
    with torch.inference_mode():
        for _ in range(5):
            net(x)
        return statistics.median(_timed(lambda: net(x)) for _ in range(runs)) * 1e3


def family_models(name: str, cfg: dict, tmp: Path) -> list[dict]:
    size = (cfg["size"], cfg["size"])
    human_spec = ModelSpec(cfg["model"], 1.0, cfg["classes"], cfg["channels"])
    models = []

    def add(label: str, net: torch.nn.Module, budget: str | None, kind: str, check: bool = False) -> None:
        net = net.eval()
        path = tmp / f"{name}_{len(models)}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_onnx(net, size, path, in_channels=cfg["channels"], check=check)
        c = count(net, size, cells=False)
        models.append({"label": label, "kind": kind, "budget": budget, "path": str(path), "net": net,
                       "macs": c.macs, "resize_macs": c.resize_macs, "params": c.params})  # fmt: skip

    torch.manual_seed(0)
    add("human 1x", human_spec.build(), None, "human")
    for budget in cfg["budgets"]:
        plan = make_plan(cfg["model"], budget=budget, input_size=size, num_classes=cfg["classes"],
                         in_channels=cfg["channels"])  # fmt: skip
        frozen, _ = freeze(plan.network)
        add(f"autosc {budget} (w {plan.spec.width:g})", frozen, budget, "autosc", check=True)
        add(f"autosc {budget} collapsed", collapse(frozen), budget, "collapsed")
        width = auto_width(human_spec, size, plan.budget, ratio=1.0)
        scaled = ModelSpec(cfg["model"], width, cfg["classes"], cfg["channels"]).build()
        add(f"human {width:g}x @ {budget}", scaled, budget, "human-width")
    return models


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=100, help="timed runs at batch 1 (batch 32: runs / 10)")
    ap.add_argument("--out", default=str(ROOT / "results" / "latency.json"))
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    result: dict = {"env": environment(), "torch_threads_default": torch.get_num_threads(), "families": {}}
    result["matmul_peak_macs_per_s"] = {t: matmul_peak(t) for t in threads}
    print("matmul peak (GMAC/s):", {t: round(v / 1e9, 1) for t, v in result["matmul_peak_macs_per_s"].items()})
    for name in args.families.split(","):
        cfg = FAMILIES[name]
        with tempfile.TemporaryDirectory() as tmp:
            models = family_models(name, cfg, Path(tmp))
            paths, labels = [m["path"] for m in models], [m["label"] for m in models]
            runs = {1: args.runs, 32: max(5, args.runs // 10)}
            timing = []
            for batch, n in runs.items():
                out = bench(paths, labels=labels, threads=threads, batches=[batch], runs=n, warmup=max(2, n // 10))
                timing += out["results"]
            shape = (1, cfg["channels"], cfg["size"], cfg["size"])
            for m in models:
                m["eager_p50_ms"] = {t: eager_p50(m["net"], shape, t, max(10, args.runs // 4)) for t in threads}
        rows = []
        for m in models:
            for r in (r for r in timing if r["label"] == m["label"]):
                total = m["macs"] + m["resize_macs"]
                macs_per_s = total * r["batch"] / (r["p50"] / 1e3)
                rows.append({
                    "label": m["label"], "kind": m["kind"], "budget": m["budget"], "threads": r["threads"],
                    "batch": r["batch"], "p50": r["p50"], "p90": r["p90"], "macs": m["macs"],
                    "resize_macs": m["resize_macs"], "params": m["params"],
                    "eager_p50": m["eager_p50_ms"][r["threads"]] if r["batch"] == 1 else None,
                    "macs_per_s": macs_per_s,
                    "fraction_of_peak": macs_per_s / result["matmul_peak_macs_per_s"][r["threads"]],
                })  # fmt: skip
        result["families"][name] = {"config": cfg, "rows": rows, "ratios": ratios(rows)}
        print_family(name, rows, result["families"][name]["ratios"])
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


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


if __name__ == "__main__":
    main()
