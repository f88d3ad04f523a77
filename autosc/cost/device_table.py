"""Timing tables from the deployment device (docs/algorithm.md, Timing tables from the deployment device).

A user deploys on a phone, an edge box or a server that is not the machine autosc runs on. ``autosc probe``
writes the probe networks a latency model is fitted on (every part and the whole network at each probe shape,
and the reference network a share is of) as ONNX files, a manifest, and ``time_probes.py``
(:mod:`autosc.cost.device_timer`, which needs only onnxruntime and numpy). Run on the device, the script writes
``table.json``; ``--latency-table table.json`` then makes ``plan`` and ``compress`` fit the latency model on
those timings instead of timing here. A table is used only when it is named, only for the network and settings
it was measured for (its key), and never written into this machine's cache.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from .. import io
from ..errors import AutoscError
from ..export import export_onnx
from .latency_model import Coordinate, LatencyModel, Probe
from .latency_probe import ProbeSettings, export_shapes, model_key, split_at_adaptors
from .probe_shapes import probe_shapes
from .shape_cost import ShapeCostModel

PROBES_FORMAT = "autosc-probes/1"
#: The table's format: time_probes.py writes it (it cannot import autosc, so it carries its own copy; a test
#: checks they agree).
TABLE_FORMAT = "autosc-latency-table/1"
SCRIPT = "time_probes.py"
#: The standalone script's source, copied into every probes folder (never imported: it imports onnxruntime).
TIMER_SOURCE = Path(__file__).with_name("device_timer.py")
REFERENCE = "reference.onnx"
#: A latency model's key fields that say which machine measured it: a table's device replaces them.
MACHINE_FIELDS = ("cpu", "onnxruntime", "torch")


def network_key(key: dict) -> dict:
    """A latency model's key without this machine's fields: the network, what the budget means, how it is timed."""
    return {k: v for k, v in key.items() if k not in MACHINE_FIELDS}


@dataclass(frozen=True)
class DeviceTable:
    """A timing table read back: the manifest it was measured from, the p50 of every file, and the device."""

    path: str
    manifest: dict
    p50_ms: dict
    device: dict
    threads: int

    @property
    def key(self) -> dict:
        """The network key of the measurement (the thread count is the one the device timed at)."""
        return {**self.manifest["key"], "threads": self.threads}

    @property
    def width(self) -> float:
        return float(self.manifest["key"]["model"]["width"])

    @property
    def reference_ms(self) -> float:
        return float(self.p50_ms[REFERENCE])

    def model_for(self, key: dict, coordinate: Coordinate | None = None) -> LatencyModel:
        """The latency model of the network ``key`` names, fitted on this table (over the segments' work with
        ``coordinate``); refused when the table was measured for another network or setting (named field by
        field)."""
        wanted = network_key(key)
        if wanted != self.key:
            differ = [k for k in sorted(set(wanted) | set(self.key)) if wanted.get(k) != self.key.get(k)]
            if differ == ["int8"]:
                asked, timed = ("INT8", "float") if wanted.get("int8") else ("float", "INT8")
                raise AutoscError(
                    f"--latency-table {self.path} was timed on {timed} probes and this budget is on the {asked} "
                    f"network: run autosc probe {'with' if asked == 'INT8' else 'without'} --quantize int8, or "
                    f"{'leave out' if asked == 'INT8' else 'give'} --quantize int8 here"
                )
            if differ == ["model"] and (self.key["model"].get("channels") or wanted["model"].get("channels")):
                raise AutoscError(
                    f"--latency-table {self.path} was measured for a network pruned otherwise: run autosc probe with "
                    "the same --weights, --strategy, --prune-share, --importance, budget and data options as here"
                )
            said = "; ".join(f"{k}: table {self.key.get(k)!r}, here {wanted.get(k)!r}" for k in differ[:3])
            raise AutoscError(
                f"--latency-table {self.path} was measured for another network or setting ({said}); run autosc probe "
                "with the same model, width, input size, classes, adaptors and latency options"
            )
        m = self.manifest
        probes = [
            Probe([tuple(s) for s in sizes], [self.p50_ms[f] for f in parts], self.p50_ms[whole])
            for sizes, parts, whole in zip(m["shapes"], m["parts"], m["wholes"], strict=True)
        ]
        return LatencyModel.fit(probes, key={**self.key, "table": self.path, "device": self.device},
                                human_sizes=[tuple(s) for s in m["human_sizes"]], coordinate=coordinate)  # fmt: skip


def write_probes(
    net: nn.Module,
    adaptor_names: list[str],
    reference: nn.Module,
    folder: str | os.PathLike,
    *,
    input_size: tuple[int, int],
    in_channels: int,
    identity: dict,
    threads: int,
    batch: int,
    timing: ProbeSettings | None = None,
) -> Path:
    """Export the probe networks of the adapted ``net`` and the ``reference`` into ``folder`` (made; it must not hold
    a manifest already), with ``manifest.json`` and ``time_probes.py``; returns the manifest's path."""
    timing = timing or ProbeSettings()
    out = Path(folder)
    if (out / "manifest.json").exists():
        raise AutoscError(f"{out} already holds probes (manifest.json); give an empty or new folder")
    out.mkdir(parents=True, exist_ok=True)
    cost_model = ShapeCostModel(net, adaptor_names, input_size, in_channels)
    places = list(zip(adaptor_names, cost_model.human_sizes, strict=True))
    key = network_key(model_key(identity, input_size, in_channels, places, threads=threads, batch=batch,
                                timing=timing))  # fmt: skip
    split, adaptors = split_at_adaptors(net, adaptor_names)
    shapes = probe_shapes(cost_model, timing.probes, timing.random_probes, identity_probes=timing.identity_probes)
    parts, wholes = export_shapes(split, adaptors, shapes, input_size, in_channels, timing=timing, folder=out)
    export_onnx(reference.eval(), input_size, out / REFERENCE, in_channels=in_channels, opset=timing.opset,
                exporter=timing.exporter, check=False)  # fmt: skip
    if timing.int8:  # an INT8 table: the reference a share is of is the INT8 start network too
        from ..latency import int8_twin

        os.replace(int8_twin(out / REFERENCE, out / "reference.int8.onnx"), out / REFERENCE)
    names = [[Path(p).name for p in files] for files in parts]
    manifest = {
        "format": PROBES_FORMAT, "key": key, "threads": threads, "batch": batch, "runs": timing.runs,
        "warmup": min(10, timing.runs), "block": min(timing.block, timing.runs),
        "shapes": [[list(s) for s in sizes] for sizes in shapes], "parts": names,
        "wholes": [Path(p).name for p in wholes], "reference": REFERENCE,
        "human_sizes": [list(s) for s in cost_model.human_sizes],
        # as autosc times them here: all parts in one measurement, the whole networks and the reference in another
        "measurements": [[f for files in names for f in files], [*(Path(p).name for p in wholes), REFERENCE]],
    }  # fmt: skip
    shutil.copyfile(TIMER_SOURCE, out / SCRIPT)
    io.write_json(out / "manifest.json", manifest)
    return out / "manifest.json"


