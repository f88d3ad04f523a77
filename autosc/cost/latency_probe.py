"""Measure a :class:`~autosc.cost.latency_model.LatencyModel` on this machine with ONNX Runtime.

The adapted network is frozen with one full-branch adaptor per place (what a collapsed run exports), traced
with torch.fx (adaptors kept as leaves) and split by ``torch.fx.passes.split_module`` at every adaptor: the stem,
then one part per adaptor, each a module of its own. At a few probe shapes, from every adaptor at its floor to
every adaptor at its human size, each part and the whole network are exported and timed interleaved
(:func:`autosc.latency.bench`), and the model is fitted on them (docs/design.md, Latency budgets). The result is
cached under a key of everything that changes it, so a second plan of the same network on the same machine
times nothing.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.fx
from torch import nn
from torch.fx.passes.split_module import split_module

from ..adaptor import ShapeAdaptor
from ..errors import AutoscError, one_line
from .latency_model import LatencyModel, Probe, latency_key, load_cached, read_cache, save_cached, write_cache
from .shape_cost import ShapeCostModel, Sizes

#: Probe shapes from the floor to the human size: enough points for a piecewise-linear table of a few
#: segments, few enough that mobilenet_v2@224 is measured in about a minute.
PROBES = 6
RUNS = 60


@dataclass(frozen=True)
class Timing:
    """How latency is measured here (what a latency budget *means*, threads and batch, is in the Budget)."""

    cache_dir: str | Path | None = None  # None: latency_model.default_cache_dir()
    probes: int = PROBES
    runs: int = RUNS
    exporter: str = "torchscript"
    opset: int = 18
    progress: Callable[[int, int], None] | None = None  # (done, total) after each probe shape


def _environment_key() -> dict:
    import onnxruntime

    from ..env import cpu_model

    return {"onnxruntime": onnxruntime.__version__, "torch": torch.__version__.split("+")[0], "cpu": cpu_model()}


def time_network(net: nn.Module, input_size: tuple[int, int], in_channels: int, *, threads: int, batch: int,
                 timing: Timing, identity: dict | None = None) -> float:  # fmt: skip
    """ONNX Runtime p50 (ms) of a plain network; cached like a latency model when ``identity`` names it."""
    from ..export import export_onnx
    from ..latency import bench

    key = latency_key(kind="network", model=identity, input_size=list(input_size), in_channels=in_channels,
                      threads=threads, batch=batch, runs=timing.runs, exporter=timing.exporter, opset=timing.opset,
                      **_environment_key())  # fmt: skip
    cached = read_cache(key, timing.cache_dir) if identity is not None else None
    if cached is not None and isinstance(cached.get("p50"), (int, float)):
        return float(cached["p50"])
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "net.onnx"
        export_onnx(net.eval(), input_size, onnx_path, in_channels=in_channels, opset=timing.opset,
                    exporter=timing.exporter, check=False)  # fmt: skip
        result = bench([str(onnx_path)], threads=[threads], batches=[batch], runs=timing.runs,
                       warmup=min(10, timing.runs))  # fmt: skip
    p50 = float(result["results"][0]["p50"])
    if identity is not None:
        write_cache({"key": key, "p50": p50}, timing.cache_dir)
    return p50


def _single_branch(size: tuple[int, int]) -> nn.Module:
    from ..freeze import SingleBranchAdaptor  # freeze imports cost; import at call time

    return SingleBranchAdaptor(size, low=False)


class _LeafTracer(torch.fx.Tracer):
    """Adaptors stay single call_module nodes: they are where the network is cut."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        from ..freeze import SingleBranchAdaptor

        return isinstance(m, SingleBranchAdaptor) or super().is_leaf_module(m, qualname)


