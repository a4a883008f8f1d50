"""Own data in the layouts public HAR data sets ship in: WISDM's header-less text, nested folders, ns clocks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harvit.cli import main
from harvit.data import OwnOptions, load_dataset, train_val_split
from harvit.data.timebase import detect_unit
from harvit.utils.errors import HarvitError

ACTIVITIES = ("Walking", "Jogging", "Upstairs", "Sitting")
TINY = ["--encoder", "vit_tiny_patch16_224", "--img-size", "16", "--patch-size", "8", "--embed-dim", "32",
        "--depth", "1", "--num-heads", "2", "--hidden-dims", "16", "--mode", "stack", "--encodings", "gasf",
        "--batch-size", "32", "--no-progress", "--no-tensorboard", "--device", "cpu", "--threads", "1",
        "--epochs", "1"]


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path / "cache"))


def wisdm_lines(users=(33, 7, 12, 20), seconds: float = 20.0, seed: int = 0) -> list[str]:
    """WISDM v1.1's raw layout: ``user,activity,timestamp,x,y,z;`` without a header, timestamps in ns since the
    phone booted (~1e13), 20 Hz with jitter, each (user, activity) session on its own clock, user 33 holding
    most of the data."""
    rng = np.random.default_rng(seed)
    lines = []
    for user in users:
        for k, activity in enumerate(ACTIVITIES):
            n = int(seconds * 20 * (4 if user == 33 else 1))
            boot = int(rng.integers(10**12, 9 * 10**13))  # a session's clock: ns since its boot
            t = boot + np.cumsum(rng.normal(50e6, 2e6, n)).astype(np.int64)
            xyz = rng.normal(k, 1.0, (n, 3))
            lines += [f"{user},{activity},{t[i]},{xyz[i, 0]:.6g},{xyz[i, 1]:.6g},{xyz[i, 2]:.6g};" for i in range(n)]
    return lines


def write_wisdm(path: Path, lines: list[str]) -> Path:
    # the real file's quirks: two records on one line, and a malformed line
    lines = list(lines)
    lines[10] = lines[10] + lines.pop(11)
    lines.insert(500, "33,Walking,49106062271000,5.012288,;")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_nanoseconds_since_boot_are_nanoseconds():
    t = 49105962326000 + np.arange(200) * 50_000_000  # 20 Hz in ns, ~4.9e13: looks like ms since 1970
    assert detect_unit("timestamp", t.astype(np.float64)) == "ns"
    assert detect_unit("timestamp", 1_700_000_000_000 + np.arange(200) * 20.0) == "ms"  # epoch ms at 50 Hz
    assert detect_unit("time", np.arange(200) * 0.01) == "s"
    assert detect_unit("t_ms", np.arange(200) * 0.01) == "ms"  # the name suffix wins
    assert detect_unit("time", 1_700_000_000 + np.arange(200) * 1.0) == "s"  # 1 Hz or 1 kHz: the epoch decides


def test_wisdm_layout_loads_with_no_flag(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    path = write_wisdm(tmp_path / "WISDM_ar_v1.1_raw.txt", wisdm_lines())
    caplog.set_level("INFO", logger="harvit.data")
    ds = load_dataset(str(path))
    assert ds.train.rate_hz == 20.0 and ds.train.length == round(2.56 * 20)
    assert ds.train.classes == sorted(ACTIVITIES) and ds.train.channels == ["col4", "col5", "col6"]
    assert sorted(ds.train.subjects() + ds.test.subjects()) == [7, 12, 20, 33]
    assert "column 1 the subject, column 2 the label, column 3 the time" in caplog.text
    assert "time column 'time' is in ns" in caplog.text
    assert "skipped 1 malformed line(s)" in caplog.text
    # 4 users x 4 sessions, each its own clock: steps back start pieces, none is cut at a gap
    assert ds.train.meta["load_stats"]["pieces"] == 16 and ds.train.meta["load_stats"]["time_units"] == ["ns"]


def test_a_folder_of_files_is_summarised_once_in_the_log(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    """WISDM 2019's layout, one file per person with the activities appended: what each file's time shows is
    said once for the folder, the counts summed, not three lines a file."""
    folder = tmp_path / "accel"
    folder.mkdir()
    users = (7, 12, 20)
    for user in users:
        (folder / f"data_{user}_accel_watch.txt").write_text("\n".join(wisdm_lines(users=(user,))) + "\n")
    caplog.set_level("INFO", logger="harvit.data")
    load_dataset(str(folder))
    text = caplog.text
    assert text.count("time column 'time' is in ns") == 1
    assert f"{len(users)} files (" in text
    # each file: 4 sessions on their own clocks (a clock that starts later is a gap, one that starts earlier a
    # step back): 1 recording in 4 pieces a file
    assert text.count("time steps back") <= 1
    assert f"{len(users)} recording(s) split into {4 * len(users)} pieces" in text
    assert not any(f"data_{u}_accel_watch.txt: time" in text for u in users)


def test_wisdm_layout_trains(tmp_path: Path):
    path = write_wisdm(tmp_path / "wisdm.txt", wisdm_lines(users=(33, 7, 12, 20, 21), seconds=8.0))
    run = tmp_path / "runs"
    code = main(["train", "--dataset", str(path), "--test-subjects", "21", *TINY, "--output-dir", str(run),
                 "--run-name", "w"])
    assert code == 0 and (run / "w" / "training_results.json").is_file()
    results = json.loads((run / "w" / "training_results.json").read_text())
    choice = results["val_choice"]
    assert choice["windows"] == results["split"]["val"]["windows"] and choice["how"] == "window share"
    report = (run / "w" / "report.md").read_text()
    assert f"Validation holds out whole training subjects {', '.join(choice['subjects'])} (" in report
    assert "of the training windows; chosen (seed 42) to come closest to 20.0% of the training windows" in report


def _session(rng: np.random.Generator, runs: list[tuple[str, int]], rate: float = 50.0) -> pd.DataFrame:
    labels = np.concatenate([np.full(n, a, dtype=object) for a, n in runs])
    n = len(labels)
    return pd.DataFrame({"time_s": np.arange(n) / rate, "activity": labels,
                         "acc_x": rng.normal(size=n), "acc_y": rng.normal(size=n), "acc_z": rng.normal(size=n)})


def _nested(root: Path, suffix: str = ".csv") -> dict[str, int]:
    """Folders by subject (s01/s01_03.csv, P007/day2.parquet style); returns windows per subject name."""
    rng = np.random.default_rng(1)
    for k, person in enumerate(["P007", "P010", "s01", "s02"]):
        for day in range(2):
            folder = root / person / ("deep" if day else "")
            folder.mkdir(parents=True, exist_ok=True)
            frame = _session(rng, [("walk", 300 + 50 * k), ("sit", 300)])
            if suffix == ".parquet":
                frame.to_parquet(folder / f"day{day}.parquet")
            else:
                frame.to_csv(folder / f"{person}_{day:02d}.csv", index=False)
    (root / "README.txt").write_text("notes, not data\n")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "junk.csv").write_text("a,b\n1,2\n")
    return {}


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_nested_folders_name_the_subjects(tmp_path: Path, suffix: str, caplog: pytest.LogCaptureFixture):
    _nested(tmp_path / "data", suffix)
    caplog.set_level("INFO", logger="harvit.data")
    ds = load_dataset(str(tmp_path / "data"), options=OwnOptions(test_subjects="s02"))
    names = ds.train.meta["subject_names"]
    assert sorted(names.values()) == ["P007", "P010", "s01", "s02"]
    assert [names[str(s)] for s in ds.test.subjects()] == ["s02"]
    assert "the first folder level under" in caplog.text
    assert ds.train.meta["load_stats"]["pieces"] == 8  # each file is its own recording
    assert ds.train.meta["load_stats"]["subjects_from"] == "folder"
    _, val = train_val_split(ds.train, 0.34, 0)
    assert set(val.meta["val_choice"]["subjects"]) <= {"P007", "P010", "s01"}


def test_subject_from_overrides(tmp_path: Path):
    _nested(tmp_path / "data")
    by_file = load_dataset(str(tmp_path / "data"), options=OwnOptions(subject_from="file"))
    assert len(by_file.train.subjects() + by_file.test.subjects()) == 8
    assert "s01_00" in by_file.train.meta["subject_names"].values()
    none = load_dataset(str(tmp_path / "data"), options=OwnOptions(subject_from="none"))
    assert not none.train.has_subjects
    flat = tmp_path / "flat"
    flat.mkdir()
    _session(np.random.default_rng(0), [("walk", 300), ("sit", 300)]).to_csv(flat / "a.csv", index=False)
    with pytest.raises(HarvitError, match=r"--subject-from folder: .*a\.csv lies directly in"):
        load_dataset(str(flat), options=OwnOptions(subject_from="folder"))
    with pytest.raises(HarvitError, match="--subject-from column: no subject column"):
        load_dataset(str(flat), options=OwnOptions(subject_from="column"))


def test_a_dropped_class_names_the_longest_window_that_keeps_it(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    rng = np.random.default_rng(2)
    frames = []
    for subject in (1, 2, 3):
        f = _session(rng, [("walk", 400), ("turn", 90), ("sit", 400), ("turn", 110)])
        f["subject"] = subject
        frames.append(f)
    path = tmp_path / "turns.csv"
    pd.concat(frames).to_csv(path, index=False)
    caplog.set_level("WARNING")
    ds = load_dataset(str(path))
    assert "turn" not in ds.train.classes
    assert "no window for class(es) turn" in caplog.text and "--window-s 2.2 (the longest window" in caplog.text
    kept = load_dataset(str(path), options=OwnOptions(window_s=2.2))
    assert kept.train.classes == ["sit", "turn", "walk"]


def test_one_subject_needs_subject_from_none(tmp_path: Path, capsys: pytest.CaptureFixture):
    frame = _session(np.random.default_rng(3), [("walk", 1500), ("sit", 1500)])
    frame["subject"] = "f1"
    path = tmp_path / "one.csv"
    frame.to_csv(path, index=False)
    ds = load_dataset(str(path))
    with pytest.raises(HarvitError, match=r"1 subject\(s\) \(f1\).*--subject-from none"):
        train_val_split(ds.train, 0.2, 0)
    code = main(["train", "--dataset", str(path), *TINY, "--output-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and "--subject-from none" in err and "Traceback" not in err


def test_val_subject_name_not_in_the_data_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture):
    path = write_wisdm(tmp_path / "w.txt", wisdm_lines(seconds=6.0))
    code = main(["train", "--dataset", str(path), "--val-subjects", "99", *TINY, "--output-dir",
                 str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and "--val-subjects: no training subject 99" in err and "Traceback" not in err


def test_a_folder_of_txt_files_nested_deep(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    # WISDM 2019's layout: raw/watch/accel/data_<subject>_accel_watch.txt, ns timestamps ~1.5e15 (which
    # read as microseconds since 1970 by magnitude, at 0.02 Hz)
    rng = np.random.default_rng(4)
    folder = tmp_path / "raw" / "watch" / "accel"
    folder.mkdir(parents=True)
    for subject in (1600, 1601, 1602, 1603):
        lines = []
        for k, code in enumerate("ABC"):
            t = 1474528749016556 + 10**12 * k + np.arange(400) * 50_000_000
            xyz = rng.normal(k, 1.0, (400, 3))
            lines += [f"{subject},{code},{t[i]},{xyz[i, 0]:.6g},{xyz[i, 1]:.6g},{xyz[i, 2]:.6g};" for i in range(400)]
        (folder / f"data_{subject}_accel_watch.txt").write_text("\n".join(lines) + "\n")
    caplog.set_level("INFO", logger="harvit.data")
    ds = load_dataset(str(tmp_path / "raw"))
    assert ds.train.rate_hz == 20.0 and ds.train.classes == ["A", "B", "C"]
    assert sorted(ds.train.subjects() + ds.test.subjects()) == [1600, 1601, 1602, 1603]
    assert "time column 'time' is in ns" in caplog.text
    (tmp_path / "raw" / "notes.csv").write_text("a,b\n1,2\n")  # beside a .csv, .txt files are notes
    with pytest.raises(HarvitError, match="notes.csv"):
        load_dataset(str(tmp_path / "raw"))