def read_table(path: str | os.PathLike) -> DeviceTable:
    """``table.json`` as ``time_probes.py`` wrote it; a missing, corrupt or incomplete file is one line."""
    where = os.fspath(path)
    try:
        data = json.loads(Path(where).read_text())
    except (OSError, ValueError) as exc:
        raise AutoscError(f"cannot read --latency-table {where}: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != TABLE_FORMAT:
        raise AutoscError(
            f"--latency-table {where} is not a timing table ({TABLE_FORMAT}); write one with the "
            "time_probes.py that autosc probe puts beside its probes"
        )
    manifest, p50 = data.get("manifest"), data.get("p50_ms")
    if not isinstance(manifest, dict) or not isinstance(p50, dict):
        raise AutoscError(f"--latency-table {where} has no manifest or no timings")
    files = [f for group in manifest.get("measurements", []) for f in group]
    missing = [f for f in files if not (isinstance(p50.get(f), (int, float)) and p50[f] > 0)]
    if not files or missing:
        raise AutoscError(f"--latency-table {where} lacks a positive p50 for {', '.join(missing[:3]) or 'any probe'}")
    return DeviceTable(where, manifest, p50, dict(data.get("device") or {}), int(data["threads"]))


__all__ = ["DeviceTable", "PROBES_FORMAT", "network_key", "read_table", "write_probes"]
