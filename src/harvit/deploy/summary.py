"""Tables of a recording's predicted activities in calendar time: per window, per hour, per day, bouts,
and the week's average day adjusted for missing time.

Every table is built from a :class:`WindowSeries`: one entry per prediction window, its local wall-clock
start, its label (a model class, or :data:`NONWEAR`) and the seconds it accounts for (the stride). A
window's seconds are split at the hour boundary it crosses, so days are split exactly at midnight.

Valid days follow the wear-time rule of GGIR and the UK Biobank accelerometer analysis (Doherty et al.
2017, PLoS ONE 12(2): e0169649): a day with less than ``min_wear_h`` hours of wear (16 by default) is
flagged ``short_wear``. The average day imputes missing and non-wear time of each minute from the same minute
of the other days, as the UK Biobank tool does: for each minute of the day the share of each activity is
pooled over every day's wear in that minute of the day, and the average day is the sum of those shares over the
1440 minutes (a minute of the day worn on no day cannot be imputed and adds nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

NONWEAR = "non-wear"
"""The label of windows in a non-wear interval: its own class in every output, never an activity."""
MINUTE_NS = 60_000_000_000
HOUR_NS = 60 * MINUTE_NS
DAY_NS = 24 * HOUR_NS


@dataclass
class WindowSeries:
    """Per-window results of one recording (all arrays [N], in time order).

    Attributes:
        classes: the model's K class names; labels index ``[*classes, NONWEAR]``.
        start_ns: int64 local wall-clock start of each window (ns since 1970-01-01, naive local time).
        label: int64 in [0, K]: K is :data:`NONWEAR`.
        prob: float32 probability of the model's class of the window (NaN for non-wear windows).
        probs: float32 [N, K] the model's probabilities (smoothing changes ``label``, not these).
        segment: int64 the recording piece (a gap or clock change starts a new one).
        credit_s: seconds each window accounts for (the stride, at most the window length).
        window_s: the window length in seconds.
    """

    classes: list[str]
    start_ns: np.ndarray
    label: np.ndarray
    prob: np.ndarray
    probs: np.ndarray
    segment: np.ndarray
    credit_s: float
    window_s: float
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        """``[*classes, NONWEAR]``: the names of ``label``'s values."""
        return [*self.classes, NONWEAR]

    def __len__(self) -> int:
        return int(len(self.start_ns))


def iso(ns: np.ndarray | int, unit: str = "s") -> np.ndarray | str:
    """Local date-times ``YYYY-MM-DDTHH:MM:SS`` (``unit`` ``ms``: with milliseconds) of ns timestamps."""
    out = np.datetime_as_string(np.asarray(ns, dtype="int64").astype("datetime64[ns]").astype(f"datetime64[{unit}]"))
    return str(out) if np.ndim(out) == 0 else out


