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


@pytest.fixture(scope="module")
def small_gt3x(devices_dir: Path):
    """The real 13.6 h ActiGraph file as a stream (read once: the stream keeps the device's samples)."""
    pytest.importorskip("pygt3x")
    return open_recording(devices_dir / "small.gt3x")


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


def test_small_gt3x_still_minutes(small_gt3x) -> None:
    """The data README: 215 of the file's 815 minutes are still (every axis' SD below 13 mg per minute)."""
    stats = epoch_stats(small_gt3x, 60.0)
    still = int(still_epochs(stats).sum())
    assert abs(len(stats) - 815) <= 3 and abs(still - 215) <= 5
    # its still minutes are scattered (the longest run is 19 min): worn throughout, no 60-min non-wear
    assert not nonwear_mask(stats).any()
    assert len(intervals(nonwear_mask(stats, min_minutes=15), stats.time_ns, 60.0)) == 1


def test_small_gt3x_still_runs_match_actipy(small_gt3x) -> None:
    """actipy's ``find_nonwear_segments`` (3.8.3, ``stdtol=0.013``, 10 s windows) on the samples pygt3x reads:
    no still run of 15 min; with ``patience="10m"`` three, starting 12:55:08, 13:08:08 and 13:28:18 and lasting
    12:40, 12:00 and 10:40 (actipy aligns windows to the first sample, at :08, and counts a run one window
    short; epochs here align to the clock and count every epoch)."""
    stats = epoch_stats(small_gt3x, 10.0)
    assert not nonwear_mask(stats, min_minutes=15).any()
    found = intervals(nonwear_mask(stats, min_minutes=10), stats.time_ns, 10.0)
    reference = [("2019-05-06 12:55:08", 12 * 60 + 40), ("2019-05-06 13:08:08", 12 * 60),
                 ("2019-05-06 13:28:18", 10 * 60 + 40)]
    assert len(found) == len(reference)
    for (a, b), (start, seconds) in zip(found, reference, strict=True):
        assert abs(a - pd.Timestamp(start).value) <= 10 * 10**9
        assert abs((b - a) / 1e9 - seconds) <= 20
