"""Shared test helpers: small synthetic windows and a TINY trained run (seconds on a CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harvit.config import Config
from harvit.data.windows import Dataset, Windows

CHANNELS = [f"{s}_{a}" for s in ("body_acc", "body_gyro", "total_acc") for a in "xyz"]
CLASSES = ["WALKING", "WALKING_UPSTAIRS", "SITTING", "LAYING"]
GRAVITY = np.array([[1.0, 0.0, 0.0], [0.9, 0.3, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])

TINY: dict[str, Any] = dict(
    encoder="vit_tiny_patch16_224", img_size=16, patch_size=8, embed_dim=32, depth=1, num_heads=2,
    mode="stack", encodings="gasf", freeze_encoder=False, epochs=2, batch_size=32, hidden_dims="16",
    progress=False, tensorboard=False, device="cpu", early_stopping_patience=0, lr=3e-3, threads=1,
)


def synthetic_windows(n: int, subjects: list[int], seed: int = 0, length: int = 128) -> Windows:
    """Windows [n, 9, length] at 50 Hz; class k sets a body frequency (k + 1 Hz), a mean offset and
    a gravity direction, so classes differ by mean and frequency."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % len(CLASSES)
    rng.shuffle(y)
    t = np.arange(length) / 50.0
    x = rng.normal(0.0, 0.15, (n, 9, length))
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    x[:, :6] += 0.8 * np.sin(2 * np.pi * (y[:, None] + 1.0) * t + phase)[:, None, :]
    x[:, :3] += 0.1 * y[:, None, None]
    gravity = GRAVITY[y]
    x[:, 6:] += (gravity / np.linalg.norm(gravity, axis=1, keepdims=True))[:, :, None]
    subject = np.asarray(subjects)[np.arange(n) % len(subjects)]
    return Windows(x.astype(np.float32), y, subject, list(CHANNELS), list(CLASSES), 50.0)


def synthetic_dataset(n_train: int = 200, n_test: int = 80, seed: int = 0) -> Dataset:
    """Train subjects 1, 3, 5, 6, 7 (validation takes one of them); test subjects 2, 4."""
    return Dataset("synthetic", synthetic_windows(n_train, [1, 3, 5, 6, 7], seed),
                   synthetic_windows(n_test, [2, 4], seed + 1))


def tiny_config(output_dir: str | Path, **overrides: Any) -> Config:
    return Config(**{**TINY, "output_dir": str(output_dir), "run_name": "tiny", **overrides})


def train_tiny_run(output_dir: str | Path, dataset: Dataset | None = None, **overrides: Any) -> Path:
    """Train a TINY run on synthetic windows; returns its run folder."""
    from harvit.training import train

    cfg = tiny_config(output_dir, **overrides)
    train(cfg, dataset=dataset if dataset is not None else synthetic_dataset())
    return cfg.run_dir


def is_png(path: str | Path, min_bytes: int = 1024) -> bool:
    """A PNG file (signature bytes) larger than ``min_bytes`` that matplotlib reads back as an image."""
    import matplotlib.image as mpimg

    data = Path(path).read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n") or len(data) <= min_bytes:
        return False
    img = mpimg.imread(str(path))
    return img.ndim == 3 and img.shape[0] > 10 and img.shape[1] > 10