def hour_minutes(series: WindowSeries, bin_ns: int = HOUR_NS) -> tuple[np.ndarray, int]:
    """Minutes of each label in each clock hour (or bin of ``bin_ns``, a divisor of a day) of the days the
    recording touches.

    Returns:
        (float64 [B * D, K + 1] minutes, first day's midnight in ns), B bins a day; row ``B * d + b`` is bin b of
        day d.
    """
    n_labels = len(series.classes) + 1
    per_day = DAY_NS // bin_ns
    if len(series) == 0:
        return np.zeros((0, n_labels)), 0
    start = series.start_ns.astype(np.int64)
    day0 = int(start.min() // DAY_NS * DAY_NS)
    end_last = int(start.max()) + int(series.credit_s * 1e9)
    n_days = int((end_last - 1) // DAY_NS - day0 // DAY_NS) + 1
    minutes = np.zeros((per_day * n_days + 1, n_labels))
    credit = int(round(series.credit_s * 1e9))
    label = series.label.astype(np.int64)
    offset = start - day0
    rest = np.full(len(start), credit, dtype=np.int64)
    while True:  # a window's seconds split over the bins it crosses (a window longer than a bin crosses several)
        b = offset // bin_ns
        part = np.minimum(rest, (b + 1) * bin_ns - offset)
        np.add.at(minutes, (np.minimum(b, len(minutes) - 1), label), part / 60e9)
        rest -= part
        offset += part
        if not (rest > 0).any():
            break
    return minutes[: per_day * n_days], day0


def hourly_table(series: WindowSeries) -> pd.DataFrame:
    """One row per clock hour of every day touched: ``date``, ``hour``, minutes per label (``non-wear`` too),
    ``wear_min``, ``missing_min`` (not recorded: before the start, after the end, gaps)."""
    minutes, day0 = hour_minutes(series)
    labels = series.labels
    rows = np.arange(len(minutes))
    dates = iso(day0 + (rows // 24) * DAY_NS, "D")
    table = pd.DataFrame({"date": dates, "hour": rows % 24})
    for k, name in enumerate(labels):
        table[name] = minutes[:, k].round(3)
    table["wear_min"] = minutes[:, :-1].sum(axis=1).round(3)
    table["missing_min"] = np.clip(60.0 - minutes.sum(axis=1), 0.0, 60.0).round(3)
    return table


def daily_table(series: WindowSeries, min_wear_h: float = 16.0) -> pd.DataFrame:
    """One row per calendar day: ``date``, minutes per class, ``wear_min``, ``nonwear_min``, ``missing_min``,
    ``short_wear`` (True when wear < ``min_wear_h`` hours: the day is not valid for averages of full days)."""
    minutes, day0 = hour_minutes(series)
    n_days = len(minutes) // 24
    per_day = minutes.reshape(n_days, 24, -1).sum(axis=1)
    table = pd.DataFrame({"date": iso(day0 + np.arange(n_days) * DAY_NS, "D")})
    for k, name in enumerate(series.classes):
        table[name] = per_day[:, k].round(2)
    table["wear_min"] = per_day[:, :-1].sum(axis=1).round(2)
    table["nonwear_min"] = per_day[:, -1].round(2)
    table["missing_min"] = np.clip(1440.0 - per_day.sum(axis=1), 0.0, 1440.0).round(2)
    table["short_wear"] = per_day[:, :-1].sum(axis=1) < min_wear_h * 60.0
    return table


def average_day(series: WindowSeries) -> dict[str, Any]:
    """The average day's minutes per class, missing and non-wear time imputed from the same minute of the day
    on the other days (UK Biobank's rule; see the module docstring).

    Returns:
        ``minutes`` (class -> minutes of the average day), ``hours_imputable`` (hours of the day worn on at
        least one day; the rest cannot be imputed and count as none), ``adjusted_daily`` (one dict per day: date
        and minutes per class after imputing its missing and non-wear time).
    """
    minutes, day0 = hour_minutes(series, MINUTE_NS)
    n_days, k = len(minutes) // 1440, len(series.classes)
    wear = minutes.reshape(n_days, 1440, k + 1)[:, :, :k]
    pooled = wear.sum(axis=0)  # [1440, K]
    total = pooled.sum(axis=1, keepdims=True)
    share = np.divide(pooled, total, out=np.zeros_like(pooled), where=total > 0)  # [1440, K]
    avg = share.sum(axis=0)
    fill = np.clip(1.0 - wear.sum(axis=2), 0.0, 1.0)  # [D, 1440] minutes to impute
    adjusted = (wear + fill[:, :, None] * share[None]).sum(axis=1)  # [D, K]
    dates = iso(day0 + np.arange(n_days) * DAY_NS, "D")
    return {
        "minutes": {c: round(float(avg[i]), 2) for i, c in enumerate(series.classes)},
        "hours_imputable": round(float((total[:, 0] > 0).sum()) / 60.0, 2),
        "adjusted_daily": [{"date": str(d), **{c: round(float(adjusted[j, i]), 2)
                                               for i, c in enumerate(series.classes)}} for j, d in enumerate(dates)],
    }


def bouts_table(series: WindowSeries) -> pd.DataFrame:
    """Runs of one label over consecutive windows (a gap or a new segment ends a run): ``start``, ``end``
    (local date-times), ``duration_s``, ``activity``."""
    if len(series) == 0:
        return pd.DataFrame(columns=["start", "end", "duration_s", "activity"])
    start = series.start_ns.astype(np.int64)
    credit = int(round(series.credit_s * 1e9))
    label = series.label
    cut = (label[1:] != label[:-1]) | (series.segment[1:] != series.segment[:-1]) | (np.diff(start) > 1.5 * credit)
    first = np.concatenate([[0], np.flatnonzero(cut) + 1])
    last = np.concatenate([first[1:] - 1, [len(start) - 1]])
    begin, stop = start[first], start[last] + credit
    names = np.array(series.labels, dtype=object)
    return pd.DataFrame({"start": iso(begin), "end": iso(stop), "duration_s": ((stop - begin) / 1e9).round(2),
                         "activity": names[label[first]]})


def windows_table(series: WindowSeries) -> pd.DataFrame:
    """One row per window: ``time`` (local start, ms), ``activity`` (a class or ``non-wear``), ``probability``
    (of the model's class; empty for non-wear), and ``p_<class>`` per class."""
    names = np.array(series.labels, dtype=object)
    table = pd.DataFrame({"time": iso(series.start_ns, "ms"), "activity": names[series.label],
                          "probability": series.prob.round(4)})
    for k, c in enumerate(series.classes):
        table[f"p_{c}"] = series.probs[:, k].round(4)
    return table


def bout_counts(bouts: pd.DataFrame) -> dict[str, int]:
    """Number of bouts per label."""
    return {str(k): int(v) for k, v in bouts["activity"].value_counts().items()}


def terminal_summary(daily: pd.DataFrame, classes: list[str], average: dict[str, Any]) -> str:
    """A few lines: days, valid days, wear per day, and the average day's minutes per class."""
    n = len(daily)
    valid = int((~daily["short_wear"]).sum())
    wear_h = daily["wear_min"].sum() / 60.0
    lines = [f"{n} calendar days ({valid} with >= the minimum wear), {wear_h:.1f} h worn, "
             f"{daily['nonwear_min'].sum() / 60.0:.1f} h non-wear, {daily['missing_min'].sum() / 60.0:.1f} h "
             "not recorded"]
    width = max(len(c) for c in [*classes, NONWEAR])
    lines.append(f"  {'minutes':<{width}}  " + " ".join(f"{d[5:]:>6}" for d in daily["date"])
                 + f"   average day ({average['hours_imputable']:g} of 24 h seen worn; missing time imputed)")
    for c in classes:
        cells = " ".join(f"{v:6.0f}" for v in daily[c])
        lines.append(f"  {c:<{width}}  {cells}   {average['minutes'][c]:7.0f} min")
    lines.append(f"  {NONWEAR:<{width}}  " + " ".join(f"{v:6.0f}" for v in daily["nonwear_min"]))
    return "\n".join(lines)
