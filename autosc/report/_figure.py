"""Figures without pyplot: both pictures are built on :class:`~matplotlib.figure.Figure` and saved here.

The Agg canvas is attached directly, never through pyplot, so rendering touches
no global backend or figure registry and leaks nothing in long-lived processes.
"""

from __future__ import annotations

import os

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..io import atomic_write

DPI = 120


def new_figure(figsize: tuple[float, float]) -> Figure:
    """A constrained-layout figure at the report's DPI, not registered with pyplot."""
    return Figure(figsize=figsize, dpi=DPI, layout="constrained")


def save_png(fig: Figure, path: str | os.PathLike) -> None:
    """PNG through the Agg canvas, atomically (a crash never leaves half a picture); then drop the artists."""
    FigureCanvasAgg(fig)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI, facecolor="white"))
    finally:
        fig.clear()
