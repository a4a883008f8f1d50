"""The calendar tables of ``predict --recording`` on hand-made window series: midnight splits, hours, valid days,
the average day imputed from the same hour of other days (UK Biobank's rule), bouts and the actogram's grid."""

from __future__ import annotations

import numpy as np

from harvit.deploy.actogram import minute_grid
from harvit.deploy.summary import (
    DAY_NS,
    HOUR_NS,
    NONWEAR,
    WindowSeries,
    average_day,
    bouts_table,
    daily_table,
    hourly_table,
)

DAY0 = int(np.datetime64("2026-05-04T00:00:00", "ns").astype(np.int64))


def series(spans: list[tuple[float, float, int]], step_s: float = 30.0) -> WindowSeries:
    """Windows every ``step_s`` over each (start hour from day 0's midnight, end hour, label)."""
    starts, labels = [], []
    for a, b, label in spans:
        t = np.arange(int(a * 3600 / step_s), int(b * 3600 / step_s)) * int(step_s * 1e9) + DAY0
        starts.append(t)
        labels.append(np.full(len(t), label))
    start = np.concatenate(starts).astype(np.int64)
    label = np.concatenate(labels).astype(np.int64)
    n = len(start)
    return WindowSeries(classes=["walk", "sit"], start_ns=start, label=label, prob=np.ones(n, np.float32),
                        probs=np.full((n, 2), 0.5, np.float32), segment=np.zeros(n, np.int64), credit_s=step_s,
                        window_s=step_s)


def test_a_window_across_midnight_is_split_between_days():
    s = WindowSeries(classes=["walk"], start_ns=np.array([DAY0 + DAY_NS - 30 * 10**9]), label=np.array([0]),
                     prob=np.ones(1, np.float32), probs=np.ones((1, 1), np.float32), segment=np.zeros(1, np.int64),
                     credit_s=60.0, window_s=60.0)
    daily = daily_table(s)
    assert list(daily["date"]) == ["2026-05-04", "2026-05-05"]
    assert np.allclose(daily["walk"], [0.5, 0.5])
    hourly = hourly_table(s)
    assert hourly.loc[23, "walk"] == 0.5 and hourly.loc[24, "walk"] == 0.5


def test_daily_minutes_wear_and_short_days():
    # day 0: walk 8-10, sit 10-20, non-wear 20-24; day 1: sit 0-17 (17 h of wear)
    s = series([(8, 10, 0), (10, 20, 1), (20, 24, 2), (24, 41, 1)])
    daily = daily_table(s, min_wear_h=16)
    assert daily[["walk", "sit", "wear_min", "nonwear_min"]].values.tolist() == [[120, 600, 720, 240],
                                                                                [0, 1020, 1020, 0]]
    assert daily["missing_min"].tolist() == [480, 420]
    assert daily["short_wear"].tolist() == [True, False]
    assert NONWEAR not in daily.columns


def test_average_day_imputes_from_the_same_hour_of_other_days():
    # hour 10: walking on day 0, non-wear on day 1; every other hour: sitting on both days
    s = series([(0, 10, 1), (10, 11, 0), (11, 34, 1), (34, 35, 2), (35, 48, 1)])
    avg = average_day(s)
    assert avg["minutes"] == {"walk": 60.0, "sit": 1380.0} and avg["hours_imputable"] == 24
    day1 = avg["adjusted_daily"][1]
    assert day1["walk"] == 60.0 and day1["sit"] == 1380.0


def test_bouts_break_at_label_changes_and_gaps():
    s = series([(1, 2, 0), (2, 2.5, 1), (3, 4, 1)])  # a gap from 2:30 to 3:00 ends the sitting bout
    bouts = bouts_table(s)
    assert bouts["activity"].tolist() == ["walk", "sit", "sit"]
    assert bouts["duration_s"].tolist() == [3600.0, 1800.0, 3600.0]
    assert bouts["start"].iloc[0] == "2026-05-04T01:00:00"


def test_actogram_grid_takes_each_minutes_majority():
    s = series([(0, 1, 0), (1, 2, 2)], step_s=20.0)
    grid, day0 = minute_grid(s)
    assert day0 == DAY0 and grid.shape == (1, 1440)
    assert (grid[0, :60] == 0).all() and (grid[0, 60:120] == 2).all() and (grid[0, 120:] == -1).all()
    assert HOUR_NS == 3600 * 10**9
