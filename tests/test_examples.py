"""Every ``examples/*.sh`` executed for real at tiny scale on real hapt6, and the README quickstart's ``predict``.

Each script runs with bash as a user runs it, with ``TRAIN_ARGS`` (the scripts' knob for extra ``harvit train``
flags) set to a tiny model, small images, one epoch and every second training window left out, so a script
takes seconds to a minute. Scripts that want a CUDA GPU run their CPU path without one (``DEVICE=cpu`` for 02
and 07, 2 gloo processes for 10) and say so in the output. Examples 08 and 09 read example 01's run folder.
All scripts share one windows cache, so hapt6 and hapt12 are prepared once.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("[0-9][0-9]_*.sh"))
TINY = ("--train-stride 128 --img-size 8 --patch-size 4 --depth 1 --embed-dim 16 --num-heads 2 --hidden-dims 16 "
        "--rocket-features 84 --encoder vit_tiny_patch16_224 --no-pretrained --no-refit --no-baselines "
        "--no-tensorboard --no-progress")
LIMIT_S = 900  # one script at tiny scale; a hang fails the test instead of stalling CI


@pytest.fixture(scope="module")
def example_env(shared_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("examples")
    bin_dir = str(Path(sys.executable).parent)  # harvit and torchrun of this environment first
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
            "HARVIT_DATA_DIR": str(shared_data_dir), "HARVIT_CACHE_DIR": str(root / "cache"),
            "HARVIT_OFFLINE": "1", "MPLBACKEND": "Agg", "OUT": str(root / "runs"),
            "TRAIN_ARGS": f"--epochs 1 {TINY}", "DEVICE": "cuda" if torch.cuda.is_available() else "cpu",
            "BASELINE_ARGS": "--models logreg --no-refit", "EPOCHS": "1", "STAGE2_EPOCHS": "1", "STOP_AFTER": "1",
            "OMP_NUM_THREADS": "1"}


_done: dict[str, subprocess.CompletedProcess] = {}


def _children_cpu_s() -> float:
    """CPU seconds (user + system) of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_example(name: str, env: dict[str, str], **extra: str) -> subprocess.CompletedProcess:
    """Run ``examples/<name>`` once per session (later calls return the first result); prints its time."""
    if name not in _done:
        start, cpu = time.perf_counter(), _children_cpu_s()
        done = subprocess.run(["bash", str(EXAMPLES / name)], cwd=Path(env["OUT"]).parent, env={**env, **extra},
                              capture_output=True, text=True, timeout=LIMIT_S)
        _done[name] = done
        print(f"\n{name}: exit {done.returncode} in {time.perf_counter() - start:.0f} s wall, "
              f"{_children_cpu_s() - cpu:.0f} s CPU", file=sys.__stdout__)
    done = _done[name]
    assert done.returncode == 0, f"{name} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def results(env: dict[str, str], run: str) -> dict:
    return json.loads((Path(env["OUT"]) / run / "training_results.json").read_text())


def test_the_examples_are_the_ten_scripts():
    assert [s[:2] for s in SCRIPTS] == [f"{k:02d}" for k in range(1, 11)]
    for name in SCRIPTS:  # every script that trains passes TRAIN_ARGS to each of its train commands
        text = (EXAMPLES / name).read_text()
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        trains = len(re.findall(r"harvit train\b", code))
        assert text.count('"${TRAIN_ARGS[@]}"') == trains, name


def test_01_quickstart(example_env):
    out = run_example("01_quickstart_cpu.sh", example_env).stdout
    r = results(example_env, "quickstart_cpu")
    assert r["dataset"] == "hapt6" and len(r["classes"]) == 6 and r["epochs_run"] == 1
    assert r["test_accuracy"] > 0.5  # 6 classes: chance is 1/6; one tiny epoch already separates most
    assert "7415 train" in out or "7415" in out  # data info printed hapt6's training windows


