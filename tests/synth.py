"""Small synthetic data for tests: activity-like windows and the UCI HAR file layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harvit.data.windows import Dataset, Windows

CHANNELS = [f"{s}_{a}" for s in ("body_acc", "body_gyro", "total_acc") for a in "xyz"]
CLASSES = ["WALKING", "SITTING", "LAYING"]


def make_windows(n: int, subjects: list[int], seed: int = 0, n_classes: int = 3, length: int = 128) -> Windows:
    """Windows [n, 9, length] whose class sets a frequency and a gravity direction (learnable)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    t = np.arange(length) / 50.0
    x = rng.normal(0.0, 0.2, (n, 9, length))
    freq = (y + 1.0)[:, None]
    x[:, :6] += 0.8 * np.sin(2 * np.pi * freq * t)[:, None, :]
    gravity = np.eye(3)[y % 3]
    x[:, 6:] += gravity[:, :, None]
    subject = np.asarray(subjects)[np.arange(n) % len(subjects)]
    classes = CLASSES if n_classes == 3 else [f"C{i}" for i in range(n_classes)]
    return Windows(x.astype(np.float32), y, subject, list(CHANNELS), classes, 50.0)


def make_dataset(n_train: int = 240, n_test: int = 90, seed: int = 0) -> Dataset:
    return Dataset("synthetic", make_windows(n_train, [1, 3, 5, 6, 7], seed),
                   make_windows(n_test, [2, 4], seed + 1))


def write_uci_layout(root: Path, n_train: int = 120, n_test: int = 60, seed: int = 0) -> Path:
    """Write ``root/uci_har/UCI HAR Dataset`` in the official layout (6 classes); returns the data dir."""
    base = root / "uci_har" / "UCI HAR Dataset"
    names = ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING"]
    (base).mkdir(parents=True, exist_ok=True)
    (base / "activity_labels.txt").write_text("".join(f"{i + 1} {n}\n" for i, n in enumerate(names)))
    for split, n, subjects, s in (("train", n_train, [1, 3, 5, 6, 7, 8], seed), ("test", n_test, [2, 4], seed + 1)):
        w = make_windows(n, subjects, s, n_classes=6)
        d = base / split
        (d / "Inertial Signals").mkdir(parents=True, exist_ok=True)
        np.savetxt(d / f"y_{split}.txt", w.y + 1, fmt="%d")
        np.savetxt(d / f"subject_{split}.txt", w.subject, fmt="%d")
        for c, name in enumerate(CHANNELS):
            np.savetxt(d / "Inertial Signals" / f"{name}_{split}.txt", w.x[:, c, :], fmt="%.7e")
    return root
