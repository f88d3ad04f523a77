"""PyTorch against onnxruntime on the same input (docs/algorithm.md, Freeze, export, measure).

onnxruntime runs the file twice, with graph optimisation off and fully on,
because its fusions can change numerics; both must match PyTorch.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from ..env import onnxruntime
from ..errors import AutoscError
from ._common import as_list, eval_mode, model_device, one_line

ORT_LEVELS = ("ORT_DISABLE_ALL", "ORT_ENABLE_ALL")


def _ort_run(onnx_path: str, x: np.ndarray, level: str) -> list[np.ndarray]:
    ort = onnxruntime()  # telemetry off

    opts = ort.SessionOptions()
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    opts.log_severity_level = 3  # errors only
    sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})


def check_parity(
    model: nn.Module,
    onnx_path: str | os.PathLike,
    input_size: tuple[int, int],
    *,
    in_channels: int = 3,
    batch: int = 2,
    rtol: float = 1e-3,
    atol: float = 1e-4,
    seed: int = 0,
) -> tuple[float, float]:
    """Max abs and rel difference between PyTorch and onnxruntime (CPU) on a seeded random batch.

    onnxruntime runs with graph optimisation off and fully on, since fusions
    can change numerics; either failing ``np.allclose(rtol, atol)`` raises
    :class:`AutoscError` naming the level. The relative difference divides by
    ``max(|reference|, atol)`` so near-zero outputs do not dominate it.
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, in_channels, *tuple(input_size), generator=gen)
    with eval_mode(model), torch.no_grad():
        ref = [t.detach().float().cpu().numpy() for t in as_list(model(x.to(model_device(model))))]
    worst_abs, worst_rel = 0.0, 0.0
    for level in ORT_LEVELS:
        try:
            got = _ort_run(os.fspath(onnx_path), x.numpy(), level)
        except Exception as exc:
            raise AutoscError(f"onnxruntime cannot run {os.fspath(onnx_path)} ({level}): {one_line(exc)}") from exc
        if len(got) != len(ref):
            raise AutoscError(f"ONNX model has {len(got)} outputs, PyTorch {len(ref)} ({level})")
        for r, g in zip(ref, got, strict=True):
            if r.shape != g.shape:
                raise AutoscError(f"ONNX output shape {g.shape} != PyTorch {r.shape} ({level})")
            diff = np.abs(g.astype(np.float64) - r.astype(np.float64))
            abs_d = float(diff.max(initial=0.0))
            rel_d = float((diff / np.maximum(np.abs(r), atol)).max(initial=0.0))
            worst_abs, worst_rel = max(worst_abs, abs_d), max(worst_rel, rel_d)
            if not np.allclose(g, r, rtol=rtol, atol=atol):
                raise AutoscError(
                    f"onnxruntime output differs from PyTorch with {level}: "
                    f"max abs diff {abs_d:.3g}, max rel diff {rel_d:.3g} (rtol {rtol}, atol {atol})"
                )
    return worst_abs, worst_rel
