"""Faults a training run survives (issue 5): kill -9 anywhere, SIGINT/SIGTERM, out of memory, a full
disk; and safe loading. Real ``python -m harvit`` processes, real signals, real files.

The run used here is a small ViT on a synthetic UCI-HAR-layout data set: 7 epochs of ~0.4 s each on
one CPU thread under ``--deterministic``, so an interrupted and resumed run must end with exactly
the metrics of an uninterrupted one. Kill points are chosen by watching the run folder with Linux
inotify (a temporary checkpoint file appearing, a file being renamed into place), so a kill lands
*while a checkpoint is being written* on purpose, not by luck.
"""

from __future__ import annotations

import ast
import ctypes
import ctypes.util
import json
import os
import pickle
import resource
import select
import shlex
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from synth import make_dataset, write_uci_layout

from harvit.cli import build_parser, config_from_args
from harvit.config import Config
from harvit.models import checkpoint as ck
from harvit.training import build_run, fit
from harvit.training.interrupts import Interrupted
from harvit.utils.errors import HarvitError

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 7
#: A run of 7 epochs x ~0.4 s (400 training windows, 13 steps of 32), checkpoints of ~1.8 MB.
FLAGS = ["--dataset", "uci_har", "--epochs", str(EPOCHS), "--encoder", "vit_tiny_patch16_224", "--img-size", "32",
         "--patch-size", "8", "--embed-dim", "64", "--depth", "2", "--num-heads", "2", "--hidden-dims", "16",
         "--mode", "stack", "--encodings", "gasf", "--no-freeze-encoder", "--batch-size", "32", "--lr", "1e-4",
         "--warmup-epochs", "0", "--no-progress", "--no-tensorboard", "--device", "cpu", "--deterministic",
         "--threads", "1", "--early-stopping-patience", "0"]
#: Keys of training_results.json that must match an uninterrupted run exactly (times excluded).
RESULT_KEYS = ("test_accuracy", "test_macro_f1", "test_loss", "test_view_accuracy", "per_class_accuracy",
               "confusion_matrix", "best_epoch", "best_val_acc", "epochs_run")
TIME_KEYS = ("epoch_time_s", "train_time_s", "samples_per_s", "feature_cache_s")


# ---------------------------------------------------------------------------------------------
# Runs as real processes
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data_env(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("reliability-data")
    write_uci_layout(root, n_train=480, n_test=48)
    return {**os.environ, "HARVIT_DATA_DIR": str(root), "HARVIT_CACHE_DIR": str(root / "cache"),
            "HARVIT_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1"}


def train_cmd(out: Path, name: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "harvit", "train", *FLAGS, "--output-dir", str(out), "--run-name", name, *extra]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data_env):
    """The uninterrupted run, started in the background at once (it runs beside the interrupted ones)."""
    out = tmp_path_factory.mktemp("reference")
    log = open(out / "log.txt", "w")  # noqa: SIM115 - closed when the run is awaited
    proc = subprocess.Popen(train_cmd(out, "full"), env=data_env, cwd=out, stdout=log, stderr=subprocess.STDOUT)

    def wait() -> Path:
        if proc.poll() is None:
            proc.wait(timeout=300)
        log.close()
        assert proc.returncode == 0, (out / "log.txt").read_text()[-3000:]
        return out / "full"

    yield wait
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    log.close()


def assert_same_run(a: Path, b: Path) -> None:
    """Final metrics and every per-epoch record (times aside) are equal."""
    ra = json.loads((a / "training_results.json").read_text())
    rb = json.loads((b / "training_results.json").read_text())
    for key in RESULT_KEYS:
        assert ra[key] == rb[key], key

    def records(run: Path) -> list[dict]:
        return [{k: v for k, v in json.loads(s).items() if k not in TIME_KEYS}
                for s in (run / "metrics.jsonl").read_text().splitlines()]

    assert records(a) == records(b)


