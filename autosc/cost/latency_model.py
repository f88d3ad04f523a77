"""Predicted ONNX Runtime latency of an adapted network from its adaptor sizes (docs/algorithm.md, Latency budgets).

Additive over segments, as measured look-up tables are in NetAdapt and Once-for-All: the stem (everything
before the first adaptor) costs a constant, and the segment after adaptor k (its resize and every operator up to
the next adaptor) a function of adaptor k's output area alone, since that is the only size its operators
follow (``cost.shape_cost``). Each segment's table over resized sizes is made non-decreasing and interpolated
linearly, in the segment's *work* when the cost model gives it (its MACs and resize MACs at that size, counted
exactly by ``cost.shape_cost``), else in the area: a stride-2 operator after the adaptor makes the cost a step
function of the size (on resnet18@224 a 3x3 and a 4x4 last map both become 2x2 after layer4's first
convolution), which interpolating in area misses (measured: shapes with a 3x3 last map predicted 3-6% fast,
benchmarks/RESULTS.md, "The latency model as a ratio"), so the projection's bisection on P works on predicted latency as on MACs
(``cost.projection``). The human size is its own entry: there the adaptor exports no Resize at all, so it can
be cheaper than one pixel less (measured: leaving it to the interpolation under-predicted random shapes of
mobilenet_v2@224 by 16%, the cost of the resizes the table never saw). What the sum of separately timed segments misses (one session's fixed overhead
instead of many, fusion across a border) is a linear correction fitted on whole networks timed at the same
shapes, with what the whole saves where an adaptor keeps its human size (``saved_ms``), kept in the model rather
than hidden. Measuring lives in ``cost.latency_probe``; this module is the
pure function and its file format.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import io
from ..errors import AutoscError, warn

FORMAT = "autosc-latency/3"  # 2: the human size is its own (Resize-free) entry; 3: random probes, warm blocks


def non_decreasing(values: list[float]) -> list[float]:
    """The least-squares non-decreasing fit of ``values`` (pool adjacent violators).

    Written here because numpy has none and scikit-learn's IsotonicRegression is not worth a dependency for
    ten lines; timing noise makes a larger map now and then measure faster, which would break the bisection.
    """
    blocks: list[list[float]] = []  # [mean, weight]
    for v in values:
        blocks.append([float(v), 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m1, w1), (m2, w2) = blocks.pop(-2), blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2])
    return [m for m, w in blocks for _ in range(int(w))]


@dataclass(frozen=True)
class Probe:
    """One timed shape: each adaptor's size, each part's p50 (stem first), and the whole network's p50."""

    sizes: list[tuple[int, int]]
    parts_ms: list[float]
    whole_ms: float

    def to_dict(self) -> dict:
        return {"sizes": [list(s) for s in self.sizes], "parts_ms": self.parts_ms, "whole_ms": self.whole_ms}


#: A segment's position on its table's axis: (adaptor index, its size) -> the segment's work (MACs) at that size.
Coordinate = Callable[[int, tuple[int, int]], float]


