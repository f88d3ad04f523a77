"""The human-readable side of a compress run: ``report.md``, ``shape.png`` and ``dynamics.png``.

The run builds one :class:`Report` (whose ``to_dict()`` is ``report.json``) and
every renderer reads that same typed record, together with the per-epoch
training log, so a report can be re-rendered from a finished run folder
(``Report.from_dict`` of its ``report.json``) without the model. What the folder
holds is described in docs/algorithm.md ("The run folder").
"""

from __future__ import annotations

import os
from pathlib import Path

from ..io import atomic_write
from .dynamics_plot import plot_dynamics
from .markdown import render_markdown
from .schema import Accuracy, Adaptor, Baseline, Latency, Macs, Onnx, Report, Timing
from .shape_plot import plot_shape


def write_report(run_dir: str | os.PathLike, report: Report, metrics: list[dict]) -> list[Path]:
    """Write ``report.md``, ``shape.png`` and ``dynamics.png`` into ``run_dir``; return their paths.

    The markdown goes first, so a plotting failure still leaves the numbers on disk;
    each file is written atomically, so a crash never leaves half a file.
    """
    run_dir = Path(run_dir)
    md = render_markdown(report)
    paths = [atomic_write(run_dir / "report.md", lambda tmp: Path(tmp).write_text(md, encoding="utf-8"))]
    paths.append(run_dir / "shape.png")
    plot_shape(report, paths[-1])
    paths.append(run_dir / "dynamics.png")
    plot_dynamics(report, metrics, paths[-1])
    return paths


__all__ = [
    "Accuracy",
    "Adaptor",
    "Baseline",
    "Latency",
    "Macs",
    "Onnx",
    "Report",
    "Timing",
    "plot_dynamics",
    "plot_shape",
    "render_markdown",
    "write_report",
]
