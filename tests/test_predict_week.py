"""benchmarks/predict_week.py: the week's blocks as written, and the windows' recall scored against them."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import predict_week as pw  # noqa: E402


def _pools(rate: float) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {c: rng.normal(k, 0.01, (int(rate * 30), 3)).astype(np.float32) for k, c in enumerate(pw.CLASSES)}


def test_blocks_cover_the_written_rows_and_match_the_truth(tmp_path: Path) -> None:
    rate = 1.0
    truth, rows, blocks = pw.write_week(tmp_path / "w.parquet", _pools(rate), days=2, rate=rate)
    times = pq.read_table(tmp_path / "w.parquet", columns=["time"]).column("time").to_numpy().astype(np.int64)
    assert rows == len(times) == 2 * 1440 * 60
    assert blocks[0][0] == times[0] and blocks[-1][1] == times[-1] + 10**9
    assert all(a[1] == b[0] for a, b in zip(blocks[:-1], blocks[1:], strict=True))
    assert [(e - s) / 60e9 for s, e, n in blocks if n == "non-wear"] == [75, 90]  # one a day, as day_plan says
    day0 = [b for b in blocks if b[0] < blocks[0][0] + 86_400 * 10**9]
    sitting = sum(e - s for s, e, n in day0 if n == "SITTING") / 60e9
    assert sitting == truth.loc[0, "SITTING"]


def test_window_recall_counts_raw_and_smoothed_calls() -> None:
    t0 = np.datetime64("2026-01-05T00:00:00", "ns").astype(np.int64)
    step = 2_560_000_000
    blocks = [(t0, t0 + 4 * step, "SITTING"), (t0 + 4 * step, t0 + 6 * step, "non-wear"),
              (t0 + 6 * step, t0 + 10 * step, "STANDING")]
    start = t0 + np.arange(10) * step
    raw = ["SITTING", "STANDING", "SITTING", "SITTING", "SITTING", "SITTING",
           "STANDING", "STANDING", "SITTING", "SITTING"]
    smoothed = ["SITTING"] * 4 + ["non-wear"] * 2 + ["STANDING"] * 3 + ["SITTING"]
    windows = pd.DataFrame({"time": pd.to_datetime(start).strftime("%Y-%m-%dT%H:%M:%S.%f"), "activity": smoothed,
                            "p_SITTING": [0.9 if r == "SITTING" else 0.1 for r in raw],
                            "p_STANDING": [0.1 if r == "SITTING" else 0.9 for r in raw]})
    recall = pw.window_recall(windows, blocks)
    assert recall == {"raw": {"SITTING": 0.75, "STANDING": 0.5}, "smoothed": {"SITTING": 1.0, "STANDING": 0.75}}
