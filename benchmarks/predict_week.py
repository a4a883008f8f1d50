"""A week on the wrist: ``harvit predict RUN --recording week.parquet --output-dir DIR`` on 7 days at 100 Hz.

1. Trains (or reuses, with ``--workdir``) a ``cpu``-preset run on HAPT's accelerometer only: a table of the
   raw 50 Hz recordings (``acc_x..z`` in g, the 6 basic activities; transitions unlabelled), with
   ``--lowpass 20 --gravity-split acc``, HAPT's own test subjects held out, ``--epochs`` (default 1) without
   the refit phase (the weights matter for the errors, the shape for the time); the run's HMM smoother is
   fitted at the end of training.
2. Builds the week (``--days``, default 7, at ``--rate`` Hz, default 100: 60.5 M rows x 3 axes) as a parquet
   from the test subjects' labelled recordings (never seen in training; ``--wearers``: some of them),
   resampled to the rate and tiled over days: nights of lying (23:00-07:00), daytime blocks of the other
   activities in a shuffled order, and one block of non-wear a day (constant gravity + 3 mg of noise, 75-120
   minutes). The true minutes per class per day and the non-wear blocks are known.
3. Runs ``harvit predict RUN --recording week.parquet --output-dir DIR`` as one command in a fresh process and
   reports its wall time, its peak RSS (``resource.getrusage(RUSAGE_SELF)`` at its end, printed by the child),
   the largest relative error of minutes per class per day against the truth (``max_daily_error``, over the
   classes the model knows and the days with at least ``--min-true-min`` minutes of the class), the
   non-wear found per block (minutes off at its start and end), and per class the share of its windows
   called that class, before and after smoothing (``window_recall``: where a daily error comes from).

Goals (issue: a week on the wrist; 2 cores): <= 5 minutes wall, peak RSS <= 2 GB and no higher for
``--days 14`` than for 7, daily minutes within 5%, non-wear within 5 minutes a block.

    PYTHONPATH=src python benchmarks/predict_week.py [--days 7] [--rate 100] [--workdir DIR] [--json FILE]
    PYTHONPATH=src python benchmarks/predict_week.py --days 1 --rate 50 --workdir /tmp/week   # a quick check
    PYTHONPATH=src python benchmarks/predict_week.py --days 1 --wearers 9 --workdir /tmp/week   # one wearer
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy import signal as sps

from harvit.utils.atomic import write_json
from harvit.utils.machine import machine_info

HAPT_ZIP = "hapt/HAPT_Data_Set_RawData_and_labels.zip"
ROOT = "HAPT Data Set/"
HAPT_RATE = 50.0
CLASSES = ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING"]
TEST_SUBJECTS = (2, 4, 9, 10, 12, 13, 18, 20, 24)
START = np.datetime64("2026-01-05T00:00:00", "ns")
DAYTIME = [("WALKING", 40), ("SITTING", 120), ("STANDING", 45), ("WALKING_UPSTAIRS", 20),
           ("WALKING_DOWNSTAIRS", 20), ("SITTING", 150), ("WALKING", 30), ("STANDING", 60), ("SITTING", 90),
           ("WALKING", 45), ("STANDING", 40)]
"""Daytime blocks (minutes) between 07:00 and 23:00, shuffled each day; SITTING fills what is left."""


# ---- HAPT, accelerometer only ---------------------------------------------------------------------
def hapt_segments(data_dir: Path) -> tuple[pd.DataFrame, dict[tuple[int, int], np.ndarray]]:
    """(labels: exp, user, activity id, start, end 1-based inclusive; acc per (exp, user): float64 [T, 3] in g)."""
    with zipfile.ZipFile(data_dir / HAPT_ZIP) as z:
        labels = pd.read_csv(io.BytesIO(z.read(ROOT + "RawData/labels.txt")), sep=r"\s+", header=None,
                             names=["exp", "user", "activity", "start", "end"])
        acc = {}
        for exp, user in labels[["exp", "user"]].drop_duplicates().itertuples(index=False):
            raw = z.read(f"{ROOT}RawData/acc_exp{exp:02d}_user{user:02d}.txt")
            acc[(exp, user)] = np.loadtxt(io.BytesIO(raw))
    return labels, acc


def training_table(data_dir: Path, path: Path) -> Path:
    """Every raw HAPT recording as rows: subject, recording, time_s, activity (empty: unlabelled or a
    transition), acc_x..z (g)."""
    labels, acc = hapt_segments(data_dir)
    frames = []
    for (exp, user), x in acc.items():
        act = np.full(len(x), "", dtype=object)
        for row in labels[(labels.exp == exp) & (labels.user == user)].itertuples(index=False):
            if row.activity <= len(CLASSES):
                act[row.start - 1:row.end] = CLASSES[row.activity - 1]
        frame = pd.DataFrame({"subject": user, "recording": exp, "time_s": np.arange(len(x)) / HAPT_RATE,
                              "activity": act})
        for k, axis in enumerate("xyz"):
            frame[f"acc_{axis}"] = x[:, k].astype(np.float32)
        frames.append(frame)
    pd.concat(frames, ignore_index=True).to_parquet(path)
    return path


def train_run(folder: Path, data_dir: Path, epochs: int, threads: int) -> Path:
    """The cpu preset on the accelerometer table (no report, no baselines); returns the run folder."""
    table = training_table(data_dir, folder / "hapt_acc.parquet")
    args = ["train", "--preset", "cpu", "--dataset", str(table), "--epochs", str(epochs), "--no-refit",
            "--lowpass", "20", "--gravity-split", "acc", "--test-subjects", ",".join(map(str, TEST_SUBJECTS)),
            "--threads", str(threads), "--output-dir", str(folder / "runs"), "--run-name", "week", "--no-progress",
            "--no-tensorboard", "--device", "cpu"]
    code = ("import sys; from harvit.cli import build_parser, config_from_args; from harvit.training import train; "
            "train(config_from_args(build_parser().parse_args(sys.argv[1:]))[0])")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False,
                         env={**os.environ, "HARVIT_CACHE_DIR": str(folder / "cache")})
    if out.returncode != 0:
        raise SystemExit(out.stdout[-3000:] + out.stderr[-3000:])
    print(f"trained the cpu preset on HAPT's accelerometer ({epochs} epochs) in {time.perf_counter() - t0:.0f} s",
          flush=True)
    return folder / "runs" / "week"


# ---- the week -------------------------------------------------------------------------------------
def class_pools(data_dir: Path, rate: float, subjects: tuple[int, ...] = TEST_SUBJECTS) -> dict[str, np.ndarray]:
    """Each class's labelled samples of ``subjects`` (test subjects), end to end, resampled to ``rate``:
    float32 [n, 3]."""
    labels, acc = hapt_segments(data_dir)
    up, down = (int(rate), int(HAPT_RATE)) if float(rate).is_integer() else (int(rate * 10), int(HAPT_RATE * 10))
    pools = {}
    for k, name in enumerate(CLASSES):
        rows = labels[(labels.activity == k + 1) & labels.user.isin(subjects)]
        parts = [sps.resample_poly(acc[(r.exp, r.user)][r.start - 1:r.end], up, down, axis=0)
                 for r in rows.itertuples(index=False)]
        pools[name] = np.concatenate(parts).astype(np.float32)
    return pools


def day_plan(day: int, rng: np.random.Generator) -> list[tuple[str, float]]:
    """(class or ``non-wear``, minutes) blocks of one day, 1440 minutes from midnight."""
    blocks = list(DAYTIME)
    order = rng.permutation(len(blocks))
    blocks = [blocks[i] for i in order]
    off = 75 + 15 * (day % 4)
    blocks.insert(1 + day % (len(blocks) - 1), ("non-wear", off))
    used = sum(m for _, m in blocks)
    blocks.append(("SITTING", 16 * 60 - used))
    return [("LAYING", 7 * 60), *blocks, ("LAYING", 60)]


def write_week(path: Path, pools: dict[str, np.ndarray], days: int, rate: float, seed: int = 0
               ) -> tuple[pd.DataFrame, int, list[tuple[int, int, str]]]:
    """Write the recording day by day (one row group per block); returns (true minutes per class per day,
    rows, every block as (start, end) in ns and its class or ``non-wear``)."""
    rng = np.random.default_rng(seed)
    step = np.int64(round(1e9 / rate))
    schema = pa.schema([("time", pa.timestamp("ns")), ("acc_x", pa.float32()), ("acc_y", pa.float32()),
                        ("acc_z", pa.float32())])
    truth, blocks = [], []
    rows = 0
    cursor = {c: int(rng.integers(0, len(p))) for c, p in pools.items()}
    with pq.ParquetWriter(path, schema) as writer:
        for day in range(days):
            minutes = {c: 0.0 for c in CLASSES}
            for name, m in day_plan(day, rng):
                n = int(round(m * 60 * rate))
                t = START.astype(np.int64) + (rows + np.arange(n, dtype=np.int64)) * step
                if name == "non-wear":
                    g = np.array([0.05, -0.1, 0.99], dtype=np.float32)
                    x = g + rng.normal(0, 0.003, (n, 3)).astype(np.float32)
                else:
                    pool = pools[name]
                    idx = (cursor[name] + np.arange(n)) % len(pool)
                    cursor[name] = int(idx[-1] + 1)
                    x = pool[idx]
                    minutes[name] += m
                blocks.append((int(t[0]), int(t[-1] + step), name))
                writer.write_table(pa.table({"time": pa.array(t.astype("datetime64[ns]")),
                                             "acc_x": x[:, 0], "acc_y": x[:, 1], "acc_z": x[:, 2]}, schema=schema))
                rows += n
            truth.append({"date": str(np.datetime64(START + np.timedelta64(day, "D"), "D")), **minutes})
    return pd.DataFrame(truth), rows, blocks


# ---- scoring --------------------------------------------------------------------------------------
def daily_errors(truth: pd.DataFrame, daily: pd.DataFrame, min_true: float) -> tuple[float, dict]:
    """Largest relative error of minutes per class per day (classes with >= ``min_true`` true minutes that day)
    and the table of predicted / true minutes."""
    worst, table = 0.0, {}
    pred = daily.set_index("date")
    for row in truth.itertuples(index=False):
        got = pred.loc[row.date] if row.date in pred.index else None
        table[row.date] = {}
        for c in CLASSES:
            true = float(getattr(row, c))
            p = float(got[c]) if got is not None and c in got else 0.0
            table[row.date][c] = {"true_min": round(true, 1), "pred_min": round(p, 1)}
            if true >= min_true:
                worst = max(worst, abs(p - true) / true)
    return worst, table


def window_recall(windows: pd.DataFrame, blocks: list[tuple[int, int, str]]) -> dict[str, dict[str, float]]:
    """Per class, the share of the windows inside its true blocks that were called that class: ``raw`` (each
    window's most probable class, the ``p_<class>`` columns) and ``smoothed`` (the ``activity`` column).

    Args:
        windows: ``windows.csv`` of the prediction (``time`` of each window's start, ``activity``, ``p_<class>``).
        blocks: (start, end, class) of the week in ns, in time order; ``non-wear`` blocks are left out.
    """
    start = pd.to_datetime(windows["time"]).to_numpy("datetime64[ns]").astype(np.int64)
    half = int(np.median(np.diff(start)) // 2) if len(start) > 1 else 0
    edges = np.array([b[0] for b in blocks], dtype=np.int64)
    names = np.array([b[2] for b in blocks], dtype=object)
    true = names[np.clip(np.searchsorted(edges, start + half, side="right") - 1, 0, None)]
    prob_cols = [c for c in windows.columns if c.startswith("p_")]
    raw = np.array([c[2:] for c in prob_cols], dtype=object)[windows[prob_cols].to_numpy().argmax(axis=1)]
    smoothed = windows["activity"].to_numpy(dtype=object)
    out: dict[str, dict[str, float]] = {"raw": {}, "smoothed": {}}
    for c in sorted(set(names) - {"non-wear"}):
        inside = true == c
        if inside.any():
            out["raw"][c] = round(float((raw[inside] == c).mean()), 4)
            out["smoothed"][c] = round(float((smoothed[inside] == c).mean()), 4)
    return out


def nonwear_offsets(offs: list, summary: dict) -> list[dict]:
    """For each true non-wear block: minutes between its start/end and the nearest found interval's."""
    found = [(np.datetime64(i["start"]), np.datetime64(i["end"])) for i in summary["recording"]["nonwear_intervals"]]
    out = []
    for s, e in offs:
        s, e = np.datetime64(int(s), "ns"), np.datetime64(int(e), "ns")
        best = min(found, key=lambda f: abs((f[0] - s) / np.timedelta64(1, "s")), default=None)
        if best is None:
            out.append({"start": str(s), "found": False})
            continue
        out.append({"start": str(s)[:19], "found": True,
                    "start_off_min": round(float((best[0] - s) / np.timedelta64(1, "s")) / 60, 2),
                    "end_off_min": round(float((best[1] - e) / np.timedelta64(1, "s")) / 60, 2)})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--rate", type=float, default=100.0, help="Hz of the week's recording")
    p.add_argument("--epochs", type=int, default=1, help="training epochs of the cpu-preset run")
    p.add_argument("--threads", type=int, default=2, help="torch threads of training and of the predict process")
    p.add_argument("--smooth", choices=("hmm", "none"), default="hmm")
    p.add_argument("--min-true-min", type=float, default=10.0,
                   help="classes with fewer true minutes on a day are left out of max_daily_error")
    p.add_argument("--workdir", default=None, help="keep the files here (and reuse a run trained there before)")
    p.add_argument("--keep-week", action="store_true", help="reuse week.parquet in --workdir when it exists")
    p.add_argument("--wearers", default=",".join(map(str, TEST_SUBJECTS)),
                   help="comma-separated test subjects whose recordings make the week (default: all nine, "
                        "taken in turn); one subject gives one wearer's week")
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args(argv)
    wearers = tuple(int(s) for s in args.wearers.split(",") if s.strip().isdigit())
    if not wearers or not set(wearers) <= set(TEST_SUBJECTS):
        p.error(f"--wearers: {args.wearers}; expected test subjects among {TEST_SUBJECTS}")
    tag = "" if set(wearers) == set(TEST_SUBJECTS) else "_s" + "-".join(map(str, wearers))
    data_dir = Path(os.environ.get("HARVIT_DATA_DIR", "data"))
    if not (data_dir / HAPT_ZIP).is_file():
        raise SystemExit(f"HAPT not found under HARVIT_DATA_DIR={data_dir}")
    with tempfile.TemporaryDirectory(prefix="harvit-predict-week-") as tmp:
        folder = Path(args.workdir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        run = folder / "runs" / "week"
        if not (run / "best.pt").is_file():
            run = train_run(folder, data_dir, args.epochs, args.threads)
        week = folder / f"week_{args.days}d_{args.rate:g}hz{tag}.parquet"
        t0 = time.perf_counter()
        truth_file = week.with_suffix(".truth.json")
        saved = json.loads(truth_file.read_text()) if args.keep_week and truth_file.is_file() else {}
        if week.is_file() and "blocks" in saved:
            truth, rows = pd.DataFrame(saved["truth"]), saved["rows"]
            blocks, done = [tuple(b) for b in saved["blocks"]], "reused"
        else:
            pools = class_pools(data_dir, args.rate, wearers)
            truth, rows, blocks = write_week(week, pools, args.days, args.rate)
            del pools
            write_json(truth_file, {"truth": truth.to_dict(orient="records"), "rows": rows, "blocks": blocks})
            done = "wrote"
        print(f"{done} {rows:,} rows ({args.days} days at {args.rate:g} Hz) in {time.perf_counter() - t0:.0f} s, "
              f"{week.stat().st_size / 1e6:.0f} MB", flush=True)
        out_dir = folder / f"out_{args.days}d_{args.rate:g}hz{tag}"
        code = ("import resource, sys; from harvit.cli import main; rc = main(sys.argv[1:]); "
                "print('PEAK_KIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); "
                "raise SystemExit(rc)")
        cmd = [sys.executable, "-c", code, "predict", str(run), "--recording", str(week), "--output-dir",
               str(out_dir), "--device", "cpu", "--threads", str(args.threads), "--smooth", args.smooth]
        print("$ harvit " + " ".join(cmd[3:]), flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
            return proc.returncode
        peak_kib = [int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("PEAK_KIB")]
        peak_gb = peak_kib[-1] / 2**20
        print(proc.stdout.strip(), flush=True)
        daily = pd.read_csv(out_dir / "daily.csv")
        summary = json.loads((out_dir / "summary.json").read_text())
        worst, table = daily_errors(truth, daily, args.min_true_min)
        offsets = nonwear_offsets([(s, e) for s, e, name in blocks if name == "non-wear"], summary)
        recall = window_recall(pd.read_csv(out_dir / "windows.csv"), blocks)
        worst_off = max((max(abs(o["start_off_min"]), abs(o["end_off_min"])) for o in offsets if o["found"]),
                        default=None)
        results = {"days": args.days, "rate_hz": args.rate, "wearers": list(wearers), "rows": rows,
                   "threads": args.threads, "smooth": args.smooth, "epochs": args.epochs, "wall_s": round(wall, 1),
                   "peak_rss_gb": round(peak_gb, 3), "max_daily_error": round(worst, 4),
                   "nonwear_blocks": offsets, "nonwear_max_off_min": worst_off,
                   "nonwear_all_found": all(o["found"] for o in offsets), "window_recall": recall,
                   "windows": summary["recording"]["windows"], "chunks": summary["recording"]["chunks"],
                   "minutes": table, "command": "harvit " + " ".join(cmd[3:])}
        results["machine"] = machine_info()
        print(f"predict: {wall:.1f} s wall for {rows:,} rows, peak RSS {peak_gb:.2f} GB, max daily error "
              f"{100 * worst:.1f}%, non-wear blocks found {sum(o['found'] for o in offsets)}/{len(offsets)} "
              f"(largest offset {worst_off} min)", flush=True)
        raw, smoothed = recall["raw"], recall["smoothed"]
        calls = ", ".join(f"{c} {100 * raw[c]:.1f} / {100 * smoothed[c]:.1f}%" for c in raw)
        print(f"windows called their true class (raw / smoothed): {calls}", flush=True)
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
