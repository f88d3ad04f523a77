"""Issue 5, benchmark 4: what training with shape adaptors costs over plain training of the same widened network.

Same data pipeline, same batch, same widened width, one epoch each, repeated and interleaved (autosc, plain,
autosc, plain, ...) so that drift of the machine cancels out. ``autosc`` is the Trainer in its shape-learning phase
(alpha update with the cost term every batch, projection in every forward); ``autosc-default`` is a run with
compress's defaults, whose shape learns during the first half only. Goal: <= 1.15x.

The time inside the budget projection is measured in the same run without touching the network: after every
batch, ``network.update_shape()`` is timed once more on the alphas the next forward projects (the projection is a
pure function of the alphas and keeps no cache, so that call costs what the forward's own does); those extra
calls are subtracted from the epoch's seconds. ``projections`` counts the training forwards (the epoch's
evaluation and metrics add two more projections, not counted).

Public calls: ``input_size``, ``load_dataset``, ``plan_network`` (autosc.run), ``Trainer.run_epoch`` with its
``on_batch`` callback (``train_network`` takes none), ``network.update_shape()``, ``environment``.

    python -m benchmarks.overhead
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import time

import torch
from torch.utils.data import Subset

from autosc import RunConfig
from autosc.run import input_size, load_dataset, plan_network
from autosc.train import Trainer
from benchmarks.common import add_out, machine, parser, write_json

KINDS = ("autosc", "autosc-default", "plain")


def epoch_seconds(kind: str, config: RunConfig, bundle) -> dict:
    torch.manual_seed(0)
    plan = plan_network(config, bundle, input_size(config))
    net = plan.network if kind.startswith("autosc") else plan.spec.build()  # plain: the same widened network
    # "autosc": the shape-learning phase (an alpha update every batch); "autosc-default": compress's defaults,
    # whose shape learns during the first half of the steps only.
    train = dataclasses.replace(config.train, shape_until=1.0 if kind == "autosc" else 0.5)
    test = Subset(bundle.test, range(10))  # evaluation is not what is measured
    trainer = Trainer(net, bundle.train, test, train)
    spent = {"projection": 0.0, "calls": 0}

    def time_projection(t: Trainer) -> None:
        start = time.perf_counter()
        t.net.update_shape()
        spent["projection"] += time.perf_counter() - start
        spent["calls"] += 1

    start = time.perf_counter()
    trainer.run_epoch({"stop": False}, on_batch=time_projection if kind != "plain" else None)
    seconds = time.perf_counter() - start - spent["projection"]  # without the extra, measuring calls
    return {"kind": kind, "seconds": seconds, "projection_seconds": spent["projection"], "projections": spent["calls"]}


def summarise(rows: list[dict], images: int) -> dict:
    def median(kind: str, key: str = "seconds") -> float:
        return statistics.median(r[key] for r in rows if r["kind"] == kind)

    auto, default, plain = median("autosc"), median("autosc-default"), median("plain")
    projection = median("autosc", "projection_seconds")
    return {
        "autosc_epoch_s": auto,
        "autosc_default_epoch_s": default,
        "plain_epoch_s": plain,
        "ratio": auto / plain,
        "ratio_default": default / plain,
        "projection_s": projection,
        "projection_fraction": projection / auto,
        "images": images,
    }


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--model", default="mobilenet_v2_cifar")
    ap.add_argument("--budget", default="15M")
    ap.add_argument("--input-size", type=int, default=28)
    ap.add_argument("--subset", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=3)
    add_out(ap, "overhead.json")
    args = ap.parse_args(argv)
    config = RunConfig.from_flat({
        "model": args.model, "budget": args.budget, "input_size": args.input_size, "data": "fashion-mnist",
        "subset": args.subset, "epochs": 1, "batch_size": 128, "lr": 0.05, "weight_decay": 4e-5, "alpha_step": 1,
        "device": "cpu", "val_split": 0.0,  # timing only: every subset image trains, as when it was measured
    })  # fmt: skip
    bundle = load_dataset(config, input_size(config))
    rows = []
    for i in range(args.repeats):
        for kind in KINDS if i % 2 == 0 else KINDS[::-1]:
            rows.append(epoch_seconds(kind, config, bundle))
            print(json.dumps(rows[-1]), flush=True)
    summary = summarise(rows, args.subset)
    print(json.dumps(summary, indent=2))
    write_json(args.out, {"env": machine(), "args": vars(args), "rows": rows, "summary": summary})


if __name__ == "__main__":
    main()
