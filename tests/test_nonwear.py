"""Non-wear from long still periods (the stationary-period rule of actipy and the UK Biobank analysis)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harvit.data.epochs import EpochStats, epoch_stats
from harvit.data.nonwear import intervals, nonwear_mask, still_epochs
from harvit.data.streams import open_recording

RATE = 10.0
START = pd.Timestamp("2024-05-01 08:00")


def _recording(path: Path, blocks: list[tuple[float, bool]]) -> None:
    """A table of (minutes, still) blocks at :data:`RATE` Hz: moving blocks have 0.1 g noise, still ones 2 mg."""
    rng = np.random.default_rng(0)
    parts = []
    for minutes, still in blocks:
        n = int(minutes * 60 * RATE)
        noise = 0.002 if still else 0.1
        parts.append(rng.normal(0, noise, (n, 3)) + [0.0, 0.0, 1.0])
    xyz = np.concatenate(parts)
    t = START.value + np.round(np.arange(len(xyz)) * 1e9 / RATE).astype(np.int64)
    pd.DataFrame({"time": t, "acc_x": xyz[:, 0], "acc_y": xyz[:, 1], "acc_z": xyz[:, 2]}).to_parquet(path)


def test_long_still_block_only(tmp_path: Path) -> None:
    """A 90-min still block is non-wear, a 30-min one (sitting, a nap) is not."""
    path = tmp_path / "day.parquet"
    _recording(path, [(20, False), (90, True), (20, False), (30, True), (20, False)])
    stats = epoch_stats(open_recording(path, chunk_rows=10_000), 10.0)
    mask = nonwear_mask(stats)
    found = intervals(mask, stats.time_ns, stats.epoch_s)
    assert found == [((START + pd.Timedelta(minutes=20)).value, (START + pd.Timedelta(minutes=110)).value)]
    assert mask.sum() * 10 == 90 * 60
    # the short block is still, just not long enough
    assert still_epochs(stats)[(20 + 90 + 20) * 6:(20 + 90 + 20 + 30) * 6].all()
    # thresholds as parameters: 25 minutes catches both blocks, a 1 mg threshold neither
    assert len(intervals(nonwear_mask(stats, min_minutes=25), stats.time_ns, 10.0)) == 2
    assert not nonwear_mask(stats, sd_threshold_g=0.001).any()


def test_gap_ends_a_run() -> None:
    """Two 40-min still runs separated by a gap in the recording are not one 80-min run."""
    e = 10 * 10**9
    t = np.concatenate([np.arange(240), np.arange(300, 540)]).astype(np.int64) * e
    stats = EpochStats(t, np.tile([0.0, 0.0, 1.0], (480, 1)), np.full((480, 3), 0.002), np.full(480, 100), 10.0)
    assert not nonwear_mask(stats).any()
    assert len(intervals(nonwear_mask(stats, min_minutes=30), t, 10.0)) == 2


def test_small_gt3x_still_minutes(devices_dir: Path) -> None:
    """The data README: 215 of the file's 815 minutes are still (every axis' SD below 13 mg per minute)."""
    pytest.importorskip("pygt3x")
    stats = epoch_stats(open_recording(devices_dir / "small.gt3x"), 60.0)
    still = int(still_epochs(stats).sum())
    assert abs(len(stats) - 815) <= 3 and abs(still - 215) <= 5
    # its still minutes are scattered (the longest run is 19 min): worn throughout, no 60-min non-wear
    assert not nonwear_mask(stats).any()
    assert len(intervals(nonwear_mask(stats, min_minutes=15), stats.time_ns, 60.0)) == 1
