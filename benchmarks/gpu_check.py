"""One prepared GPU check: the environment, the CUDA tests, the encoder's throughput and the reference runs.

Run it first whenever a GPU is at hand (issue 16); ``--data`` defaults to ``$HARVIT_DATA_DIR``. It installs
nothing, runs from the source tree, and time-boxes every stage in its own process, so one slow or hanging
stage cannot eat the others: a stage that fails or runs past its box is recorded and the next one runs.

    PYTHONPATH=src python3 benchmarks/gpu_check.py --data gpu_data --out gpu_out            # on a GPU
    PYTHONPATH=src python3 benchmarks/gpu_check.py --data ../shared/data --out /tmp/gc --dry-run  # CPU, tiny

Stages:
1. ``env``: GPU name and memory, versions, a measured bf16 matmul rate (the MFU denominator), and
   host-to-device and device-to-device copy bandwidth.
2. ``pytest``: ``pytest -m gpu`` (the CUDA tests; skipped without CUDA).
3. ``throughput``: frozen ``vit_base_patch8_224`` forward at 224 px in bf16 with random weights:
   images/s over batch sizes, eager and compiled, fused attention on and off, peak memory, MFU; a
   profiler table of one batch when the best rate is under 2500 images/s.
4. ``reference``: ``harvit train --preset vit-b8-frozen --dataset hapt6`` for 20 epochs with random
   weights and the feature cache, its wall time split into phases.
5. ``unfrozen``: the same with the encoder trained (``--no-freeze-encoder --compile``): images/s of a
   real training step.
6. ``ddp``: ``torchrun --nproc_per_node=1`` of a short run, once ``harvit train --help`` mentions it.

``summary.json`` and ``summary.md`` are rewritten under ``--out`` after every stage (atomically), with
each stage's log under ``--out/logs``; the markdown summary is printed at the end. ``--dry-run`` runs
every stage on the CPU with tiny sizes (about a minute on 2 cores), so the script cannot rot.
Exit code: 0 when every stage ran (ok or skipped), 1 when one failed or timed out, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parents[1]
HAPT_ZIP = Path("hapt") / "HAPT_Data_Set_RawData_and_labels.zip"
RANDOM_WEIGHTS_NOTE = ("random weights (--no-pretrained; no ImageNet weights offline): time is what is measured "
                       "here, not accuracy")
#: Goals of issue 16.
GOAL_IMG_S = 3000.0
PROFILE_BELOW_IMG_S = 2500.0
GOAL_REFERENCE_S = 60.0


# ---------------------------------------------------------------------------------------------
# Settings of a GPU run and of a dry run
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """What each stage runs: the real sizes on a GPU, tiny ones on the CPU with ``--dry-run``."""

    device: str
    encoder: str
    img_size: int
    batches: tuple[int, ...]
    compile_backend: str
    reference_args: tuple[str, ...]
    unfrozen_args: tuple[str, ...]
    ddp_args: tuple[str, ...]
    matmul_n: int
    copy_mib: int
    measure_s: float  # timed seconds per throughput point
    compile_all_batches: bool  # compile at every batch size (else at the best eager one only)


COMMON_TRAIN = ("--dataset", "hapt6", "--early-stopping-patience", "0", "--no-progress")
#: The dry run's train flags: the fewest real windows the CLI allows (training windows cut every 512 samples; the
#: test split keeps its 2996), 16 px images, one thread.
DRY_TRAIN = (*COMMON_TRAIN, "--device", "cpu", "--threads", "1", "--img-size", "16", "--train-stride", "512")
GPU_PLAN = Plan(
    device="cuda", encoder="vit_base_patch8_224", img_size=224, batches=(64, 128, 256, 512),
    compile_backend="inductor",
    reference_args=("--preset", "vit-b8-frozen", "--no-pretrained", "--epochs", "20", "--device", "cuda",
                    *COMMON_TRAIN),
    # 2 epochs over a quarter-density training set: epoch 1 includes compilation, epoch 2 is the steady rate,
    # and both together cost less than one epoch over the full training set.
    unfrozen_args=("--preset", "vit-b8-frozen", "--no-pretrained", "--no-freeze-encoder", "--compile", "--amp-dtype",
                   "bf16", "--epochs", "2", "--train-stride", "512", "--device", "cuda", *COMMON_TRAIN),
    ddp_args=("--preset", "vit-b8-frozen", "--no-pretrained", "--epochs", "2", "--device", "cuda", *COMMON_TRAIN),
    matmul_n=8192, copy_mib=512, measure_s=1.0, compile_all_batches=True,
)
DRY_PLAN = Plan(
    device="cpu", encoder="vit_tiny_patch16_224", img_size=16, batches=(4, 16), compile_backend="eager",
    reference_args=("--preset", "cpu", "--freeze-encoder", "--epochs", "1", *DRY_TRAIN),
    unfrozen_args=("--preset", "cpu", "--no-freeze-encoder", "--epochs", "2", *DRY_TRAIN),
    ddp_args=("--preset", "cpu", "--epochs", "1", *DRY_TRAIN),
    matmul_n=1024, copy_mib=64, measure_s=0.1, compile_all_batches=False,
)


# ---------------------------------------------------------------------------------------------
# Small helpers: atomic writes, child processes with a time box
# ---------------------------------------------------------------------------------------------
def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file in ``path``'s folder, then ``os.replace`` it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json(path: Path, data: Any) -> None:
    """Atomic JSON write (indented, plain values)."""
    write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def read_json(path: Path) -> Any:
    """The JSON at ``path``, or None when absent or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@dataclass
class ProcResult:
    """A finished (or stopped) child process: exit code, whether it ran out of time, its timed lines."""

    command: str
    returncode: int | None
    timed_out: bool
    seconds: float
    lines: list[tuple[float, str]] = field(default_factory=list)

    def first(self, prefix: str) -> float | None:
        """Seconds from start to the first output line starting with ``prefix``."""
        return next((t for t, line in self.lines if line.startswith(prefix)), None)

    def last(self, pattern: str) -> float | None:
        """Seconds from start to the last output line matching the regex ``pattern``."""
        hits = [t for t, line in self.lines if re.match(pattern, line)]
        return hits[-1] if hits else None

    def tail(self, n: int = 5) -> str:
        return "\n".join(line for _, line in self.lines[-n:])