def test_02_gpu_reference_runs_its_path(example_env):
    if example_env["DEVICE"] == "cpu":
        print("\n02: no CUDA device: the pix2seq path (frozen encoder, feature cache) runs with DEVICE=cpu",
              file=sys.__stdout__)
    run_example("02_gpu_reference_pix2seq.sh", example_env)
    r = results(example_env, "pix2seq_hapt6")
    cfg = json.loads((Path(example_env["OUT"]) / "pix2seq_hapt6" / "config.json").read_text())
    assert cfg["freeze_encoder"] is True and cfg["mode"] == "flatten" and cfg["feature_cache"] is True
    assert r["test_accuracy"] > 1 / 6


def test_03_hapt12(example_env):
    run_example("03_hapt12_transitions.sh", example_env)
    r = results(example_env, "hapt12_cpu")
    assert len(r["classes"]) == 12 and r["test_accuracy"] > 1 / 12
    assert (Path(example_env["OUT"]) / "hapt12_cpu" / "report.md").is_file()


def test_04_sensor_mode(example_env):
    run_example("04_sensor_mode_encodings.sh", example_env)
    cfg = json.loads((Path(example_env["OUT"]) / "sensor_5enc" / "config.json").read_text())
    assert cfg["mode"] == "sensor" and cfg["encodings"] == "gasf,gadf,mtf,rp,spec"
    assert results(example_env, "sensor_5enc")["test_accuracy"] > 1 / 6


def test_05_scaling_ablation_prints_both(example_env):
    out = run_example("05_scaling_ablation.sh", example_env).stdout
    printed = dict(re.findall(r"--scaling (\w+)\s*: test accuracy ([0-9.]+)", out))
    assert set(printed) == {"global", "window"}
    for scaling, acc in printed.items():
        assert float(acc) == pytest.approx(results(example_env, f"scaling_{scaling}")["test_accuracy"], abs=1e-4)


def test_06_interrupt_then_resume(example_env):
    # four tiny epochs (no --epochs 1) of small batches (~900 steps each, seconds on any machine), so the SIGINT
    # one second into training lands mid-run
    out = run_example("06_resume_after_interrupt.sh", example_env, TRAIN_ARGS=TINY + " --batch-size 4").stdout
    assert "Resuming:" in out and "interrupted (exit 130)" in out
    r = results(example_env, "resume_demo")
    assert r["epochs_run"] == 4
    lines = (Path(example_env["OUT"]) / "resume_demo" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4]


def test_07_two_stage_finetune(example_env):
    if example_env["DEVICE"] == "cpu":
        print("\n07: no CUDA device: both stages run with DEVICE=cpu", file=sys.__stdout__)
    out = run_example("07_two_stage_finetune.sh", example_env).stdout
    assert "ft_stage1: test accuracy" in out and "ft_stage2: test accuracy" in out
    cfg2 = json.loads((Path(example_env["OUT"]) / "ft_stage2" / "config.json").read_text())
    assert cfg2["freeze_encoder"] is False and cfg2["init_from"].endswith("ft_stage1")


def test_08_evaluate_report_baseline(example_env):
    run_example("01_quickstart_cpu.sh", example_env)
    run_example("08_evaluate_report_baseline.sh", example_env)
    run = Path(example_env["OUT"]) / "quickstart_cpu"
    test = json.loads((run / "evaluation_test.json").read_text())
    assert test["accuracy"] == pytest.approx(results(example_env, "quickstart_cpu")["test_accuracy"], abs=1e-6)
    assert json.loads((run / "evaluation_val.json").read_text())["accuracy"] > 0.5
    baseline = json.loads((Path(example_env["OUT"]) / "baseline_hapt6.json").read_text())
    assert set(baseline["models"]) == {"logreg"} and baseline["models"]["logreg"]["test_accuracy"] > 0.8
    assert (run / "report.md").is_file()


