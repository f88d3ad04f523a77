"""Seconds per training step: alpha update in a separate pass (reference) vs shared with the weight step, and
channels-last vs contiguous activations.

Each setting trains one epoch of ``warmup + steps`` batches of 128 random 32 px images through the public
``Trainer.run_epoch``; the ``on_batch`` callback stamps the end of every batch, and a step is the mean time
between the stamps after the warm-up (the loader's collation of an in-memory batch, well under a millisecond, is
inside it). The shape learns for the whole epoch (``shape_until=1``), so ``alpha_step=1`` updates the alphas at
every step.

Public calls: ``make_plan``, ``TrainConfig.resolve`` (the family recipe for the rest), ``Trainer.run_epoch``.

    python -m benchmarks.alpha_pass
"""

from __future__ import annotations

import json
import time

import torch
from torch.utils.data import TensorDataset

from autosc.planning import make_plan
from autosc.train import TrainConfig, Trainer
from benchmarks.common import add_out, parser, write_json

MODEL, SIZE, BATCH = "mobilenet_v2_cifar", (32, 32), 128


def seconds_per_step(
    alpha_pass: str, alpha_step: int, steps: int, warmup: int = 2, channels_last: bool = True
) -> float:
    torch.manual_seed(0)
    plan = make_plan(MODEL, budget="25M", width=0.55, input_size=SIZE, in_channels=1)
    n = (warmup + steps) * BATCH
    data = TensorDataset(torch.randn(n, 1, *SIZE), torch.randint(0, 10, (n,)))
    config = TrainConfig(
        epochs=1, batch_size=BATCH, alpha_pass=alpha_pass, alpha_step=alpha_step, shape_until=1.0,
        channels_last=channels_last,
    ).resolve(MODEL, SIZE)  # fmt: skip
    trainer = Trainer(plan.network, data, TensorDataset(data.tensors[0][:1], data.tensors[1][:1]), config)
    stamps: list[float] = []
    trainer.run_epoch({"stop": False}, on_batch=lambda t: stamps.append(time.perf_counter()))
    return (stamps[-1] - stamps[warmup - 1]) / steps


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--steps", type=int, default=12, help="timed steps per setting (after 2 warm-up steps)")
    add_out(ap, "alpha_pass.json")
    args = ap.parse_args(argv)
    rows = {
        "contiguous (NCHW), shared, alpha every step": seconds_per_step("shared", 1, args.steps, channels_last=False),
        "no alpha step (alpha_step=10**9)": seconds_per_step("shared", 10**9, args.steps),
        "shared, alpha every step": seconds_per_step("shared", 1, args.steps),
        "separate, alpha every step": seconds_per_step("separate", 1, args.steps),
    }
    print(json.dumps(rows, indent=2))
    write_json(args.out, rows)


if __name__ == "__main__":
    main()
