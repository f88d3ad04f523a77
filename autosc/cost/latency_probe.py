"""Measure a :class:`~autosc.cost.latency_model.LatencyModel` on this machine with ONNX Runtime.

The adapted network is frozen with one full-branch adaptor per place (what a collapsed run exports), traced
with torch.fx (adaptors kept as leaves) and split by ``torch.fx.passes.split_module`` at every adaptor: the stem,
then one part per adaptor, each a module of its own. At the probe shapes (the human shape, a diagonal from every
adaptor at its floor to one pixel under its human size, and seeded random shapes of the kind training produces,
so each segment is seen at sizes off the diagonal too, and shapes keeping their first maps whole:
``cost.probe_shapes``), each part and the whole network are exported; all parts
of all shapes are timed together, then all whole networks, interleaved in warm blocks
(:func:`autosc.latency.bench`), and the model is fitted on them (docs/algorithm.md, Latency budgets). The result is
cached under a key of everything that changes it, so a second plan of the same network on the same machine
times nothing.
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.fx
from torch import nn
from torch.fx.passes.split_module import split_module

from ..adaptor import ShapeAdaptor
from ..errors import AutoscError, one_line
from .latency_model import LatencyModel, Probe, latency_key, load_cached, read_cache, save_cached, write_cache
from .probe_shapes import probe_shapes
from .shape_cost import ShapeCostModel, Sizes

#: Probe shapes on the diagonal (the human shape and five from the floor up) and at random: 12 points per
#: segment's table, few enough that resnet18@224 is measured in about two minutes (three with the identity probes).
PROBES = 6
RANDOM_PROBES = 6
#: Per kind of :func:`autosc.cost.probe_shapes.identity_shapes` (the first j adaptors at their human size).
IDENTITY_PROBES = 2
RUNS = 60
#: Runs timed in a row per visit (autosc.latency._measure): warm like a deployed network, yet spread in time.
BLOCK = 10
#: Timed runs of the whole start network when a run calibrates its (maybe cached) model (:func:`calibrate`).
CALIBRATION_RUNS = 200


@dataclass(frozen=True)
class ProbeSettings:
    """How latency is measured here (what a latency budget *means*, threads and batch, is in the Budget)."""

    cache_dir: str | Path | None = None  # None: latency_model.default_cache_dir()
    probes: int = PROBES
    random_probes: int = RANDOM_PROBES
    identity_probes: int = IDENTITY_PROBES
    runs: int = RUNS
    block: int = BLOCK
    exporter: str = "torchscript"
    opset: int = 18
    calibrate: bool = True  # time the start shape as a run is planned and rescale the model to it (calibrate)
    progress: Callable[[int, int], None] | None = None  # (done, total): each shape exported, then the timings
    #: a timing table from the deployment device (autosc.cost.device_table.DeviceTable): fit on it, time nothing
    table: Any = field(default=None, compare=False)
    #: time every network as autosc's INT8 export writes it (``--quantize int8``: a latency budget on what ships)
    int8: bool = False

    def key(self) -> dict:
        """What changes a measurement, for a latency model's cache key (the cache's place, the start calibration
        and the progress display do not); ``int8`` only when set, so float models keep their cached keys."""
        fields = ("exporter", "opset", "probes", "random_probes", "identity_probes", "runs", "block")
        return {k: getattr(self, k) for k in fields} | ({"int8": True} if self.int8 else {})


def _environment_key() -> dict:
    from ..env import cpu_model, onnxruntime

    return {"onnxruntime": onnxruntime().__version__, "torch": torch.__version__.split("+")[0], "cpu": cpu_model()}


def time_network(net: nn.Module, input_size: tuple[int, int], in_channels: int, *, threads: int, batch: int,
                 timing: ProbeSettings, identity: dict | None = None) -> float:  # fmt: skip
    """ONNX Runtime p50 (ms) of a plain network; cached like a latency model when ``identity`` names it."""
    from ..latency import time_together

    key = latency_key(kind="network", model=identity, input_size=list(input_size), in_channels=in_channels,
                      threads=threads, batch=batch, runs=timing.runs, exporter=timing.exporter, opset=timing.opset,
                      **({"int8": True} if timing.int8 else {}), **_environment_key())  # fmt: skip
    cached = read_cache(key, timing.cache_dir) if identity is not None else None
    if cached is not None and isinstance(cached.get("p50"), (int, float)):
        return float(cached["p50"])
    timed = time_together({"net": net}, input_size, in_channels, threads=threads, batch=batch, runs=timing.runs,
                          warmup=min(10, timing.runs), block=1, exporter=timing.exporter, opset=timing.opset,
                          int8=timing.int8)  # fmt: skip
    p50 = float(timed["net"]["p50"])
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
        plain.set_submodule(name, _single_branch(adaptor.human_size))
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
    if not hasattr(split, "submod_0"):  # the first adaptor resizes the image itself (--input-adaptor): the stem is
        split.add_module("submod_0", nn.Identity())  # empty, timed as an identity on the image (never called)
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


def model_key(
    identity: dict | None,
    input_size: tuple[int, int],
    in_channels: int,
    adaptors: list[tuple[str, tuple[int, int]]],
    *,
    threads: int,
    batch: int,
    timing: ProbeSettings,
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
        **timing.key(),
        **_environment_key(),
    )


def export_shapes(
    split: nn.Module,
    adaptors: list[nn.Module],
    shapes: list[Sizes],
    input_size: tuple[int, int],
    in_channels: int,
    *,
    timing: ProbeSettings,
    folder: Path,
    tag: str = "",
) -> tuple[list[list[str]], list[str]]:
    """The split network (:func:`split_at_adaptors`) at each of ``shapes``: every part and the whole exported into
    ``folder`` (with ``timing.int8``, as their INT8 twins); returns each shape's part files (the stem first) and its
    whole-network file."""
    from ..export import export_onnx
    from ..latency import int8_twin

    def written(path: Path) -> str:  # the INT8 twin in the float file's place: the name a manifest lists
        if timing.int8:
            os.replace(int8_twin(path, path.with_suffix(".int8.onnx")), path)
        return str(path)

    names = [f"submod_{j}" for j in range(len(adaptors) + 1)]  # the stem, then the part after each adaptor
    parts, wholes = [], []
    for i, sizes in enumerate(shapes):
        for adaptor, size in zip(adaptors, sizes, strict=True):
            adaptor.size = (int(size[0]), int(size[1]))
        x = torch.zeros(1, in_channels, *input_size)
        inputs = {"submod_0": tuple(x.shape)} | part_inputs(split, x)  # an empty stem is never called: the image's
        parts.append([])
        for name in names:
            shape = inputs[name]
            if len(shape) != 4:
                raise AutoscError(f"part {name} of the network takes a {len(shape)}-d input; autosc needs 4-d maps")
            path = folder / f"{tag}{i}-{name}.onnx"
            export_onnx(split.get_submodule(name), shape[-2:], path, in_channels=shape[1], opset=timing.opset,
                        exporter=timing.exporter, check=False)  # fmt: skip
            parts[-1].append(written(path))
        whole = folder / f"{tag}{i}-whole.onnx"
        export_onnx(split, input_size, whole, in_channels=in_channels, opset=timing.opset, exporter=timing.exporter,
                    check=False)  # fmt: skip
        wholes.append(written(whole))
        if timing.progress is not None:
            timing.progress(i + 1, 2 * len(shapes))
    return parts, wholes


def time_shapes(
    split: nn.Module,
    adaptors: list[nn.Module],
    shapes: list[Sizes],
    input_size: tuple[int, int],
    in_channels: int,
    *,
    threads: int,
    batch: int,
    timing: ProbeSettings,
    folder: Path,
    tag: str = "",
) -> list[Probe]:
    """The split network at each of ``shapes``, exported (:func:`export_shapes`), then all parts of all shapes
    timed in one interleaved measurement and all whole networks in another, in warm blocks of ``timing.block``
    runs. Interleaving across shapes spreads each one's runs over the whole measurement, so the host's swings do
    not fall on some shapes and not others; the warm blocks time each network as it runs when deployed (timed
    single runs among twenty others its weights leave the cache: measured 1.2-2x slower)."""
    parts, wholes = export_shapes(split, adaptors, shapes, input_size, in_channels, timing=timing, folder=folder,
                                  tag=tag)  # fmt: skip
    warmup, block = min(10, timing.runs), min(timing.block, timing.runs)
    flat = [p for files in parts for p in files]
    parts_ms = _p50s(flat, input_size, threads=threads, batch=batch, runs=timing.runs, warmup=warmup, block=block)
    if timing.progress is not None:
        timing.progress(len(shapes) + len(shapes) // 2, 2 * len(shapes))
    whole_ms = _p50s(wholes, input_size, threads=threads, batch=batch, runs=timing.runs, warmup=warmup, block=block)
    if timing.progress is not None:
        timing.progress(2 * len(shapes), 2 * len(shapes))
    n = len(adaptors) + 1
    return [
        Probe([tuple(s) for s in sizes], parts_ms[i * n : (i + 1) * n], whole_ms[i]) for i, sizes in enumerate(shapes)
    ]


def _p50s(paths: list[str], input_size: tuple[int, int], **settings) -> list[float]:
    """The p50 of each exported file, all timed in one interleaved measurement (:func:`autosc.latency.time_together`)."""
    from ..latency import time_together

    timed = time_together(dict(zip(paths, paths, strict=True)), input_size, **settings)
    return [float(timed[p]["p50"]) for p in paths]


def fit_latency_model(
    net: nn.Module,
    adaptor_names: list[str],
    *,
    input_size: tuple[int, int],
    in_channels: int = 3,
    identity: dict | None = None,
    threads: int = 1,
    batch: int = 1,
    timing: ProbeSettings | None = None,
    cost_model: ShapeCostModel | None = None,
) -> LatencyModel:
    """The latency model of the adapted ``net`` at ``threads``/``batch``: read from the cache, else measured.

    ``identity`` is what names the network in the cache key (its model spec: name, width, classes, channels);
    the adaptors' names and human sizes, the input size, the runtime, the CPU and the timing settings are added.
    ``timing`` says how (probes, runs, blocks, exporter, cache folder, a progress callback); ``cost_model``, one already
    built for ``net`` (its floors give the probe shapes).
    """

    timing = timing or ProbeSettings()
    if timing.probes < 2:
        raise AutoscError(f"a latency model needs at least 2 probe shapes, got {timing.probes}")
    cost_model = cost_model or ShapeCostModel(net, adaptor_names, input_size, in_channels)
    places = list(zip(adaptor_names, cost_model.human_sizes, strict=True))
    key = model_key(identity, input_size, in_channels, places, threads=threads, batch=batch, timing=timing)
    humans, work = [tuple(s) for s in cost_model.human_sizes], cost_model.segment_work
    if timing.table is not None:  # the device's timings, for this network only; never into this machine's cache
        return timing.table.model_for(key, coordinate=work)
    cached = load_cached(key, timing.cache_dir)
    if cached is not None:  # the timings are what is cached; the tables are fitted on this network's counts
        return LatencyModel.fit(cached.probes, key=cached.key, human_sizes=humans, coordinate=work)
    split, adaptors = split_at_adaptors(net, adaptor_names)
    shapes = probe_shapes(cost_model, timing.probes, timing.random_probes, identity_probes=timing.identity_probes)
    with tempfile.TemporaryDirectory() as tmp:
        timed = time_shapes(split, adaptors, shapes, input_size, in_channels, threads=threads, batch=batch,
                            timing=timing, folder=Path(tmp))  # fmt: skip
    model = LatencyModel.fit(timed, key=key, human_sizes=humans, coordinate=work)
    save_cached(model, timing.cache_dir)
    return model


def calibrate(
    net: nn.Module,
    adaptor_names: list[str],
    sizes: Sizes,
    model: LatencyModel,
    *,
    input_size: tuple[int, int],
    in_channels: int = 3,
    threads: int = 1,
    batch: int = 1,
    timing: ProbeSettings | None = None,
    reference: nn.Module | None = None,
) -> tuple[LatencyModel, float | None]:
    """``model`` rescaled to what the whole adapted ``net`` at ``sizes`` (the run's start shape) measures now, and
    the p50 of ``reference`` (the network a latency budget is a share of) timed with it, interleaved.

    A cached model was measured at another moment, and a shared host's speed drifts between minutes by more
    than the model's own error (benchmarks/RESULTS.md, Latency budgets: 20% once); without this, a run projects
    on the old moment's milliseconds, trains on a shape that its end-of-run measurement then shrinks, and the
    shrunk network has not been trained at its sizes. The whole network at ``sizes`` and the reference, timed
    warm and interleaved in rounds (:func:`autosc.cost.calibration.measure_share`: one measurement's share varied
    by 3-6% here), set :attr:`LatencyModel.calibration` and give a budget's share its milliseconds at the same
    moment, so the drift cancels out of the ratio; without a reference, ``CALIBRATION_RUNS`` runs of the network.
    """
    from ..latency import time_together
    from .calibration import measure_share

    timing = timing or ProbeSettings()
    if reference is not None:  # in rounds, the middle one taken (autosc/cost/calibration.py)
        m = measure_share(net, adaptor_names, sizes, reference, input_size=input_size, in_channels=in_channels,
                          threads=threads, batch=batch, timing=timing)  # fmt: skip
        return model.calibrated([tuple(s) for s in sizes], m.shape_ms), m.reference_ms
    split, adaptors = split_at_adaptors(net, adaptor_names)
    for adaptor, size in zip(adaptors, sizes, strict=True):
        adaptor.size = (int(size[0]), int(size[1]))
    timed = time_together({"start": split}, input_size, in_channels, threads=threads, batch=batch,
                          runs=CALIBRATION_RUNS, warmup=min(10, CALIBRATION_RUNS), block=timing.block,
                          exporter=timing.exporter, opset=timing.opset, int8=timing.int8)  # fmt: skip
    return model.calibrated([tuple(s) for s in sizes], float(timed["start"]["p50"])), None
