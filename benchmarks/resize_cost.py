"""Issue 17 (freeze for speed): what do the adaptors' Resize nodes cost in ONNX Runtime, and is an exact-half
average pool cheaper?

For the quality model (mobilenet_v2_cifar, 28 px, 1 channel), mobilenet_v2@224 and resnet18@224 at a MACs
budget: the plan's frozen network (collapsed to one full branch per adaptor) and, for every adaptor, a graph
holding that adaptor's Resize alone (its real channels, input and output sizes), timed interleaved at 1 thread,
batch 1. Each Resize's share of the whole network's p50 says what the resizes cost. Then at each adaptor's input
size, a bilinear Resize to exactly half against the 2x2 average pool that computes the same thing (bilinear,
align_corners=False, halving samples the middle of every 2x2 block: checked here to 1e-6).

    python -m benchmarks.resize_cost
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from autosc.adaptor import resize
from autosc.export import export_onnx
from autosc.latency import bench
from autosc.planning import make_plan
from autosc.run import freeze_and_save
from benchmarks.common import add_out, machine, parser, quiet, write_json

FAMILIES = {
    "quality": {"model": "mobilenet_v2_cifar", "size": 28, "channels": 1, "classes": 10, "budget": "15M"},
    "mobilenet_v2": {"model": "mobilenet_v2", "size": 224, "channels": 3, "classes": 1000, "budget": "300M"},
    "resnet18": {"model": "resnet18", "size": 224, "channels": 3, "classes": 1000, "budget": "1.2G"},
}


class Resize(nn.Module):
    def __init__(self, size: tuple[int, int]) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return resize(x, self.size)


class HalfPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2)


def _inputs(net: nn.Module, names: list[str], x: torch.Tensor) -> dict[str, tuple[int, ...]]:
    shapes, hooks = {}, []
    for name in names:
        hooks.append(net.get_submodule(name).register_forward_pre_hook(
            lambda m, args, name=name: shapes.__setitem__(name, tuple(args[0].shape))))  # fmt: skip
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    return shapes


def run_family(name: str, runs: int) -> dict:
    f = FAMILIES[name]
    size = (f["size"], f["size"])
    plan = make_plan(
        f["model"], budget=f["budget"], input_size=size, num_classes=f["classes"], in_channels=f["channels"]
    )
    plan.network.collapse()
    frozen, shape = freeze_and_save(plan.network)
    names = [f"{a['name']}.adaptor" for a in shape["adaptors"]]
    inputs = _inputs(frozen, names, torch.zeros(1, f["channels"], *size))
    graphs: dict[str, tuple[nn.Module, tuple[int, ...]]] = {"network": (frozen, (f["channels"], *size))}
    for k, (entry, n) in enumerate(zip(shape["adaptors"], names, strict=True)):
        c, h, w = inputs[n][1:]
        out = tuple(entry["size"])
        if out != (h, w):
            graphs[f"resize{k}"] = (Resize(out), (c, h, w))
        even = (h // 2 * 2, w // 2 * 2)
        half = (even[0] // 2, even[1] // 2)
        x = torch.randn(1, c, *even)
        assert torch.allclose(resize(x, half), F.avg_pool2d(x, 2), atol=1e-6)
        graphs[f"half-resize{k}"] = (Resize(half), (c, *even))
        graphs[f"half-pool{k}"] = (HalfPool(), (c, *even))
    with tempfile.TemporaryDirectory() as tmp, quiet():
        paths = []
        for label, (module, (c, h, w)) in graphs.items():
            path = Path(tmp) / f"{label}.onnx"
            export_onnx(module.eval(), (h, w), path, in_channels=c, exporter="torchscript", check=False)
            paths.append(str(path))
        timing = bench(paths, labels=list(graphs), threads=[1], batches=[1], runs=runs, warmup=20)
    p50 = {r["label"]: r["p50"] for r in timing["results"]}
    adaptors = []
    for k, (entry, n) in enumerate(zip(shape["adaptors"], names, strict=True)):
        adaptors.append({
            "name": entry["name"], "input": list(inputs[n][1:]), "size": entry["size"],
            "resize_ms": p50.get(f"resize{k}"), "share_of_network": (p50[f"resize{k}"] / p50["network"]) if f"resize{k}" in p50 else 0.0,
            "half_resize_ms": p50[f"half-resize{k}"], "half_pool_ms": p50[f"half-pool{k}"],
        })  # fmt: skip
    return {"family": name, **f, "network_ms": p50["network"], "adaptors": adaptors}


def table(results: list[dict]) -> str:
    lines = ["| family | adaptor | input (C, H, W) | learned size | Resize p50 | share of network | half: Resize / avg-pool |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        for a in r["adaptors"]:
            resize_ms = f"{1e3 * a['resize_ms']:.0f} us" if a["resize_ms"] is not None else "none (identity)"
            lines.append(
                f"| {r['family']} ({r['network_ms']:.2f} ms) | {a['name']} | {tuple(a['input'])} | {tuple(a['size'])} | "
                f"{resize_ms} | {100 * a['share_of_network']:.1f}% | "
                f"{1e3 * a['half_resize_ms']:.0f} / {1e3 * a['half_pool_ms']:.0f} us |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--runs", type=int, default=200)
    add_out(ap, "resize_cost.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    results = [run_family(name, args.runs) for name in args.families.split(",")]
    write_json(args.out, {"env": machine(), "args": vars(args), "results": results})
    print(table(results))


if __name__ == "__main__":
    main()
