"""ONNX export of a frozen network, checked against PyTorch (SPEC §6).

The exporter and the opset are always given explicitly, the batch dimension is
dynamic (one file serves batch 1 and batch 32) and the spatial dimensions are
static. Every bilinear resize must come out as an ONNX ``Resize`` whose output
size is a constant: the dynamo exporter writes ``sizes = Concat(Shape(x)[0:2],
[h, w])`` when the batch is dynamic, so "constant" means the spatial part.
The file is written atomically and only after ``onnx.checker`` and the
onnxruntime parity check (optimisation off and fully on) pass.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from .errors import AutoscError
from .io import atomic_write

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
    resize_nodes: int
    input_size: tuple[int, int] = (0, 0)
    dynamic_batch: bool = True

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        return d


# --------------------------------------------------------------------------- reading


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_onnx(path: str | os.PathLike) -> onnx.ModelProto:
    """Read and check an ONNX file; a missing or corrupt file is a one-line :class:`AutoscError`."""
    try:
        model = onnx.load(os.fspath(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # FileNotFoundError, DecodeError, ValidationError, ...
        raise AutoscError(f"cannot read ONNX file {os.fspath(path)}: {_one_line(exc)}") from exc
    return model


# --------------------------------------------------------------------------- Resize nodes


def _attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


class _ConstFolder:
    """Best-effort value of an int64 vector in a graph, with unknown entries as ``None``.

    Follows initializers, ``Constant``, ``Concat``, ``Cast``/``Identity``,
    ``Shape`` (unknown values, known length) and ``Slice`` with constant bounds:
    enough to read the spatial part of a ``Resize`` ``sizes`` input whose batch
    and channel come from ``Shape``.
    """

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.inits = {t.name: t for t in graph.initializer}
        self.producers = {out: node for node in graph.node for out in node.output}

    def value(self, name: str) -> list[int | None] | None:
        """The vector named ``name``, or ``None`` when even its length is unknown."""
        if name in self.inits:
            return [int(v) for v in numpy_helper.to_array(self.inits[name]).reshape(-1)]
        node = self.producers.get(name)
        if node is None:
            return None
        handler = getattr(self, f"_{node.op_type.lower()}", None)
        return handler(node) if handler else None

    def _constant(self, node: onnx.NodeProto) -> list[int | None] | None:
        tensor = _attr(node, "value")
        if tensor is not None:
            return [int(v) for v in numpy_helper.to_array(tensor).reshape(-1)]
        ints = _attr(node, "value_ints")
        if ints is not None:
            return [int(v) for v in ints]
        single = _attr(node, "value_int")
        return None if single is None else [int(single)]

    def _concat(self, node: onnx.NodeProto) -> list[int | None] | None:
        parts = [self.value(i) for i in node.input]
        if all(p is not None and not isinstance(p, _UnknownHead) for p in parts):
            return [v for p in parts for v in p]
        # Some part has an unknown length: only the tail after it can be placed.
        tail: list[int | None] = []
        for p in reversed(parts):
            if p is None:
                break
            tail = list(p) + tail
            if isinstance(p, _UnknownHead):
                break
        return _UnknownHead(tail)

    def _cast(self, node: onnx.NodeProto) -> list[int | None] | None:
        return self.value(node.input[0])

    _identity = _cast

    def _shape(self, node: onnx.NodeProto) -> list[int | None] | None:
        start, end = _attr(node, "start"), _attr(node, "end")
        if start is not None and end is not None and 0 <= start <= end:
            return [None] * (end - start)
        return None

    def _slice(self, node: onnx.NodeProto) -> list[int | None] | None:
        bounds = [self.value(i) if i else None for i in node.input] + [None] * 5
        starts, ends, steps = bounds[1], bounds[2], bounds[4]
        if not starts or not ends or None in starts or None in ends or len(starts) != 1:
            return None
        if steps not in (None, [1]):
            return None
        start, end = starts[0], ends[0]
        data = self.value(node.input[0])
        if data is not None and not isinstance(data, _UnknownHead):
            return list(data[start:end])
        if 0 <= start <= end < 2**31:
            return [None] * (end - start)
        return None


class _UnknownHead(list):
    """A vector whose head has unknown length; only the listed tail is known."""


def resize_nodes(model: onnx.ModelProto) -> list[dict]:
    """Describe every ``Resize`` node: sizes or scales, and its constant spatial size when readable.

    Each entry has ``name``, ``mode``, ``coordinate_transformation_mode``,
    ``uses`` ("sizes" or "scales"), ``spatial_size`` ([h, w] or ``None``) and
    ``sizes_constant`` (the whole ``sizes`` vector, batch included, is a constant).
    """
    folder = _ConstFolder(model.graph)
    out = []
    for node in model.graph.node:
        if node.op_type != "Resize":
            continue
        inputs = list(node.input) + [""] * (4 - len(node.input))
        uses = "sizes" if inputs[3] else "scales"
        values = folder.value(inputs[3]) if uses == "sizes" else None
        tail = list(values[-2:]) if values is not None and len(values) >= 2 else []
        spatial = tail if uses == "sizes" and len(tail) == 2 and None not in tail else None
        out.append(
            {
                "name": node.name,
                "mode": _decode(_attr(node, "mode", b"nearest")),
                "coordinate_transformation_mode": _decode(_attr(node, "coordinate_transformation_mode", b"half_pixel")),
                "uses": uses,
                "spatial_size": spatial,
                "sizes_constant": uses == "sizes"
                and values is not None
                and not isinstance(values, _UnknownHead)
                and None not in values,
            }
        )
    return out


def _decode(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _check_resizes(model: onnx.ModelProto) -> int:
    """Refuse a graph whose resizes use scales or a computed spatial size; return their count."""
    nodes = resize_nodes(model)
    for n in nodes:
        if n["uses"] != "sizes":
            raise AutoscError(
                f"Resize node {n['name']!r} uses scales; resize with F.interpolate(size=(h, w)) and python ints"
            )
        if n["spatial_size"] is None:
            raise AutoscError(
                f"Resize node {n['name']!r} has a computed output size; resize to constant python-int sizes"
            )
    return len(nodes)


# --------------------------------------------------------------------------- export


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


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode for the duration, the caller's mode restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _as_list(out) -> list[torch.Tensor]:
    """A network's outputs as a flat list of tensors (a tensor, or a tuple/list of them)."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)) and all(isinstance(t, torch.Tensor) for t in out):
        return list(out)
    raise AutoscError(f"the network must return a tensor or a tuple of tensors, not {type(out).__name__}")


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
        program = torch.onnx.export(
            model, (x,), None, dynamo=True, dynamic_shapes=dynamic_shapes, external_data=False, optimize=True, **common
        )
        onnx.save_model(program.model_proto, tmp, save_as_external_data=False)
    else:
        axes = {name: {0: "batch"} for name in [INPUT_NAME, *output_names]} if dynamic_batch else None
        torch.onnx.export(model, (x,), tmp, dynamo=False, dynamic_axes=axes, **common)


