"""``harvit train --no-report`` and ``--no-baselines``: quick experiments; the default keeps the full report."""

import json

import pytest
from synth import write_uci_layout

from harvit.cli import main

TINY = ["--dataset", "uci_har", "--encoder", "vit_tiny_patch16_224", "--img-size", "16", "--patch-size", "8",
        "--embed-dim", "32", "--depth", "1", "--num-heads", "2", "--hidden-dims", "16", "--mode", "stack",
        "--encodings", "gasf", "--batch-size", "32", "--no-progress", "--no-tensorboard", "--device", "cpu",
        "--threads", "1", "--early-stopping-patience", "0", "--epochs", "1", "--warmup-epochs", "0", "--no-pretrained"]


@pytest.fixture
def data(tmp_path, monkeypatch):
    """A small UCI HAR layout, a fresh cache, and the baselines without aeon (seconds, not minutes)."""
    import harvit.evaluation.baseline as bl

    monkeypatch.setenv("HARVIT_DATA_DIR", str(write_uci_layout(tmp_path / "data")))
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(bl, "load_aeon", lambda: None)
    return tmp_path


def _train(tmp_path, *flags):
    argv = ["train", *TINY, "--output-dir", str(tmp_path / "runs"),
            "--run-name", "r", *flags]
    assert main(argv) == 0
    return tmp_path / "runs" / "r"


def test_no_report_writes_no_report_and_no_baseline(data, capsys):
    run = _train(data, "--no-report")
    out = capsys.readouterr().out
    assert (run / "training_results.json").is_file()
    assert not (run / "report.md").exists() and not (run / "baseline.json").exists()
    assert "report:" not in out and out.strip().splitlines()[-1].startswith("done in ")
    assert json.loads((run / "config.json").read_text())["report"] is False


def test_no_baselines_writes_the_report_without_them(data, capsys):
    run = _train(data, "--no-baselines")
    text = (run / "report.md").read_text()
    assert "No baseline comparison: the baseline is turned off (--no-baselines)" in text
    assert not (run / "baseline.json").exists()
    assert "no baselines" in capsys.readouterr().out
    # harvit report on that run follows its config: still no baselines
    assert main(["report", str(run)]) == 0
    assert not (run / "baseline.json").exists()


def test_default_keeps_the_full_report(data, capsys):
    run = _train(data)
    text = (run / "report.md").read_text()
    assert (run / "baseline.json").is_file() and "## Baseline comparison" in text
    assert "the strongest baseline" in text and "baseline included" in capsys.readouterr().out
