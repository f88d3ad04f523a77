"""INT8 ONNX by ONNX Runtime's static quantization (docs/algorithm.md, INT8 export).

ONNX Runtime's quantizer does the work: the float file is pre-processed (shape inference and graph optimisation,
``quant_pre_process``), calibrated on a seeded sample of training images (min-max ranges), and rewritten in the
QDQ format with per-channel signed 8-bit weights and unsigned 8-bit activations (U8S8): with signed activations
(S8S8) ONNX Runtime 1.32 on x86 left every residual Add of a MobileNetV2 and the convolutions around it unfused,
running in float between conversions, and the INT8 file ran 1.5x slower than the float one; with U8S8 only the
Resizes ran in float (measured with :func:`autosc.latency.op_profile`; docs/algorithm.md, INT8 export). Weights
use 7 of their 8 bits (``reduce_range``): x86 CPUs without VNNI add u8 x s8 products in pairs into 16 bits, which
saturate at full range (a tested MobileNetV2 lost 5.9 points of top-1 on an AVX2 EPYC; with 7 bits, under 5).
autosc only chooses the images, writes the file atomically, checks it with ``onnx.checker`` and says which nodes
were left in float (no DequantizeLinear feeds them): a Resize the quantizer skips is where INT8 pays a float
round trip, which issue 31 asks to measure.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import io
from ..errors import AutoscError
from .graph import load_onnx

#: Calibration images drawn from the training split when none are named: enough for min-max ranges of a small
#: CNN to settle (docs/algorithm.md, INT8 export).
CALIBRATION_IMAGES = 256
#: Images per calibration batch fed to ONNX Runtime (the exported file has a dynamic batch).
CALIBRATION_BATCH = 32
#: What ``--quantize`` accepts; "none" writes no quantized file.
QUANTIZE_KINDS = ("none", "int8")
#: Nodes that carry the quantization itself, never reported as float.
_QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}


@dataclass(frozen=True)
class QuantizeResult:
    """The INT8 file, the images it was calibrated on, and the op types of the nodes left in float."""

    path: Path
    calibration_images: int
    float_ops: dict[str, int]  # op type -> nodes computing in float (none of their inputs dequantized)


def check_quantize(kind: str) -> str:
    """``--quantize``'s value, checked: one line naming the choices otherwise."""
    if kind not in QUANTIZE_KINDS:
        raise AutoscError(f"--quantize must be one of {', '.join(QUANTIZE_KINDS)}, got {kind!r}")
    return kind


def calibration_indices(total: int, count: int = CALIBRATION_IMAGES, seed: int = 0) -> list[int]:
    """Which of ``total`` images calibrate: ``count`` drawn without replacement by ``seed``, in ascending order
    (all of them when there are fewer). The same seed gives the same ranges, so the same INT8 file."""
    if count < 1:
        raise AutoscError(f"--calibration-images must be 1 or more, got {count}")
    if total < 1:
        raise AutoscError("calibration needs at least one training image")
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:count]
    return order.sort().values.tolist()


def calibration_sample(images: torch.Tensor, count: int = CALIBRATION_IMAGES, seed: int = 0) -> torch.Tensor:
    """The :func:`calibration_indices` of a batch of images (N, C, H, W) already in memory."""
    if images.dim() != 4 or not len(images):
        raise AutoscError("calibration needs a batch of images (N, C, H, W)")
    return images[calibration_indices(len(images), count, seed)].float().contiguous()


def quantize_int8(float_onnx: str | os.PathLike, out: str | os.PathLike, images: torch.Tensor) -> QuantizeResult:
    """Write ``out``, the INT8 (QDQ) version of ``float_onnx`` calibrated on ``images`` (as the network takes them:
    normalised, at its input size), atomically; ``float_onnx`` is untouched."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    source, target = Path(float_onnx), Path(out)
    if source.resolve() == target.resolve():
        raise AutoscError(f"{target} is the float file being quantized; choose another output path")
    name = load_onnx(source).graph.input[0].name
    batches = [{name: images[i : i + CALIBRATION_BATCH].numpy()} for i in range(0, len(images), CALIBRATION_BATCH)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.left = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.left, None)

    with tempfile.TemporaryDirectory(prefix="autosc-quantize-") as work:
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)

        def write(tmp: str) -> None:
            quantize_static(str(prepared), tmp, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=True)  # fmt: skip
            import onnx

            onnx.checker.check_model(tmp)

        io.atomic_write(target, write)
    return QuantizeResult(target, len(images), float_ops(target))


def float_ops(path: str | os.PathLike) -> dict[str, int]:
    """Op types of the nodes that take a float tensor no DequantizeLinear made: they compute in float. Shape
    arithmetic (the int64 sizes a Resize is given) is not counted."""
    import onnx

    graph = onnx.shape_inference.infer_shapes(load_onnx(Path(path))).graph
    floating = {v.name for v in [*graph.input, *graph.value_info, *graph.output]
                if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}  # fmt: skip
    floating |= {t.name for t in graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    dequantized = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    counts: dict[str, int] = {}
    for node in graph.node:
        if node.op_type in _QDQ_OPS or not any(i in floating and i not in dequantized for i in node.input):
            continue
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items()))


def onnx_session(path: str | os.PathLike, threads: int | None = None):
    """An ONNX Runtime CPU session with every graph optimisation, quiet (``threads``: intra-op, default all)."""
    from ..env import onnxruntime

    ort = onnxruntime()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads is not None:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def onnx_accuracy(
    paths: dict[str, str | os.PathLike], batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
) -> dict[str, float | None]:
    """Top-1 accuracy of each ONNX file (label -> path) on the same labelled ``batches``, read once for all of
    them; None where there were no images."""
    sessions = {label: onnx_session(path) for label, path in paths.items()}
    right, seen = dict.fromkeys(sessions, 0), 0
    for images, labels in batches:
        x, y = images.float().numpy(), labels.numpy()
        for label, session in sessions.items():
            right[label] += int((session.run(None, {session.get_inputs()[0].name: x})[0].argmax(1) == y).sum())
        seen += len(y)
    return {label: (n / seen if seen else None) for label, n in right.items()}


def logit_difference(float_onnx: str | os.PathLike, int8_onnx: str | os.PathLike, images: torch.Tensor) -> tuple[
        float, float]:  # fmt: skip
    """The largest absolute difference between the two files' logits on ``images``, and the same over the largest
    float logit (a scale-free figure: logits of 3 and of 30 differ by as much for other reasons)."""
    x = images.float().numpy()
    outs = [s.run(None, {s.get_inputs()[0].name: x})[0] for s in map(onnx_session, (float_onnx, int8_onnx))]
    worst = float(np.abs(outs[0] - outs[1]).max())
    return worst, worst / max(float(np.abs(outs[0]).max()), 1e-12)