@dataclass(frozen=True)
class LatencyModel:
    """``predict(sizes) = calibration * (offset + scale * (stem + sum_k segment_k(area_k)))``, in milliseconds.

    ``calibration`` is what the whole network at a run's start shape measured, over what the model predicted
    there, timed as the run starts (:func:`autosc.cost.latency_probe.calibrate`): the host's speed now against
    its speed when the (cached) model was measured. It belongs to the run, not to the cached model (1 there).
    """

    stem_ms: float
    # per adaptor: the probed sizes below the human size on the table's axis (their area, or the segment's work
    # there: ``axis``), increasing
    areas: list[list[float]]
    ms: list[list[float]]  # per adaptor: its segment's non-decreasing p50 at those points (a Resize included)
    offset_ms: float = 0.0
    scale: float = 1.0
    key: dict = field(default_factory=dict)  # what it was measured for (latency_key)
    probes: list[Probe] = field(default_factory=list)
    # per adaptor: its human size and its segment's p50 there (no Resize); empty: the tables cover every size
    human_sizes: list[tuple[int, int]] = field(default_factory=list)
    identity_ms: list[float] = field(default_factory=list)
    calibration: float = 1.0
    # per adaptor: what the whole network saves at its human size beyond its part timed alone (in the parts'
    # milliseconds, fitted on whole networks: ``_whole_fit``); empty: none fitted
    saved_ms: list[float] = field(default_factory=list)
    axis: str = "area"  # "work": the tables are over each segment's work, given by ``coordinate``
    coordinate: Coordinate | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.areas) != len(self.ms) or any(
            len(a) != len(m) or not a for a, m in zip(self.areas, self.ms, strict=True)
        ):
            raise AutoscError("a latency model needs, per adaptor, as many latencies as probed areas (at least one)")
        if any(np.any(np.diff(a) <= 0) for a in self.areas) or any(np.any(np.diff(m) < 0) for m in self.ms):
            raise AutoscError("a latency model's tables must be increasing in area and non-decreasing in latency")
        if len(self.human_sizes) != len(self.identity_ms) or (
            self.human_sizes and len(self.human_sizes) != len(self.areas)
        ):
            raise AutoscError("a latency model needs one human size and one identity latency per adaptor, or none")
        if self.saved_ms and len(self.saved_ms) != len(self.identity_ms):
            raise AutoscError("a latency model needs one identity saving per identity latency, or none")
        if not self.scale > 0:
            raise AutoscError(f"a latency model's scale must be positive (got {self.scale}): it would not be monotone")
        if not self.calibration > 0:
            raise AutoscError(f"a latency model's calibration must be positive (got {self.calibration})")
        if self.axis not in ("area", "work"):
            raise AutoscError(f"a latency model's axis is 'area' or 'work', got {self.axis!r}")

    @classmethod
    def fit(
        cls, probes: list[Probe], *, key: dict | None = None, human_sizes: list[tuple[int, int]] | None = None,
        coordinate: Coordinate | None = None,
    ) -> LatencyModel:  # fmt: skip
        """The model of timed probes: per-segment tables made non-decreasing, then the whole-network correction.

        With ``human_sizes``, a probe at an adaptor's human size gives that segment's identity entry (no Resize)
        instead of a table point; an adaptor never probed below its human size keeps a one-point table. With
        ``coordinate`` (:meth:`autosc.cost.shape_cost.ShapeCostModel.segment_work`) the tables are over each
        segment's work, else over the area (module docstring); probes at sizes of equal work are averaged.
        """
        if not probes:
            raise AutoscError("no probes to fit a latency model on")
        n = len(probes[0].sizes)
        humans = [tuple(s) for s in human_sizes] if human_sizes is not None else []
        axis = "work" if coordinate is not None else "area"
        place = coordinate or (lambda k, size: size[0] * size[1])
        areas, ms, identity = [], [], []
        for k in range(n):
            by_area: dict[float, list[float]] = {}
            at_human: list[float] = []
            for p in probes:
                size = tuple(p.sizes[k])
                if humans and size == humans[k]:
                    at_human.append(p.parts_ms[k + 1])
                else:
                    by_area.setdefault(place(k, size), []).append(p.parts_ms[k + 1])
            if humans:
                if not at_human:
                    raise AutoscError(
                        f"no probe at adaptor {k}'s human size {humans[k]}: cannot fit its identity entry"
                    )
                identity.append(statistics.mean(at_human))
                if not by_area:  # the adaptor cannot shrink: its table is its identity
                    by_area[place(k, humans[k])] = at_human
            ordered = sorted(by_area)
            areas.append(ordered)
            ms.append(non_decreasing([statistics.mean(by_area[a]) for a in ordered]))
        stem = statistics.median(p.parts_ms[0] for p in probes)
        model = cls(stem, areas, ms, key=dict(key or {}), probes=list(probes), human_sizes=humans, identity_ms=identity,
                    axis=axis, coordinate=coordinate)  # fmt: skip
        offset, scale, saved = model._whole_fit()
        saved_ms = [min(ms, saved.get(k, 0.0) / scale) for k, ms in enumerate(identity)] if saved else []
        return dataclasses.replace(model, offset_ms=offset, scale=scale, saved_ms=saved_ms)

    def _whole_fit(self) -> tuple[float, float, dict[int, float]]:
        """The whole-network correction, least squares in relative error over the probes (measured: fitted in
        milliseconds, resnet18@224's smallest shapes came out 3-9% fast, benchmarks/RESULTS.md, "The latency model
        as a ratio, tenth and eleventh runs"): ``whole = offset + scale * sum`` and, per
        adaptor whose human size some probes hold and others not (and no other adaptor in exactly those probes),
        what the whole network saves when that adaptor keeps its human size (returned positive), which its part
        timed alone does not show (:func:`autosc.cost.probe_shapes.identity_shapes`). Too few probes to fit a
        saving: none is fitted; a non-positive slope (noise on a flat network) would break monotonicity, so the
        offset alone is fitted then."""
        sums = np.array([self._sum(p.sizes) for p in self.probes])
        whole = np.array([p.whole_ms for p in self.probes])
        columns: dict[int, np.ndarray] = {}
        if self.human_sizes:
            kept = [np.array([tuple(p.sizes[k]) == tuple(h) for p in self.probes], float)
                    for k, h in enumerate(self.human_sizes)]  # fmt: skip
            for k, col in enumerate(kept):
                alone = sum(np.array_equal(col, other) for other in kept) == 1
                if 0 < col.sum() < len(col) and alone:
                    columns[k] = col
        if len(self.probes) < len(columns) + 4:
            columns = {}
        if len(self.probes) > 2 and np.ptp(sums) > 0:
            design = np.column_stack([np.ones_like(sums), sums, *columns.values()])
            weight = 1.0 / whole  # relative error, as a share's is: in ms the largest probes ruled the fit
            solution = np.linalg.lstsq(design * weight[:, None], whole * weight, rcond=None)[0]
            if solution[1] > 0:
                saved = {k: -float(v) for k, v in zip(columns, solution[2:], strict=True)}
                return float(solution[0]), float(solution[1]), saved
        return float(np.median(whole - sums)), 1.0, {}

    def on(self, coordinate: Coordinate) -> LatencyModel:
        """This model reading its tables with ``coordinate`` (a model over work read back from a file has none)."""
        return dataclasses.replace(self, coordinate=coordinate)

    def _place(self, k: int, size: tuple[int, int]) -> float:
        if self.axis == "area":
            return size[0] * size[1]
        if self.coordinate is None:
            raise AutoscError("internal error: a latency model over segment work was used without its cost model")
        return self.coordinate(k, (int(size[0]), int(size[1])))

    def _segment(self, k: int, size: tuple[int, int]) -> float:
        """Segment k's p50 at ``size``: its identity entry at the human size, else its table. Above the table's last
        point (one pixel under the human size on every side) and below the human size lie the sizes with one side
        at its human size, which the projection's pixel fill makes: there the table runs on to the human size's
        own timing (never below its last point), since holding the last point predicted such shapes 5-7% fast
        (benchmarks/RESULTS.md, "The latency model as a ratio, fourth run")."""
        if self.human_sizes and tuple(size) == tuple(self.human_sizes[k]):
            return self.identity_ms[k] - (self.saved_ms[k] if self.saved_ms else 0.0)
        x, xs, ms = self._place(k, size), self.areas[k], self.ms[k]
        if self.human_sizes and x > xs[-1]:
            top = self._place(k, self.human_sizes[k])
            if top > xs[-1]:
                return float(np.interp(x, [xs[-1], top], [ms[-1], max(ms[-1], self.identity_ms[k])]))
        return float(np.interp(x, xs, ms))

    def _sum(self, sizes: list[tuple[int, int]]) -> float:
        return self.stem_ms + sum(self._segment(k, s) for k, s in enumerate(sizes))

    def predict(self, sizes: list[tuple[int, int]]) -> float:
        """Predicted p50 (ms) of the frozen network with these adaptor sizes."""
        if len(sizes) != len(self.areas):
            raise AutoscError(f"{len(sizes)} sizes given to a latency model of {len(self.areas)} adaptors")
        return self.calibration * self._fitted(sizes)

    def _fitted(self, sizes: list[tuple[int, int]]) -> float:
        return self.offset_ms + self.scale * self._sum(sizes)

    def segment_share(self, k: int, size: tuple[int, int]) -> float:
        """Adaptor k's segment's part of :meth:`predict` (the correction's scale and the calibration applied)."""
        return self.calibration * self.scale * self._segment(k, size)

    def fixed_share(self) -> float:
        """The part of :meth:`predict` no adaptor changes: the correction's offset and the stem."""
        return self.calibration * (self.offset_ms + self.scale * self.stem_ms)

    def calibrated(self, sizes: list[tuple[int, int]], measured_ms: float) -> LatencyModel:
        """This model, rescaled so that it predicts ``measured_ms`` at ``sizes`` (see the class docstring)."""
        if not measured_ms > 0:
            raise AutoscError(f"a calibration needs a positive measured latency, got {measured_ms}")
        return dataclasses.replace(self, calibration=measured_ms / self._fitted(sizes))

    def errors(self) -> list[float]:
        """Per probe, (predicted - measured) / measured of the whole network: the in-sample fit (uncalibrated,
        as the probes were measured with the model)."""
        return [(self._fitted(p.sizes) - p.whole_ms) / p.whole_ms for p in self.probes]

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "key": self.key,
            "stem_ms": self.stem_ms,
            "areas": self.areas,
            "ms": self.ms,
            "offset_ms": self.offset_ms,
            "scale": self.scale,
            "probes": [p.to_dict() for p in self.probes],
            "human_sizes": [list(s) for s in self.human_sizes],
            "identity_ms": self.identity_ms,
            "calibration": self.calibration,
            "saved_ms": self.saved_ms,
            "axis": self.axis,
        }

    @classmethod
    def from_dict(cls, data: dict) -> LatencyModel:
        if data.get("format") != FORMAT:
            raise AutoscError(f"not an autosc latency model (format {data.get('format')!r}, expected {FORMAT})")
        probes = [Probe([tuple(s) for s in p["sizes"]], p["parts_ms"], p["whole_ms"]) for p in data["probes"]]
        return cls(
            data["stem_ms"], data["areas"], data["ms"], data["offset_ms"], data["scale"], data["key"], probes,
            [tuple(s) for s in data.get("human_sizes", [])], list(data.get("identity_ms", [])),
            float(data.get("calibration", 1.0)), list(data.get("saved_ms", [])), str(data.get("axis", "area")),
        )  # fmt: skip


