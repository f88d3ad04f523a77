"""Reading an exported ONNX graph and checking its ``Resize`` nodes (docs/algorithm.md, Freeze, export, measure).

Every bilinear resize must come out as an ONNX ``Resize`` whose output size is
a constant: the dynamo exporter writes ``sizes = Concat(Shape(x)[0:2], [h, w])``
when the batch is dynamic, so "constant" means the spatial part, which a small
constant folder reads back out of the graph.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import AutoscError
from ._common import one_line

if TYPE_CHECKING:  # onnx is imported where it is used: at module level it adds ~0.9 s to every autosc start
    import onnx


def load_onnx(path: str | os.PathLike) -> onnx.ModelProto:
    """Read and check an ONNX file; a missing or corrupt file is a one-line :class:`AutoscError`."""
    import onnx

    try:
        model = onnx.load(os.fspath(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # FileNotFoundError, DecodeError, ValidationError, ...
        raise AutoscError(f"cannot read ONNX file {os.fspath(path)}: {one_line(exc)}") from exc
    return model


def onnx_input_size(path: str | os.PathLike) -> tuple[int, int]:
    """The (H, W) an autosc ONNX file was exported at, from its ``autosc.input_size`` metadata, else its input's
    static dimensions; one line when neither says."""
    model = load_onnx(path)
    props = {p.key: p.value for p in model.metadata_props}
    if "autosc.input_size" in props:
        h, w = props["autosc.input_size"].split("x")
        return int(h), int(w)
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or not all(dims[2:]):
        raise AutoscError(f"{os.fspath(path)} does not say its input size (no autosc.input_size, no fixed H and W)")
    return dims[2], dims[3]


def _attr(node: onnx.NodeProto, name: str, default=None):
    import onnx

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
        from onnx import numpy_helper

        if name in self.inits:
            return [int(v) for v in numpy_helper.to_array(self.inits[name]).reshape(-1)]
        node = self.producers.get(name)
        if node is None:
            return None
        handler = getattr(self, f"_{node.op_type.lower()}", None)
        return handler(node) if handler else None

    def _constant(self, node: onnx.NodeProto) -> list[int | None] | None:
        from onnx import numpy_helper

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


def check_resizes(model: onnx.ModelProto) -> int:
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


def _spatial_inputs(model: onnx.ModelProto) -> dict[str, list[int | None]]:
    """The spatial (last two) dims of every 4-d tensor in the graph that shape inference can tell. With data
    propagation: a Resize's sizes are computed (the batch and channels read from its input's shape, the spatial
    size a constant), and without it every map after the first Resize had no known size, so an exact half there
    was never found."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    dims = {}
    for info in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        shape = info.type.tensor_type.shape.dim
        if len(shape) == 4:
            dims[info.name] = [d.dim_value if d.HasField("dim_value") else None for d in shape[2:]]
    return dims


def _halving_kernel(in_hw: list[int | None] | None, out_hw: list[int] | None, ctm: str) -> list[int] | None:
    """The average pool kernel that computes a bilinear half-pixel Resize from ``in_hw`` to ``out_hw``, if any.

    At exactly half, output pixel i samples the source at 2i + 0.5: the mean of pixels 2i and 2i + 1, which a
    stride-2 average pool computes; an unchanged dim samples itself. ``pytorch_half_pixel`` maps an output of
    length 1 to the first pixel instead, so that case is left to the Resize.
    """
    if in_hw is None or out_hw is None or None in in_hw:
        return None
    kernel = []
    for i, o in zip(in_hw, out_hw, strict=True):
        if o == i:
            kernel.append(1)
        elif i == 2 * o and (o > 1 or ctm == "half_pixel"):
            kernel.append(2)
        else:
            return None
    return kernel if 2 in kernel else None


def pool_exact_halves(model: onnx.ModelProto) -> int:
    """Replace, in place, every bilinear ``Resize`` to exactly half the size by a 2x2 stride-2 ``AveragePool``.

    The two compute the same values (to float rounding), and ONNX Runtime runs the pool 5-43% faster
    (benchmarks/RESULTS.md, "Freeze for speed"); the PyTorch network keeps its resize, so its MAC count is
    unchanged, and the export's parity check compares the rewritten graph with it. Returns how many were replaced.
    """
    import onnx

    spatial = _spatial_inputs(model)
    described = iter(resize_nodes(model))  # one entry per Resize node, in graph order (names may be empty)
    replaced = 0
    nodes = []
    for node in model.graph.node:
        info = next(described) if node.op_type == "Resize" else None
        kernel = None
        if (
            info is not None
            and info["mode"] == "linear"
            and not _attr(node, "antialias", 0)
            and not _attr(node, "axes")
        ):
            ctm = info["coordinate_transformation_mode"]
            if ctm in ("half_pixel", "pytorch_half_pixel"):
                kernel = _halving_kernel(spatial.get(node.input[0]), info["spatial_size"], ctm)
        if kernel is None:
            nodes.append(node)
            continue
        nodes.append(
            onnx.helper.make_node(
                "AveragePool",
                [node.input[0]],
                list(node.output),
                name=f"{node.name}_as_pool",
                kernel_shape=kernel,
                strides=kernel,
            )  # fmt: skip
        )
        replaced += 1
    if replaced:
        del model.graph.node[:]
        model.graph.node.extend(nodes)
        _drop_dead(model.graph)
    return replaced


def _drop_dead(graph: onnx.GraphProto) -> None:
    """Remove nodes and initializers nothing reads any more (the replaced resizes' size computations)."""
    while True:
        used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
        keep = [n for n in graph.node if any(o in used for o in n.output)]
        if len(keep) == len(graph.node):
            break
        del graph.node[:]
        graph.node.extend(keep)
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    dead = {t.name for t in graph.initializer if t.name not in used}
    inits = [t for t in graph.initializer if t.name not in dead]
    inputs = [i for i in graph.input if i.name not in dead]
    del graph.initializer[:], graph.input[:]
    graph.initializer.extend(inits)
    graph.input.extend(inputs)
