"""Training data from long recordings plus a separate table of labelled intervals (the Capture-24 layout)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harvit.cli import main
from harvit.data import OwnOptions, load_dataset
from harvit.data.annotations import read_annotations
from harvit.utils.errors import HarvitError

RATE = 20.0
START = pd.Timestamp("2024-05-01 08:00:00")
WINDOW_S, OVERLAP = 2.0, 0.5  # 40 samples, stride 20


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path / "cache"))


def _recording(path: Path, minutes: float, seed: int = 0) -> None:
    """A table of samples at :data:`RATE` Hz with epoch-ms times from :data:`START` (UTC, kept as given)."""
    rng = np.random.default_rng(seed)
    n = int(minutes * 60 * RATE)
    t_ms = START.value // 1_000_000 + np.round(np.arange(n) * 1000 / RATE).astype(np.int64)
    xyz = rng.normal(0, 0.1, (n, 3)) + [0.0, 0.0, 1.0]
    pd.DataFrame({"time_ms": t_ms, "acc_x": xyz[:, 0], "acc_y": xyz[:, 1], "acc_z": xyz[:, 2]}).to_parquet(path)


def _annotations(path: Path, rows: list[tuple[float, float, str]], start: pd.Timestamp = START) -> Path:
    """Intervals given in minutes from ``start``, written as ISO date-times."""
    frame = pd.DataFrame({
        "start": [str(start + pd.Timedelta(minutes=a)) for a, _, _ in rows],
        "end": [str(start + pd.Timedelta(minutes=b)) for _, b, _ in rows],
        "annotation": [label for _, _, label in rows],
    })
    frame.to_csv(path, index=False)
    return path


def _windows(minutes: float) -> int:
    n = int(round(minutes * 60 * RATE))
    length, stride = int(WINDOW_S * RATE), int(WINDOW_S * RATE * (1 - OVERLAP))
    return (n - length) // stride + 1


def _options(ann: Path, **kw) -> OwnOptions:
    return OwnOptions(annotations=str(ann), window_s=WINDOW_S, overlap=OVERLAP, **kw)


def test_table_recording_with_annotations(tmp_path: Path) -> None:
    rec = tmp_path / "P01.parquet"
    _recording(rec, 30)
    # unlabelled minutes 0-2, 12-15 and 25-30 get no window; walk twice, sit once
    ann = _annotations(tmp_path / "ann.csv", [(15, 25, "walk"), (2, 7, "walk"), (7, 12, "sit")])
    ds = load_dataset(str(rec), options=_options(ann))
    train, test = ds.train, ds.test
    assert train.classes == ["sit", "walk"] and train.rate_hz == RATE and train.x.shape[1:] == (3, 40)
    total = {c: int((np.concatenate([train.y, test.y]) == k).sum()) for k, c in enumerate(train.classes)}
    # a window never crosses from one interval into the next, even when both say walk
    assert total == {"sit": _windows(5), "walk": _windows(5) + _windows(10)}
    assert train.meta["kind"] == "recording" and ds.notes  # one recording: a stratified split, said


def test_device_file_with_annotations(devices_dir: Path, tmp_path: Path) -> None:
    start = pd.Timestamp("2019-02-26 10:55:06")
    ann = _annotations(tmp_path / "ax3.csv", [(0.1, 1.1, "sit"), (1.1, 2.8, "walk")], start)
    ds = load_dataset(str(devices_dir / "ax3_testfile.cwa"), options=_options(ann))
    assert ds.train.channels == ["acc_x", "acc_y", "acc_z"] and ds.train.rate_hz == 100.0
    assert ds.train.classes == ["sit", "walk"] and len(ds.train) + len(ds.test) > 100


def test_folder_of_recordings_one_subject_each(tmp_path: Path) -> None:
    recs, anns = tmp_path / "recordings", tmp_path / "annotations"
    recs.mkdir()
    anns.mkdir()
    for k, name in enumerate(("P01", "P02", "P03")):
        _recording(recs / f"{name}.parquet", 12, seed=k)
        _annotations(anns / f"{name}-annotations.csv", [(1, 5, "walk"), (5, 10, "sit")])
    ds = load_dataset(str(recs), options=_options(anns, test_subjects="P02"))
    assert set(ds.test.subjects()) == {2} and set(ds.train.subjects()) == {1, 3}
    assert ds.train.meta["subject_names"] == {"1": "P01", "2": "P02", "3": "P03"}
    assert len(ds.test) == _windows(4) + _windows(5)


def test_data_info_shows_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rec = tmp_path / "day.parquet"
    _recording(rec, 10)
    ann = _annotations(tmp_path / "day-ann.csv", [(1, 4, "walk"), (4, 9, "sit")])
    assert main(["data", "info", str(rec), "--annotations", str(ann), "--window-s", "2"]) == 0
    out = capsys.readouterr().out
    assert "walk" in out and "sit" in out and "acc_x acc_y acc_z" in out


@pytest.mark.parametrize("rows, words", [
    ([(1, 5, "walk"), (4, 8, "sit")], "overlap"),
    ([(1, 5, "walk"), (8, 40, "sit")], "outside recording"),
    ([(5, 1, "walk")], "not after its start"),
    ([(-10, -5, "walk")], "outside recording"),
])
def test_bad_annotations_one_line(tmp_path: Path, rows, words: str) -> None:
    rec = tmp_path / "r.parquet"
    _recording(rec, 10)
    ann = _annotations(tmp_path / "a.csv", rows)
    with pytest.raises(HarvitError, match=words) as e:
        load_dataset(str(rec), options=_options(ann))
    assert "\n" not in str(e.value)
    assert main(["data", "info", str(rec), "--annotations", str(ann)]) == 2


def test_missing_annotation_file_and_unused_flags(tmp_path: Path) -> None:
    recs = tmp_path / "recs"
    recs.mkdir()
    _recording(recs / "A.parquet", 5)
    _recording(recs / "B.parquet", 5)
    anns = tmp_path / "anns"
    anns.mkdir()
    _annotations(anns / "A.csv", [(1, 4, "walk")])
    with pytest.raises(HarvitError, match="no annotation table for recording B.parquet"):
        load_dataset(str(recs), options=_options(anns))
    with pytest.raises(HarvitError, match="one file for several recordings"):
        load_dataset(str(recs), options=_options(anns / "A.csv"))
    with pytest.raises(HarvitError, match="--label-column: not used with --annotations"):
        load_dataset(str(recs / "A.parquet"), options=_options(anns / "A.csv", label_column="x"))


def test_read_annotations_sorted_with_rows(tmp_path: Path) -> None:
    ann = read_annotations(_annotations(tmp_path / "a.csv", [(5, 6, "b"), (1, 2, "a")]))
    assert ann.label.tolist() == ["a", "b"] and ann.row.tolist() == [2, 1]
    t = (START + pd.to_timedelta([0.5, 1.5, 2.5, 5.0], unit="min")).as_unit("ns").asi8
    assert ann.labels_at(t).tolist() == ["", "a", "", "b"]


def test_device_file_without_annotations_says_how(devices_dir: Path) -> None:
    with pytest.raises(HarvitError, match="--annotations TABLE"):
        load_dataset(str(devices_dir / "ax3_testfile.cwa"))
