"""The timeline PNG of ``harvit predict --table``: the predicted activity and its confidence over time,
with the table's own labels beside them when it has them.

It lives in ``deploy/`` rather than ``reporting/plots.py``: deploy and reporting are sibling layers
that may not import each other, and only predict draws it. The figure helpers both use
(:func:`harvit.utils.figures.new_figure`, :func:`~harvit.utils.figures.save_figure`, short class
names) live in the first layer.

A day holds ~67,000 windows at 50 Hz and stride 64: consecutive windows of one class are merged
into one bar (one ``broken_barh`` call per class), and the confidence line is drawn from at most
:data:`MAX_POINTS` points (the minimum of each bucket of windows, so dips stay visible).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.patches import Patch

from harvit.deploy.table import TablePrediction
from harvit.utils.figures import new_figure, save_figure, short_labels

MAX_POINTS = 4000
"""Largest number of points of the confidence line."""


def _segments(codes: np.ndarray, start: np.ndarray, end: np.ndarray, piece: np.ndarray
              ) -> list[tuple[int, float, float]]:
    """Runs of one code within one piece: ``(code, start, end)``; a run ends where the next window starts
    (windows overlap), the last one at its window's end."""
    if len(codes) == 0:
        return []
    change = np.flatnonzero((codes[1:] != codes[:-1]) | (piece[1:] != piece[:-1])) + 1
    first = np.concatenate([[0], change])
    last = np.concatenate([change - 1, [len(codes) - 1]])
    out = []
    for a, b in zip(first, last, strict=True):
        same_piece_next = b + 1 < len(codes) and piece[b + 1] == piece[b]
        stop = start[b + 1] if same_piece_next else end[b]
        out.append((int(codes[a]), float(start[a]), float(stop)))
    return out


def _piece_times(start: np.ndarray, end: np.ndarray, piece: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Window times to draw: as they are when the pieces follow each other in time (one recording with
    gaps), else (several recordings on their own clocks) each piece shifted to start where the previous
    one ended. Returns (start, end, whether pieces were laid end to end)."""
    firsts = np.concatenate([[0], np.flatnonzero(np.diff(piece) != 0) + 1])
    lasts = np.concatenate([firsts[1:], [len(piece)]])
    if all(start[a] >= end[b - 1] for a, b in zip(firsts[1:], lasts[:-1], strict=True)):
        return start, end, False
    start, end = start.copy(), end.copy()
    cursor = 0.0
    for a, b in zip(firsts, lasts, strict=True):
        shift = cursor - start[a]
        start[a:b] += shift
        end[a:b] += shift
        cursor = float(end[a:b].max())
    return start, end, True


def _time_unit(span_s: float) -> tuple[float, str]:
    if span_s > 3 * 3600:
        return 3600.0, "hours"
    if span_s > 3 * 60:
        return 60.0, "minutes"
    return 1.0, "seconds"


def plot_timeline(result: TablePrediction, out: str | Path, title: str = "") -> Path:
    """Draw the timeline of a table's predictions as PNG (atomic write); returns ``out``.

    Panels: the predicted activity (one colour per class, bars over time), the true labels when the
    table has them (unlabelled time left blank), and the confidence (probability of the predicted
    class, 0-1). Time runs in seconds from the file's first row, shown in seconds, minutes or hours.
    """
    classes = list(result.classes)
    k = len(classes)
    cmap = colormaps["tab20" if k > 10 else "tab10"]
    colours = [cmap(i % cmap.N) for i in range(k)]
    start, end, laid_out = _piece_times(np.asarray(result.start_s, float), np.asarray(result.end_s, float),
                                        np.asarray(result.piece))
    t_min, t_max = float(start.min()), float(end.max())
    scale, unit = _time_unit(t_max - t_min)
    has_true = result.true is not None
    rows = [("predicted", result.pred)]
    if has_true:
        index = {c: i for i, c in enumerate(classes)}
        extra = sorted({t for t in result.true if t and t not in index})  # type: ignore[union-attr]
        for name in extra:  # labels the model does not know still get a colour
            index[name] = len(index)
            colours.append((0.6, 0.6, 0.6, 1.0))
        classes_all = classes + extra
        true = np.array([index.get(t, -1) if t else -1 for t in result.true], dtype=np.int64)  # type: ignore[union-attr]
        rows.append(("true label", true))
    else:
        classes_all = classes
    fig = new_figure(12, 2.2 + 0.9 * len(rows) + 0.12 * len(classes_all))
    axes = fig.subplots(len(rows) + 1, 1, sharex=True, height_ratios=[1] * len(rows) + [1.6])
    for ax, (name, codes) in zip(axes, rows, strict=False):
        bars: dict[int, list[tuple[float, float]]] = {}
        for code, a, b in _segments(codes, start, end, result.piece):
            if code >= 0:
                bars.setdefault(code, []).append((a / scale, (b - a) / scale))
        for code, spans in bars.items():
            ax.broken_barh(spans, (0, 1), facecolors=colours[code], linewidth=0)
        ax.set_yticks([0.5], [name])
        ax.set_ylim(0, 1)
        ax.tick_params(axis="y", length=0)
    conf = axes[-1]
    centre = (start + end) / 2 / scale
    prob = np.asarray(result.prob, float)
    breaks = np.flatnonzero(np.diff(result.piece) != 0) + 1  # the line does not join separate pieces
    centre = np.insert(centre, breaks, np.nan)
    prob = np.insert(prob, breaks, np.nan)
    if len(centre) > MAX_POINTS:  # bucket minima keep the dips (and a bucket across pieces stays a gap)
        edges = np.linspace(0, len(centre), MAX_POINTS + 1).astype(np.int64)[:-1]
        centre = np.fmin.reduceat(centre, edges)
        prob = np.minimum.reduceat(prob, edges)
    conf.plot(centre, prob, color="black", linewidth=0.6)
    where = "pieces laid end to end" if laid_out else "from the table's first row"
    conf.set(ylim=(0, 1.02), ylabel="confidence", xlabel=f"time ({unit}, {where})")
    if laid_out:
        for t in start[np.flatnonzero(np.diff(result.piece) != 0) + 1]:
            for ax in axes:
                ax.axvline(t / scale, color="black", linewidth=0.6, linestyle=":")
    conf.set_xlim(t_min / scale, t_max / scale)
    conf.grid(alpha=0.3)
    labels = short_labels(classes_all)
    handles = [Patch(facecolor=colours[i]) for i in range(len(classes_all))]
    fig.legend(handles, labels, loc="outside right upper", fontsize=8, frameon=False,
               ncols=1 if len(classes_all) <= 20 else 2)
    axes[0].set_title(title or "Predicted activity over time")
    return save_figure(fig, out)

