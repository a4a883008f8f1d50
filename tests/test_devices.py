"""Device files read through their maintained readers (actfast; pygt3x for .gt3x), on the real files."""

from __future__ import annotations

import builtins
import os
from pathlib import Path

import numpy as np
import pytest

from harvit.data.devices import GT3X_EXTRA, is_device_file, read_device
from harvit.utils.errors import HarvitError

CORRUPT = "ax3_testfile_corrupt_blocks_0_13_14_142_143_144.cwa"


def test_is_device_file() -> None:
    assert is_device_file("a/b/RECORDING.CWA") and is_device_file(Path("x.gt3x")) and is_device_file("g.bin")
    assert not is_device_file("x.csv") and not is_device_file("cwa")


@pytest.mark.parametrize("name, samples, rate, device, gyro", [
    ("ax3_testfile.cwa", 17_400, 100.0, "Axivity AX3", False),
    ("ax6_testfile.cwa", 11_320, 100.0, "Axivity AX6", True),
    ("GENEActiv_testfile.bin", 5_031, 85.7, "GENEActiv", False),
])
def test_actfast_files(devices_dir: Path, name: str, samples: int, rate: float, device: str, gyro: bool) -> None:
    rec = read_device(devices_dir / name)
    assert len(rec) == samples and rec.acc.shape == (samples, 3) and rec.acc.dtype == np.float32
    assert rec.time_ns.dtype == np.int64 and np.all(np.diff(rec.time_ns) > 0)
    assert rec.rate_hz == pytest.approx(rate)
    assert rec.device == device and rec.info["reader"] == "actfast" and rec.info["blocks_skipped"] == 0
    assert (rec.gyro is not None) == gyro
    # a wrist device at rest or moving slowly measures about 1 g
    assert 0.8 < float(np.median(np.linalg.norm(rec.acc, axis=1))) < 1.6
    # measured steps agree with the stated rate
    assert 1e9 / np.median(np.diff(rec.time_ns)) == pytest.approx(rate, rel=0.01)


def test_ax3_local_time(devices_dir: Path) -> None:
    rec = read_device(devices_dir / "ax3_testfile.cwa")
    start = np.datetime64(int(rec.time_ns[0]), "ns")
    assert str(start).startswith("2019-02-26T10:55:06")


def test_corrupt_blocks_skipped_and_counted(devices_dir: Path) -> None:
    whole = read_device(devices_dir / "ax3_testfile.cwa")
    rec = read_device(devices_dir / CORRUPT)
    assert rec.info["blocks_skipped"] == 6
    assert len(rec) == len(whole) - 6 * 120  # an AX3 block at this rate holds 120 samples
    assert np.isin(rec.time_ns, whole.time_ns).mean() > 0.99


def test_gt3x_through_pygt3x(devices_dir: Path) -> None:
    pytest.importorskip("pygt3x")
    rec = read_device(devices_dir / "small.gt3x")
    assert len(rec) == 1_467_810 and rec.rate_hz == 30.0 and rec.info["reader"] == "pygt3x"
    first, last = (str(np.datetime64(int(t), "ns")) for t in rec.time_ns[[0, -1]])
    assert first.startswith("2019-05-06T11:38") and last.startswith("2019-05-07T01:14")
    ism = read_device(devices_dir / "ISM_Enabled.gt3x")
    assert len(ism) == 9_000 and ism.info["idle_sleep_samples"] > 0


