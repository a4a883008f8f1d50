"""First-run benchmark (issue 20): the README's first command, timed end to end and per step, cold then warm.

Runs ``harvit train --preset cpu --dataset hapt6`` (plus any extra flags given after ``--``) twice in
fresh processes with a fresh ``HARVIT_CACHE_DIR``: the first run pays every cache (prepared windows,
side features, baselines), the second finds them. Each step's time is read from the log's own lines
(every line is timestamped as it arrives), and the run's ``done in ... s wall`` line and
``training_results.json`` give the totals. Goals (issue 20, 2 quiet cores): cold <= 180 s, warm <= 120 s.
The JSON and the printout name the machine (CPU model and flags, cores, library versions, BLAS, the
instruction-set caps set) and the kernel each probe chose in the runs (read from their logs).

    HARVIT_DATA_DIR=../shared/data PYTHONPATH=src python benchmarks/first_run.py [--threads 2] [--json first_run.json]
    HARVIT_DATA_DIR=../shared/data PYTHONPATH=src python benchmarks/first_run.py -- --no-baselines --epochs 2

Measure on a quiet machine: the step times are wall-clock.
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
from pathlib import Path

from harvit.utils.machine import describe_machine, kernels_from_log, machine_info

#: (step name, regex of the line that ends it), in the order a run logs them.
STEPS: list[tuple[str, str]] = [
    ("start and data", r"^features: window statistics of \d+ windows \.\.\.$"),
    ("statistics", r"^features: window statistics of \d+ windows in"),
    ("convolution features", r"^features: convolution features .* in [\d.]+ s"),
    ("model", r"^model: "),
    ("epochs", r"^epoch \d+/\d+:"),
    ("refit epochs", r"^refit epoch \d+/\d+:"),
    ("test", r"^test: accuracy"),
    ("baseline", r"^baseline: done in "),
    ("report", r"^report: "),
    ("done", r"^done in "),
]


def step_times(lines: list[tuple[float, str]]) -> dict[str, float]:
    """Seconds per step from timestamped log lines [(seconds since start, text)]: each step runs from the
    previous step's last line to its own last line; steps that log several lines (features of every split,
    epochs) sum their stretches."""
    out: dict[str, float] = {}
    last = 0.0
    for t, text in lines:
        for name, pattern in STEPS:
            if re.search(pattern, text):
                out[name] = round(out.get(name, 0.0) + t - last, 1)
                last = t
                break
    return out


def run_once(cmd: list[str], env: dict[str, str]) -> dict:
    """One run: wall seconds, per-step seconds, the done line and the test accuracy."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[tuple[float, str]] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append((time.perf_counter() - t0, line.rstrip("\n")))
        print(f"  {lines[-1][0]:7.1f} s | {lines[-1][1]}", flush=True)
    rc = proc.wait()
    wall = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit(f"first_run: the run failed (exit {rc})")
    done = next((text for _, text in reversed(lines) if text.startswith("done in ")), "")
    acc = next((float(m.group(1)) for _, text in lines if (m := re.search(r"^test: accuracy ([\d.]+)", text))), None)
    return {"wall_s": round(wall, 1), "steps_s": step_times(lines), "done_line": done, "test_accuracy": acc,
            "kernels": kernels_from_log(text for _, text in lines)}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2, help="--threads of the runs (default 2: the issue's 2 cores)")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--keep", default=None, help="folder for the cache and the runs (default: a temporary one)")
    args = p.parse_args(own)
    if not os.environ.get("HARVIT_DATA_DIR"):
        raise SystemExit("first_run: set HARVIT_DATA_DIR to the folder holding hapt/")
    with tempfile.TemporaryDirectory(prefix="harvit-first-run-") as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "HARVIT_CACHE_DIR": str(folder / "cache"), "PYTHONUNBUFFERED": "1"}
        results = {"command": "harvit train --preset cpu --dataset hapt6 " + " ".join(extra), "threads": args.threads,
                   "load_before": os.getloadavg()[0]}
        print(f"machine: {describe_machine(machine_info())}", flush=True)
        for name in ("cold", "warm"):
            cmd = [sys.executable, "-m", "harvit", "train", "--preset", "cpu", "--dataset", "hapt6", "--threads",
                   str(args.threads), "--no-progress", "--output-dir", str(folder / "runs"), "--run-name", name, *extra]
            print(f"{name} run: {' '.join(cmd[1:])}", flush=True)
            results[name] = run_once(cmd, env)
            print(f"{name}: {results[name]['wall_s']} s wall, steps {results[name]['steps_s']}", flush=True)
        results["load_after"] = os.getloadavg()[0]
    results["machine"] = machine_info(kernels={**results["cold"]["kernels"], **results["warm"]["kernels"]})
    print(json.dumps(results, indent=2))
    print(f"machine: {describe_machine(results['machine'])}")
    if args.json:
        from harvit.utils.atomic import write_json

        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
