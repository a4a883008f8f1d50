"""A device file of days: ``harvit predict RUN --recording FILE.bin`` on 1 and 7 days of a GENEActiv ``.bin``.

Peak memory must not grow with a device file's length. This builds GENEActiv ``.bin`` files of ``--days`` days
from the real test file in ``$HARVIT_DATA_DIR/devices/GENEActiv_testfile.bin`` (its header, and its 17 pages of
300 samples at 85.7 Hz repeated with consecutive sequence numbers and page times: a minute of wrist movement
over and over), then runs ``harvit predict RUN --recording FILE --output-dir DIR`` on each in a fresh process
(``--whole``: with the file read whole, as before slicing) and reports its wall time and peak RSS
(``resource.getrusage(RUSAGE_SELF)`` at its end, printed by the child).
The run is the accelerometer-only ``cpu``-preset run of ``benchmarks/predict_week.py`` (trained here for one
epoch unless ``--workdir`` holds it already). What is predicted does not matter here; the size does.

    HARVIT_DATA_DIR=../shared/data PYTHONPATH=src python benchmarks/device_week.py [--days 1,7] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from predict_week import train_run  # noqa: E402  (the accelerometer-only run of the week benchmark)

from harvit.utils.atomic import write_json  # noqa: E402
from harvit.utils.machine import describe_machine, machine_info  # noqa: E402

SOURCE = "devices/GENEActiv_testfile.bin"
PAGE = b"Recorded Data"
PAGE_S = 300 / 85.7
"""Seconds per page: 300 samples at the file's 85.7 Hz."""
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def pages_of(path: Path) -> tuple[list[bytes], list[list[bytes]]]:
    """(header lines, pages as lists of lines) of a GENEActiv ``.bin`` file, line endings kept."""
    header: list[bytes] = []
    pages: list[list[bytes]] = []
    for line in path.read_bytes().splitlines(keepends=True):
        if line.startswith(PAGE):
            pages.append([])
        (pages[-1] if pages else header).append(line)
    return header, pages


def write_days(source: Path, out: Path, days: float) -> tuple[int, int]:
    """Write ``days`` days of ``source``'s pages repeated (new sequence numbers and page times); returns (pages,
    samples): a page's last line holds its samples, 12 hexadecimal digits each."""
    header, pages = pages_of(source)
    newline = header[0][len(header[0].rstrip(b"\r\n")):] or b"\n"
    pages = [[line if line.endswith(b"\n") else line + newline for line in page] for page in pages]  # the file's
    # last line has no line end; repeated, it needs one
    n = int(days * 86400 / PAGE_S)
    per_page = [len(page[-1].rstrip()) // 12 for page in pages]
    samples = sum(per_page[i % len(pages)] for i in range(n))
    start = datetime(2026, 1, 5, 0, 0, 0)
    header = [re.sub(rb"Number of Pages:\d+", f"Number of Pages:{n}".encode(), h) for h in header]
    with out.open("wb") as f:
        f.writelines(header)
        for i in range(n):
            when = start + timedelta(seconds=i * PAGE_S)
            stamp = f"{when.strftime(TIME_FORMAT)}:{when.microsecond // 1000:03d}"
            for line in pages[i % len(pages)]:
                end = line[len(line.rstrip(b"\r\n")):]
                if line.startswith(b"Sequence Number:"):
                    line = f"Sequence Number:{i}".encode() + end
                elif line.startswith(b"Page Time:"):
                    line = f"Page Time:{stamp}".encode() + end
                f.write(line)
    return n, samples


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", default="1,7", help="comma-separated lengths in days")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workdir", default=None, help="keep the run here (and reuse one trained there before)")
    p.add_argument("--whole", action="store_true", help="read each file whole (no slices), for comparison")
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args(argv)
    data_dir = Path(os.environ.get("HARVIT_DATA_DIR", "data"))
    source = data_dir / SOURCE
    if not source.is_file():
        raise SystemExit(f"{SOURCE} not found under HARVIT_DATA_DIR={data_dir}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="harvit-device-week-") as tmp:
        folder = Path(args.workdir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        run = folder / "runs" / "week"
        if not (run / "best.pt").is_file():
            run = train_run(folder, data_dir, 1, args.threads)
        for days in (float(d) for d in args.days.split(",")):
            path = Path(tmp) / f"geneactiv_{days:g}d.bin"
            t0 = time.perf_counter()
            pages, samples = write_days(source, path, days)
            size = path.stat().st_size
            print(f"wrote {path.name}: {pages:,} pages ({samples:,} samples), {size / 1e6:.0f} MB in "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
            whole = "import harvit.data.devices as d; d.SLICE_BYTES = 1 << 50; " if args.whole else ""
            code = (whole + "import resource, sys; from harvit.cli import main; rc = main(sys.argv[1:]); "
                    "print('PEAK_KIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); "
                    "raise SystemExit(rc)")
            cmd = [sys.executable, "-c", code, "predict", str(run), "--recording", str(path), "--output-dir",
                   str(Path(tmp) / f"out_{days:g}d"), "--device", "cpu", "--threads", str(args.threads)]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            wall = time.perf_counter() - t0
            path.unlink()
            if proc.returncode != 0:
                print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
                return proc.returncode
            peak = [int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("PEAK_KIB")][-1]
            rows.append({"days": days, "pages": pages, "samples": samples, "file_mb": round(size / 1e6, 1),
                         "wall_s": round(wall, 1), "peak_rss_gb": round(peak / 2**20, 3),
                         "read": "whole" if args.whole else "in slices"})
            print(f"{days:g} days: predict {wall:.1f} s wall, peak RSS {peak / 2**20:.2f} GB", flush=True)
    results = {"machine": machine_info(), "threads": args.threads, "rows": rows}
    print(describe_machine(results["machine"]))
    if args.json:
        write_json(args.json, results)
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