class DirWatch:
    """inotify on one folder: (event mask, file name) of files created or renamed into it."""

    IN_MOVED_TO, IN_CREATE = 0x80, 0x100

    def __init__(self, folder: Path) -> None:
        libc_name = ctypes.util.find_library("c")
        libc = ctypes.CDLL(libc_name, use_errno=True) if libc_name else None
        if libc is None or not hasattr(libc, "inotify_init1"):
            pytest.skip("needs Linux inotify")
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0 or libc.inotify_add_watch(self.fd, os.fsencode(folder), self.IN_MOVED_TO | self.IN_CREATE) < 0:
            pytest.skip("inotify unavailable")

    def read(self, timeout: float) -> list[tuple[int, str]]:
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return []
        data, events, at = os.read(self.fd, 1 << 16), [], 0
        while at < len(data):
            _, mask, _, size = struct.unpack_from("iIII", data, at)
            name = data[at + 16:at + 16 + size].rstrip(b"\0").decode()
            events.append((mask, name))
            at += 16 + size
        return events

    def close(self) -> None:
        os.close(self.fd)


def run_until(cmd: list[str], env: dict[str, str], run_dir: Path, point: tuple, sig: int = signal.SIGKILL,
              log: Path | None = None) -> tuple[int, str]:
    """Start ``cmd`` and send ``sig`` at ``point``; returns (exit status, stderr).

    Points: ("after", s): s seconds after start; ("create", prefix): when a file whose name starts
    with prefix is created in ``run_dir`` (the temporary file of an atomic write); ("moved", name,
    s=0, n=1): s seconds after ``name`` is renamed into place for the n-th time. A run that ends
    before the point is left to end.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    watch = DirWatch(run_dir)
    out = open(log or os.devnull, "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, env=env, cwd=run_dir.parent, stdout=out, stderr=subprocess.PIPE, text=True)
    kind = point[0]
    delay = point[2] if kind == "moved" and len(point) > 2 else 0.0
    nth = point[3] if kind == "moved" and len(point) > 3 else 1
    fire_at = time.monotonic() + point[1] if kind == "after" else None
    seen = 0
    try:
        while proc.poll() is None:
            wait = 0.2 if fire_at is None else min(0.2, fire_at - time.monotonic())
            for mask, name in watch.read(wait):
                if fire_at is not None:
                    break
                if kind == "create" and mask & DirWatch.IN_CREATE and name.startswith(point[1]):
                    fire_at = time.monotonic()
                elif kind == "moved" and mask & DirWatch.IN_MOVED_TO and name == point[1]:
                    seen += 1
                    if seen == nth:
                        fire_at = time.monotonic() + delay
            if fire_at is not None and time.monotonic() >= fire_at and proc.poll() is None:
                proc.send_signal(sig)
                break
        _, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        watch.close()
        out.close()
    return proc.returncode, stderr


def temp_files(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.glob(".*.tmp"))


# ---------------------------------------------------------------------------------------------
# kill -9
# ---------------------------------------------------------------------------------------------
#: Where each run of the chain is killed, in order; every run after the first is ``--resume``.
#: ``BEST`` is filled in when the chain gets there: latest.pt of the uninterrupted run's best epoch.
BEST = "latest.pt of the best epoch"
KILL_POINTS = [
    ("after", 1.0),                        # 1 starting up: imports, nothing written yet
    ("moved", "config.json"),              # 2 set up, training about to start, no checkpoint yet
    ("create", ".best.pt."),               # 3 writing the first best.pt (epoch 1 always improves)
    ("moved", "best.pt"),                  # 4 best.pt in place, latest.pt not yet
    ("create", ".latest.pt."),             # 5 writing the very first latest.pt
    ("moved", "latest.pt"),                # 6 epoch 1 saved, metrics.jsonl not yet rewritten
    ("moved", "config.json", 0.25),        # 7 in the middle of an epoch
    BEST,                                  # 8 latest.pt of the last improving epoch just in place
    ("create", ".latest.pt."),             # 9 writing latest.pt over a previous one
    ("create", ".metrics.jsonl."),         # 10 writing metrics.jsonl
    ("create", ".training_results.json."),  # 11 the epochs are over: writing the test results
]


def test_kill_9_at_eleven_points_then_resume_equals_uninterrupted(tmp_path, data_env, reference):
    """kill -9 at 11 points of one run (three of them while a checkpoint file is being written);
    after each, latest.pt (when there is one) is a readable checkpoint, best.pt is at least as new
    as latest.pt says, and ``--resume`` goes on (from the start when no checkpoint was written
    yet); the last resume finishes with exactly the metrics of an uninterrupted ``--deterministic``
    run, and no temporary file is left behind."""
    run = tmp_path / "cut"
    points = list(KILL_POINTS)
    kills, torn_writes, retries = [], [], 0
    while points:
        point = points.pop(0)
        epoch = ck.load_checkpoint(run / "latest.pt")["epoch"] if (run / "latest.pt").is_file() else 0
        if point == BEST:  # keeps two epochs after it for the points that follow
            best = json.loads((reference() / "training_results.json").read_text())["best_epoch"]
            point = ("moved", "latest.pt", 0.0, max(1, min(best, EPOCHS - 3) - epoch))
        before = (run / "latest.pt").read_bytes() if epoch else None
        code, stderr = run_until(train_cmd(tmp_path, "cut", "--resume"), data_env, run, point,
                                 log=tmp_path / f"log{len(kills)}.txt")
        assert code == -signal.SIGKILL, f"{point}: the run ended with {code} before the kill: {stderr[-2000:]}"
        kills.append(point)
        if point[0] == "create":
            if any(n.startswith(point[1]) for n in temp_files(run)):
                torn_writes.append((point[1], bool(epoch)))
                if point[1] == ".latest.pt." and epoch:  # the torn write left the old checkpoint as it was
                    assert (run / "latest.pt").read_bytes() == before
            elif retries < 3:  # the write ended before the kill landed: try that point again
                retries += 1
                points.insert(0, point)
        if (run / "latest.pt").is_file():  # readable, never behind, and best.pt is as new as it claims
            latest = ck.load_checkpoint(run / "latest.pt")
            assert latest["epoch"] >= epoch
            assert (run / "best.pt").is_file(), f"{point}: latest.pt without best.pt"
            assert ck.load_checkpoint(run / "best.pt")["epoch"] >= latest["best_epoch"], point
    assert len(kills) >= 10
    assert (".latest.pt.", True) in torn_writes, torn_writes
    assert {name for name, _ in torn_writes} >= {".latest.pt.", ".best.pt."}, torn_writes

    done = subprocess.run(train_cmd(tmp_path, "cut", "--resume"), env=data_env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert temp_files(run) == []  # the torn temporary files of the killed writes were removed
    assert_same_run(reference(), run)


# ---------------------------------------------------------------------------------------------
# SIGINT / SIGTERM
# ---------------------------------------------------------------------------------------------
def test_sigint_and_sigterm_save_mid_epoch_and_resume_equals_uninterrupted(tmp_path, data_env, reference):
    """SIGINT then SIGTERM on a real process: each saves latest.pt at the next step boundary (the
    position inside the epoch included), prints the resume command and exits 130 / 143; running
    that printed command finishes the run with the metrics of an uninterrupted run."""
    run = tmp_path / "sig"
    steps = []
    cmd = train_cmd(tmp_path, "sig")
    for sig, code, point in ((signal.SIGINT, 130, ("moved", "latest.pt", 0.12)),
                             (signal.SIGTERM, 143, ("moved", "config.json", 0.2))):
        got, stderr = run_until(cmd, data_env, run, point, sig=sig)
        assert got == code, stderr[-2000:]
        lines = [ln for ln in stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "Traceback" not in stderr, stderr
        assert lines[0].startswith("interrupted: saved ") and "latest.pt" in lines[0], lines[0]
        resume = lines[0].split("resume with: ", 1)[1]
        assert resume.startswith("python -m harvit train ") and resume.endswith(" --resume"), resume
        c = ck.load_checkpoint(run / "latest.pt")
        steps.append((c["epoch"], c["step_in_epoch"]))
        cmd = [sys.executable, *shlex.split(resume)[1:]]  # run exactly what was printed
    assert any(step > 0 for _, step in steps), f"no save landed inside an epoch: {steps}"
    done = subprocess.run(cmd, env=data_env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resume: " in done.stdout and "continuing at epoch" in done.stdout
    assert_same_run(reference(), run)


# ---------------------------------------------------------------------------------------------
# Out of memory during a step (in-process: a real torch.OutOfMemoryError from inside the forward)
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def tiny_cfg(tmp_path, monkeypatch):
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HARVIT_OFFLINE", "1")

    def make(name: str, **kw) -> Config:
        base = dict(encoder="vit_tiny_patch16_224", img_size=16, patch_size=8, embed_dim=32, depth=1, num_heads=2,
                    hidden_dims="16", mode="stack", encodings="gasf", freeze_encoder=False, epochs=2,
                    batch_size=32, progress=False, tensorboard=False, device="cpu", early_stopping_patience=0,
                    output_dir=str(tmp_path), run_name=name)
        return Config(**{**base, **kw})

    return make


def oom_above(limit: int):
    """A forward pre-hook: a training forward of more than ``limit`` images runs out of memory."""

    def hook(module, args):
        if module.training and args[0].shape[0] > limit:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {args[0].shape[0]} images")

    return hook


def test_out_of_memory_halves_the_micro_batch_and_keeps_the_effective_batch(tiny_cfg, tmp_path):
    """OOM at micro-batch 32: the step is retried at 16 with 2-fold accumulation; the run ends, the
    event is in training_results.json, metrics.jsonl records micro-batch 16 in every epoch, and the
    run equals one made with --batch-size 16 --accum-steps 2 from the start (same effective batch,
    same steps per epoch, same numbers)."""
    data = make_dataset(n_train=150, n_test=45)
    t = build_run(tiny_cfg("oom"), dataset=data)
    t.model.net.register_forward_pre_hook(oom_above(16))
    res = fit(t)
    assert res.events == ["out of memory: retrying the step at micro-batch 16 (x2 accumulation, same "
                             "effective batch)"]
    saved = json.loads((tmp_path / "oom" / "training_results.json").read_text())
    assert saved["events"] == res.events
    history = [json.loads(s) for s in (tmp_path / "oom" / "metrics.jsonl").read_text().splitlines()]
    assert [h["micro_batch"] for h in history] == [16, 16]
    assert ck.load_checkpoint(tmp_path / "oom" / "latest.pt")["micro_batch"] == 16

    ref = build_run(tiny_cfg("accum", batch_size=16, accum_steps=2), dataset=data)
    assert (ref.samples_per_step, ref.steps_per_epoch) == (t.samples_per_step, t.steps_per_epoch)
    ref_res = fit(ref)
    strip = {"epoch_time_s", "train_time_s", "samples_per_s"}
    assert [{k: v for k, v in h.items() if k not in strip} for h in ref.state.history] == \
           [{k: v for k, v in h.items() if k not in strip} for h in t.state.history]
    assert ref_res.test_loss == res.test_loss


def test_out_of_memory_at_micro_batch_1_is_one_clear_error(tiny_cfg):
    t = build_run(tiny_cfg("oom1", epochs=1), dataset=make_dataset())
    t.model.net.register_forward_pre_hook(oom_above(0))
    with pytest.raises(HarvitError, match="out of memory even at micro-batch 1") as e:
        fit(t)
    assert "\n" not in str(e.value)
    assert [ev.split("micro-batch ")[1].split()[0] for ev in t.state.events] == ["16", "8", "4", "2", "1"]


# ---------------------------------------------------------------------------------------------
# Disk full
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def restore_torch_state():
    """In-process runs made from CLI flags set torch's global thread count and determinism: restore them."""
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(det)