def test_gt3x_without_pygt3x_names_the_extra(devices_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_pygt3x(name, *args, **kwargs):
        if name.startswith("pygt3x"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pygt3x)
    with pytest.raises(HarvitError, match=r"harvit\[gt3x\]") as e:
        read_device(devices_dir / "ISM_Enabled.gt3x")
    assert GT3X_EXTRA in str(e.value) and "\n" not in str(e.value)


def test_bad_files_one_line(devices_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.cwa"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.cwa"
    garbage.write_bytes(os.urandom(4096))
    broken = tmp_path / "broken.gt3x"
    broken.write_bytes((devices_dir / "small.gt3x").read_bytes()[:100_000])
    for path, words in ((empty, "empty"), (garbage, "cannot read"), (tmp_path / "none.cwa", "no such"),
                        (tmp_path / "notes.txt", "not a device file")):
        if path.suffix == ".txt":
            path.write_text("x")
        with pytest.raises(HarvitError, match=words) as e:
            read_device(path)
        assert "\n" not in str(e.value)
    pytest.importorskip("pygt3x")
    with pytest.raises(HarvitError, match="cannot read as a .gt3x"):
        read_device(broken)


def test_truncated_cwa_keeps_whole_blocks(devices_dir: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.cwa"
    cut.write_bytes((devices_dir / "ax3_testfile.cwa").read_bytes()[:40_000])
    rec = read_device(cut)
    assert 0 < len(rec) < 17_400 and rec.info["truncated_bytes"] == 40_000 % 512


def test_reader_warnings_gathered_not_logged_each(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from harvit.data.devices import _collected

    with caplog.at_level(logging.WARNING), _collected("pygt3x") as notes:
        for second in range(50):
            logging.getLogger("pygt3x.reader").warning("Timestamp (second) %d has 29 samples instead of 30", second)
    assert len(notes) == 50 and not caplog.records
    logging.getLogger("pygt3x.reader").warning("after")
    assert len(caplog.records) == 1 and len(notes) == 50


@pytest.mark.parametrize("name, slice_bytes", [
    ("ax3_testfile.cwa", 20 * 512), ("ax6_testfile.cwa", 50 * 512), (CORRUPT, 20 * 512),
    ("GENEActiv_testfile.bin", 8000),
])
def test_long_device_files_read_in_slices_as_whole(devices_dir: Path, name: str, slice_bytes: int,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A file larger than SLICE_BYTES is read a slice at a time, and the stream holds the same samples, sample for
    sample, and counts the same skipped blocks as the whole file read at once."""
    from harvit.data import devices
    from harvit.data.streams import open_recording

    path = devices_dir / name
    whole = open_recording(path, chunk_rows=1000)
    assert whole.info.get("read") != "in slices"
    monkeypatch.setattr(devices, "SLICE_BYTES", slice_bytes)
    calls: list[str] = []
    real = devices._read_actfast
    monkeypatch.setattr(devices, "_read_actfast", lambda p, *a, **k: calls.append(p.name) or real(p, *a, **k))
    sliced = open_recording(path, chunk_rows=1000)
    assert sliced.info["read"] == "in slices" and sliced.channels == whole.channels
    assert sliced.rate_hz == whole.rate_hz and sliced.device == whole.device
    calls.clear()
    got = list(sliced)
    assert len(calls) >= 3 and all(c != name for c in calls)  # several slices, never the whole file
    want = list(whole)
    np.testing.assert_array_equal(np.concatenate([c.time_ns for c in got]), np.concatenate([c.time_ns for c in want]))
    np.testing.assert_array_equal(np.concatenate([c.values for c in got]), np.concatenate([c.values for c in want]))
    assert max(len(c) for c in got) <= 1000
    assert sliced.info["blocks_skipped"] == whole.info["blocks_skipped"] == (6 if name == CORRUPT else 0)


def test_sliced_cwa_drops_a_partial_last_block(devices_dir: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from harvit.data import devices
    from harvit.data.streams import open_recording

    cut = tmp_path / "cut.cwa"
    cut.write_bytes((devices_dir / "ax3_testfile.cwa").read_bytes()[:40_000])
    monkeypatch.setattr(devices, "SLICE_BYTES", 16 * 512)
    stream = open_recording(cut)
    got = np.concatenate([c.time_ns for c in stream])
    whole = read_device(cut)
    np.testing.assert_array_equal(got, whole.time_ns)
    assert stream.info["truncated_bytes"] == whole.info["truncated_bytes"] == 40_000 % 512
