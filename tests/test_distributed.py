"""DDP through torchrun (issue 14): real processes on the CPU with gloo, each run bounded by a timeout.

The run: a small ViT on a synthetic UCI-HAR-layout data set whose validation (25) and test (45) window
counts do not divide by the world size, evaluated in batches of 8 windows, so the ranks' shares of every
evaluation are uneven. Under ``--deterministic`` two processes with the global batch B train as one
process with B does (the same epoch losses within 1e-5 relative, the same predictions).

The kill -9 / resume and SIGTERM tests are marked slow (several runs each): ``pytest -m slow
tests/test_distributed.py`` runs them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from synth import write_uci_layout

from harvit.data import load_dataset
from harvit.evaluation.evaluate import select_split
from harvit.evaluation.inference import Split, evaluate_split
from harvit.models import checkpoint as ck
from harvit.models.loading import load_trained
from harvit.training.distributed import Dist

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 4
FLAGS = ["--dataset", "uci_har", "--epochs", str(EPOCHS), "--encoder", "vit_tiny_patch16_224", "--img-size", "16",
         "--patch-size", "8", "--embed-dim", "32", "--depth", "1", "--num-heads", "2", "--hidden-dims", "16",
         "--mode", "stack", "--encodings", "gasf", "--no-freeze-encoder", "--batch-size", "32",
         "--eval-batch-size", "8", "--dropout", "0", "--image-dropout", "0", "--warmup-epochs", "1",
         "--no-progress", "--no-tensorboard", "--device", "cpu", "--deterministic", "--threads", "1",
         "--early-stopping-patience", "0"]
TIME_KEYS = ("epoch_time_s", "train_time_s", "samples_per_s", "feature_cache_s")
TIMEOUT = 240


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("ddp-data")
    write_uci_layout(root, n_train=150, n_test=45)
    return {**os.environ, "HARVIT_DATA_DIR": str(root), "HARVIT_CACHE_DIR": str(root / "cache"),
            "HARVIT_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1", "HARVIT_DIST_TIMEOUT_S": "60"}


def torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", *args]


def harvit_train(out: Path, name: str, *extra: str) -> list[str]:
    return ["-m", "harvit", "train", *FLAGS, "--output-dir", str(out), "--run-name", name, *extra]


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env, cwd=log.parent, stdout=log.open("w"), stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen, log: Path, code: int = 0) -> str:
    try:
        proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert proc.returncode == code, text[-3000:]
    return text


def records(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(s).items() if k not in TIME_KEYS}
            for s in (run / "metrics.jsonl").read_text().splitlines()]


def assert_same_training(a: Path, b: Path, rel: float = 1e-5) -> None:
    """Per-epoch losses within ``rel``, accuracies and test metrics equal."""
    ra, rb = records(a), records(b)
    assert len(ra) == len(rb) == EPOCHS
    for x, y in zip(ra, rb, strict=True):
        for key in ("train_loss", "val_loss"):
            assert y[key] == pytest.approx(x[key], rel=rel), (key, x, y)
        for key in ("epoch", "train_acc", "val_acc", "val_view_acc", "lr", "micro_batch", "best_val_acc"):
            assert y[key] == pytest.approx(x[key], rel=1e-9), (key, x, y)
    ta = json.loads((a / "training_results.json").read_text())
    tb = json.loads((b / "training_results.json").read_text())
    for key in ("test_accuracy", "test_macro_f1", "confusion_matrix", "per_class_accuracy", "best_epoch"):
        assert ta[key] == tb[key], key
    assert tb["test_loss"] == pytest.approx(ta["test_loss"], rel=rel)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, env):
    """One process and two processes (torchrun) with the same global batch, run side by side."""
    out = tmp_path_factory.mktemp("ddp-reference")
    one = start([sys.executable, *harvit_train(out, "one")], env, out / "one.log")
    two = start(torchrun("--standalone", "--nproc_per_node=2", *harvit_train(out, "two")), env, out / "two.log")
    finish(one, out / "one.log")
    return out, finish(two, out / "two.log")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def workers_of(pid: int) -> dict[int, int]:
    """rank -> pid of the worker processes a torchrun agent started."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                environ = (stat.parent / "environ").read_bytes().split(b"\0")
                rank = next(int(e[5:]) for e in environ if e.startswith(b"RANK="))
                out[rank] = int(stat.parent.name)
    return out


