"""What a measurement depends on besides the network: library versions, CPU, cores.

Kept apart from the timing code in :mod:`autosc.latency`: probing the machine
is one job and timing networks another, and benchmarks and run records
(docs/algorithm.md, The run folder) want the environment without a benchmark.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
from importlib import metadata
from types import ModuleType

import numpy as np


def n_cores() -> int:
    """Logical cores this process may use (the affinity mask, not the whole machine)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo, else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _version(module: str) -> str | None:
    """A module's own ``__version__`` (torch's carries the build tag), else the installed dist's."""
    mod = sys.modules.get(module)
    if mod is None:
        try:
            mod = importlib.import_module(module)
        except ImportError:
            mod = None
    version = getattr(mod, "__version__", None)
    if version is None:
        try:
            version = metadata.version(module)
        except metadata.PackageNotFoundError:
            return None
    return str(version)


def onnxruntime() -> ModuleType:
    """ONNX Runtime with its telemetry off; every import of it in autosc comes through here.

    On Linux, recent ONNX Runtime releases keep a device id and an event database under
    ``~/.cache/Microsoft/DeveloperTools/.onnxruntime`` and a session file in ``$TMPDIR``, from its first
    import, unless ``ORT_DISABLE_TELEMETRY=1`` is set by then (measured with 1.32: nothing is written); a
    compression run has no use for them (docs/reliability.md, What autosc writes outside the run folder).
    A value the user set is kept. When onnxruntime was imported before autosc, its events are at least
    turned off for the sessions autosc opens.
    """
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime as ort

    disable = getattr(ort, "disable_telemetry_events", None)  # absent from some builds
    if disable is not None and os.environ["ORT_DISABLE_TELEMETRY"] == "1":
        disable()
    return ort


def _ort_providers() -> list[str]:
    ort = onnxruntime()

    return list(ort.get_available_providers())


def environment() -> dict:
    """Library versions, CPU and Python: what a latency number depends on besides the network."""
    onnxruntime()  # imported with its telemetry off before its version is read
    return {
        "onnxruntime": _version("onnxruntime"),
        "onnx": _version("onnx"),
        "torch": _version("torch"),
        "numpy": np.__version__,
        "onnxruntime_providers": _ort_providers(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": n_cores(),
    }
