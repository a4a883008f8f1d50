"""Profiler figures are positive and finite; OOM rows are marked; `harvit profile` runs without data."""

import json
import math

import numpy as np
import pytest
import torch
from helpers_runs import synthetic_windows, tiny_config
from torch import nn

from harvit.cli import main
from harvit.evaluation.inference import window_loader
from harvit.reporting.measure import peak_memory_mb, reset_peak_memory
from harvit.reporting.profile_command import build_random_model, n_classes, profile_command, random_windows
from harvit.reporting.profile_format import format_profile
from harvit.reporting.profiler import PerformanceProfiler, compare_amp_performance


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models on a shared 2-core runner: one intra-op thread is ~30x faster than two under load."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def profiler():
    torch.manual_seed(0)
    model = build_random_model(tiny_config("unused"), torch.device("cpu"), n_windows=64)
    return PerformanceProfiler(model, window_loader(synthetic_windows(24, [1, 2]), 8), steps=2, max_seconds=0.5)


def _positive(v) -> bool:
    return isinstance(v, int | float) and math.isfinite(v) and v > 0


def test_full_profile_figures_are_positive_and_finite(profiler, tmp_path):
    res = profiler.run_full_profile(tmp_path / "p.json", batch_sizes=[4, 8], trace_dir=tmp_path / "tr")
    p = res["profile"]
    for key in ("encode_ms", "forward_ms", "backward_ms", "step_ms", "train_images_per_s", "eval_ms",
                "eval_images_per_s", "peak_memory_mb"):
        assert _positive(p[key]), key
    assert p["batch_size"] == 8 and p["memory_kind"] in ("process_peak_rss", "process_lifetime_peak_rss")
    assert res["params_trainable"] > 0 and res["n_views"] == 1 and res["img_size"] == 16
    rows = res["batch_sizes"]
    assert [r["batch_size"] for r in rows] == [4, 8]
    assert all(r["status"] == "ok" and _positive(r["train_images_per_s"]) for r in rows)
    assert sum(r["best"] for r in rows) == 1 and res["best_batch_size"] in (4, 8)
    assert res["trace"]["files"] and "Name" in res["trace"]["top_ops"]
    saved = json.loads((tmp_path / "p.json").read_text())
    assert saved["profile"]["step_ms"] == p["step_ms"]
    text = format_profile(res)
    assert "images/s" in text and "<- best" in text


def test_oom_rows_are_marked_and_larger_sizes_skipped(profiler, monkeypatch):
    real = profiler.measure

    def measure(b, *a, **k):
        if b >= 8:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(b, *a, **k)

    monkeypatch.setattr(profiler, "measure", measure)
    rows = profiler.benchmark_batch_sizes([16, 4, 8])
    assert [(r["batch_size"], r["status"]) for r in rows] == [(4, "ok"), (8, "oom"), (16, "skipped")]
    assert rows[0]["best"] is True


class Linear(nn.Module):
    """A model without an imager: windows [B, C, T] -> scores [B, 4]."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(9 * 128, 4)

    def forward(self, x):
        return self.fc(x.flatten(1))


def test_any_window_model_and_module_level_amp_compare():
    x = torch.from_numpy(random_windows(16, [f"c{i}" for i in range(9)]))
    loader = [(x[:8], torch.zeros(8, dtype=torch.long)), (x[8:], torch.ones(8, dtype=torch.long))]
    prof = PerformanceProfiler(Linear(), loader, steps=2)
    row = prof.measure(8)
    assert row["encode_ms"] is None and _positive(row["forward_ms"]) and _positive(row["backward_ms"])
    amp = compare_amp_performance(Linear(), loader, steps=1)
    assert "CUDA-only" in amp["note"] and [r["precision"] for r in amp["rows"]] == ["fp32", "bf16"]
    assert amp["rows"][0]["status"] == "ok" and amp["rows"][0]["speedup"] == 1.0
    assert all(_positive(r["speedup"]) for r in amp["rows"] if r["status"] == "ok")


def test_peak_memory_is_positive():
    dev = torch.device("cpu")
    reset_peak_memory(dev)
    block = np.ones(8 * 2**20 // 8)  # 8 MiB touched
    assert peak_memory_mb(dev) > 8
    del block


def test_profile_command_needs_no_data(tmp_path, monkeypatch):
    import harvit.data

    def no_data(*a, **k):
        raise AssertionError("the profiler must not load data")

    monkeypatch.setattr(harvit.data.registry, "load_dataset", no_data)
    cfg = tiny_config(tmp_path, pretrained=True)  # must be ignored: no weights are fetched
    text = profile_command(cfg, out=tmp_path / "prof.json", batch_sizes=[4, 8], steps=1)
    assert "images/s" in text and "CUDA-only" in text  # the AMP comparison ran
    assert "bf16" in text
    saved = json.loads((tmp_path / "prof.json").read_text())
    assert saved["config"]["encoder"] == "vit_tiny_patch16_224" and saved["window_shape"] == [9, 128]


def test_profile_cli(tmp_path, capsys):
    flags = ["--encoder", "vit_tiny_patch16_224", "--img-size", "16", "--patch-size", "8", "--embed-dim", "32",
             "--depth", "1", "--num-heads", "2", "--hidden-dims", "16", "--mode", "stack", "--encodings", "gasf",
             "--no-freeze-encoder", "--device", "cpu", "--batch-size", "8", "--threads", "1"]
    out = tmp_path / "p.json"
    assert main(["profile", "--out", str(out), "--batch-sizes", "4,8", "--steps", "1", *flags]) == 0
    assert "images/s" in capsys.readouterr().out
    assert json.loads(out.read_text())["profile"]["batch_size"] == 8


def test_head_size_comes_from_the_data_set_registry():
    assert (n_classes("hapt12"), n_classes("hapt6"), n_classes("uci_har")) == (12, 6, 6)
    assert n_classes("my_recordings.csv") == 6  # your own data: the profiler does not load it
