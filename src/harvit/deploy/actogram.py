"""The actogram of a recording: one row per calendar day, 24 hours across, each minute coloured by its
activity, non-wear grey, time not recorded white.

Each minute takes the label that holds most of its windows (a bincount over minute x label), so a week
is a [days, 1440] image drawn with one ``imshow``, whatever the number of windows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from harvit.deploy.summary import DAY_NS, NONWEAR, WindowSeries, iso
from harvit.utils.figures import new_figure, save_figure, short_labels

NONWEAR_COLOUR = (0.62, 0.62, 0.62, 1.0)
MISSING_COLOUR = (1.0, 1.0, 1.0, 1.0)


def minute_grid(series: WindowSeries) -> tuple[np.ndarray, int]:
    """Label of every minute of the days touched: int [D, 1440], -1 where not recorded; and day 0's midnight (ns)."""
    n_labels = len(series.classes) + 1
    if len(series) == 0:
        return np.full((0, 1440), -1), 0
    start = series.start_ns.astype(np.int64)
    day0 = int(start.min() // DAY_NS * DAY_NS)
    n_days = int(start.max() // DAY_NS - day0 // DAY_NS) + 1
    minute = (start - day0) // 60_000_000_000
    counts = np.bincount(minute * n_labels + series.label, minlength=n_days * 1440 * n_labels)
    counts = counts[: n_days * 1440 * n_labels].reshape(n_days * 1440, n_labels)
    grid = np.where(counts.sum(axis=1) > 0, counts.argmax(axis=1), -1)
    return grid.reshape(n_days, 1440), day0


def plot_actogram(series: WindowSeries, out: str | Path, title: str = "") -> Path:
    """Draw the actogram as PNG (atomic write); returns ``out``."""
    grid, day0 = minute_grid(series)
    k = len(series.classes)
    base = colormaps["tab10" if k <= 10 else "tab20"]
    colours = [MISSING_COLOUR, *[base(i % base.N) for i in range(k)], NONWEAR_COLOUR]
    cmap = ListedColormap(colours)
    n_days = max(1, grid.shape[0])
    fig = new_figure(11.0, 1.2 + 0.42 * n_days)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(grid + 1, aspect="auto", cmap=cmap, vmin=-0.5, vmax=k + 1.5, interpolation="nearest",
              extent=(0, 24, n_days - 0.5, -0.5))
    dates = iso(day0 + np.arange(n_days) * DAY_NS, "D") if len(series) else []
    weekdays = [np.datetime64(d, "D").astype("datetime64[D]").item().strftime("%a") for d in dates]
    ax.set_yticks(range(len(dates)), [f"{w} {d}" for w, d in zip(weekdays, dates, strict=True)])
    ax.set_xticks(range(0, 25, 3), [f"{h:02d}:00" for h in range(0, 25, 3)])
    ax.set_xlabel("local time")
    ax.set_title(title or "activity per day")
    names = short_labels(series.classes)
    handles = [Patch(color=colours[i + 1], label=n) for i, n in enumerate(names)]
    handles += [Patch(color=NONWEAR_COLOUR, label=NONWEAR), Patch(facecolor=MISSING_COLOUR, edgecolor="0.6",
                                                                 label="not recorded")]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.4 / n_days),
              ncol=min(len(handles), 5), frameon=False, fontsize=8)
    return save_figure(fig, out)
