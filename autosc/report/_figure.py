"""Figures without pyplot: both pictures are built on :class:`~matplotlib.figure.Figure` and saved here.

The Agg canvas is attached directly, never through pyplot, so rendering touches
no global backend or figure registry and leaks nothing in long-lived processes.
matplotlib is imported only here, when a figure is drawn: importing it makes its
configuration folder, and a command sets where that is before the first figure
(autosc/cli/__init__.py; docs/reliability.md, What autosc writes outside the run folder).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..io import atomic_write

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 120


def new_figure(figsize: tuple[float, float]) -> Figure:
    """A constrained-layout figure at the report's DPI, not registered with pyplot."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=DPI, layout="constrained")


def save_png(fig: Figure, path: str | os.PathLike) -> None:
    """PNG through the Agg canvas, atomically (a crash never leaves half a picture); then drop the artists."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI, facecolor="white"))
    finally:
        fig.clear()
