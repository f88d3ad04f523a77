"""ONNX export of a frozen network, checked against PyTorch (docs/algorithm.md, Freeze, export, measure).

The exporter and the opset are always given explicitly, the batch dimension is
dynamic (one file serves batch 1 and batch 32) and the spatial dimensions are
static. Every bilinear resize must come out as an ONNX ``Resize`` with a
constant spatial output size (:mod:`.graph`). The file is written atomically
and only after ``onnx.checker`` and the onnxruntime parity check (optimisation
off and fully on, :mod:`.parity`) pass.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..errors import AutoscError
from ..io import atomic_write
from ._common import as_list, eval_mode, model_device, one_line
from .graph import check_resizes, load_onnx, pool_exact_halves
from .parity import check_parity

if TYPE_CHECKING:  # onnx is imported where it is used: at module level it adds ~0.9 s to every autosc start
    import onnx

EXPORTERS = ("dynamo", "torchscript")
MIN_OPSET = 17
INPUT_NAME = "input"
# Loggers that print progress and version-conversion notes during an export.
_CHATTY_LOGGERS = ("torch.onnx", "torch.export", "torch._export", "torch._dynamo", "torch.fx", "onnxscript", "onnx")


@dataclass
class ExportResult:
    """Where the file went, how it was made, and how closely onnxruntime matches PyTorch."""

    path: str
    opset: int
    exporter: str
    max_abs_diff: float | None
    max_rel_diff: float | None
    resize_nodes: int  # left in the graph
    input_size: tuple[int, int] = (0, 0)
    dynamic_batch: bool = True
    pooled_resizes: int = 0  # exact halves exported as average pools (graph.pool_exact_halves)

    def to_dict(self) -> dict:
        """A JSON-ready dict (the input size as a list), for reports and the run folder."""
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        return d


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Hide the exporters' progress lines, warnings and log records from the user."""
    loggers = [logging.getLogger(name) for name in _CHATTY_LOGGERS]
    levels = [lg.level for lg in loggers]
    sink = io.StringIO()
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost exception: the exporters wrap the real problem in several layers."""
    seen = set()
    while exc.__cause__ is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc = exc.__cause__
    return exc


def _validate(input_size, in_channels: int, opset: int, exporter: str) -> tuple[int, int]:
    if exporter not in EXPORTERS:
        raise AutoscError(f"unknown ONNX exporter {exporter!r}; use one of {', '.join(EXPORTERS)}")
    import onnx

    max_opset = onnx.defs.onnx_opset_version()
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= max_opset:
        raise AutoscError(f"ONNX opset must be an integer from {MIN_OPSET} to {max_opset}, got {opset!r}")
    size = tuple(input_size)
    if len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size):
        raise AutoscError(f"input size must be two positive integers (height, width), got {input_size!r}")
    if not isinstance(in_channels, int) or in_channels < 1:
        raise AutoscError(f"in_channels must be a positive integer, got {in_channels!r}")
    return size  # type: ignore[return-value]


def _torch_export(
    model: nn.Module, x: torch.Tensor, tmp: str, opset: int, exporter: str, dynamic_batch: bool, n_out: int
) -> None:
    """Run ``torch.onnx.export`` into ``tmp`` as one self-contained file (no external data)."""
    output_names = ["output"] if n_out == 1 else [f"output{i}" for i in range(n_out)]
    common = dict(input_names=[INPUT_NAME], output_names=output_names, opset_version=opset, verbose=False)
    if exporter == "dynamo":
        dynamic_shapes = ({0: torch.export.Dim("batch", min=1)},) if dynamic_batch else None
        import onnx

        program = torch.onnx.export(
            model, (x,), None, dynamo=True, dynamic_shapes=dynamic_shapes, external_data=False, optimize=True, **common
        )
        onnx.save_model(program.model_proto, tmp, save_as_external_data=False)
    else:
        axes = {name: {0: "batch"} for name in [INPUT_NAME, *output_names]} if dynamic_batch else None
        torch.onnx.export(model, (x,), tmp, dynamo=False, dynamic_axes=axes, **common)


def _trace_and_export(
    model: nn.Module, x: torch.Tensor, tmp: str, *, opset: int, exporter: str, dynamic_batch: bool
) -> None:
    """Run the network once (its output count names the graph outputs), then export it to ``tmp``.

    Running it first turns a network that cannot take the input into a clear
    one-line error rather than an exporter traceback.
    """
    with eval_mode(model), torch.no_grad():
        try:
            n_out = len(as_list(model(x)))
        except AutoscError:
            raise
        except Exception as exc:
            shape = tuple(x.shape[1:])
            raise AutoscError(f"the network cannot run on a {shape} input: {one_line(exc)}") from exc
        try:
            with _quiet():
                _torch_export(model, x, tmp, opset, exporter, dynamic_batch, n_out)
        except Exception as exc:
            cause = _root_cause(exc)
            raise AutoscError(
                f"ONNX export failed ({exporter} exporter, opset {opset}): {type(cause).__name__}: {one_line(cause)}"
            ) from exc


def _stamp(model: onnx.ModelProto, path: str, exporter: str, size: tuple[int, int]) -> None:
    """Record how the file was made in its metadata, for the latency report to read back."""
    import onnx

    props = {"autosc.exporter": exporter, "autosc.input_size": f"{size[0]}x{size[1]}"}
    onnx.helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, **props})
    onnx.save_model(model, path, save_as_external_data=False)


def export_onnx(
    model: nn.Module,
    input_size: tuple[int, int],
    path: str | os.PathLike,
    *,
    in_channels: int = 3,
    opset: int = 18,
    exporter: str = "dynamo",
    dynamic_batch: bool = True,
    check: bool = True,
    pool_halves: bool = True,
) -> ExportResult:
    """Export ``model`` (eval mode) at ``input_size`` to ``path``, atomically.

    The graph is written to a hidden temp file next to ``path``, checked with
    ``onnx.checker``, its ``Resize`` nodes are required to have constant
    spatial sizes, with ``pool_halves`` those to exactly half the size become average pools
    (:func:`~autosc.export.graph.pool_exact_halves`), and with ``check`` onnxruntime must match PyTorch
    (:func:`check_parity`); only then does ``os.replace`` move it onto
    ``path``. On any failure the temp file is removed and ``path`` untouched.
    """
    size = _validate(input_size, in_channels, opset, exporter)
    target = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise AutoscError(f"cannot write ONNX file {target}: folder {folder} does not exist")
    x = torch.zeros(2 if dynamic_batch else 1, in_channels, *size, device=model_device(model))
    found: dict = {}

    def write(tmp: str) -> None:
        _trace_and_export(model, x, tmp, opset=opset, exporter=exporter, dynamic_batch=dynamic_batch)
        onnx_model = load_onnx(tmp)
        found["resize_nodes"] = check_resizes(onnx_model)
        found["pooled"] = pool_exact_halves(onnx_model) if pool_halves else 0
        found["resize_nodes"] -= found["pooled"]
        _stamp(onnx_model, tmp, exporter, size)
        found["diffs"] = (None, None)
        if check:
            # A batch other than the traced one shows the dynamic batch really works.
            found["diffs"] = check_parity(model, tmp, size, in_channels=in_channels, batch=3 if dynamic_batch else 1)

    atomic_write(target, write)
    diffs, n_resize = found["diffs"], found["resize_nodes"]
    return ExportResult(
        path=target,
        opset=opset,
        exporter=exporter,
        max_abs_diff=diffs[0],
        max_rel_diff=diffs[1],
        resize_nodes=n_resize,
        input_size=size,
        dynamic_batch=dynamic_batch,
        pooled_resizes=found["pooled"],
    )
