"""Issue 6's accelerator check: the quality benchmark's model on CUDA with bf16 autocast.

Trains the autosc network of the quality benchmark's smaller setting (MobileNetV2-CIFAR, Fashion-MNIST at
28 px, 10M MACs) for one epoch each on CUDA in float32, CUDA with bf16 autocast and the CPU; records
images/s (the wall time of ``train_network``: the epoch and its evaluation on 1000 test images); then freezes
the bf16-trained network, exports it to ONNX and checks ONNX Runtime against PyTorch (the usual tolerance).
Without a GPU it says so and exits 0.

Public calls: ``input_size``, ``load_dataset``, ``plan_network``, ``train_network``, ``freeze_and_save``,
``export_networks`` (autosc.run), ``evaluate`` (autosc.train), ``environment``.

    python -m benchmarks.gpu_check --out benchmarks/results/gpu_check.json
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import Subset

from autosc import ExportConfig, RunConfig
from autosc.data import DataBundle
from autosc.run import (
    RunFolder,
    export_networks,
    freeze_and_save,
    input_size,
    load_dataset,
    plan_network,
    train_network,
)
from autosc.train import Trainer, evaluate
from benchmarks.common import add_out, machine, parser, quiet, write_json

SETTING = {"model": "mobilenet_v2_cifar", "budget": "10M", "input_size": 28, "data": "fashion-mnist",
           "epochs": 1, "batch_size": 128, "lr": 0.1, "weight_decay": 4e-5, "val_split": 0.0}  # fmt: skip


def one_epoch(config: RunConfig, bundle: DataBundle, subset: int) -> tuple[dict, Trainer]:
    torch.manual_seed(0)
    plan = plan_network(config, bundle, input_size(config))
    part = dataclasses.replace(bundle, train=Subset(bundle.train, range(subset)), test=Subset(bundle.test, range(1000)))
    start = time.perf_counter()
    trainer = train_network(plan.network, part, config.train, name=f"{config.train.device} {config.train.amp}")
    seconds = time.perf_counter() - start
    if trainer is None:
        raise SystemExit("stopped (Ctrl-C)")
    row = trainer.history[-1]
    return {
        "device": config.train.device,
        "amp": config.train.amp,
        "compile": False,
        "images": subset,
        "seconds": seconds,
        "images_per_second": subset / seconds,
        "train_loss": row["train_loss"],
        "monitor_acc": row["test_acc"],
        "alpha_moved": row["alpha_moved"],
    }, trainer


def check_export(trainer: Trainer, bundle: DataBundle, device: str = "cuda") -> dict:
    """The bf16-trained network frozen, evaluated on the CPU in float32, exported and checked against PyTorch."""
    network = trainer.net
    _, acc_bf16 = evaluate(network, bundle.test, device=device, amp="bf16", channels_last=True)
    network.cpu().to(memory_format=torch.contiguous_format)
    frozen, _ = freeze_and_save(network)
    _, acc_cpu = evaluate(frozen, bundle.test, device="cpu")
    with tempfile.TemporaryDirectory() as tmp, quiet():
        exported = export_networks({"compressed": frozen}, (28, 28), 1, RunFolder(Path(tmp)), ExportConfig())
    return {
        "max_abs_diff": exported["compressed"].max_abs_diff,
        "exporter": exported["compressed"].exporter,
        "opset": exported["compressed"].opset,
        "test_acc_cuda_bf16": acc_bf16,
        "test_acc_frozen_cpu_fp32": acc_cpu,
    }


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    add_out(ap, "gpu_check.json")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--subset", type=int, default=20_000)
    ap.add_argument("--cpu-subset", type=int, default=2_000)
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device here: the GPU check is skipped (nothing failed)")
        return
    config = RunConfig.from_flat({**SETTING, "data_root": args.data_root})
    bundle = load_dataset(config, input_size(config))
    result: dict = {"env": machine(), "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "runs": []}
    bf16_trainer = None
    for device, amp, n in (
        ("cuda", "off", args.subset),
        ("cuda", "bf16", args.subset),
        ("cpu", "off", args.cpu_subset),
    ):
        run = dataclasses.replace(config, train=dataclasses.replace(config.train, device=device, amp=amp))
        try:
            row, trainer = one_epoch(run, bundle, n)
        except Exception as exc:  # a measurement that fails is recorded, not fatal
            row, trainer = {"device": device, "amp": amp, "compile": False, "error": repr(exc)[:500]}, None
        print(json.dumps(row), flush=True)
        result["runs"].append(row)
        if (device, amp) == ("cuda", "bf16"):
            bf16_trainer = trainer
        write_json(args.out, result)  # what is measured so far survives a time-out
    if bf16_trainer is not None:
        result["export"] = check_export(bf16_trainer, bundle)
        print(json.dumps(result["export"]), flush=True)
    write_json(args.out, result)


if __name__ == "__main__":
    main()
