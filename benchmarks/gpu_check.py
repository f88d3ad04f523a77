"""Issue 6's accelerator check: the quality benchmark's model on CUDA with bf16 autocast.

Trains the autosc network of ``benchmarks/quality.py``'s smaller setting (MobileNetV2-CIFAR, Fashion-MNIST at
28 px, 10M MACs) for one epoch each on CUDA in float32, CUDA with bf16 autocast and the CPU; records
images/s; then freezes the bf16-trained network, exports it to ONNX and
checks ONNX Runtime against PyTorch (the usual tolerance). Without a GPU it says so and exits 0.

    python benchmarks/gpu_check.py --out benchmarks/results/gpu_check.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from autosc.data import load_data  # noqa: E402
from autosc.export import export_onnx  # noqa: E402
from autosc.freeze import freeze  # noqa: E402
from autosc.latency import environment  # noqa: E402
from autosc.planning import make_plan  # noqa: E402
from autosc.train import TrainConfig, Trainer, evaluate  # noqa: E402


def one_epoch(bundle, device: str, amp: str, compile_net: bool, subset: int) -> tuple[dict, Trainer]:
    torch.manual_seed(0)
    plan = make_plan("mobilenet_v2_cifar", budget="10M", input_size=28, num_classes=10, in_channels=1)
    train = torch.utils.data.Subset(bundle.train, range(subset))
    test = torch.utils.data.Subset(bundle.test, range(1000))
    config = TrainConfig(epochs=1, batch_size=128, lr=0.1, weight_decay=4e-5, device=device, amp=amp)
    trainer = Trainer(plan.network, train, test, config)
    if compile_net:
        plan.network.net = torch.compile(plan.network.net)
    start = time.perf_counter()
    row = trainer.run_epoch({"stop": False})
    seconds = time.perf_counter() - start
    return {
        "device": device,
        "amp": amp,
        "compile": compile_net,
        "images": subset,
        "seconds": seconds,
        "images_per_second": subset / seconds,
        "train_loss": row["train_loss"],
        "monitor_acc": row["test_acc"],
        "alpha_moved": row["alpha_moved"],
    }, trainer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "results" / "gpu_check.json"))
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--subset", type=int, default=20_000)
    ap.add_argument("--cpu-subset", type=int, default=2_000)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device here: the GPU check is skipped (nothing failed)")
        return
    bundle = load_data("fashion-mnist", input_size=(28, 28), data_root=args.data_root, seed=0)
    result: dict = {"env": environment(), "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "runs": []}
    bf16_trainer = None
    out = Path(args.out)
    for device, amp, compile_net, n in (
        ("cuda", "off", False, args.subset),
        ("cuda", "bf16", False, args.subset),
        ("cpu", "off", False, args.cpu_subset),
    ):
        try:
            row, trainer = one_epoch(bundle, device, amp, compile_net, n)
        except Exception as exc:  # a measurement that fails is recorded, not fatal
            row, trainer = {"device": device, "amp": amp, "compile": compile_net, "error": repr(exc)[:500]}, None
        print(json.dumps(row), flush=True)
        result["runs"].append(row)
        if device == "cuda" and amp == "bf16" and not compile_net:
            bf16_trainer = trainer
        out.write_text(json.dumps(result, indent=2) + "\n")  # what is measured so far survives a time-out
    if bf16_trainer is not None:
        network = bf16_trainer.net
        _, acc_bf16 = evaluate(network, bundle.test, device="cuda", amp="bf16", channels_last=True)
        network.cpu().to(memory_format=torch.contiguous_format).eval()
        frozen, _ = freeze(network)
        _, acc_cpu = evaluate(frozen, bundle.test, device="cpu")
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exported = export_onnx(frozen, (28, 28), Path(tmp) / "m.onnx", in_channels=1)
        result["export"] = {
            "max_abs_diff": exported.max_abs_diff,
            "exporter": exported.exporter,
            "opset": exported.opset,
            "test_acc_cuda_bf16": acc_bf16,
            "test_acc_frozen_cpu_fp32": acc_cpu,
        }
        print(json.dumps(result["export"]), flush=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
