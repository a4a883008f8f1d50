"""The files of one predicted recording, and ``harvit predict RUN --recording FILE --output-dir DIR``.

Files written in ``DIR`` (each atomically; ``summary.json`` last, so a folder holding it is complete):

- ``windows.csv``: one row per window: local date-time, activity (or ``non-wear``), probability, ``p_<class>``;
- ``hourly.csv``: ``date``, ``hour``, minutes per activity and non-wear, ``wear_min``, ``missing_min``;
- ``daily.csv``: one row per calendar day: ``date``, minutes per activity, ``wear_min``, ``nonwear_min``,
  ``missing_min``, ``short_wear``;
- ``bouts.csv``: runs of one activity: ``start``, ``end``, ``duration_s``, ``activity``;
- ``actogram.png``: one row per day, 24 hours across;
- ``summary.json``: all of the above for machines, with the recording, calibration, non-wear intervals, gaps,
  clock changes, the average day adjusted for missing time and bout counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harvit.deploy.actogram import plot_actogram
from harvit.deploy.summary import (
    WindowSeries,
    average_day,
    bout_counts,
    bouts_table,
    daily_table,
    hourly_table,
    terminal_summary,
    windows_table,
)
from harvit.utils.atomic import write_json, write_text

OUTPUT_FILES = ("windows.csv", "hourly.csv", "daily.csv", "bouts.csv", "actogram.png", "summary.json")
DONE_FILE = "summary.json"
"""Written last: a recording whose output folder holds it is done (a cohort run skips it)."""


def write_outputs(series: WindowSeries, out_dir: str | Path, min_wear_h: float = 16.0, title: str = "",
                  model: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build every table first, then write the files of the module docstring; returns the summary dict."""
    out = Path(out_dir)
    hourly = hourly_table(series)
    daily = daily_table(series, min_wear_h)
    bouts = bouts_table(series)
    average = average_day(series)
    windows = windows_table(series)
    summary = {
        "recording": series.info,
        "model": model or {},
        "classes": list(series.classes),
        "days": int(len(daily)),
        "valid_days": int((~daily["short_wear"]).sum()),
        "min_wear_h": min_wear_h,
        "wear_h": round(float(daily["wear_min"].sum()) / 60.0, 3),
        "nonwear_h": round(float(daily["nonwear_min"].sum()) / 60.0, 3),
        "daily": _records(daily),
        "average_day": average,
        "bouts": bout_counts(bouts),
        "files": list(OUTPUT_FILES),
    }
    write_text(out / "windows.csv", windows.to_csv(index=False))
    write_text(out / "hourly.csv", hourly.to_csv(index=False))
    write_text(out / "daily.csv", daily.to_csv(index=False))
    write_text(out / "bouts.csv", bouts.to_csv(index=False))
    plot_actogram(series, out / "actogram.png", title=title)
    write_json(out / DONE_FILE, summary)
    summary["_terminal"] = terminal_summary(daily, list(series.classes), average)
    return summary


def _records(table: Any) -> list[dict[str, Any]]:
    rows = []
    for row in table.to_dict(orient="records"):
        rows.append({k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()})
    return rows
