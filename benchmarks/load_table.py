"""Loading benchmark: a 10-million-row table of one 6-axis sensor read and windowed.

Writes a synthetic table (20 subjects, one recording each, 50 Hz, acc_x..z + gyro_x..z, activity
runs of 60 s, a time column in seconds) as parquet and as CSV into a temporary folder, then loads
each in a fresh process with ``harvit.data.load_dataset(path, use_cache=False)`` (read, checksum,
time base, windows of 2.56 s with 50% overlap, subject split) and reports wall time, rows/s and the
process's peak RSS (``resource.getrusage``). Goal (issue 13): <= 60 s and <= 4 GB on 2 cores.

    PYTHONPATH=src python benchmarks/load_table.py [--rows 10000000] [--json load_table.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

RATE_HZ = 50.0
SUBJECTS = 20
ACTIVITIES = ("walking", "upstairs", "downstairs", "sitting", "standing", "lying")
RUN_S = 60.0
AXES = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")


def synthetic_table(rows: int, seed: int = 0) -> pa.Table:
    """``rows`` samples: subject, time_s, activity, 6 float32 channels (acc in g, gyro in rad/s)."""
    rng = np.random.default_rng(seed)
    per = rows // SUBJECTS
    index = np.arange(rows) % per
    subject = np.minimum(np.arange(rows) // per, SUBJECTS - 1) + 1
    index[(subject == SUBJECTS)] = np.arange(int((subject == SUBJECTS).sum()))
    time_s = index / RATE_HZ
    run = (time_s // RUN_S).astype(np.int64) + subject
    activity = pa.DictionaryArray.from_arrays(pa.array(run % len(ACTIVITIES), pa.int32()), pa.array(ACTIVITIES))
    columns = {"subject": pa.array(subject.astype(np.int32)), "time_s": pa.array(time_s),
               "activity": activity.cast(pa.string())}
    for k, axis in enumerate(AXES):
        columns[axis] = pa.array(rng.normal(scale=0.3, size=rows).astype(np.float32) + (1.0 if k == 2 else 0.0))
    return pa.table(columns)


def write_files(rows: int, folder: Path) -> dict[str, Path]:
    t0 = time.perf_counter()
    tab = synthetic_table(rows)
    paths = {"parquet": folder / "big.parquet", "csv": folder / "big.csv"}
    pq.write_table(tab, paths["parquet"])
    pa_csv.write_csv(tab, paths["csv"], pa_csv.WriteOptions(quoting_style="none"))
    print(f"wrote {rows:,} rows in {time.perf_counter() - t0:.1f} s: "
          + ", ".join(f"{k} {p.stat().st_size / 1e6:.0f} MB" for k, p in paths.items()), flush=True)
    return paths


def measure(path: str) -> dict:
    """Load once (no cache) in this process; wall time and peak RSS."""
    from harvit.data import load_dataset

    t0 = time.perf_counter()
    ds = load_dataset(path, use_cache=False)
    seconds = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"seconds": round(seconds, 2), "peak_rss_gb": round(peak_kb / 2**20, 3),
            "windows": len(ds.train) + len(ds.test), "shape": list(ds.train.x.shape[1:])}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--measure", default=None, help=argparse.SUPPRESS)  # internal: one load in a fresh process
    args = p.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return 0
    results = {"rows": args.rows, "channels": len(AXES), "rate_hz": RATE_HZ}
    with tempfile.TemporaryDirectory(prefix="harvit-load-") as tmp:
        for kind, path in write_files(args.rows, Path(tmp)).items():
            out = subprocess.run([sys.executable, __file__, "--measure", str(path)], capture_output=True, text=True,
                                 check=False)
            if out.returncode != 0:
                print(out.stderr, file=sys.stderr)
                return out.returncode
            r = json.loads(out.stdout.strip().splitlines()[-1])
            r["rows_per_s"] = round(args.rows / r["seconds"])
            r["file_mb"] = round(path.stat().st_size / 1e6, 1)
            results[kind] = r
            print(f"{kind:8s} {r['seconds']:6.1f} s  {r['rows_per_s'] / 1e6:5.2f} M rows/s  peak RSS "
                  f"{r['peak_rss_gb']:.2f} GB  {r['windows']:,} windows {r['shape']}", flush=True)
    from harvit.utils.machine import describe_machine, machine_info  # not in the measured child's imports

    results["machine"] = machine_info()
    print(f"machine: {describe_machine(results['machine'])}")
    if args.json:
        from harvit.utils.atomic import write_json

        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