def split_at_adaptors(net: nn.Module, adaptor_names: list[str]) -> tuple[nn.Module, list[nn.Module]]:
    """A plain copy of ``net`` (adaptors -> one full branch each) split into the stem and one part per adaptor.

    Returns the split module (it computes what ``net`` computes) and its adaptors in ``adaptor_names`` order,
    whose ``size`` sets the probe shape.
    """
    plain = copy.deepcopy(net).eval()
    for name in adaptor_names:
        adaptor = plain.get_submodule(name)
        if not isinstance(adaptor, ShapeAdaptor):
            raise AutoscError(f"{name} is not a shape adaptor")
        parent, _, child = name.rpartition(".")
        setattr(plain.get_submodule(parent) if parent else plain, child, _single_branch(adaptor.human_size))
    try:
        graph = _LeafTracer().trace(plain)
    except Exception as exc:  # fx refuses data-dependent control flow, among others: say it in one line
        raise AutoscError(
            f"cannot time {type(net).__name__} by parts for a latency budget: torch.fx cannot trace it ({one_line(exc)})"
        ) from exc
    traced = torch.fx.GraphModule(plain, graph)
    order = {name: k + 1 for k, name in enumerate(adaptor_names)}
    part: dict[torch.fx.Node, int] = {}
    for node in graph.nodes:
        if node.op == "call_module" and node.target in order:
            part[node] = order[node.target]
        elif node.op not in ("get_attr", "placeholder"):
            part[node] = max((part.get(a, 0) for a in node.all_input_nodes), default=0)
    for node in graph.nodes:  # parameters read functionally go with their first user, not the stem
        if node.op == "get_attr":
            part[node] = min((part[u] for u in node.users), default=0)
        elif node.op == "placeholder":
            part[node] = 0
    split = split_module(traced, plain, lambda n: part[n])
    if not hasattr(split, "submod_0"):
        raise AutoscError("the network has no operator before its first adaptor; autosc cannot time its stem")
    from ..freeze import SingleBranchAdaptor

    adaptors = []
    for k in range(1, len(adaptor_names) + 1):  # split_module renames submodules; part k starts at adaptor k
        found = [m for m in getattr(split, f"submod_{k}").modules() if isinstance(m, SingleBranchAdaptor)]
        if len(found) != 1:
            raise AutoscError(f"internal error: part {k} of the split network holds {len(found)} adaptors, not 1")
        adaptors += found
    return split.eval(), adaptors  # eval throughout: exporting a part restores the mode it found


