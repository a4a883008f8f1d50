"""Epoch statistics and the gravity auto-calibration of van Hees et al. 2014 against its reference behaviour."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harvit.data.calibration import Calibration, calibrate
from harvit.data.epochs import EpochStats, epoch_stats
from harvit.data.streams import open_recording

RATE = 25.0
OFFSET = np.array([0.04, -0.03, 0.02])
SCALE = np.array([1.03, 0.98, 1.01])


@pytest.fixture(scope="module")
def small_gt3x(devices_dir: Path):
    """The real 13.6 h ActiGraph file as a stream (read once: the stream keeps the device's samples)."""
    pytest.importorskip("pygt3x")
    return open_recording(devices_dir / "small.gt3x")


def _orientations(k: int, rng: np.random.Generator) -> np.ndarray:
    """k unit vectors spread over the sphere."""
    v = rng.normal(size=(k, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _still_recording(path: Path, orientations: np.ndarray, seconds_each: int = 30, noise_g: float = 0.003) -> None:
    """A table of still periods, one per orientation, as a device with ``OFFSET``/``SCALE`` errors records them:
    raw = true / scale - offset (so that (raw + offset) * scale = true)."""
    rng = np.random.default_rng(1)
    per = int(seconds_each * RATE)
    true = np.repeat(orientations, per, axis=0)
    raw = true / SCALE - OFFSET + rng.normal(0, noise_g, true.shape)
    t = pd.Timestamp("2024-01-01").value + np.round(np.arange(len(raw)) * 1e9 / RATE).astype(np.int64)
    pd.DataFrame({"time": t, "acc_x": raw[:, 0], "acc_y": raw[:, 1], "acc_z": raw[:, 2]}).to_parquet(path)


def test_epoch_stats_one_pass_matches_pandas(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 9_000
    t = pd.Timestamp("2024-01-01 23:59:55").value + np.round(np.arange(n) * 1e9 / RATE).astype(np.int64)
    xyz = rng.normal(size=(n, 3)) * [0.1, 0.2, 0.3] + [0.0, 0.0, 9.80665]
    path = tmp_path / "r.parquet"
    pd.DataFrame({"time": t, "acc_x": xyz[:, 0], "acc_y": xyz[:, 1], "acc_z": xyz[:, 2]}).to_parquet(path)
    stream = open_recording(path, chunk_rows=777)
    assert stream.acc_unit == "m/s2"
    stats = epoch_stats(stream, 10.0)
    frame = pd.DataFrame(xyz / 9.80665, index=pd.to_datetime(t))
    ref = frame.resample("10s")
    mean, sd, n_ref = ref.mean(), ref.std(), ref.count()[0]
    # clock-aligned epochs: the first starts at 23:59:50, holds 5 s of samples, the next at midnight
    assert pd.Timestamp(stats.time_ns[0]) == pd.Timestamp("2024-01-01 23:59:50")
    assert pd.Timestamp(stats.time_ns[1]) == pd.Timestamp("2024-01-02")
    assert np.array_equal(stats.time_ns, mean.index.as_unit("ns").asi8)
    np.testing.assert_allclose(stats.mean, mean.to_numpy(), atol=1e-9)
    np.testing.assert_allclose(stats.sd, sd.to_numpy(), rtol=1e-6)
    assert np.array_equal(stats.n, n_ref.to_numpy()) and stats.n.sum() == n


def test_epochs_after_a_clock_step_back(tmp_path: Path) -> None:
    """Wall-clock time repeating an hour (end of summer time) makes new epochs, not merged ones."""
    t_hour = pd.Timestamp("2024-10-27 01:00").value + np.arange(0, 3600 * 10**9, 10**9 // 5, dtype=np.int64)
    t = np.concatenate([t_hour, t_hour])
    z = np.concatenate([np.ones(len(t_hour)), np.full(len(t_hour), -1.0)])
    path = tmp_path / "dst.parquet"
    pd.DataFrame({"time": t, "acc_x": 0.0, "acc_y": 0.0, "acc_z": z}).to_parquet(path)
    stats = epoch_stats(open_recording(path, chunk_rows=5000), 60.0)
    assert len(stats) == 120 and np.all(stats.n == 300)
    assert np.all(stats.mean[:60, 2] == 1.0) and np.all(stats.mean[60:, 2] == -1.0)


def test_recovers_known_offset_and_scale(tmp_path: Path) -> None:
    path = tmp_path / "still.parquet"
    _still_recording(path, _orientations(60, np.random.default_rng(0)))
    stats = epoch_stats(open_recording(path), 10.0)
    cal = calibrate(stats)
    assert cal.ok and cal.n_stationary == 180
    np.testing.assert_allclose(cal.offset, OFFSET, atol=2e-3)
    np.testing.assert_allclose(cal.scale, SCALE, atol=2e-3)
    assert cal.error_before_mg > 20 and cal.error_after_mg < 3
    # the calibrated epoch means lie on the unit sphere
    fixed = cal.apply(stats.mean)
    assert np.abs(np.linalg.norm(fixed, axis=1) - 1).max() < 0.005
    assert cal.apply(np.ones((2, 3), dtype=np.float32)).dtype == np.float32


def test_not_applied_without_sphere_coverage(tmp_path: Path) -> None:
    """Still periods with z always up cannot tell offset from scale: the identity, with the reason."""
    rng = np.random.default_rng(0)
    flat = _orientations(400, rng)
    flat = flat[flat[:, 2] > 0.9][:60]
    path = tmp_path / "flat.parquet"
    _still_recording(path, flat)
    cal = calibrate(epoch_stats(open_recording(path), 10.0))
    assert not cal.ok and "cover" in cal.note
    assert np.array_equal(cal.offset, np.zeros(3)) and np.array_equal(cal.scale, np.ones(3))
    x = np.array([[0.1, 0.2, 0.9]])
    assert np.array_equal(cal.apply(x), x)


def test_not_applied_with_too_few_still_epochs() -> None:
    moving = EpochStats(np.arange(100, dtype=np.int64) * 10**10, np.tile([0.0, 0.0, 1.0], (100, 1)),
                        np.full((100, 3), 0.2), np.full(100, 250))
    cal = calibrate(moving)
    assert not cal.ok and cal.n_stationary == 0 and "at least" in cal.note
    assert isinstance(cal, Calibration) and cal.as_dict()["ok"] is False


def test_real_gt3x_matches_actipy(small_gt3x) -> None:
    """The real 13.6 h file against actipy's ``calibrate_gravity`` (actipy 3.8.3, ``stdtol=0.013``, 10 s windows,
    run on the samples pygt3x reads): 2557 still windows, error 18.59 -> 5.50 mg, slopes 0.9841, 0.9734, 0.9871
    and intercepts (actipy's ``calibrated = intercept + slope * raw``, so ``offset * scale`` here) -0.0287, 0.0470,
    0.0015. actipy weights points by a quantile cut-off, GGIR and this module by the inverse distance: the fits
    agree to a few mg."""
    cal = calibrate(epoch_stats(small_gt3x, 10.0))
    assert cal.ok and abs(cal.n_stationary - 2557) <= 20
    assert cal.error_before_mg == pytest.approx(18.59, abs=0.1)
    assert cal.error_after_mg == pytest.approx(5.50, abs=0.3)
    np.testing.assert_allclose(cal.scale, [0.9841, 0.9734, 0.9871], atol=0.004)
    np.testing.assert_allclose(cal.offset * cal.scale, [-0.0287, 0.0470, 0.0015], atol=0.004)