def cli_config(*argv: str) -> Config:
    """The Config the CLI makes from ``harvit train ARGV`` (same code path, no process)."""
    return config_from_args(build_parser().parse_args(["train", *argv]))[0]


def _disk_full(limit: int):
    def preexec() -> None:  # in the child: files may not grow past `limit` bytes -> writes fail with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def test_disk_full_is_one_line_exit_2_and_the_previous_checkpoint_survives(tmp_path, data_env, monkeypatch,
                                                                           restore_torch_state):
    """A full disk (RLIMIT_FSIZE: every file write past 64 KiB fails with EFBIG) when the epoch-end
    checkpoint is saved: one line ``harvit: error: cannot write ...``, exit 2, the previous latest.pt
    (saved mid-epoch by a SIGINT) unchanged and readable, no temporary file left; with space again
    --resume finishes the run."""
    for k in ("HARVIT_DATA_DIR", "HARVIT_CACHE_DIR", "HARVIT_OFFLINE"):
        monkeypatch.setenv(k, data_env[k])
    argv = [*FLAGS, "--output-dir", str(tmp_path), "--run-name", "full-disk", "--epochs", "2"]
    first = build_run(cli_config(*argv))
    calls = []

    def interrupt_on_third_step(module, args):
        calls.append(1)
        if module.training and len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # the trainer's own handler: save at the step boundary

    first.model.net.register_forward_pre_hook(interrupt_on_third_step)
    with pytest.raises(Interrupted):
        fit(first)
    run = tmp_path / "full-disk"
    before = {"latest.pt": (run / "latest.pt").read_bytes()}
    assert ck.load_checkpoint(run / "latest.pt")["step_in_epoch"] == 3
    assert len(before["latest.pt"]) > 64 * 1024

    cmd = [sys.executable, "-m", "harvit", "train", *argv, "--resume"]
    proc = subprocess.run(cmd, env=data_env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          preexec_fn=_disk_full(64 * 1024))
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert lines[0].startswith("harvit: error: cannot write ") and ".pt: File too large" in lines[0], lines[0]
    assert "previous file is unchanged" in lines[0]
    assert {n: (run / n).read_bytes() for n in before} == before
    assert ck.load_checkpoint(run / "latest.pt")["step_in_epoch"] == 3
    assert temp_files(run) == []

    again = build_run(cli_config(*argv, "--resume"))
    assert fit(again).epochs_run == 2


