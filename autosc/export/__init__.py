"""ONNX export, graph checks and PyTorch/onnxruntime parity (docs/algorithm.md, Freeze, export, measure).

One module per job: :mod:`.onnx_export` writes a checked file atomically,
:mod:`.graph` reads ONNX files and checks their ``Resize`` nodes, and
:mod:`.parity` compares onnxruntime with PyTorch. The public names are
re-exported here so ``from autosc.export import export_onnx`` keeps working.
"""

from .graph import load_onnx, pool_exact_halves, resize_nodes
from .onnx_export import EXPORTERS, INPUT_NAME, MIN_OPSET, ExportResult, export_onnx
from .parity import ORT_LEVELS, check_parity

__all__ = [
    "EXPORTERS",
    "INPUT_NAME",
    "MIN_OPSET",
    "ORT_LEVELS",
    "ExportResult",
    "check_parity",
    "export_onnx",
    "load_onnx",
    "pool_exact_halves",
    "resize_nodes",
]