def stop_process_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the child's own process group (it lets harvit save its place), SIGKILL after 10 s."""
    for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def run_process(cmd: list[str], env: dict[str, str], timeout_s: float, log_path: Path) -> ProcResult:
    """Run ``cmd`` in its own session with a wall-clock limit; every output line is logged with its time."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    result = ProcResult(shlex.join(cmd), None, False, 0.0)
    t0 = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=ROOT, text=True, errors="replace", start_new_session=True)

        def pump() -> None:
            assert proc.stdout is not None
            with contextlib.suppress(ValueError, OSError):  # the log closed under a straggler's last lines
                for line in proc.stdout:
                    t = time.perf_counter() - t0
                    result.lines.append((t, line.rstrip("\n")))
                    log.write(f"[{t:8.2f}] {line}")
                    log.flush()

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            result.returncode = proc.wait(timeout=max(0.01, timeout_s))
        except subprocess.TimeoutExpired:
            result.timed_out = True
            stop_process_group(proc)
            result.returncode = proc.returncode
        reader.join(timeout=5.0)
        if reader.is_alive():  # a descendant of the child (a compile worker, say) still holds the output open
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # the session started for this child only
            reader.join(timeout=2.0)
        result.seconds = time.perf_counter() - t0
        log.write(f"[{result.seconds:8.2f}] exit {result.returncode}{' (timed out)' if result.timed_out else ''}\n")
    return result


def status_of(proc: ProcResult) -> str:
    if proc.timed_out:
        return "timed_out"
    return "ok" if proc.returncode == 0 else "failed"


def goal(name: str, target: str | None, value: float | None, unit: str, met: bool | None) -> dict[str, Any]:
    """One goal's line: what is wanted (None: a figure only), the figure measured, and whether it was met."""
    return {"name": name, "target": target, "value": value, "unit": unit, "met": met}


def rounded(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(x, nd)


# ---------------------------------------------------------------------------------------------
# The stage context: paths, environment, results so far
# ---------------------------------------------------------------------------------------------
@dataclass
class Context:
    """Everything a stage needs: the arguments, the plan and the results of the stages before it."""

    data: Path
    out: Path
    dry_run: bool
    plan: Plan
    python: str
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def cache(self) -> Path:
        return self.out / "cache"

    def env(self, **extra: str) -> dict[str, str]:
        """The children's environment: the source tree first on PYTHONPATH, the data and an own cache, offline."""
        path = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p)
        # One thread on the CPU: a dry run shares small machines, where spinning threads slow everything down.
        threads = {"OMP_NUM_THREADS": "1"} if self.dry_run else {}
        return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", "HARVIT_DATA_DIR": str(self.data),
                "HARVIT_CACHE_DIR": str(self.cache), "HARVIT_OFFLINE": "1", "MPLBACKEND": "Agg", **threads, **extra}

    def log(self, stage: str) -> Path:
        return self.out / "logs" / f"{stage}.log"

    def number(self, stage: str, key: str) -> Any:
        return self.results.get(stage, {}).get("numbers", {}).get(key)


# ---------------------------------------------------------------------------------------------
# Stages 1 and 3 run this file as a worker process: `--worker env|throughput --result FILE`
# ---------------------------------------------------------------------------------------------
def worker_command(ctx: Context, name: str, result: Path, *extra: str) -> list[str]:
    cmd = [ctx.python, str(Path(__file__).resolve()), "--worker", name, "--result", str(result),
           "--data", str(ctx.data), "--out", str(ctx.out)]
    return cmd + (["--dry-run"] if ctx.dry_run else []) + list(extra)


def stage_env(ctx: Context, timeout_s: float) -> dict[str, Any]:
    result = ctx.out / "env.json"
    result.unlink(missing_ok=True)
    proc = run_process(worker_command(ctx, "env", result), ctx.env(), timeout_s, ctx.log("env"))
    numbers = read_json(result) or {}
    return {"status": status_of(proc), "proc": proc, "numbers": numbers, "goals": [], "notes": []}


def stage_throughput(ctx: Context, timeout_s: float) -> dict[str, Any]:
    result = ctx.out / "throughput.json"
    result.unlink(missing_ok=True)
    peak = ctx.number("env", "matmul_tflops")
    extra = ["--deadline-s", f"{max(1.0, timeout_s - 5):.1f}"] + (["--peak-tflops", str(peak)] if peak else [])
    proc = run_process(worker_command(ctx, "throughput", result, *extra), ctx.env(), timeout_s,
                       ctx.log("throughput"))
    numbers = read_json(result) or {}
    best = numbers.get("best") or {}
    value = best.get("img_per_s")
    goals = [goal(f"frozen {ctx.plan.encoder} forward, {numbers.get('dtype', 'bf16')}", f">= {GOAL_IMG_S:.0f} img/s",
                  value, "img/s", None if value is None else value >= GOAL_IMG_S)]
    notes = ["random weights (timm.create_model(..., pretrained=False)): the rate does not depend on them"]
    if ctx.dry_run:
        notes.append(f"dry run: {ctx.plan.encoder} at {ctx.plan.img_size} px on the CPU (fp32; autocast is "
                     "CUDA-only), compiled with the 'eager' backend, profiler forced; goals do not apply")
    return {"status": status_of(proc), "proc": proc, "numbers": numbers, "goals": goals, "notes": notes}


