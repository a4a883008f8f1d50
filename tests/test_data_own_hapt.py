"""HAPT's raw recordings written as one table give the built-in hapt6 windows (slow: real data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harvit.data import OwnOptions, load_dataset
from harvit.data.download import open_source
from harvit.data.hapt import MARKER, N_BASIC, RATE_HZ, TEST_SUBJECTS, locate_hapt, read_activity_labels, read_segments
from harvit.data.signals import parse_numeric_text

pytestmark = pytest.mark.slow


def write_hapt_table(data_dir: Path, out: Path) -> Path:
    """HAPT's raw recordings as one parquet table: subject, session, time_s, activity (the 6 basic ones;
    transitions and unlabelled samples empty), acc_x..z in g, gyro_x..z in rad/s."""
    frames = []
    with open_source(locate_hapt(data_dir, allow_download=False), MARKER) as src:
        classes = read_activity_labels(src)
        segments = read_segments(src, len(classes))
        for exp, user in dict.fromkeys((int(e), int(u)) for e, u in segments[:, :2]):
            acc, gyro = (parse_numeric_text(src.read(f"RawData/{s}_exp{exp:02d}_user{user:02d}.txt"), s, ncols=3)
                         for s in ("acc", "gyro"))
            activity = np.full(len(acc), "", dtype=object)
            for _e, _u, act, start, end, _line in segments[segments[:, 0] == exp]:
                if act <= N_BASIC:
                    activity[start - 1:end] = classes[act - 1]
            frame = pd.DataFrame({"subject": user, "session": exp, "time_s": np.arange(len(acc)) / RATE_HZ,
                                  "activity": activity})
            for k, axis in enumerate("xyz"):
                frame[f"acc_{axis}"] = acc[:, k]
            for k, axis in enumerate("xyz"):
                frame[f"gyro_{axis}"] = gyro[:, k]
            frames.append(frame)
    path = out / "hapt_table.parquet"
    table = pd.concat(frames, ignore_index=True)
    table["activity"] = table["activity"].replace("", None)
    table.to_parquet(path)
    return path


def test_hapt_as_table_matches_hapt6(shared_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HARVIT_OFFLINE", "1")
    path = write_hapt_table(shared_data_dir, tmp_path)
    test_subjects = ",".join(str(s) for s in sorted(TEST_SUBJECTS))
    options = OwnOptions(gravity_split="acc", lowpass=20.0, test_subjects=test_subjects)
    own = load_dataset(str(path), options=options)
    ref = load_dataset("hapt6", shared_data_dir)
    assert own.train.channels == ["body_acc_x", "body_acc_y", "body_acc_z", "gyro_x", "gyro_y", "gyro_z",
                                  "total_acc_x", "total_acc_y", "total_acc_z"]
    assert own.train.length == ref.train.length and own.train.rate_hz == ref.train.rate_hz
    assert own.test.subjects() == ref.test.subjects()
    lines = []
    for split in ("train", "test"):
        a, b = getattr(own, split), getattr(ref, split)
        counts_own = dict(zip(a.classes, a.class_counts(), strict=True))
        counts_ref = dict(zip(b.classes, b.class_counts(), strict=True))
        assert set(counts_own) == set(counts_ref)
        for name, n_ref in counts_ref.items():
            lines.append(f"{split:5s} {name:20s} table {counts_own[name]:5d}  hapt6 {n_ref:5d}")
            assert counts_own[name] == n_ref, lines[-1]
    # the same windows in the same order (experiments in file order), through the generic code path
    for split in ("train", "test"):
        a, b = getattr(own, split), getattr(ref, split)
        assert len(a) == len(b), split
        np.testing.assert_array_equal(np.array(a.classes)[a.y], np.array(b.classes)[b.y])
        np.testing.assert_array_equal(a.subject, b.subject)
        np.testing.assert_allclose(a.x, b.x, rtol=0, atol=1e-5)
    with capsys.disabled():
        print("\n" + "\n".join(lines))
