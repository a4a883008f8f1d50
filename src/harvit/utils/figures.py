"""Figures on the Agg canvas, written as PNG atomically, and class names short enough for an axis.

Shared by :mod:`harvit.reporting.plots` (a run's plots) and :mod:`harvit.deploy.timeline` (the
``harvit predict`` timeline): reporting and deploy are sibling layers that may not import each
other, so what both draw with lives here, in the first layer.
"""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harvit.utils.atomic import write_with

__all__ = ["DPI", "LABEL_CHARS", "new_figure", "save_figure", "short_label", "short_labels"]

DPI = 110
"""Dots per inch of every PNG."""


def new_figure(width: float, height: float) -> Figure:
    """A figure (inches) on the Agg canvas."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, out: str | Path) -> Path:
    """Write ``fig`` as PNG to ``out`` atomically; returns ``out``."""
    out = Path(out)
    write_with(out, lambda f: fig.savefig(f, format="png", dpi=DPI, bbox_inches="tight"))
    return out


LABEL_CHARS = 22
"""Class names longer than this are shortened on plot axes (the report's tables keep them whole)."""


def short_label(name: str, width: int = LABEL_CHARS) -> str:
    """``name`` cut to ``width`` characters with an ellipsis in the middle (keeps both ends, which
    tell apart names like ``walking upstairs`` / ``walking downstairs``)."""
    name = str(name)
    if len(name) <= width:
        return name
    head = (width - 1) // 2 + (width - 1) % 2
    return name[:head] + "\u2026" + name[len(name) - (width - 1 - head):]


def short_labels(names: list[str], width: int = LABEL_CHARS) -> list[str]:
    """:func:`short_label` of each name, kept distinct (names sharing a long beginning lose it; a clash
    left after that gets the class index in front)."""
    out = [short_label(n, width) for n in names]
    if len(set(out)) < len(out):  # names that share a long beginning: keep what tells them apart
        common = len(os.path.commonprefix([str(n) for n in names]))
        cut = max(0, common - 8)
        out = [short_label(("\u2026" if cut else "") + str(n)[cut:], width) for n in names]
    if len(set(out)) < len(out):
        out = [f"{i}: {short_label(n, width - len(str(i)) - 2)}" for i, n in enumerate(names)]
    return out
