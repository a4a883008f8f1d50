"""CUDA paths through the real CLI (issue 16): AMP in bf16 and fp16, ``--compile``, the feature cache on the
device, ONNX export of a CUDA-trained run, and the out-of-memory back-off with a real CUDA OOM.

Every test is marked ``gpu`` (left out of the default run) and skipped without CUDA. They drive
``python -m harvit train|export`` as real processes with tiny models on a small synthetic UCI HAR
layout, so they depend only on the CLI flags, the run folder layout and the checkpoint format, not
on harvit's module layout. The training processes of the module run together once, a few at a time;
each test then reads its own result.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from synth import write_uci_layout

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--preset", "cpu", "--dataset", "uci_har", "--encoder", "vit_tiny_patch16_224", "--img-size", "16",
        "--patch-size", "8", "--embed-dim", "32", "--depth", "1", "--num-heads", "2", "--hidden-dims", "16",
        "--mode", "stack", "--encodings", "gasf", "--no-freeze-encoder", "--batch-size", "32", "--epochs", "1",
        "--early-stopping-patience", "0", "--no-progress", "--no-tensorboard", "--device", "cuda"]
#: The OOM case: 512 flatten images of 224 px per step need gigabytes; the allocator is capped far below that.
OOM_FLAGS = ["--img-size", "224", "--patch-size", "8", "--embed-dim", "64", "--depth", "2", "--mode", "flatten",
             "--encodings", "gasf,gadf,mtf", "--batch-size", "512", "--eval-batch-size", "16"]
OOM_CAP_BYTES = 256 * 2**20
#: `python -m harvit` with the caching allocator capped: out-of-memory is then a real torch.OutOfMemoryError.
CAPPED_MAIN = ("import runpy, sys, torch; "
               "torch.cuda.set_per_process_memory_fraction({cap} / torch.cuda.get_device_properties(0).total_memory); "
               "sys.argv = ['harvit', *sys.argv[1:]]; runpy.run_module('harvit', run_name='__main__')")

#: case -> (extra train flags, capped allocator)
CASES: dict[str, tuple[list[str], bool]] = {
    "bf16": (["--amp-dtype", "bf16"], False),
    "fp16": (["--amp-dtype", "fp16"], False),
    "compile": (["--compile"], False),
    "cache": (["--freeze-encoder"], False),
    "cache_again": (["--freeze-encoder"], False),  # same settings and cache folder: the features are loaded
    "oom": (OOM_FLAGS, True),
}


@dataclass
class Run:
    proc: subprocess.CompletedProcess
    run_dir: Path

    @property
    def results(self) -> dict:
        return json.loads((self.run_dir / "training_results.json").read_text())

    @property
    def metrics(self) -> list[dict]:
        return [json.loads(line) for line in (self.run_dir / "metrics.jsonl").read_text().splitlines()]

    def ok(self) -> None:
        assert self.proc.returncode == 0, self.proc.stdout[-3000:] + self.proc.stderr[-3000:]


def harvit_env(root: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "HARVIT_CACHE_DIR": str(root / "cache"), "HARVIT_OFFLINE": "1",
            "MPLBACKEND": "Agg"}


def train_case(name: str, root: Path, data: Path) -> Run:
    flags, capped = CASES[name]
    head = ([sys.executable, "-c", CAPPED_MAIN.format(cap=OOM_CAP_BYTES)] if capped
            else [sys.executable, "-m", "harvit"])
    argv = [*head, "train", *TINY, *flags, "--data-dir", str(data), "--output-dir", str(root / "runs"),
            "--run-name", name]
    proc = subprocess.run(argv, env=harvit_env(root), cwd=root, capture_output=True, text=True, timeout=600)
    return Run(proc, root / "runs" / name)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Every case trained once; `cache_again` after `cache`, the others alongside."""
    root = tmp_path_factory.mktemp("gpu-runs")
    data = write_uci_layout(root / "data", n_train=120, n_test=60)
    done: dict[str, Run] = {}

    def cache_pair() -> None:
        done["cache"] = train_case("cache", root, data)
        done["cache_again"] = train_case("cache_again", root, data)

    others = [n for n in CASES if not n.startswith("cache")]
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        futures = [pool.submit(cache_pair)] + [pool.submit(lambda n=n: done.__setitem__(n, train_case(n, root, data)))
                                               for n in others]
        for f in futures:
            f.result()
    return done


def assert_trained_on_cuda(run: Run, learned: bool = True) -> None:
    """The run trained on CUDA, its losses are finite and its saved test accuracy is its predictions';
    ``learned``: above chance too (not for a run of a single optimiser step)."""
    run.ok()
    res = run.results
    assert res["device"].startswith("cuda") and res["device_name"] != "cpu"
    assert all(math.isfinite(m["train_loss"]) and math.isfinite(m["val_loss"]) for m in run.metrics)
    y_true, y_pred = res["test_y_true"], res["test_y_pred"]
    assert len(y_true) == len(y_pred) == 60  # write_uci_layout's test windows
    assert res["test_accuracy"] == sum(t == p for t, p in zip(y_true, y_pred, strict=True)) / 60
    assert not learned or res["test_accuracy"] > 0.5  # 6 separable classes (chance 1/6): the CPU run learns them


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_amp_training_step_on_cuda(runs: dict[str, Run], dtype: str) -> None:
    run = runs[dtype]
    assert_trained_on_cuda(run)
    assert run.results["config"]["amp"] is True and run.results["config"]["amp_dtype"] == dtype
    ckpt = torch.load(run.run_dir / "latest.pt", map_location="cpu", weights_only=True)
    scaler = ckpt.get("grad_scaler") or {}
    if dtype == "fp16":  # fp16 trains through the gradient scaler; bf16 needs none
        assert scaler.get("scale") is not None, scaler


def test_compile_on_cuda(runs: dict[str, Run]) -> None:
    run = runs["compile"]
    assert_trained_on_cuda(run)
    assert run.results["config"]["compile"] is True


def test_feature_cache_on_the_device_then_loaded(runs: dict[str, Run]) -> None:
    first, again = runs["cache"], runs["cache_again"]
    assert_trained_on_cuda(first)
    assert_trained_on_cuda(again)
    for line in ("feature cache: on", "feature cache: train (", "computed"):
        assert line in first.proc.stdout, first.proc.stdout
    assert "kept on the host" not in first.proc.stdout  # small features stay on the GPU
    assert first.results["feature_cache_s"] > 0
    assert "loaded" in again.proc.stdout and "computed" not in again.proc.stdout, again.proc.stdout


def test_onnx_export_of_a_cuda_trained_run(runs: dict[str, Run], tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    run = runs["bf16"]
    run.ok()
    out = tmp_path / "model.onnx"
    proc = subprocess.run([sys.executable, "-m", "harvit", "export", str(run.run_dir), "--out", str(out)],
                          env=harvit_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert out.is_file() and out.stat().st_size > 0
    assert "verified with onnxruntime" in proc.stdout
    assert json.loads(Path(f"{out}.json").read_text())  # the sidecar


def test_out_of_memory_backs_off_to_a_smaller_micro_batch(runs: dict[str, Run]) -> None:
    run = runs["oom"]
    assert_trained_on_cuda(run, learned=False)  # 120 windows at --batch-size 512: one optimiser step
    assert any("out of memory" in e for e in run.results["events"]), run.results["events"]
    assert "out of memory: retrying the step at micro-batch" in run.proc.stdout
    micro = [m["micro_batch"] for m in run.metrics]
    assert micro and all(1 <= b < 512 for b in micro), micro
