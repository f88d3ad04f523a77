"""Seconds per training step: alpha update in a separate pass (reference) vs shared with the weight step, and
channels-last vs contiguous activations.

.venv/bin/python benchmarks/alpha_pass.py
"""

from __future__ import annotations

import json
import time

import torch

from autosc.planning import make_plan
from autosc.train import TrainConfig, Trainer


def seconds_per_step(alpha_pass: str, alpha_step: int, steps: int = 12, channels_last: bool = True) -> float:
    torch.manual_seed(0)
    plan = make_plan("mobilenet_v2_cifar", budget="25M", width=0.55, in_channels=1)
    data = [(torch.randn(1, 32, 32), i % 10) for i in range(128)]
    config = TrainConfig(
        epochs=1, batch_size=128, alpha_pass=alpha_pass, alpha_step=alpha_step, channels_last=channels_last
    )
    trainer = Trainer(plan.network, data, data, config)
    x = torch.randn(128, 1, 32, 32)
    y = torch.randint(0, 10, (128,))
    plan.network.train()
    for _ in range(2):
        trainer._train_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        trainer._train_batch(x, y)
    return (time.perf_counter() - start) / steps


if __name__ == "__main__":
    rows = {
        "contiguous (NCHW), shared, alpha every step": seconds_per_step("shared", 1, channels_last=False),
        "no alpha step (alpha_step=10**9)": seconds_per_step("shared", 10**9),
        "shared, alpha every step": seconds_per_step("shared", 1),
        "separate, alpha every step": seconds_per_step("separate", 1),
    }
    print(json.dumps(rows, indent=2))