# ---------------------------------------------------------------------------------------------
# Safe loading
# ---------------------------------------------------------------------------------------------
def test_every_torch_load_in_src_passes_weights_only_true():
    """Every ``torch.load(...)`` call in src/ says ``weights_only=True`` (checked on the syntax tree)."""
    calls = []
    for path in sorted((ROOT / "src").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load" \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch":
                kw = {k.arg: k.value for k in node.keywords}
                ok = isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True
                calls.append((f"{path.relative_to(ROOT)}:{node.lineno}", ok))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id in ("pickle", "dill") \
                    and node.func.attr in ("load", "loads"):
                calls.append((f"{path.relative_to(ROOT)}:{node.lineno} {node.func.value.id}", False))
            if isinstance(node, ast.keyword) and node.arg == "allow_pickle" \
                    and isinstance(node.value, ast.Constant) and node.value.value is True:
                calls.append((f"{path.relative_to(ROOT)}:{node.lineno} allow_pickle=True", False))
    assert calls, "no torch.load found: the check is looking in the wrong place"
    assert [c for c, ok in calls if not ok] == []


class _Evil:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_checkpoints_hold_plain_data_and_a_pickle_payload_is_refused(tmp_path, tiny_cfg):
    """A real checkpoint loads under weights_only=True (tensors and plain data); a checkpoint file
    carrying code is refused with one clear error and the code never runs."""
    t = build_run(tiny_cfg("plain", epochs=1), dataset=make_dataset())
    fit(t)
    ckpt = torch.load(tmp_path / "plain" / "latest.pt", weights_only=True)
    assert ckpt["format"] == ck.FORMAT

    marker = tmp_path / "code-ran"
    evil = tmp_path / "evil.pt"
    torch.save({"format": ck.FORMAT, "version": 1, "model": _Evil(marker)}, evil)
    with pytest.raises(HarvitError, match="(?i)is not a readable harvit checkpoint .*unsupported global") as e:
        ck.load_checkpoint(evil)
    assert "\n" not in str(e.value) and "weights_only" not in str(e.value)
    assert not marker.exists()
    pickle.loads(pickle.dumps(_Evil(marker)))  # the payload is live: plain unpickling would run it
    assert marker.exists()