# ---------------------------------------------------------------------------------------------
def test_ranks_share_whole_batches_and_steps_without_duplicates():
    for n, per, world in [(25, 8, 2), (45, 8, 2), (7, 8, 3), (0, 8, 2), (100, 3, 4)]:
        shares = [Dist(r, world, r).batch_rows(n, per) for r in range(world)][0]
        rows = [i for s in shares for i in range(s.start, s.stop)]
        assert rows == list(range(n))
        assert all(s.start % per == 0 for s in shares if s.stop > s.start)
    idx = torch.randperm(33)
    parts = [Dist(r, 4, r).share(idx) for r in range(4)]
    assert torch.equal(torch.cat(parts), idx) and {len(p) for p in parts} == {8, 9}
    assert [len(Dist(r, 4, r).share(idx[:3])) for r in range(4)] == [1, 1, 1, 0]


def test_two_processes_train_as_one_with_the_same_global_batch(reference, env):
    """2 processes x global batch 32 = 1 process x 32: epoch losses within 1e-5, the same accuracies and
    predictions (validation and test shares are uneven: 25 and 45 windows in batches of 8)."""
    out, log = reference
    assert_same_training(out / "one", out / "two")
    results = json.loads((out / "two" / "training_results.json").read_text())
    assert results["world_size"] == 2
    assert sum(map(sum, results["confusion_matrix"])) == 45
    assert "[rank 0/2] epoch 1/" in log and "[rank 1/2]" not in log  # rank 0 speaks, once
    assert log.count("report: ") == 1
    assert ck.load_checkpoint(out / "two" / "latest.pt")["world_size"] == 2
    # the validation predictions of the two best.pt files are the same
    ds = load_dataset("uci_har", env["HARVIT_DATA_DIR"])
    val = select_split(ds, "val", 0.2, 42)
    preds = []
    for name in ("one", "two"):
        tm = load_trained(out / name / "best.pt", "cpu")
        preds.append(evaluate_split(tm.model, Split.from_windows("val", val, torch.device("cpu")), 8,
                                    contextlib.nullcontext)["y_pred"])
    assert len(val) == 25 and torch.equal(preds[0], preds[1])


def test_kill_9_of_one_rank_then_resume_at_2_and_at_1_process(reference, env, tmp_path):
    """kill -9 of rank 1 mid-run: torchrun stops the other rank. ``--resume`` under torchrun finishes with
    the uninterrupted run's numbers; a copy resumed by one process (another world size, the same global
    batch, said in the log) finishes with them too."""
    out, _ = reference
    proc = start(torchrun("--standalone", "--nproc_per_node=2", *harvit_train(tmp_path, "cut")), env,
                 tmp_path / "cut.log")
    latest, deadline, killed = tmp_path / "cut" / "latest.pt", time.time() + TIMEOUT, False
    while proc.poll() is None and time.time() < deadline:
        if latest.is_file():
            workers = workers_of(proc.pid)
            if 1 in workers:
                os.kill(workers[1], signal.SIGKILL)
                killed = True
                break
        time.sleep(0.01)
    text = finish(proc, tmp_path / "cut.log", code=1)
    assert killed, text[-2000:]
    assert "exitcode  : -9" in text
    assert ck.load_checkpoint(latest)["epoch"] < EPOCHS
    shutil.copytree(tmp_path / "cut", tmp_path / "cut1")
    two = start(torchrun("--standalone", "--nproc_per_node=2", *harvit_train(tmp_path, "cut", "--resume")), env,
                tmp_path / "resume2.log")
    one = start([sys.executable, *harvit_train(tmp_path, "cut1", "--resume")], env, tmp_path / "resume1.log")
    assert "continuing at epoch" in finish(two, tmp_path / "resume2.log")
    text = finish(one, tmp_path / "resume1.log")
    assert "was written by 2 process(es); continuing with 1, the same global batch of 32" in text
    assert_same_training(out / "two", tmp_path / "cut")
    assert_same_training(out / "two", tmp_path / "cut1")


