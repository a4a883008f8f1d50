"""DDP on the CPU: the same short run with 1 process and with N processes under torchrun (gloo).

Runs ``harvit train`` (``--preset cpu``, one torch thread per process, ``--deterministic``) once as a
plain process and once as ``torchrun --standalone --nproc_per_node=N``, one after the other, and prints
wall time, training time and samples/s of each, and the ratios. The global batch is the same in both.

    HARVIT_DATA_DIR=../shared/data python benchmarks/ddp_cpu.py --dataset hapt6 --epochs 1 --nproc 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harvit.utils.machine import describe_machine, machine_info


def train(out: Path, name: str, nproc: int, flags: list[str]) -> dict:
    cmd = [sys.executable, "-m", "harvit", "train", *flags, "--output-dir", str(out), "--run-name", name]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *cmd[1:]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    res = json.loads((out / name / "training_results.json").read_text())
    history = [json.loads(s) for s in (out / name / "metrics.jsonl").read_text().splitlines()]
    return {"processes": nproc, "wall_s": round(wall, 1), "train_time_s": res["train_time_s"],
            "last_epoch_train_s": history[-1]["train_time_s"], "samples_per_s": res["samples_per_s"],
            "test_accuracy": res["test_accuracy"], "machine": machine_info()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="hapt6")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--train-stride", default="0", help="0: the data set's own (64 for HAPT)")
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    flags = ["--preset", "cpu", "--dataset", a.dataset, "--epochs", str(a.epochs), "--device", "cpu", "--threads",
             "1", "--deterministic", "--no-progress", "--no-tensorboard", "--train-stride", a.train_stride]
    with tempfile.TemporaryDirectory() as tmp:
        rows = [train(Path(tmp), "one", 1, flags), train(Path(tmp), "many", a.nproc, flags)]
    one, many = rows
    print("| processes | wall s | training s (all epochs) | last epoch training s | samples/s | test accuracy |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['processes']} | {r['wall_s']} | {r['train_time_s']} | {r['last_epoch_train_s']} | "
              f"{r['samples_per_s']} | {r['test_accuracy']:.4f} |")
    print(f"speed-up of training: {one['train_time_s'] / many['train_time_s']:.2f}x; "
          f"of the whole command: {one['wall_s'] / many['wall_s']:.2f}x")
    print(f"machine: {describe_machine()}")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