def test_09_predict_and_export(example_env):
    run_example("01_quickstart_cpu.sh", example_env)
    out = run_example("09_predict_and_export.sh", example_env).stdout
    agree = re.search(r"onnxruntime: (\d+) windows, ([0-9.]+)% the same label", out)
    assert agree, out[-2000:]
    assert int(agree.group(1)) > 50 and float(agree.group(2)) >= 99.0
    pred = pd.read_csv(Path(example_env["OUT"]) / "predict" / "exp03_user02.csv")
    assert len(pred) == int(agree.group(1))


def test_10_ddp(example_env):
    if not torch.cuda.is_available():
        print("\n10: no CUDA device: 2 processes on the CPU (gloo)", file=sys.__stdout__)
    run_example("10_multi_gpu_ddp.sh", example_env)
    runs = sorted(Path(example_env["OUT"]).glob("ddp_*"))
    assert len(runs) == 1
    assert results(example_env, runs[0].name)["world_size"] == (torch.cuda.device_count() or 2)


# ---- the README quickstart's predict on a table ----------------------------------------------------------
def walking_table(path: Path, rate: float = 25.0) -> Path:
    """Three subjects, two activities with different frequencies and offsets: ``subject, time, activity,
    acc_x, acc_y, acc_z`` at ``rate`` Hz, 40 s per subject."""
    rng = np.random.default_rng(1)
    frames = []
    for subject in (1, 2, 3):
        parts = []
        for k, name in enumerate(["sitting", "walking", "sitting", "walking"]):
            t = np.arange(int(10 * rate)) / rate
            move = np.sin(2 * np.pi * (0.5 + 1.5 * (name == "walking")) * t + rng.uniform(0, 6))
            x = move[:, None] * np.array([1.0, 0.6, 0.3]) + 0.5 * (name == "walking") + rng.normal(0, 0.1, (len(t), 3))
            parts.append(pd.DataFrame({"subject": subject, "time": t + 10 * k, "activity": name,
                                       "acc_x": x[:, 0], "acc_y": x[:, 1], "acc_z": x[:, 2]}))
        frames.extend(parts)
    pd.concat(frames, ignore_index=True).to_csv(path, index=False)
    return path


def test_readme_quickstart_predict_on_a_table(tmp_path: Path):
    """``harvit train --dataset TABLE`` then ``harvit predict RUN --table TABLE`` as commands, as a user types them."""
    table = walking_table(tmp_path / "walk.csv")
    env = {**os.environ, "HARVIT_CACHE_DIR": str(tmp_path / "cache"), "MPLBACKEND": "Agg", "HARVIT_OFFLINE": "1"}
    harvit = [sys.executable, "-m", "harvit"]
    train = subprocess.run([*harvit, "train", "--preset", "cpu", "--dataset", str(table), "--test-subjects", "3",
                            "--window-s", "2", *shlex.split(TINY), "--train-stride", "0", "--epochs", "6",
                            "--batch-size", "16", "--lr", "3e-3", "--device", "cpu",
                            "--output-dir", str(tmp_path / "runs"), "--run-name", "walk"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=LIMIT_S)
    assert train.returncode == 0, train.stderr[-3000:]
    run = tmp_path / "runs" / "walk"
    out = tmp_path / "pred.csv"
    pred = subprocess.run([*harvit, "predict", str(run), "--table", str(table), "--out", str(out), "--device", "cpu"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=LIMIT_S)
    assert pred.returncode == 0, pred.stderr[-3000:]
    assert "predictions:" in pred.stdout and "timeline:" in pred.stdout
    frame = pd.read_csv(out)
    assert set(frame["activity"]) <= {"sitting", "walking"} and len(frame) > 50
    agree = float(np.mean(frame["activity"] == frame["true_label"]))
    assert agree > 0.8, f"two well separated activities: agreement {agree:.2f}"
    assert (tmp_path / "pred_timeline.png").stat().st_size > 1000
