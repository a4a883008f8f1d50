"""The prepared GPU check (benchmarks/gpu_check.py, issue 16) cannot rot while no GPU is at hand.

Its ``--dry-run`` runs every stage on the CPU with tiny sizes on the real HAPT data (about a minute
on 2 cores); these tests check that it writes a summary with every stage, a status and numbers, that
a stage running past its time box is recorded as timed out, and that bad arguments exit 2.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
STAGES = ("env", "pytest", "throughput", "reference", "unfrozen", "ddp")


def gpu_check(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    path = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path, "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module
    spec.loader.exec_module(module)
    return module


def test_dry_run_writes_every_stage_with_status_and_numbers(shared_data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    # About a minute of CPU; the generous budget and limit only matter on a heavily shared machine.
    proc = gpu_check("--data", str(shared_data_dir), "--out", str(out), "--dry-run", "--budget-s", "900",
                     timeout=1000)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dry_run"] is True
    assert list(summary["stages"]) == list(STAGES)
    for key, rec in summary["stages"].items():
        assert rec["status"] in ("ok", "skipped"), (key, rec)
        assert isinstance(rec["seconds"], float) and "goals" in rec, (key, rec)
    st = {k: v["numbers"] for k, v in summary["stages"].items()}
    assert st["env"]["matmul_tflops"] > 0 and st["env"]["host_copy_gb_s"] > 0 and st["env"]["torch"]
    assert st["pytest"]["tests"] >= 6 and st["pytest"]["failed"] == 0 and st["pytest"]["errors"] == 0
    rows = [r for r in st["throughput"]["rows"] if r.get("img_per_s")]
    assert {(r["compile"], r["fused_attn"]) for r in rows} == {(False, True), (False, False), (True, True),
                                                               (True, False)}
    assert st["throughput"]["flops_per_image"] > 0 and st["throughput"]["best"]["mfu"] > 0
    assert st["throughput"]["profile"]["top"]  # the profiler path runs in every dry run
    for key in ("reference", "unfrozen"):
        n = st[key]
        assert n["wall_s"] > 0 and n["total_time_s"] > 0 and n["epochs_run"] >= 1, n
        assert all(n["phases"][p] is not None for p in ("startup_s", "data_and_model_s", "epochs_s", "test_s",
                                                        "report_s")), n["phases"]
    assert st["reference"]["feature_images"] > 0 and st["reference"]["feature_img_per_s"] > 0
    assert st["unfrozen"]["train_img_per_s"] > 0
    ddp = summary["stages"]["ddp"]
    assert ddp["status"] == "ok", ddp  # harvit trains under torchrun: the stage runs in the dry run too
    assert st["ddp"]["wall_s"] > 0 and st["ddp"]["epochs_run"] >= 1, st["ddp"]
    md = (out / "summary.md").read_text()
    assert all(rec["title"] in md for rec in summary["stages"].values())
    assert "# harvit GPU check: DRY RUN" in proc.stdout  # the markdown summary is printed at the end
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_stage_past_its_time_box_is_recorded_as_timed_out(shared_data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = gpu_check("--data", str(shared_data_dir), "--out", str(out), "--dry-run", "--stages", "env",
                     "--stage-timeout-s", "0.2", timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rec = json.loads((out / "summary.json").read_text())["stages"]["env"]
    assert rec["status"] == "timed_out" and rec["timeout_s"] == 0.2
    assert "timed_out" in (out / "summary.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["--budget-s", "-1"], "--budget-s"),
    (["--stages", "env,warp"], "--stages: unknown stage(s) warp"),
    (["--frobnicate"], "unrecognized arguments"),
])
def test_bad_arguments_exit_2_with_one_line(shared_data_dir: Path, tmp_path: Path, args: list[str],
                                            message: str) -> None:
    proc = gpu_check("--data", str(shared_data_dir), "--out", str(tmp_path / "o"), *args, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("gpu_check: error:") and message in proc.stderr


def test_data_defaults_to_harvit_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gc = load_script()
    (tmp_path / gc.HAPT_ZIP).parent.mkdir(parents=True)
    (tmp_path / gc.HAPT_ZIP).write_bytes(b"")
    monkeypatch.setenv("HARVIT_DATA_DIR", str(tmp_path))
    data, out, _ = gc.check_args(gc.build_parser().parse_args(["--out", str(tmp_path / "o")]))
    assert data == tmp_path.resolve()
    monkeypatch.setenv("HARVIT_DATA_DIR", str(tmp_path / "elsewhere"))  # --data wins over the variable
    assert gc.check_args(gc.build_parser().parse_args(["--data", str(tmp_path), "--out", "o"]))[0] == data


def test_no_data_and_no_harvit_data_dir_exits_2(tmp_path: Path) -> None:
    env_less = {k: v for k, v in os.environ.items() if k != "HARVIT_DATA_DIR"}
    path = os.pathsep.join(p for p in (str(ROOT / "src"), env_less.get("PYTHONPATH", "")) if p)
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "o"), "--dry-run"], cwd=ROOT,
                          env={**env_less, "PYTHONPATH": path}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "HARVIT_DATA_DIR is not set" in proc.stderr


def test_missing_data_exits_2(tmp_path: Path) -> None:
    proc = gpu_check("--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"), "--dry-run", timeout=60)
    assert proc.returncode == 2 and "--data:" in proc.stderr and "Traceback" not in proc.stderr


def test_time_boxes_keep_the_later_stages_shares() -> None:
    gc = load_script()
    stages = list(gc.STAGES)
    first = gc.time_box(stages[0], stages[1:], 100.0, 0.0, None)
    assert first == pytest.approx(100.0 * stages[0].share)
    # a fast first stage leaves its unused time to the next; a late start never eats the later shares
    second = gc.time_box(stages[1], stages[2:], 100.0, 1.0, None)
    assert second == pytest.approx(100.0 - 1.0 - 100.0 * sum(s.share for s in stages[2:]))
    assert gc.time_box(stages[1], stages[2:], 100.0, 99.0, None) == 5.0  # the floor
    assert gc.time_box(stages[1], stages[2:], 100.0, 0.0, 0.5) == 0.5  # the override


def test_phases_and_feature_rate_from_harvit_log_lines(tmp_path: Path) -> None:
    """The reference run's split, read from the lines a CUDA run prints (9 views of 768 features)."""
    gc = load_script()
    lines = [(2.0, "preset: pix2seq"), (9.0, "run: r | preset pix2seq | device cuda | hapt6: ..."),
             (9.0, "feature cache: on (frozen encoder, no augmentation): the encoder runs once per view"),
             (30.0, "feature cache: train (5836, 9, 768) computed (a.npy)"),
             (35.0, "feature cache: val (1579, 9, 768) computed (b.npy)"),
             (44.0, "feature cache: test (2996, 9, 768) computed (c.npy)"),
             (45.0, "epoch 1/2: train loss 1.0 ..."), (46.5, "epoch 2/2: train loss 0.9 ..."),
             (48.0, "test: accuracy 0.5000, macro-F1 0.4 ..."), (55.0, "report: r/report.md")]
    proc = gc.ProcResult("cmd", 0, False, 56.0, lines)
    ph = gc.phase_split(proc)
    assert ph == {"startup_s": 2.0, "data_and_model_s": 7.0, "feature_pass_s": 35.0, "epochs_s": 2.5,
                  "test_s": 1.5, "report_s": 7.0, "exit_s": 1.0}
    assert gc.feature_images(proc) == ((5836 + 1579 + 2996) * 9, True)
    numbers = gc.run_numbers(proc, tmp_path / "absent-run")  # a run killed before its results: no crash
    assert numbers["feature_img_per_s"] == round(10411 * 9 / 35.0, 1) and numbers["total_time_s"] is None