def part_inputs(split: nn.Module, x: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """Each part's input shape, from one pass; a part fed more than one tensor cannot be timed alone."""
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = []
    for name, module in split.named_children():

        def hook(_m, args, name=name):
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            if len(args) != 1 or len(tensors) != 1:
                raise AutoscError(
                    f"part {name} of the network takes {len(args)} inputs (a connection across an adaptor?); "
                    "autosc times a latency model only for networks cut into chains at the adaptors"
                )
            shapes[name] = tuple(tensors[0].shape)

        hooks.append(module.register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            split(x)
    finally:
        for h in hooks:
            h.remove()
    return shapes


def probe_shapes(model: ShapeCostModel, probes: int) -> list[Sizes]:
    """Every adaptor at its human size (no Resize), then ``probes - 1`` shapes evenly from every adaptor at its
    floor to every adaptor one pixel under its human size (a Resize each): the two regimes are told apart."""
    pairs = list(zip(model.human_sizes, model.min_sizes, strict=True))
    top = [(max(fh, h - 1), max(fw, w - 1)) for (h, w), (fh, fw) in pairs]
    shapes = [list(model.human_sizes)]
    for i in range(probes - 1):
        t = i / max(1, probes - 2)
        shapes.append(
            [
                (round(fh + t * (h - fh)), round(fw + t * (w - fw)))
                for (h, w), (_, (fh, fw)) in zip(top, pairs, strict=True)
            ]
        )
    return shapes


def model_key(
    identity: dict | None,
    input_size: tuple[int, int],
    in_channels: int,
    adaptors: list[tuple[str, tuple[int, int]]],
    *,
    threads: int,
    batch: int,
    timing: Timing,
) -> dict:
    """The cache key of a latency model: the network (``identity``, its adaptors' names and human sizes, input),
    what the budget means (threads, batch), how it is timed, and the runtime, library versions and CPU."""
    return latency_key(
        model=identity,
        input_size=list(input_size),
        in_channels=in_channels,
        adaptors=[[name, list(size)] for name, size in adaptors],
        threads=threads,
        batch=batch,
        exporter=timing.exporter,
        opset=timing.opset,
        probes=timing.probes,
        runs=timing.runs,
        **_environment_key(),
    )


def time_shape(
    split: nn.Module,
    adaptors: list[nn.Module],
    sizes: Sizes,
    input_size: tuple[int, int],
    in_channels: int,
    *,
    threads: int,
    batch: int,
    timing: Timing,
    folder: Path,
    tag: str,
) -> Probe:
    """The split network (:func:`split_at_adaptors`) at ``sizes``: each part and the whole exported into ``folder``
    and timed. The parts interleaved with each other; the whole network alone, warm, as it runs when deployed
    (timed among twenty other sessions its weights leave the cache between runs: measured 1.2-2x slower)."""
    from ..export import export_onnx
    from ..latency import bench

    for adaptor, size in zip(adaptors, sizes, strict=True):
        adaptor.size = (int(size[0]), int(size[1]))
    names = [f"submod_{j}" for j in range(len(adaptors) + 1)]  # the stem, then the part after each adaptor
    inputs = part_inputs(split, torch.zeros(1, in_channels, *input_size))
    paths = []
    for name in names:
        shape = inputs[name]
        if len(shape) != 4:
            raise AutoscError(f"part {name} of the network takes a {len(shape)}-d input; autosc needs 4-d maps")
        path = folder / f"{tag}-{name}.onnx"
        export_onnx(split.get_submodule(name), shape[-2:], path, in_channels=shape[1], opset=timing.opset,
                    exporter=timing.exporter, check=False)  # fmt: skip
        paths.append(str(path))
    whole = folder / f"{tag}-whole.onnx"
    export_onnx(split, input_size, whole, in_channels=in_channels, opset=timing.opset, exporter=timing.exporter,
                check=False)  # fmt: skip
    warmup = min(10, timing.runs)
    result = bench(paths, labels=names, threads=[threads], batches=[batch], runs=timing.runs, warmup=warmup)
    p50 = {r["label"]: r["p50"] for r in result["results"]}
    alone = bench([str(whole)], labels=["whole"], threads=[threads], batches=[batch], runs=timing.runs, warmup=warmup)
    return Probe([tuple(s) for s in sizes], [p50[n] for n in names], alone["results"][0]["p50"])


def measure_latency(
    net: nn.Module,
    adaptor_names: list[str],
    *,
    input_size: tuple[int, int],
    in_channels: int = 3,
    identity: dict | None = None,
    threads: int = 1,
    batch: int = 1,
    timing: Timing | None = None,
    cost_model: ShapeCostModel | None = None,
) -> LatencyModel:
    """The latency model of the adapted ``net`` at ``threads``/``batch``: read from the cache, else measured.

    ``identity`` is what names the network in the cache key (its model spec: name, width, classes, channels);
    the adaptors' names and human sizes, the input size, the runtime, the CPU and the timing settings are added.
    ``timing`` says how (probes, runs, exporter, cache folder, a progress callback); ``cost_model``, one already
    built for ``net`` (its floors give the probe shapes).
    """

    timing = timing or Timing()
    if timing.probes < 2:
        raise AutoscError(f"a latency model needs at least 2 probe shapes, got {timing.probes}")
    cost_model = cost_model or ShapeCostModel(net, adaptor_names, input_size, in_channels)
    places = list(zip(adaptor_names, cost_model.human_sizes, strict=True))
    key = model_key(identity, input_size, in_channels, places, threads=threads, batch=batch, timing=timing)
    cached = load_cached(key, timing.cache_dir)
    if cached is not None:
        return cached
    split, adaptors = split_at_adaptors(net, adaptor_names)
    timed: list[Probe] = []
    shapes = probe_shapes(cost_model, timing.probes)
    with tempfile.TemporaryDirectory() as tmp:
        for i, sizes in enumerate(shapes):
            timed.append(time_shape(split, adaptors, sizes, input_size, in_channels, threads=threads, batch=batch,
                                    timing=timing, folder=Path(tmp), tag=str(i)))  # fmt: skip
            if timing.progress is not None:
                timing.progress(i + 1, len(shapes))
    model = LatencyModel.fit(timed, key=key, human_sizes=[tuple(s) for s in cost_model.human_sizes])
    save_cached(model, timing.cache_dir)
    return model