def test_two_torchrun_agents_over_loopback_write_one_run_folder(reference, env, tmp_path):
    """Two "nodes" on this machine (two torchrun agents, one process each, rendezvous on 127.0.0.1)."""
    out, _ = reference
    port = str(free_port())
    agents = [start(torchrun("--nnodes=2", f"--node_rank={node}", "--nproc_per_node=1", "--master_addr=127.0.0.1",
                             f"--master_port={port}", *harvit_train(tmp_path, "nodes")), env,
                    tmp_path / f"node{node}.log")
              for node in (0, 1)]
    logs = [finish(a, tmp_path / f"node{i}.log") for i, a in enumerate(agents)]
    assert "[rank 0/2] test: accuracy" in logs[0] and "test: accuracy" not in logs[1]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["nodes"]
    assert_same_training(out / "two", tmp_path / "nodes")


@pytest.mark.parametrize("extra, message", [
    (["--bogus"], "harvit: error: unrecognized arguments: --bogus"),
    (["--dataset", "hapt6", "--data-dir", "/nonexistent"], "harvit: error: HAPT data not found"),
])
def test_bad_flag_or_missing_data_under_torchrun_is_one_line_exit_2(env, tmp_path, extra, message):
    """Every rank ends with exit code 2 (torchrun reports its workers' failure and exits 1), harvit's line
    is printed once, by rank 0, and nothing hangs."""
    t0 = time.monotonic()
    proc = subprocess.run(torchrun("--standalone", "--nproc_per_node=2", *harvit_train(tmp_path, "bad", *extra)),
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "harvit: error:" in ln]
    assert len(lines) == 1 and lines[0].startswith(message), proc.stderr[-3000:]
    assert proc.returncode == 1 and "exitcode  : 2" in proc.stderr, proc.stderr[-3000:]
    assert "[rank0]: Traceback" not in proc.stderr and "[rank1]: Traceback" not in proc.stderr
    assert time.monotonic() - t0 < 100
    assert not (tmp_path / "bad" / "latest.pt").exists()


@pytest.mark.slow  # two runs after the reference
def test_sigterm_to_torchrun_saves_once_and_resume_equals_uninterrupted(reference, env, tmp_path):
    """SIGTERM to torchrun: the ranks agree on the step, rank 0 saves latest.pt, every rank exits 143; the
    resumed run ends with the uninterrupted run's numbers."""
    out, _ = reference
    proc = start(torchrun("--standalone", "--nproc_per_node=2", *harvit_train(tmp_path, "sig")), env,
                 tmp_path / "sig.log")
    latest, deadline = tmp_path / "sig" / "latest.pt", time.time() + TIMEOUT
    while proc.poll() is None and time.time() < deadline and not latest.is_file():
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=TIMEOUT)
    text = (tmp_path / "sig.log").read_text()
    assert proc.returncode != 0 and text.count("interrupted: saved ") == 1, text[-3000:]
    assert ck.load_checkpoint(latest)["epoch"] < EPOCHS
    again = start(torchrun("--standalone", "--nproc_per_node=2", *harvit_train(tmp_path, "sig", "--resume")), env,
                  tmp_path / "again.log")
    finish(again, tmp_path / "again.log")
    assert_same_training(out / "two", tmp_path / "sig")


@pytest.mark.slow  # one more run
def test_out_of_memory_on_one_rank_halves_every_rank_together(reference, env, tmp_path):
    """Rank 1 alone runs out of memory above 8 images: the ranks agree before the gradient exchange, all
    halve (32 -> 16 -> 8 images per micro-batch), and the run ends with the reference's numbers."""
    out, _ = reference
    cmd = torchrun("--standalone", "--nproc_per_node=2", str(ROOT / "tests" / "ddp_oom_entry.py"),
                   *harvit_train(tmp_path, "oom")[2:])
    finish(start(cmd, {**env, "HARVIT_TEST_OOM_ABOVE": "8"}, tmp_path / "oom.log"), tmp_path / "oom.log")
    results = json.loads((tmp_path / "oom" / "training_results.json").read_text())
    assert [e.split("micro-batch ")[1].split()[0] for e in results["events"]] == ["16", "8"]
    assert [r["micro_batch"] for r in records(tmp_path / "oom")] == [8] * EPOCHS
    ra, rb = records(out / "two"), records(tmp_path / "oom")
    for x, y in zip(ra, rb, strict=True):
        assert y["train_loss"] == pytest.approx(x["train_loss"], rel=1e-5)
        assert y["val_acc"] == x["val_acc"]
