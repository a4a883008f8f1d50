"""Prediction benchmark: ``harvit predict RUN --table DAY`` on a 24-hour recording of one 6-axis sensor.

1. Trains a model of the ``cpu`` preset's shape (ViT 24 px, patch 4, width 96, depth 3, window
   statistics, 9 channels after ``--gravity-split acc --lowpass 20``) for one epoch on a small
   synthetic table: the weights barely matter for the time, the shape does.
2. Writes the day: ``--hours`` (default 24) at 50 Hz = 4.32 million rows of time_s, activity (runs
   of 10 minutes) and acc_x..z (g), gyro_x..z (rad/s), as parquet.
3. Runs ``harvit predict RUN --table day.parquet`` in a fresh process and reports wall time, windows/s
   and that process's peak RSS (``resource.getrusage(RUSAGE_SELF)`` at its end). Goal (issue 13): <= 2 minutes
   on 2 cores, memory bounded.

    PYTHONPATH=src python benchmarks/predict_day.py [--hours 24] [--threads 2] [--json predict_day.json]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

RATE_HZ = 50.0
ACTIVITIES = ("walking", "sitting", "standing", "lying")
RUN_S = 600.0
AXES = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
GRAVITY = {"walking": (1.0, 0.0, 0.0), "sitting": (0.8, 0.6, 0.0), "standing": (1.0, 0.0, 0.0),
           "lying": (0.0, 0.0, 1.0)}


def recording(seconds: float, seed: int, subject: int | None = None) -> pa.Table:
    """``seconds`` at 50 Hz: time_s, activity (runs of :data:`RUN_S`), 6 float32 channels; gravity and a
    walking rhythm depend on the activity."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE_HZ)
    t = np.arange(n) / RATE_HZ
    act = ((t // RUN_S).astype(np.int64) + seed) % len(ACTIVITIES)
    g = np.array([GRAVITY[a] for a in ACTIVITIES])[act]  # [n, 3]
    walking = (act == 0)[:, None]
    x = np.empty((n, 6), dtype=np.float32)
    x[:, :3] = g + 0.05 * rng.standard_normal((n, 3)) + walking * 0.3 * np.sin(2 * np.pi * 2.0 * t)[:, None]
    x[:, 3:] = 0.05 * rng.standard_normal((n, 3)) + walking * 0.5 * np.cos(2 * np.pi * 2.0 * t)[:, None]
    cols = {"time_s": pa.array(t), "activity": pa.array(np.array(ACTIVITIES)[act])}
    if subject is not None:
        cols = {"subject": pa.array(np.full(n, subject, dtype=np.int32)), **cols}
    for k, axis in enumerate(AXES):
        cols[axis] = pa.array(x[:, k])
    return pa.table(cols)


def train_model(folder: Path, threads: int) -> Path:
    """A 1-epoch run of the cpu preset's shape on 5 subjects x 40 minutes (no report, no baselines); returns
    the run folder."""
    path = folder / "train.parquet"
    pq.write_table(pa.concat_tables([recording(2400.0, seed=s, subject=s + 1) for s in range(5)]), path)
    args = ["train", "--preset", "cpu", "--dataset", str(path), "--epochs", "1",
            "--gravity-split", "acc", "--lowpass", "20", "--test-subjects", "5", "--threads", str(threads),
            "--output-dir", str(folder / "runs"), "--run-name", "day", "--no-progress", "--no-tensorboard",
            "--device", "cpu"]
    # Only best.pt is needed: train through the Python API, without the report and its baselines
    # (they cost minutes and tell this benchmark nothing).
    code = ("import sys; from harvit.cli import build_parser, config_from_args; from harvit.training import train; "
            "train(config_from_args(build_parser().parse_args(sys.argv[1:]))[0])")
    cmd = [sys.executable, "-c", code, *args]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False,
                         env={**os.environ, "HARVIT_CACHE_DIR": str(folder / "cache")})
    if out.returncode != 0:
        raise SystemExit(out.stdout[-2000:] + out.stderr[-2000:])
    print(f"trained the cpu-preset model in {time.perf_counter() - t0:.0f} s", flush=True)
    return folder / "runs" / "day"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hours", type=float, default=24.0)
    p.add_argument("--threads", type=int, default=2, help="torch threads of the predict process")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--workdir", default=None, help="keep the files here (and reuse a model trained there before)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="harvit-predict-day-") as tmp:
        folder = Path(args.workdir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        run = folder / "runs" / "day"
        if not (run / "best.pt").is_file():
            run = train_model(folder, args.threads)
        t0 = time.perf_counter()
        day = folder / "day.parquet"
        table = recording(args.hours * 3600, seed=7)
        pq.write_table(table, day)
        rows = table.num_rows
        del table
        print(f"wrote {rows:,} rows ({args.hours:g} h at {RATE_HZ:g} Hz) in {time.perf_counter() - t0:.1f} s, "
              f"{day.stat().st_size / 1e6:.0f} MB", flush=True)
        code = ("import resource, sys; from harvit.cli import main; rc = main(sys.argv[1:]); "
                "print('PEAK_KIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); "
                "raise SystemExit(rc)")
        cmd = [sys.executable, "-c", code, "predict", str(run), "--table", str(day), "--device", "cpu",
               "--threads", str(args.threads), "--out", str(folder / "day.csv")]
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - t0
        if out.returncode != 0:
            print(out.stdout[-3000:], out.stderr[-3000:], file=sys.stderr)
            return out.returncode
        peak_kib = [int(line.split()[1]) for line in out.stderr.splitlines() if line.startswith("PEAK_KIB")]
        peak_gb = peak_kib[-1] / 2**20  # the predict process's own peak (KiB on Linux)
        windows = sum(1 for _ in open(folder / "day.csv")) - 1
        from harvit.utils.machine import describe_machine, kernels_from_log, machine_info

        results = {"hours": args.hours, "rows": rows, "rate_hz": RATE_HZ, "channels": len(AXES),
                   "threads": args.threads, "seconds": round(seconds, 1), "windows": windows,
                   "windows_per_s": round(windows / seconds), "rows_per_s": round(rows / seconds),
                   "peak_rss_gb": round(peak_gb, 2), "file_mb": round(day.stat().st_size / 1e6, 1),
                   "csv_mb": round((folder / "day.csv").stat().st_size / 1e6, 1),
                   "timeline_kb": round((folder / "day_timeline.png").stat().st_size / 1e3, 1),
                   "machine": machine_info(kernels=kernels_from_log(out.stdout.splitlines()))}
        print(f"machine: {describe_machine(results['machine'])}", flush=True)
        print(out.stdout.strip(), flush=True)
        print(f"predict: {seconds:.1f} s for {rows:,} rows ({windows:,} windows, {windows / seconds:.0f} windows/s), "
              f"peak RSS {peak_gb:.2f} GB", flush=True)
    if args.json:
        from harvit.utils.atomic import write_json

        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