# -- the cache ----------------------------------------------------------------------------------------


def latency_key(**fields) -> dict:
    """Everything a measured model depends on, as plain data (model, width, input size, adaptors, runtime
    version, threads, batch, CPU, exporter, probes): a change in any of them is a different model."""
    return {"format": FORMAT, **fields}


def key_digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:20]


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/autosc/latency`` (``~/.cache/autosc/latency``): measurements outlive a run folder."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "autosc" / "latency"


def cache_path(key: dict, cache_dir: str | os.PathLike | None = None) -> Path:
    return Path(cache_dir if cache_dir is not None else default_cache_dir()) / f"{key_digest(key)}.json"


def read_cache(key: dict, cache_dir: str | os.PathLike | None = None) -> dict | None:
    """The cached record for ``key``; None when missing, unreadable, or holding another key (a digest clash)."""
    try:
        data = json.loads(cache_path(key, cache_dir).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("key") == json.loads(json.dumps(key, default=str)) else None


def write_cache(record: dict, cache_dir: str | os.PathLike | None = None) -> Path | None:
    """Write ``record`` (which holds its ``key``) atomically: a stopped measurement never leaves half a file.

    The cache only saves time: a folder that cannot be written (full, read-only, not a folder) is one warning
    line naming it, and the measurement is used as it is (None: nothing was written).
    """
    path = cache_path(record["key"], cache_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return io.write_json(path, record)
    except (OSError, AutoscError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        warn(f"cannot write the latency cache {path} ({reason}); this run uses its measurement all the same")
        return None


def load_cached(key: dict, cache_dir: str | os.PathLike | None = None) -> LatencyModel | None:
    """The cached model for ``key``, or None; a file that does not read back (or holds another key) is ignored."""
    data = read_cache(key, cache_dir)
    try:
        return LatencyModel.from_dict(data) if data is not None else None
    except (ValueError, KeyError, TypeError, AutoscError):
        return None


def save_cached(model: LatencyModel, cache_dir: str | os.PathLike | None = None) -> Path | None:
    """Cache the model as measured: a run's calibration stays with the run."""
    return write_cache(dataclasses.replace(model, calibration=1.0).to_dict(), cache_dir)
