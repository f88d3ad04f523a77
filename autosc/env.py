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


def _ort_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def environment() -> dict:
    """Library versions, CPU and Python: what a latency number depends on besides the network."""
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
