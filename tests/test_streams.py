"""Recordings read in chunks: device files and tables, time columns, units, bounded chunks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harvit.data.streams import acc_triple, open_recording
from harvit.utils.errors import HarvitError

START = pd.Timestamp("2020-03-29 00:59:00")  # Europe/London goes to summer time at 01:00 UTC that day


def _table(n: int = 5000, rate: float = 50.0, scale: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    utc_ns = START.value + np.round(np.arange(n) * 1e9 / rate).astype(np.int64)
    return pd.DataFrame({
        "timestamp_ms": utc_ns // 1_000_000,
        "x": rng.normal(0, 0.05, n) * scale, "y": np.zeros(n), "z": np.full(n, scale),
        "label": np.where(np.arange(n) < n // 2, "walk", None),
    })


def _all(stream):
    chunks = list(stream)
    t = np.concatenate([c.time_ns for c in chunks])
    v = np.concatenate([c.values for c in chunks])
    return chunks, t, v


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_table_in_chunks(tmp_path: Path, suffix: str) -> None:
    frame = _table()
    path = tmp_path / f"rec{suffix}"
    frame.to_parquet(path) if suffix == ".parquet" else frame.to_csv(path, index=False)
    stream = open_recording(path, chunk_rows=1500)
    assert stream.channels == ["acc_x", "acc_y", "acc_z"] and stream.rate_hz == 50.0 and stream.acc_unit == "g"
    chunks, t, v = _all(stream)
    assert [len(c) for c in chunks] == [1500, 1500, 1500, 500]
    assert np.array_equal(t, frame["timestamp_ms"].to_numpy() * 1_000_000)
    np.testing.assert_allclose(v[:, 0], frame["x"], rtol=1e-6)
    labels = np.concatenate([c.labels for c in chunks])
    assert labels[0] == "walk" and labels[-1] == ""
    # a second pass reads the same again
    assert np.array_equal(_all(stream)[1], t)


def test_epoch_times_to_local_wall_clock(tmp_path: Path) -> None:
    path = tmp_path / "rec.parquet"
    _table(n=6000).to_parquet(path)  # 00:59:00 to 01:01:00 UTC
    _, kept, _ = _all(open_recording(path))
    _, london, _ = _all(open_recording(path, timezone="Europe/London"))
    assert pd.Timestamp(kept[0]) == START and pd.Timestamp(london[0]) == START
    # after 01:00 UTC, London is an hour ahead
    assert pd.Timestamp(london[-1]) - pd.Timestamp(kept[-1]) == pd.Timedelta(hours=1)
    with pytest.raises(HarvitError, match="unknown time zone"):
        open_recording(path, timezone="Mars/Olympus")


def test_iso_times_with_offsets(tmp_path: Path) -> None:
    times = pd.date_range(START.tz_localize("UTC"), periods=6000, freq="20ms").tz_convert("Europe/London")
    frame = pd.DataFrame({"time": times.strftime("%Y-%m-%dT%H:%M:%S.%f%z"), "acc_x": 0.0, "acc_y": 0.0,
                          "acc_z": 9.81})
    path = tmp_path / "iso.csv"
    frame.to_csv(path, index=False)
    stream = open_recording(path, chunk_rows=2000)
    assert stream.acc_unit == "m/s2" and stream.rate_hz == 50.0
    _, as_written, _ = _all(stream)
    _, utc, _ = _all(open_recording(path, timezone="UTC"))
    wall = times.tz_localize(None).as_unit("ns").asi8
    assert np.array_equal(as_written, wall)
    assert np.array_equal(utc, times.tz_convert("UTC").tz_localize(None).as_unit("ns").asi8)


def test_naive_iso_times_are_not_shifted(tmp_path: Path) -> None:
    times = pd.date_range(START, periods=300, freq="40ms")
    path = tmp_path / "naive.csv"
    pd.DataFrame({"time": times.astype(str), "acc_x": 0.0, "acc_y": 0.0, "acc_z": 1.0}).to_csv(path, index=False)
    _, t, _ = _all(open_recording(path, timezone="America/New_York"))
    assert np.array_equal(t, times.as_unit("ns").asi8) and open_recording(path).rate_hz == 25.0


def test_columns_mapping_and_rate(tmp_path: Path) -> None:
    path = tmp_path / "bare.csv"
    pd.DataFrame({"X": [0.0, 0.1, 0.2], "Y": [0.0] * 3, "Z": [1.0] * 3, "temp": [20.0] * 3}).to_csv(path,
                                                                                                      index=False)
    with pytest.raises(HarvitError, match="no time column"):
        open_recording(path)
    stream = open_recording(path, columns={"acc_x": "X", "acc_y": "Y", "acc_z": "Z"}, rate_hz=100.0)
    assert stream.channels == ["acc_x", "acc_y", "acc_z"] and stream.rate_hz == 100.0
    _, t, v = _all(stream)
    assert t.tolist() == [0, 10_000_000, 20_000_000] and v.shape == (3, 3)
    with pytest.raises(HarvitError, match="no column 'W'"):
        open_recording(path, columns={"acc_x": "W"}, rate_hz=100.0)


def test_device_stream(devices_dir: Path) -> None:
    stream = open_recording(devices_dir / "ax6_testfile.cwa", chunk_rows=5000)
    assert stream.channels == ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
    assert stream.acc_unit == "g" and stream.rate_hz == 100.0 and stream.device == "Axivity AX6"
    chunks, t, v = _all(stream)
    assert [len(c) for c in chunks] == [5000, 5000, 1320] and v.shape == (11_320, 6) and v.dtype == np.float32
    assert stream.n_rows == 11_320


def test_bad_input(tmp_path: Path) -> None:
    headerless = tmp_path / "h.csv"
    headerless.write_text("1,0.1,0.2,0.3\n2,0.1,0.2,0.3\n")
    text = tmp_path / "t.csv"
    text.write_text("time,acc_x,acc_y,acc_z\n0,0,0,1\n0.02,oops,0,1\n")
    for path, words in ((headerless, "header"), (tmp_path / "x.docx", "no such file")):
        with pytest.raises(HarvitError, match=words):
            open_recording(path)
    other = tmp_path / "x.docx"
    other.write_text("x")
    with pytest.raises(HarvitError, match="unknown file type"):
        open_recording(other)
    stream = open_recording(text)
    assert stream.channels == ["acc_x", "acc_y", "acc_z"]
    with pytest.raises(HarvitError, match="t.csv row 2 column 'acc_x'"):
        list(stream)


def test_acc_triple() -> None:
    assert acc_triple(["gyro_x", "gyro_y", "gyro_z", "acc_x", "acc_y", "acc_z"]) == (3, 4, 5)
    assert acc_triple(["body_acc_x", "body_acc_y", "body_acc_z", "total_acc_x", "total_acc_y",
                       "total_acc_z"]) == (3, 4, 5)
    assert acc_triple(["a", "b"]) is None


def test_parquet_memory_does_not_grow_with_length(tmp_path: Path) -> None:
    """Arrow memory held while reading stays near one chunk's, however many row groups the file has."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows, groups = 50_000, 24
    path = tmp_path / "long.parquet"
    schema = pa.schema([("time", pa.int64()), ("acc_x", pa.float32()), ("acc_y", pa.float32()),
                        ("acc_z", pa.float32())])
    with pq.ParquetWriter(path, schema) as writer:
        for g in range(groups):
            k = np.arange(g * rows, (g + 1) * rows, dtype=np.int64)
            z = np.ones(rows, dtype=np.float32)
            writer.write_table(pa.table({"time": START.value + k * 10_000_000, "acc_x": z * 0, "acc_y": z * 0,
                                         "acc_z": z}, schema=schema))
    held = []
    for chunk in open_recording(path, chunk_rows=rows):
        held.append(pa.total_allocated_bytes())
        assert len(chunk) == rows
    one_chunk = rows * (8 + 3 * 4)
    assert len(held) == groups and max(held) < 6 * one_chunk


def test_device_read_once_while_a_stream_lives(devices_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harvit.data import streams

    reads = []
    real = streams.read_device
    monkeypatch.setattr(streams, "read_device", lambda p: reads.append(p) or real(p))
    path = devices_dir / "ax3_testfile.cwa"
    first = open_recording(path)
    second = open_recording(path, chunk_rows=1000)
    assert len(reads) == 1 and np.array_equal(_all(first)[1], _all(second)[1])
    del first, second
    import gc

    gc.collect()
    open_recording(path)
    assert len(reads) == 2  # nothing kept once the streams are gone
