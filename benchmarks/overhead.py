"""Issue 5, benchmark 4: what training with shape adaptors costs over plain training of the same widened network.

Same data pipeline, same batch, same widened width, one epoch each, repeated and interleaved (autosc, plain,
autosc, plain, ...) so that drift of the machine cancels out. ``autosc`` is the Trainer in its shape-learning phase
(alpha update with the cost term every batch, projection in every forward); ``autosc-default`` is a run with
compress's defaults, whose shape learns during the first half only; the time inside the budget projection is
measured separately. Goal: <= 1.15x.

    .venv/bin/python benchmarks/overhead.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from autosc.data import load_data  # noqa: E402
from autosc.latency import environment  # noqa: E402
from autosc.planning import make_plan  # noqa: E402
from autosc.train import TrainConfig, Trainer  # noqa: E402


def epoch_seconds(kind: str, bundle, args) -> dict:
    torch.manual_seed(0)
    plan = make_plan(args.model, budget=args.budget, input_size=args.input_size, num_classes=10, in_channels=1)
    spent = {"projection": 0.0, "calls": 0}
    if kind.startswith("autosc"):
        net = plan.network
        original = net.update_shape

        def timed_update():
            t0 = time.perf_counter()
            out = original()
            spent["projection"] += time.perf_counter() - t0
            spent["calls"] += 1
            return out

        net.update_shape = timed_update
    else:
        net = plan.spec.build()  # the same widened network without adaptors
    # "autosc": the shape-learning phase (an alpha update every batch); "autosc-default": compress's defaults,
    # whose shape learns during the first half of the steps only.
    config = TrainConfig(
        epochs=1,
        batch_size=128,
        lr=0.05,
        weight_decay=4e-5,
        shape_until=1.0 if kind == "autosc" else 0.5,
        alpha_step=1,
        device="cpu",
    )
    test = torch.utils.data.Subset(bundle.test, range(10))  # evaluation is not what is measured
    trainer = Trainer(net, bundle.train, test, config)
    t0 = time.perf_counter()
    trainer.run_epoch({"stop": False})
    seconds = time.perf_counter() - t0
    return {"kind": kind, "seconds": seconds, "projection_seconds": spent["projection"], "projections": spent["calls"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="mobilenet_v2_cifar")
    ap.add_argument("--budget", default="15M")
    ap.add_argument("--input-size", type=int, default=28)
    ap.add_argument("--subset", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "results" / "overhead.json"))
    args = ap.parse_args()
    bundle = load_data("fashion-mnist", input_size=(args.input_size,) * 2, subset=args.subset, seed=0)
    rows = []
    for i in range(args.repeats):
        kinds = ("autosc", "autosc-default", "plain")
        for kind in kinds if i % 2 == 0 else kinds[::-1]:
            rows.append(epoch_seconds(kind, bundle, args))
            print(json.dumps(rows[-1]), flush=True)
    auto = [r["seconds"] for r in rows if r["kind"] == "autosc"]
    default = [r["seconds"] for r in rows if r["kind"] == "autosc-default"]
    plain = [r["seconds"] for r in rows if r["kind"] == "plain"]
    proj = [r["projection_seconds"] for r in rows if r["kind"] == "autosc"]
    summary = {
        "autosc_epoch_s": statistics.median(auto),
        "autosc_default_epoch_s": statistics.median(default),
        "plain_epoch_s": statistics.median(plain),
        "ratio": statistics.median(auto) / statistics.median(plain),
        "ratio_default": statistics.median(default) / statistics.median(plain),
        "projection_s": statistics.median(proj),
        "projection_fraction": statistics.median(proj) / statistics.median(auto),
        "images": args.subset,
    }
    print(json.dumps(summary, indent=2))
    result = {"env": environment(), "args": vars(args), "rows": rows, "summary": summary}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