# ---------------------------------------------------------------------------------------------
# Stage 2: pytest -m gpu
# ---------------------------------------------------------------------------------------------
def junit_counts(path: Path) -> dict[str, Any]:
    """Counts and failing test names from a pytest ``--junitxml`` file."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return {}
    counts = {"tests": 0, "failed": 0, "errors": 0, "skipped": 0}
    failing: list[str] = []
    skip_reasons: set[str] = set()
    for case in root.iter("testcase"):
        counts["tests"] += 1
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        for kind, key in (("failure", "failed"), ("error", "errors"), ("skipped", "skipped")):
            node = case.find(kind)
            if node is not None:
                counts[key] += 1
                if key == "skipped":
                    skip_reasons.add((node.get("message") or "").strip()[:120])
                else:
                    failing.append(name)
    counts["passed"] = counts["tests"] - counts["failed"] - counts["errors"] - counts["skipped"]
    return {**counts, "failing": failing, "skip_reasons": sorted(skip_reasons)}


def stage_pytest(ctx: Context, timeout_s: float) -> dict[str, Any]:
    xml = ctx.out / "pytest_gpu.xml"
    xml.unlink(missing_ok=True)
    cmd = [ctx.python, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "--junitxml", str(xml), "tests"]
    proc = run_process(cmd, ctx.env(), timeout_s, ctx.log("pytest"))
    numbers = junit_counts(xml)
    status = status_of(proc)
    if proc.returncode == 5:  # pytest: nothing collected
        status = "failed"
    passed, bad = numbers.get("passed"), (numbers.get("failed", 0) or 0) + (numbers.get("errors", 0) or 0)
    met = None if ctx.dry_run or not numbers else (bad == 0 and (passed or 0) > 0 and not numbers.get("skipped"))
    goals = [goal("CUDA tests", "all pass, none skipped", passed, "passed", met)]
    notes = ["dry run: no CUDA, so the tests are collected and skipped"] if ctx.dry_run else []
    return {"status": status, "proc": proc, "numbers": numbers, "goals": goals, "notes": notes}


# ---------------------------------------------------------------------------------------------
# Stages 4-6: harvit train runs, read back from the run folder and the timed log lines
# ---------------------------------------------------------------------------------------------
FEATURE_LINE = re.compile(r"feature cache: (\w+) \((\d+), (\d+), (\d+)\) (computed|loaded)")
EPOCH_LINE = r"epoch \d+/\d+:"


def train_command(ctx: Context, args: tuple[str, ...], run_name: str, launcher: list[str] | None = None
                  ) -> list[str]:
    runs = ctx.out / "runs"
    shutil.rmtree(runs / run_name, ignore_errors=True)  # a fresh run folder each time (ours, under --out)
    head = launcher if launcher is not None else [ctx.python, "-m", "harvit"]
    return [*head, "train", *args, "--data-dir", str(ctx.data), "--output-dir", str(runs), "--run-name", run_name]


def phase_split(proc: ProcResult) -> dict[str, float | None]:
    """Wall-time phases from the times of harvit's progress lines (seconds)."""
    t_preset, t_run = proc.first("preset:"), proc.first("run:")
    t_cache0 = proc.first("feature cache: on")
    cache_lines = [t for t, line in proc.lines if FEATURE_LINE.match(line)]
    t_cache1 = cache_lines[-1] if cache_lines else None
    t_epochs = proc.last(EPOCH_LINE)
    t_test, t_report = proc.first("test: accuracy"), proc.first("report:")

    def span(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else round(b - a, 2)

    start_epochs = t_cache1 if t_cache1 is not None else t_run
    return {
        "startup_s": rounded(t_preset),
        "data_and_model_s": span(t_preset, t_run),
        "feature_pass_s": span(t_cache0, t_cache1),
        "epochs_s": span(start_epochs, t_epochs),
        "test_s": span(t_epochs, t_test),
        "report_s": span(t_test, t_report),
        "exit_s": span(t_report, proc.seconds) if t_report is not None and not proc.timed_out else None,
    }


def feature_images(proc: ProcResult) -> tuple[int, bool]:
    """Images the feature pass encoded (sum of N x V over the splits) and whether any split was computed."""
    total, computed = 0, False
    for _, line in proc.lines:
        m = FEATURE_LINE.match(line)
        if m:
            total += int(m.group(2)) * int(m.group(3))
            computed |= m.group(5) == "computed"
    return total, computed


def read_run(run_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    results = read_json(run_dir / "training_results.json") or {}
    metrics: list[dict[str, Any]] = []
    with contextlib.suppress(OSError):
        for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                metrics.append(json.loads(line))
    return results, metrics


def run_numbers(proc: ProcResult, run_dir: Path) -> dict[str, Any]:
    """What every train stage reports: the command's wall time, harvit's own timings, per-epoch figures."""
    results, metrics = read_run(run_dir)
    images, computed = feature_images(proc)
    numbers: dict[str, Any] = {
        "wall_s": round(proc.seconds, 2),
        "total_time_s": results.get("total_time_s"),
        "feature_cache_s": results.get("feature_cache_s"),
        "train_time_s": results.get("train_time_s"),
        "epochs_run": results.get("epochs_run", len(metrics)),
        "epoch_time_s": [m.get("epoch_time_s") for m in metrics],
        "samples_per_s": [m.get("samples_per_s") for m in metrics],
        "micro_batch": [m.get("micro_batch") for m in metrics],
        "test_accuracy": results.get("test_accuracy"),
        "device_name": results.get("device_name"),
        "events": results.get("events", []),
        "phases": phase_split(proc),
        "feature_images": images,
        "feature_computed": computed,
    }
    cache_s = numbers["feature_cache_s"] or numbers["phases"]["feature_pass_s"]
    numbers["feature_img_per_s"] = round(images / cache_s, 1) if images and cache_s and computed else None
    return numbers


def stage_reference(ctx: Context, timeout_s: float) -> dict[str, Any]:
    shutil.rmtree(ctx.cache / "features", ignore_errors=True)  # measure the feature pass, not a cached copy
    cmd = train_command(ctx, ctx.plan.reference_args, "reference")
    proc = run_process(cmd, ctx.env(), timeout_s, ctx.log("reference"))
    numbers = run_numbers(proc, ctx.out / "runs" / "reference")
    wall = numbers["wall_s"] if proc.returncode == 0 else None
    met = None if wall is None else wall <= GOAL_REFERENCE_S
    goals = [goal("reference run end to end (20 epochs, feature cache)", f"<= {GOAL_REFERENCE_S:.0f} s",
                  wall, "s", met)]
    notes = [RANDOM_WEIGHTS_NOTE, "early stopping off (--early-stopping-patience 0): every epoch runs"]
    if ctx.dry_run:
        notes.append("dry run: --preset cpu, 16 px, 1 epoch, frozen tiny ViT on the CPU, training windows cut every "
                     "512 samples; the goal does not apply")
    return {"status": status_of(proc), "proc": proc, "numbers": numbers, "goals": goals, "notes": notes}


def stage_unfrozen(ctx: Context, timeout_s: float) -> dict[str, Any]:
    cmd = train_command(ctx, ctx.plan.unfrozen_args, "unfrozen")
    proc = run_process(cmd, ctx.env(), timeout_s, ctx.log("unfrozen"))
    numbers = run_numbers(proc, ctx.out / "runs" / "unfrozen")
    rates = [r for r in numbers["samples_per_s"] if r]
    steady = rates[-1] if rates else None
    times = numbers["epoch_time_s"]
    numbers["train_img_per_s"] = steady
    numbers["first_epoch_extra_s"] = (round(times[0] - times[1], 2) if len(times) >= 2 and None not in times[:2]
                                      else None)
    flops = ctx.number("throughput", "flops_per_image")
    peak = ctx.number("env", "matmul_tflops") or ctx.number("throughput", "peak_tflops")
    numbers["train_mfu"] = (round(steady * 3 * flops / (peak * 1e12), 4)
                            if steady and flops and peak and not ctx.dry_run else None)
    goals = [goal("unfrozen training step (bf16, compiled), steady epoch", None, steady, "img/s", None)]
    notes = [RANDOM_WEIGHTS_NOTE,
             "2 epochs on the training windows cut every 512 samples: epoch 1 includes compilation "
             "(first_epoch_extra_s), epoch 2 is the steady rate; a sample is one view image",
             "train MFU counts 3x the forward FLOPs of stage 3 per image"]
    if ctx.dry_run:
        notes.append("dry run: --preset cpu, 16 px on the CPU, without --compile (inductor needs minutes on 2 "
                     "cores) and without AMP (CUDA only)")
    return {"status": status_of(proc), "proc": proc, "numbers": numbers, "goals": goals, "notes": notes}


def ddp_available(ctx: Context) -> bool:
    """Whether ``harvit train --help`` mentions torchrun or distributed training."""
    try:
        out = subprocess.run([ctx.python, "-m", "harvit", "train", "--help"], env=ctx.env(), cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return bool(re.search(r"torchrun|distributed", out.stdout + out.stderr, re.IGNORECASE))


def stage_ddp(ctx: Context, timeout_s: float) -> dict[str, Any]:
    launcher = [ctx.python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", "-m", "harvit"]
    cmd = train_command(ctx, ctx.plan.ddp_args, "ddp", launcher)
    proc = run_process(cmd, ctx.env(NCCL_DEBUG="INFO"), timeout_s, ctx.log("ddp"))
    numbers = run_numbers(proc, ctx.out / "runs" / "ddp")
    numbers["nccl_seen"] = any("NCCL" in line for _, line in proc.lines)
    ok = proc.returncode == 0
    goals = [goal("torchrun --nproc_per_node=1 run (NCCL on CUDA)", "completes", numbers["wall_s"] if ok else None,
                  "s", ok)]
    return {"status": status_of(proc), "proc": proc, "numbers": numbers, "goals": goals, "notes": []}


# ---------------------------------------------------------------------------------------------
# The stage table and the loop
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stage:
    key: str
    title: str
    share: float  # fraction of --budget-s reserved for this stage
    run: Callable[[Context, float], dict[str, Any]]


STAGES = (
    Stage("env", "1. environment", 0.05, stage_env),
    Stage("pytest", "2. pytest -m gpu", 0.14, stage_pytest),
    Stage("throughput", "3. frozen encoder forward", 0.22, stage_throughput),
    Stage("reference", "4. reference run end to end", 0.27, stage_reference),
    Stage("unfrozen", "5. unfrozen encoder training", 0.24, stage_unfrozen),
    Stage("ddp", "6. torchrun --nproc_per_node=1", 0.08, stage_ddp),
)


def time_box(stage: Stage, later: list[Stage], budget_s: float, elapsed_s: float, override: float | None) -> float:
    """Seconds for ``stage``: what is left of the budget, less the shares the later stages keep."""
    if override is not None:
        return override
    reserved = sum(s.share for s in later) * budget_s
    return max(5.0, budget_s - elapsed_s - reserved)


def run_stage(ctx: Context, stage: Stage, timeout_s: float) -> dict[str, Any]:
    """Run one stage; whatever goes wrong in it is recorded, never raised."""
    t0 = time.perf_counter()
    try:
        out = stage.run(ctx, timeout_s)
    except Exception as e:  # noqa: BLE001 - one stage's bug must not stop the others
        out = {"status": "failed", "numbers": {}, "goals": [], "notes": [], "error": f"{type(e).__name__}: {e}"}
    proc: ProcResult | None = out.pop("proc", None)
    record = {"stage": stage.key, "title": stage.title, "timeout_s": round(timeout_s, 1),
              "seconds": round(time.perf_counter() - t0, 2), **out}
    if proc is not None:
        record["command"] = proc.command
        record["returncode"] = proc.returncode
        record["log"] = str(ctx.log(stage.key).relative_to(ctx.out))
        if record["status"] != "ok":
            record.setdefault("error", proc.tail(8))
    return record


def skipped(stage: Stage, reason: str) -> dict[str, Any]:
    return {"stage": stage.key, "title": stage.title, "status": "skipped", "reason": reason, "seconds": 0.0,
            "timeout_s": 0.0, "numbers": {}, "goals": [], "notes": [reason]}


def run_all(ctx: Context, budget_s: float, override: float | None, only: set[str] | None) -> dict[str, Any]:
    """Every stage in turn, writing the summary after each; returns the summary."""
    t0 = time.perf_counter()
    summary = new_summary(ctx, budget_s)
    todo = [s for s in STAGES if only is None or s.key in only]
    if any(s.key == "ddp" for s in todo) and not ddp_available(ctx):
        summary["stages"]["ddp"] = skipped(STAGES[-1], "skipped: DDP not implemented (harvit train --help mentions "
                                           "neither torchrun nor distributed)")
        todo = [s for s in todo if s.key != "ddp"]
    for i, stage in enumerate(todo):
        box = time_box(stage, todo[i + 1:], budget_s, time.perf_counter() - t0, override)
        print(f"gpu_check: {stage.title} (time box {box:.0f} s) ...", flush=True)
        record = run_stage(ctx, stage, box)
        ctx.results[stage.key] = record
        summary["stages"][stage.key] = record
        summary["seconds"] = round(time.perf_counter() - t0, 2)
        print(f"gpu_check: {stage.title}: {record['status']} in {record['seconds']:.1f} s", flush=True)
        write_summary(ctx.out, summary)
    summary["stages"] = {s.key: summary["stages"][s.key] for s in STAGES if s.key in summary["stages"]}
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    write_summary(ctx.out, summary)
    return summary


def new_summary(ctx: Context, budget_s: float) -> dict[str, Any]:
    return {
        "check": "harvit gpu_check (issue 16)",
        "dry_run": ctx.dry_run,
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "budget_s": budget_s,
        "git_commit": git_commit(),
        "data": str(ctx.data),
        "stages": {},
    }


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


# ---------------------------------------------------------------------------------------------
# The summary: JSON and markdown
# ---------------------------------------------------------------------------------------------
def fmt(x: Any, nd: int = 1) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:,.{nd}f}"
    return str(x)


def goal_cell(g: dict[str, Any], dry_run: bool) -> str:
    """'name: target -> figure unit (met | NOT met | ...)'."""
    figure = f"{fmt(g['value'])} {g['unit']}"
    if g["target"] is None:
        return f"{g['name']}: {figure} (a figure, no target)"
    met = {True: "met", False: "NOT met", None: "not measured"}[g["met"]]
    if dry_run:
        met = "dry run: not applicable"
    return f"{g['name']}: {g['target']} -> {figure} ({met})"


def render_markdown(summary: dict[str, Any]) -> str:
    env = summary["stages"].get("env", {}).get("numbers", {})
    where = ("DRY RUN (CPU, tiny sizes; goals do not apply)" if summary["dry_run"]
             else env.get("device_name", "no device name (stage 1 did not report one)"))
    lines = [f"# harvit GPU check: {where}", "",
             f"{summary['started']}, commit {summary.get('git_commit') or '?'}, {summary.get('seconds', 0):.0f} s "
             f"of a {summary['budget_s']:.0f} s budget. Command: `{summary['command']}`", "",
             f"Encoders use {RANDOM_WEIGHTS_NOTE}.", "",
             "| stage | status | seconds (box) | goal |", "|---|---|---|---|"]
    for rec in summary["stages"].values():
        goals = "; ".join(goal_cell(g, summary["dry_run"]) for g in rec.get("goals", [])) or "-"
        lines.append(f"| {rec['title']} | {rec['status']} | {rec['seconds']:.1f} ({rec['timeout_s']:.0f}) | "
                     f"{goals} |")
    for rec in summary["stages"].values():
        lines += ["", f"## {rec['title']}: {rec['status']}"]
        if rec.get("command"):
            lines.append(f"- command: `{rec['command']}`")
        lines += [f"- {n}" for n in rec.get("notes", [])]
        if rec.get("error"):
            lines += ["", "```", str(rec["error"])[-1500:], "```"]
        lines += STAGE_DETAILS.get(rec["stage"], lambda n: [])(rec.get("numbers", {}))
    return "\n".join(lines) + "\n"


def env_details(n: dict[str, Any]) -> list[str]:
    keys = ("device_name", "memory_gib", "capability", "sm_count", "driver", "torch", "cuda", "timm", "torchvision",
            "onnx", "onnxruntime", "python", "matmul_dtype", "matmul_tflops", "h2d_gb_s", "d2d_gb_s", "host_copy_gb_s")
    return [f"- {k}: {fmt(n[k], 2)}" for k in keys if n.get(k) is not None]


def pytest_details(n: dict[str, Any]) -> list[str]:
    if not n:
        return []
    out = [f"- {n['tests']} collected: {n['passed']} passed, {n['failed']} failed, {n['errors']} errors, "
           f"{n['skipped']} skipped"]
    out += [f"- failing: `{name}`" for name in n.get("failing", [])]
    out += [f"- skip reason: {r}" for r in n.get("skip_reasons", [])[:3]]
    return out


def throughput_details(n: dict[str, Any]) -> list[str]:
    if not n:
        return []
    counted, analytic = (n.get("flops_counted") or 0) / 1e9, (n.get("flops_analytic") or 0) / 1e9
    out = [f"- {n.get('encoder')} at {n.get('img_size')} px, {n.get('dtype')}; FLOPs/image {fmt(counted, 3)} G "
           f"(counted), {fmt(analytic, 3)} G (analytic); MFU against {fmt(n.get('peak_tflops'), 3)} TFLOP/s", "",
           "| compile | fused attn | batch | img/s | ms/batch | peak GiB | MFU | compile s |",
           "|---|---|---|---|---|---|---|---|"]
    for r in n.get("rows", []):
        if r.get("error"):
            out.append(f"| {r['compile']} | {r['fused_attn']} | {r['batch']} | {r['error']} | | | | |")
            continue
        out.append(f"| {r['compile']} | {r['fused_attn']} | {r['batch']} | {fmt(r['img_per_s'])} | "
                   f"{fmt(r['ms_per_batch'], 2)} | {fmt(r.get('peak_mem_gib'), 2)} | {fmt(r.get('mfu'), 3)} | "
                   f"{fmt(r.get('compile_s'))} |")
    out += [f"- skipped: {s}" for s in n.get("skipped", [])]
    prof = n.get("profile")
    if prof:
        out += ["", f"Profile of one batch ({prof['config']}): device busy {fmt(prof.get('busy_pct'))}% of "
                f"{fmt(prof.get('wall_ms'), 2)} ms; {prof.get('diagnosis', '')}", "",
                "| kernel / op | calls | time ms | share % |", "|---|---|---|---|"]
        out += [f"| `{k['name'][:90]}` | {k['calls']} | {fmt(k['ms'], 3)} | {fmt(k['pct'])} |"
                for k in prof.get("top", [])]
    return out


def train_details(n: dict[str, Any]) -> list[str]:
    if not n:
        return []
    ph = n.get("phases", {})
    out = ["", "| phase | seconds |", "|---|---|"]
    names = {"startup_s": "startup (python, torch, harvit imports)", "data_and_model_s": "data + model build",
             "feature_pass_s": "feature pass", "epochs_s": "epochs (train + validation + checkpoints)",
             "test_s": "test", "report_s": "report (plots, baseline)", "exit_s": "exit"}
    out += [f"| {label} | {fmt(ph.get(k), 2)} |" for k, label in names.items()]
    out += [f"| **whole command** | **{fmt(n.get('wall_s'), 2)}** |", "",
            f"- harvit's own timings: total_time_s {fmt(n.get('total_time_s'), 2)}, feature_cache_s "
            f"{fmt(n.get('feature_cache_s'), 2)}, train_time_s {fmt(n.get('train_time_s'), 2)}, "
            f"epochs {n.get('epochs_run')}",
            f"- per epoch: seconds {n.get('epoch_time_s')}, samples/s {n.get('samples_per_s')}"]
    if n.get("feature_images"):
        out.append(f"- feature pass: {n['feature_images']} images"
                   + (f", {fmt(n.get('feature_img_per_s'))} img/s" if n.get("feature_img_per_s") else " (loaded)"))
    for key, label in (("train_img_per_s", "training step, steady epoch"), ("first_epoch_extra_s",
                       "first epoch's extra seconds (compilation)"), ("train_mfu", "train MFU"),
                       ("test_accuracy", "test accuracy (random weights: not meaningful)"),
                       ("nccl_seen", "NCCL in the log")):
        if n.get(key) is not None:
            out.append(f"- {label}: {fmt(n[key], 3)}")
    out += [f"- event: {e}" for e in n.get("events", [])]
    return out


STAGE_DETAILS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "env": env_details, "pytest": pytest_details, "throughput": throughput_details, "reference": train_details,
    "unfrozen": train_details, "ddp": train_details,
}


def write_summary(out: Path, summary: dict[str, Any]) -> None:
    write_json(out / "summary.json", summary)
    write_atomic(out / "summary.md", render_markdown(summary))


# ---------------------------------------------------------------------------------------------
# Worker: stage 1, the environment
# ---------------------------------------------------------------------------------------------
def versions() -> dict[str, Any]:
    import importlib

    out: dict[str, Any] = {"python": platform.python_version()}
    for name in ("torch", "timm", "torchvision", "onnx", "onnxruntime"):
        try:
            out[name] = importlib.import_module(name).__version__
        except Exception:  # noqa: BLE001 - absent or broken: recorded as None
            out[name] = None
    return out


def gpu_info(torch: Any) -> dict[str, Any]:
    props = torch.cuda.get_device_properties(0)
    info = {"device_name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
            "capability": f"{props.major}.{props.minor}", "sm_count": props.multi_processor_count,
            "cuda": torch.version.cuda, "bf16_supported": torch.cuda.is_bf16_supported()}
    if shutil.which("nvidia-smi"):
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            q = subprocess.run(["nvidia-smi", "--query-gpu=driver_version,clocks.sm,clocks.max.sm,power.limit",
                                "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
            info["driver"] = q.stdout.strip().splitlines()[0] if q.stdout.strip() else None
    return info


def median_seconds(fn: Callable[[], Any], device: str, reps: int, warmup: int = 3) -> float:
    """Median seconds of ``fn`` (CUDA events on the GPU, perf_counter on the CPU), after a warm-up."""
    import torch

    for _ in range(warmup):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
        pairs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
        for a, b in pairs:
            a.record()
            fn()
            b.record()
        torch.cuda.synchronize()
        return statistics.median(a.elapsed_time(b) / 1e3 for a, b in pairs)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def matmul_rate(torch: Any, plan: Plan) -> dict[str, Any]:
    """A large matrix product on random data: bf16 on the GPU, fp32 on the CPU (TFLOP/s)."""
    n, dev = plan.matmul_n, plan.device
    dtype = torch.bfloat16 if dev == "cuda" else torch.float32
    a, b = (torch.randn(n, n, device=dev, dtype=dtype) for _ in range(2))
    s = median_seconds(lambda: torch.mm(a, b), dev, reps=10 if dev == "cuda" else 3, warmup=3 if dev == "cuda" else 1)
    return {"matmul_dtype": str(dtype).replace("torch.", ""), "matmul_n": n,
            "matmul_tflops": round(2 * n**3 / s / 1e12, 3)}


def copy_rates(torch: Any, plan: Plan) -> dict[str, Any]:
    """Host-to-device from pinned memory and device-to-device (read + write), GB/s; a host copy on the CPU."""
    n = plan.copy_mib * 2**20 // 4
    if plan.device != "cuda":
        src = torch.randn(n)
        s = median_seconds(lambda: src.clone(), "cpu", reps=5, warmup=1)
        return {"host_copy_gb_s": round(2 * src.numel() * 4 / s / 1e9, 2)}
    host = torch.randn(n).pin_memory()
    dev = torch.empty(n, device="cuda")
    h2d = median_seconds(lambda: dev.copy_(host, non_blocking=True), "cuda", reps=10)
    other = torch.empty_like(dev)
    d2d = median_seconds(lambda: other.copy_(dev), "cuda", reps=10)
    nbytes = n * 4
    return {"h2d_gb_s": round(nbytes / h2d / 1e9, 2), "d2d_gb_s": round(2 * nbytes / d2d / 1e9, 1)}


def worker_env(plan: Plan, result: Path) -> None:
    import torch

    info: dict[str, Any] = {**versions(), "cuda_available": torch.cuda.is_available(), "device": plan.device,
                            "cpu_count": os.cpu_count()}
    if plan.device == "cuda":
        if not torch.cuda.is_available():
            write_json(result, info)
            raise SystemExit("gpu_check: no CUDA device is visible to torch (use --dry-run on a CPU machine)")
        info.update(gpu_info(torch))
    else:
        info["device_name"] = f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    write_json(result, info)
    info.update(matmul_rate(torch, plan))
    write_json(result, info)
    info.update(copy_rates(torch, plan))
    write_json(result, info)


# ---------------------------------------------------------------------------------------------
# Worker: stage 3, the frozen encoder's forward
# ---------------------------------------------------------------------------------------------
def set_fused_attention(model: Any, on: bool) -> int:
    """Switch timm's fused attention (scaled_dot_product_attention) on or off; returns the modules switched."""
    import timm.layers

    with contextlib.suppress(Exception):  # the global default, for models built later (not every version)
        timm.layers.set_fused_attn(on)
    mods = [m for m in model.modules() if hasattr(m, "fused_attn")]
    for m in mods:
        m.fused_attn = on
    return len(mods)


def analytic_vit_flops(model: Any) -> float | None:
    """Forward FLOPs per image of a timm ViT (2 per multiply-add): patch embedding, attention, MLP."""
    try:
        pe = model.patch_embed
        n_patch, d = pe.num_patches, model.embed_dim
        n = n_patch + getattr(model, "num_prefix_tokens", 1)
        conv = pe.proj
        k = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
        hidden = model.blocks[0].mlp.fc1.out_features
        per_block = n * d * 3 * d + 2 * n * n * d + n * d * d + 2 * n * d * hidden
        return 2.0 * (n_patch * k * d + len(model.blocks) * per_block)
    except (AttributeError, IndexError, TypeError):
        return None


def count_flops(torch: Any, model: Any, img: int, device: str) -> float | None:
    """Forward FLOPs per image from ``torch.utils.flop_counter`` (unfused attention, so every matmul counts)."""
    from torch.utils.flop_counter import FlopCounterMode

    set_fused_attention(model, False)
    x = torch.randn(1, 3, img, img, device=device)
    try:
        with torch.inference_mode(), FlopCounterMode(display=False) as fc:
            model(x)
        return float(fc.get_total_flops())
    except Exception:  # noqa: BLE001 - the analytic count stands in
        return None
    finally:
        set_fused_attention(model, True)


@dataclass
class Bench:
    """The throughput worker's state: model, settings, rows so far, and the deadline."""

    torch: Any
    model: Any
    plan: Plan
    peak_tflops: float | None
    flops: float | None
    deadline: float
    compile_cost: float = 45.0  # seconds the next compile is expected to take (updated after each)
    rows: list[dict[str, Any]] = field(default_factory=list)

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        torch = self.torch
        with torch.inference_mode():
            if self.plan.device == "cuda":
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    yield
            else:
                yield

    def measure(self, fn: Callable[[Any], Any], batch: int, compiled: bool, fused: bool) -> dict[str, Any]:
        """Images/s of ``fn`` at ``batch`` (median of event-timed batches after a warm-up), peak memory, MFU."""
        torch, dev = self.torch, self.plan.device
        row: dict[str, Any] = {"compile": compiled, "fused_attn": fused, "batch": batch}
        x = torch.randn(batch, 3, self.plan.img_size, self.plan.img_size, device=dev)
        try:
            if dev == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            with self.autocast():
                t = time.perf_counter()
                fn(x)  # the first call compiles when compiled
                if dev == "cuda":
                    torch.cuda.synchronize()
                if compiled:
                    row["compile_s"] = round(time.perf_counter() - t, 1)
                once = max(1e-4, median_seconds(lambda: fn(x), dev, reps=2, warmup=1))
                reps = int(min(30, max(3, self.plan.measure_s / once)))
                s = median_seconds(lambda: fn(x), dev, reps=reps, warmup=1)
        except torch.OutOfMemoryError:
            if dev == "cuda":
                torch.cuda.empty_cache()
            row["error"] = "out of memory"
            return row
        row.update(img_per_s=round(batch / s, 1), ms_per_batch=round(s * 1e3, 3))
        if dev == "cuda":
            row["peak_mem_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        else:
            row["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
        if self.flops and self.peak_tflops:
            row["mfu"] = round(row["img_per_s"] * self.flops / (self.peak_tflops * 1e12), 4)
        return row


def best_row(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    ok = [r for r in rows if r.get("img_per_s") and all(r.get(k) == v for k, v in match.items())]
    return max(ok, key=lambda r: r["img_per_s"]) if ok else None


def profile_batch(bench: Bench, fn: Callable[[Any], Any], batch: int, config: str, trace: Path | None
                  ) -> dict[str, Any]:
    """torch.profiler over one batch: the top kernels (CUDA) or ops (CPU) by self time, busy share, a diagnosis."""
    torch, dev = bench.torch, bench.plan.device
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev == "cuda" else [])
    x = torch.randn(batch, 3, bench.plan.img_size, bench.plan.img_size, device=dev)
    with bench.autocast():
        fn(x)
        if dev == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        with profile(activities=acts) as prof:
            fn(x)
            if dev == "cuda":
                torch.cuda.synchronize()
        wall_ms = (time.perf_counter() - t) * 1e3
    if trace is not None:
        with contextlib.suppress(Exception):
            prof.export_chrome_trace(str(trace))
    return summarise_profile(prof, dev, wall_ms, config)


def self_time_us(evt: Any, dev: str) -> float:
    if dev == "cuda":
        return float(getattr(evt, "self_device_time_total", None) or getattr(evt, "self_cuda_time_total", 0) or 0)
    return float(getattr(evt, "self_cpu_time_total", 0) or 0)


ATTENTION_KERNEL = re.compile(r"flash|fmha|attention|sdpa|softmax", re.IGNORECASE)
MATMUL_KERNEL = re.compile(r"gemm|gemv|nvjet|cutlass|xmma|matmul|addmm|\bmm\b|aten::mm|linear", re.IGNORECASE)


def kernel_kind(name: str) -> str:
    """'attention', 'matmul' or 'other', by the kernel's (or CPU op's) name; attention is checked first."""
    if ATTENTION_KERNEL.search(name):
        return "attention"
    return "matmul" if MATMUL_KERNEL.search(name) else "other"


def summarise_profile(prof: Any, dev: str, wall_ms: float, config: str) -> dict[str, Any]:
    events = [(e.key, e.count, self_time_us(e, dev)) for e in prof.key_averages()]
    if dev == "cuda":  # device-side entries only: kernels and copies (a CPU op's self device time is 0)
        events = [e for e in events if e[2] > 0]
    events.sort(key=lambda e: e[2], reverse=True)
    total = sum(e[2] for e in events) or 1.0
    top = [{"name": k, "calls": c, "ms": round(t / 1e3, 3), "pct": round(100 * t / total, 1)}
           for k, c, t in events[:12]]
    kinds = [kernel_kind(k) for k, _, _ in events]
    attn = sum(t for (_, _, t), kind in zip(events, kinds, strict=True) if kind == "attention")
    matmul = sum(t for (_, _, t), kind in zip(events, kinds, strict=True) if kind == "matmul")
    busy = 100 * total / 1e3 / max(1e-9, wall_ms) if dev == "cuda" else None
    shares = {"matmul_pct": round(100 * matmul / total, 1), "attention_pct": round(100 * attn / total, 1)}
    other = 100 - shares["matmul_pct"] - shares["attention_pct"]
    parts = [f"matrix products {shares['matmul_pct']}%, attention {shares['attention_pct']}%, "
             f"everything else (norms, GELU, casts, copies) {other:.1f}% of the {'kernel' if dev == 'cuda' else 'op'}"
             " time"]
    if busy is not None and busy < 85:
        parts.append(f"the GPU is idle {100 - busy:.0f}% of the batch: launch/host bound (larger batches, CUDA "
                     "graphs or torch.compile help)")
    elif other > 30:
        parts.append("memory-bound glue kernels take a large share: torch.compile's fusion should cut it")
    elif shares["matmul_pct"] + shares["attention_pct"] > 70:
        parts.append("the matrix units dominate: the rate is bounded by the GEMMs' own efficiency (shapes, dtype)")
    return {"config": config, "wall_ms": round(wall_ms, 3), "busy_pct": None if busy is None else round(busy, 1),
            **shares, "diagnosis": "; ".join(parts), "top": top}


def worker_throughput(plan: Plan, result: Path, out: Path, deadline_s: float, peak: float | None,
                      force_profile: bool) -> None:
    import timm
    import torch

    deadline = time.perf_counter() + deadline_s
    if plan.device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("gpu_check: no CUDA device is visible to torch")
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    if peak is None:
        peak = matmul_rate(torch, plan)["matmul_tflops"]
    kw = {} if plan.img_size == 224 else {"img_size": plan.img_size}
    model = timm.create_model(plan.encoder, pretrained=False, num_classes=0, in_chans=3, **kw).to(plan.device).eval()
    flops = count_flops(torch, model, plan.img_size, plan.device)
    analytic = analytic_vit_flops(model)
    bench = Bench(torch, model, plan, peak, flops or analytic, deadline,
                  compile_cost=45.0 if plan.compile_backend == "inductor" else 3.0)
    info: dict[str, Any] = {"encoder": plan.encoder, "img_size": plan.img_size, "device": plan.device,
                            "dtype": "bf16 autocast" if plan.device == "cuda" else "fp32", "peak_tflops": peak,
                            "flops_per_image": flops or analytic, "flops_counted": flops, "flops_analytic": analytic,
                            "compile_backend": plan.compile_backend, "rows": bench.rows, "skipped": []}

    def save() -> None:
        info["best"] = best_row(bench.rows)
        write_json(result, info)

    save()
    # In order of worth, so that a short box still gets the main figures: eager with fused attention, a profile
    # when that is slow, compiled at the best batch, eager without fused attention, then the other compiled runs.
    eager_sweep(bench, True, save)
    best = best_row(bench.rows)
    if best and (force_profile or best["img_per_s"] < PROFILE_BELOW_IMG_S):
        profile_into(bench, info, model, best, out, save)
    first = best["batch"] if best else bench.plan.batches[-1]
    compiled_runs(bench, info, [(True, first)], save)
    eager_sweep(bench, False, save)
    more = [(False, first)] + ([(True, b) for b in bench.plan.batches if b != first]
                               if bench.plan.compile_all_batches else [])
    compiled_runs(bench, info, more, save)
    best = best_row(bench.rows)
    if best and "profile" not in info and best["img_per_s"] < PROFILE_BELOW_IMG_S:
        profile_into(bench, info, model, best, out, save)
    save()


def eager_sweep(bench: Bench, fused: bool, save: Callable[[], None]) -> None:
    """Eager forward at every batch size with fused attention on or off."""
    set_fused_attention(bench.model, fused)
    for batch in bench.plan.batches:
        if bench.left() < 5:
            break
        bench.rows.append(bench.measure(bench.model, batch, False, fused))
        save()
    set_fused_attention(bench.model, True)


def compiled_runs(bench: Bench, info: dict[str, Any], todo: list[tuple[bool, int]], save: Callable[[], None]
                  ) -> None:
    """torch.compile (fused attention, batch) for each of ``todo`` while the box has room for one more compile."""
    torch = bench.torch
    for fused, batch in todo:
        if bench.left() < bench.compile_cost * 1.2 + 5:
            info["skipped"].append(f"compiled, fused {fused}, batch {batch}: not enough time left in the box")
            continue
        set_fused_attention(bench.model, fused)
        try:
            torch._dynamo.reset()
            fn = torch.compile(bench.model, backend=bench.plan.compile_backend, dynamic=False)
            row = bench.measure(fn, batch, True, fused)
        except Exception as e:  # noqa: BLE001 - a compiler failure is a finding, not the end of the stage
            row = {"compile": True, "fused_attn": fused, "batch": batch, "error": f"{type(e).__name__}: {e}"[:300]}
        bench.rows.append(row)
        bench.compile_cost = max(5.0, row.get("compile_s", bench.compile_cost))
        save()
    set_fused_attention(bench.model, True)


def profile_into(bench: Bench, info: dict[str, Any], model: Any, best: dict[str, Any], out: Path,
                 save: Callable[[], None]) -> None:
    """Profile one batch of the best configuration so far (eager with its attention setting)."""
    set_fused_attention(model, best["fused_attn"])
    config = f"eager, fused attn {best['fused_attn']}, batch {best['batch']}"
    try:
        info["profile"] = profile_batch(bench, model, best["batch"], config, out / "throughput_trace.json")
    except Exception as e:  # noqa: BLE001 - a broken profiler must not lose the rates
        info["profile"] = {"config": config, "diagnosis": f"profiler failed: {type(e).__name__}: {e}", "top": []}
    set_fused_attention(model, True)
    save()


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line on stderr, exit 2."""

    def error(self, message: str) -> NoReturn:
        fail(message)


def fail(message: str) -> NoReturn:
    print(f"gpu_check: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="gpu_check.py", description="The prepared GPU check of issue 16 (see the module docstring).")
    p.add_argument("--data", default=None,
                   help=f"data folder holding {HAPT_ZIP} (default: $HARVIT_DATA_DIR, as every harvit command)")
    p.add_argument("--out", required=True, help="results folder: summary.json, summary.md, logs/, runs/")
    p.add_argument("--dry-run", action="store_true", help="every stage on the CPU with tiny sizes")
    p.add_argument("--budget-s", type=float, default=480.0, help="wall-clock budget of all stages (default 480)")
    p.add_argument("--stages", default=None,
                   help=f"comma-separated subset of {','.join(s.key for s in STAGES)} (default: all)")
    p.add_argument("--stage-timeout-s", type=float, default=None, help=argparse.SUPPRESS)
    p.add_argument("--worker", choices=("env", "throughput"), default=None, help=argparse.SUPPRESS)
    p.add_argument("--result", default=None, help=argparse.SUPPRESS)
    p.add_argument("--deadline-s", type=float, default=120.0, help=argparse.SUPPRESS)
    p.add_argument("--peak-tflops", type=float, default=None, help=argparse.SUPPRESS)
    return p


def check_args(ns: argparse.Namespace) -> tuple[Path, Path, set[str] | None]:
    given = ns.data if ns.data is not None else os.environ.get("HARVIT_DATA_DIR", "").strip()
    if not given:
        fail(f"--data: not given and HARVIT_DATA_DIR is not set; expected the data folder holding {HAPT_ZIP}")
    data, out = Path(given).expanduser().resolve(), Path(ns.out).expanduser().resolve()
    if not (data / HAPT_ZIP).is_file():
        where = "--data" if ns.data is not None else "HARVIT_DATA_DIR"
        fail(f"--data: {data} ({where}) holds no {HAPT_ZIP} (copy the shared data's hapt/ folder there)")
    if not ns.budget_s > 0:
        fail(f"--budget-s: got {ns.budget_s}, expected seconds > 0")
    if ns.stage_timeout_s is not None and not ns.stage_timeout_s > 0:
        fail(f"--stage-timeout-s: got {ns.stage_timeout_s}, expected seconds > 0")
    only = None
    if ns.stages is not None:
        only = {s.strip() for s in ns.stages.split(",") if s.strip()}
        unknown = sorted(only - {s.key for s in STAGES})
        if unknown or not only:
            fail(f"--stages: unknown stage(s) {', '.join(unknown) or '(none given)'}; expected some of "
                 + ", ".join(s.key for s in STAGES))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        fail(f"--out: cannot create {out}: {e.strerror or e}")
    if not os.access(out, os.W_OK):
        fail(f"--out: {out} is not writable")
    return data, out, only


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    plan = DRY_PLAN if ns.dry_run else GPU_PLAN
    if ns.worker is not None:
        result = Path(ns.result)
        if ns.worker == "env":
            worker_env(plan, result)
        else:
            worker_throughput(plan, result, Path(ns.out), ns.deadline_s, ns.peak_tflops, force_profile=ns.dry_run)
        return 0
    data, out, only = check_args(ns)
    ctx = Context(data=data, out=out, dry_run=ns.dry_run, plan=plan, python=sys.executable)
    summary = run_all(ctx, ns.budget_s, ns.stage_timeout_s, only)
    print(render_markdown(summary), flush=True)
    print(f"gpu_check: results in {out / 'summary.json'} and {out / 'summary.md'}", flush=True)
    return 0 if all(r["status"] in ("ok", "skipped") for r in summary["stages"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