def _stamp(model: onnx.ModelProto, path: str, exporter: str, size: tuple[int, int]) -> None:
    """Record how the file was made in its metadata, for the latency report to read back."""
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
) -> ExportResult:
    """Export ``model`` (eval mode) at ``input_size`` to ``path``, atomically.

    The graph is written to a hidden temp file next to ``path``, checked with
    ``onnx.checker``, its ``Resize`` nodes are required to have constant
    spatial sizes, and with ``check`` onnxruntime must match PyTorch
    (:func:`check_parity`); only then does ``os.replace`` move it onto
    ``path``. On any failure the temp file is removed and ``path`` untouched.
    """
    size = _validate(input_size, in_channels, opset, exporter)
    target = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise AutoscError(f"cannot write ONNX file {target}: folder {folder} does not exist")
    x = torch.zeros(2 if dynamic_batch else 1, in_channels, *size, device=_device(model))
    found: dict = {}

    def write(tmp: str) -> None:
        with _eval_mode(model), torch.no_grad():
            try:
                n_out = len(_as_list(model(x)))
            except AutoscError:
                raise
            except Exception as exc:
                raise AutoscError(
                    f"the network cannot run on a {(in_channels, *size)} input: {_one_line(exc)}"
                ) from exc
            try:
                with _quiet():
                    _torch_export(model, x, tmp, opset, exporter, dynamic_batch, n_out)
            except Exception as exc:
                cause = _root_cause(exc)
                raise AutoscError(
                    f"ONNX export failed ({exporter} exporter, opset {opset}): {type(cause).__name__}: {_one_line(cause)}"
                ) from exc
        onnx_model = load_onnx(tmp)
        found["resize_nodes"] = _check_resizes(onnx_model)
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
    )


# --------------------------------------------------------------------------- parity


ORT_LEVELS = ("ORT_DISABLE_ALL", "ORT_ENABLE_ALL")


def _ort_run(onnx_path: str, x: np.ndarray, level: str) -> list[np.ndarray]:
    import onnxruntime as ort

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
    with _eval_mode(model), torch.no_grad():
        ref = [t.detach().float().cpu().numpy() for t in _as_list(model(x.to(_device(model))))]
    worst_abs, worst_rel = 0.0, 0.0
    for level in ORT_LEVELS:
        try:
            got = _ort_run(os.fspath(onnx_path), x.numpy(), level)
        except Exception as exc:
            raise AutoscError(f"onnxruntime cannot run {os.fspath(onnx_path)} ({level}): {_one_line(exc)}") from exc
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
