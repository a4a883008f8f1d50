"""``harvit predict RUN --recording FILE|FOLDER --output-dir DIR``: recordings of days in calendar time.

A TINY run is trained on a small accelerometer-only table (10 Hz, in g, two classes told apart by gravity and
a walking rhythm); an 8-hour recording from 20:00 to 04:00 (two calendar days) with a 90-minute block of
non-wear (the device still on a table) is predicted end to end, in small chunks and in one, in g and in m/s^2,
and through the CLI, as a cohort with two shards and their merge; bad inputs get one line and exit 2 with
nothing written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers_runs import is_png, tiny_config

from harvit.cli import main
from harvit.deploy.cohort import parse_shard, predict_recordings_command, recording_files
from harvit.deploy.recording import RecordingOptions, predict_recording_file, training_acc_unit
from harvit.deploy.summary import NONWEAR
from harvit.models.loading import load_trained
from harvit.utils.errors import HarvitError

RATE = 10.0
ACC = ["acc_x", "acc_y", "acc_z"]
START = np.datetime64("2026-03-01T20:00:00")
PLAN = [("walk", 60), ("sit", 60), ("off", 90), ("walk", 60), ("sit", 210)]
"""Minutes of each block of the 8-hour recording from 20:00: non-wear from 22:00 to 23:30, midnight at 240."""


def acc_block(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """[n, 3] acceleration in g at :data:`RATE`: walking (gravity on y, a 1.5 Hz rhythm), sitting (gravity on x,
    small movements), or off the wrist (gravity on z, sensor noise only)."""
    t = np.arange(n) / RATE
    if kind == "walk":
        g = np.array([0.1, 0.99, 0.0])
        x = g + 0.4 * np.sin(2 * np.pi * 1.5 * t + rng.uniform(0, 6))[:, None] + rng.normal(0, 0.05, (n, 3))
    elif kind == "sit":
        x = np.array([0.97, 0.0, 0.24]) + rng.normal(0, 0.03, (n, 3))
    else:
        x = np.array([0.0, 0.0, 1.0]) + rng.normal(0, 0.002, (n, 3))
    return x


def training_table(path: Path) -> Path:
    rng = np.random.default_rng(0)
    frames = []
    for subject in (1, 2, 3, 4):
        runs = [("walk", 300), ("sit", 300)] * 3
        x = np.concatenate([acc_block(k, n, rng) for k, n in runs])
        frame = pd.DataFrame({"subject": subject, "time": np.arange(len(x)) / RATE,
                              "activity": np.concatenate([[k] * n for k, n in runs])})
        for k, name in enumerate(ACC):
            frame[name] = x[:, k]
        frames.append(frame)
    pd.concat(frames, ignore_index=True).to_csv(path, index=False)
    return path


def recording(path: Path, plan: list[tuple[str, float]] = PLAN, unit: float = 1.0, seed: int = 1,
              start: np.datetime64 = START) -> Path:
    """A table of epoch seconds (UTC wall-clock) and acc_x..z (g times ``unit``) following ``plan``."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([acc_block(k, int(m * 60 * RATE), rng) for k, m in plan]) * unit
    t0 = (start - np.datetime64("1970-01-01T00:00:00")) / np.timedelta64(1, "s")
    frame = pd.DataFrame({"time": t0 + np.arange(len(x)) / RATE})
    for k, name in enumerate(ACC):
        frame[name] = x[:, k].astype(np.float32)
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TINY run on the acc-only table (g), windows of 6 s, gravity split."""
    from harvit.training import train

    folder = tmp_path_factory.mktemp("recording_run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARVIT_CACHE_DIR", str(folder / "cache"))
        cfg = tiny_config(folder / "runs", dataset=str(training_table(folder / "acc.csv")), epochs=2, window_s=6.0,
                          overlap=0.5, test_subjects="4", gravity_split="acc").validate()
        train(cfg)
    return cfg.run_dir


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return recording(tmp_path_factory.mktemp("night") / "night.parquet")


def test_two_days_with_nonwear(run: Path, night: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "out"
    assert main(["predict", str(run), "--recording", str(night), "--output-dir", str(out), "--device", "cpu",
                 "--smooth", "none"]) == 0
    printed = capsys.readouterr().out
    daily = pd.read_csv(out / "daily.csv")
    assert list(daily["date"]) == ["2026-03-01", "2026-03-02"]
    assert {"walk", "sit", "wear_min", "nonwear_min", "missing_min", "short_wear"} <= set(daily.columns)
    assert NONWEAR not in daily.columns or daily.columns.tolist().count(NONWEAR) == 0
    # every minute recorded is wear or non-wear; each day holds 240 minutes of the recording
    recorded = daily["wear_min"] + daily["nonwear_min"]
    assert np.allclose(recorded, [240, 240], atol=0.5)
    assert abs(daily["nonwear_min"].sum() - 90) <= 5  # 22:00-23:30
    assert daily["nonwear_min"].iloc[1] == 0
    assert daily["short_wear"].all()  # 4 h a day: far below 16 h
    # the activities of day 1: walk 20-21 + 23:30-24, sit 21-22; day 2: walk 0-0:30, sit 0:30-4
    assert abs(daily["walk"].iloc[0] - 90) <= 10 and abs(daily["sit"].iloc[0] - 60) <= 10
    assert abs(daily["walk"].iloc[1] - 30) <= 10 and abs(daily["sit"].iloc[1] - 210) <= 10
    hourly = pd.read_csv(out / "hourly.csv")
    assert len(hourly) == 48
    h22 = hourly[(hourly["date"] == "2026-03-01") & (hourly["hour"] == 22)].iloc[0]
    assert h22[NONWEAR] >= 55 and h22["wear_min"] <= 5
    assert hourly[(hourly["date"] == "2026-03-01") & (hourly["hour"] < 20)]["missing_min"].eq(60).all()
    windows = pd.read_csv(out / "windows.csv")
    assert windows["time"].iloc[0].startswith("2026-03-01T20:00:00")
    assert set(windows["activity"]) == {"walk", "sit", NONWEAR}
    assert windows.loc[windows["activity"] == NONWEAR, "probability"].isna().all()
    bouts = pd.read_csv(out / "bouts.csv")
    assert (bouts["activity"] == NONWEAR).sum() == 1
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["recording"]["nonwear_intervals"]) == 1
    assert summary["recording"]["nonwear_intervals"][0]["start"].startswith("2026-03-01T2")
    assert summary["days"] == 2 and summary["recording"]["windows"] == len(windows)
    assert summary["recording"]["stride_s"] == summary["recording"]["window_s"] == 6.0  # non-overlapping
    assert set(summary["average_day"]["minutes"]) == {"walk", "sit"}
    assert is_png(out / "actogram.png")
    assert "2 calendar days" in printed and "walk" in printed


def test_chunks_give_the_same_windows_and_units_convert(run: Path, night: Path, tmp_path: Path):
    trained = load_trained(run)
    assert training_acc_unit(trained) == "g"
    whole = predict_recording_file(trained, night, RecordingOptions(smooth="none", chunk_rows=10_000_000))
    small = predict_recording_file(trained, night, RecordingOptions(smooth="none", chunk_rows=20_000))
    assert whole.info["chunks"] == 1 and small.info["chunks"] >= 14  # 288,000 rows
    assert np.array_equal(whole.start_ns, small.start_ns)
    assert np.mean(whole.label == small.label) > 0.995
    assert np.abs(whole.probs - small.probs).max() < 0.05
    ms2 = predict_recording_file(trained, recording(tmp_path / "ms2.parquet", unit=9.80665),
                                 RecordingOptions(smooth="none"))
    assert ms2.info["acc_unit"] == "m/s2"
    assert np.mean(ms2.label == whole.label) > 0.99


def test_gap_splits_segments_and_is_said(run: Path, tmp_path: Path):
    a = recording(tmp_path / "a.csv", [("walk", 20), ("sit", 20)])
    b = recording(tmp_path / "b.csv", [("sit", 30)], start=START + np.timedelta64(70, "m"))
    joined = tmp_path / "gap.csv"
    pd.concat([pd.read_csv(a), pd.read_csv(b)]).to_csv(joined, index=False)
    series = predict_recording_file(load_trained(run), joined, RecordingOptions(smooth="none"))
    assert series.info["segments"] == 2
    assert len(series.info["gaps"]) == 1 and abs(series.info["gaps"][0]["minutes"] - 30) < 0.1


def test_clock_set_back_is_a_new_segment_and_said(run: Path, tmp_path: Path):
    a = recording(tmp_path / "a.csv", [("walk", 20), ("sit", 20)])
    b = recording(tmp_path / "b.csv", [("sit", 30)], start=START + np.timedelta64(40 - 60, "m"))  # summer time ends
    joined = tmp_path / "autumn.csv"
    pd.concat([pd.read_csv(a), pd.read_csv(b)]).to_csv(joined, index=False)
    series = predict_recording_file(load_trained(run), joined, RecordingOptions(smooth="none"))
    assert series.info["segments"] == 2 and not series.info["gaps"]
    assert len(series.info["clock_changes"]) == 1 and series.info["clock_changes"][0]["shift_min"] < -59


def test_device_files_end_to_end(run: Path, tmp_path: Path):
    root = Path(os.environ.get("HARVIT_DATA_DIR", "")) / "devices" / "ax3_testfile.cwa"
    if not root.is_file():
        pytest.skip("HARVIT_DATA_DIR/devices not available")
    out = tmp_path / "ax3"
    text = predict_recordings_command(run, root, out, RecordingOptions(smooth="none"), device="cpu")
    daily = pd.read_csv(out / "daily.csv")
    assert len(daily) >= 1 and daily["wear_min"].sum() + daily["nonwear_min"].sum() > 2.5  # 176 s
    summary = json.loads((out / "summary.json").read_text())
    assert summary["recording"]["rate_hz"] > 50 and summary["recording"]["acc_unit"] == "g"
    assert (out / "actogram.png").is_file() and "calendar day" in text
    corrupt = root.with_name("ax3_testfile_corrupt_blocks_0_13_14_142_143_144.cwa")
    predict_recordings_command(run, corrupt, tmp_path / "corrupt", RecordingOptions(smooth="none"), device="cpu")
    summary = json.loads((tmp_path / "corrupt" / "summary.json").read_text())
    assert summary["recording"]["reader"]["blocks_skipped"] == 6 and summary["recording"]["device"]


@pytest.mark.parametrize("case", ["unknown type", "shorter than one window", "rate", "no wear", "missing channel"])
def test_bad_recordings_one_line_exit_2_nothing_written(run: Path, tmp_path: Path, case: str,
                                                        capsys: pytest.CaptureFixture[str]):
    if case == "unknown type":
        path = tmp_path / "x.dat"
        path.write_text("1 2 3\n")
        words = "unknown file type"
    elif case == "shorter than one window":
        path = recording(tmp_path / "short.csv", [("walk", 0.05)])
        words = "shorter than one window"
    elif case == "rate":
        frame = pd.read_csv(recording(tmp_path / "r.csv", [("walk", 5)]))
        path = tmp_path / "slow.csv"
        frame.iloc[::5].to_csv(path, index=False)  # 2 Hz for a 10 Hz model
        words = "cannot be resampled"
    elif case == "no wear":
        path = recording(tmp_path / "off.csv", [("off", 70)])
        words = "no wear"
    else:
        frame = pd.read_csv(recording(tmp_path / "m.csv", [("walk", 5)]))
        path = tmp_path / "two_axes.csv"
        frame.drop(columns=["acc_z"]).to_csv(path, index=False)
        words = "missing: acc_z"
    out = tmp_path / "out"
    code = main(["predict", str(run), "--recording", str(path), "--output-dir", str(out), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert words in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def test_cohort_two_shards_then_merge_and_resume(run: Path, tmp_path: Path):
    folder = tmp_path / "cohort"
    folder.mkdir()
    for k in range(3):
        recording(folder / f"p{k}.csv", [("walk", 10 + 5 * k), ("sit", 10)], seed=k)
    (folder / "notes.txt").write_text("not a recording")
    assert [p.name for p in recording_files(folder)] == ["p0.csv", "p1.csv", "p2.csv"]
    assert parse_shard("1/2") == (1, 2)
    with pytest.raises(HarvitError, match="--shard"):
        parse_shard("2/2")
    out = tmp_path / "out"
    opts = RecordingOptions(smooth="none")
    predict_recordings_command(run, folder, out, opts, device="cpu", shard="0/2")
    assert sorted(p.name for p in out.iterdir()) == ["p0.csv", "p2.csv"] and not (out / "cohort.csv").exists()
    predict_recordings_command(run, folder, out, opts, device="cpu", shard="1/2")
    stamp = (out / "p1.csv" / "summary.json").stat().st_mtime_ns
    text = predict_recordings_command(run, folder, out, opts, device="cpu")  # the merge: everything is done
    assert (out / "p1.csv" / "summary.json").stat().st_mtime_ns == stamp  # skipped, not predicted again
    cohort = pd.read_csv(out / "cohort.csv", keep_default_na=False)
    assert list(cohort["recording"]) == ["p0.csv", "p1.csv", "p2.csv"] and (cohort["error"] == "").all()
    walk = cohort["walk_min_per_day"].to_numpy()
    assert walk[0] < walk[1] < walk[2]  # 10, 15, 20 minutes of walking
    assert "3 of 3" in text


@pytest.mark.slow  # two spawned workers import torch: tens of seconds on a busy machine
def test_cohort_workers_in_processes(run: Path, tmp_path: Path):
    folder = tmp_path / "cohort"
    folder.mkdir()
    for k in range(2):
        recording(folder / f"q{k}.csv", [("walk", 8), ("sit", 8)], seed=k)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    p = subprocess.run([sys.executable, "-m", "harvit", "predict", str(run), "--recording", str(folder),
                        "--output-dir", str(tmp_path / "out"), "--workers", "2", "--device", "cpu"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert len(pd.read_csv(tmp_path / "out" / "cohort.csv")) == 2
