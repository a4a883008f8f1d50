"""One logger set up by the CLI: data messages are shown; a piped run gets plain lines, no bar frames."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from synth import write_uci_layout

from harvit.data.download import download
from harvit.utils.logging import LOGGER_NAME, log, setup_logging

ROOT = Path(__file__).resolve().parents[1]


def test_log_reaches_stdout_without_any_set_up(capsys) -> None:
    logger = logging.getLogger(LOGGER_NAME)
    saved = logger.handlers[:]
    logger.handlers.clear()
    try:
        log("hello from the trainer")
        assert "hello from the trainer" in capsys.readouterr().out
    finally:
        logger.handlers[:] = saved


def test_a_download_is_said_aloud(tmp_path, capsys) -> None:
    src = tmp_path / "archive.zip"
    src.write_bytes(b"x" * 300_000)
    setup_logging()
    download(src.as_uri(), tmp_path / "out" / "archive.zip")
    out = capsys.readouterr().out
    assert "downloading file://" in out and "downloaded 0.3 MB in" in out


def test_a_piped_run_logs_one_plain_line_per_epoch_and_data_preparation(tmp_path) -> None:
    """stdout is a pipe: no tqdm frames (no carriage returns), one 'epoch k/2' line per epoch, and the
    data layer's 'preparing ...' line reaches the user."""
    data = tmp_path / "data"
    write_uci_layout(data)
    env = {**os.environ, "HARVIT_DATA_DIR": str(data), "HARVIT_CACHE_DIR": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "harvit", "train", "--dataset", "uci_har", "--encoder", "vit_tiny_patch16_224",
           "--img-size", "16", "--patch-size", "8", "--embed-dim", "32", "--depth", "1", "--num-heads", "2",
           "--hidden-dims", "16", "--mode", "stack", "--encodings", "gasf", "--no-freeze-encoder",
           "--batch-size", "32", "--no-tensorboard", "--device", "cpu", "--threads", "1", "--epochs", "2",
           "--early-stopping-patience", "0", "--output-dir", str(tmp_path / "runs"), "--run-name", "r"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout + proc.stderr
    assert "\r" not in text
    epochs = [ln for ln in proc.stdout.splitlines() if ln.startswith("epoch ")]
    assert [ln.split(":")[0] for ln in epochs] == ["epoch 1/2", "epoch 2/2"]
    assert "preparing uci_har windows" in proc.stdout
