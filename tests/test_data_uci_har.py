"""UCI HAR: the official layout as a folder, a zip and the official nested zip; bad inputs."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from real_data import absent, data_dirs

import harvit.data.uci_har as uci_har
from harvit.data import CHANNELS, load_dataset
from harvit.data.download import open_source
from harvit.data.hapt import read_activity_labels
from harvit.utils.errors import HarvitError

LABELS = ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING"]
TOP = "UCI HAR Dataset"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HARVIT_OFFLINE", "1")
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("HARVIT_DATA_DIR", raising=False)


def _split(n: int, subjects: list[int], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(0.0, 0.5, (n, 9, 128)), 6)
    y = (np.arange(n) % 6) + 1
    subject = np.sort(np.asarray(subjects)[np.arange(n) % len(subjects)])
    return x, y, subject


def _files(n_train: int = 20, n_test: int = 10) -> tuple[dict[str, bytes], dict]:
    """Official-layout files (CRLF, UCI HAR's number format) and the arrays they hold."""
    files = {"activity_labels.txt": "".join(f"{i + 1} {n}\r\n" for i, n in enumerate(LABELS)).encode()}
    arrays = {}
    for split, n, subjects, seed in (("train", n_train, [1, 3, 5], 0), ("test", n_test, [2, 4], 1)):
        x, y, subject = _split(n, subjects, seed)
        arrays[split] = (x, y, subject)
        files[f"{split}/y_{split}.txt"] = "".join(f"{v}\r\n" for v in y).encode()
        files[f"{split}/subject_{split}.txt"] = "".join(f"{v}\r\n" for v in subject).encode()
        for c, channel in enumerate(CHANNELS):
            rows = ("".join(f" {v: .7e}" for v in row) + "\r\n" for row in x[:, c, :])
            files[f"{split}/Inertial Signals/{channel}_{split}.txt"] = "".join(rows).encode()
    return files, arrays


def _write_folder(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / "uci_har" / TOP / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def _zip_bytes(files: dict[str, bytes], top: str = TOP + "/") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for rel, data in files.items():
            z.writestr(top + rel, data)
    return buf.getvalue()


def _check(ds, arrays) -> None:
    assert ds.name == "uci_har"
    for w, (x, y, subject) in ((ds.train, arrays["train"]), (ds.test, arrays["test"])):
        np.testing.assert_array_equal(w.x, x.astype(np.float32))
        np.testing.assert_array_equal(w.y, y - 1)
        np.testing.assert_array_equal(w.subject, subject)
        assert w.channels == CHANNELS and w.classes == LABELS and w.rate_hz == 50.0


def test_folder_layout_reads_back_exactly(tmp_path):
    files, arrays = _files()
    _check(load_dataset("uci_har", _write_folder(tmp_path, files)), arrays)


def test_zip_layout_reads_back_exactly(tmp_path):
    files, arrays = _files()
    (tmp_path / "uci_har").mkdir()
    (tmp_path / "uci_har" / "UCI HAR Dataset.zip").write_bytes(_zip_bytes(files))
    _check(load_dataset("uci_har", tmp_path), arrays)


def test_official_nested_zip_reads_back_exactly(tmp_path):
    files, arrays = _files()
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w") as z:
        z.writestr("__MACOSX/._UCI HAR Dataset.zip", b"junk")
        z.writestr("UCI HAR Dataset.names", b"description")
        z.writestr("UCI HAR Dataset.zip", _zip_bytes(files))
    (tmp_path / "uci_har").mkdir()
    (tmp_path / "uci_har" / "human+activity+recognition+using+smartphones.zip").write_bytes(outer.getvalue())
    _check(load_dataset("uci_har", tmp_path), arrays)


def test_incomplete_folder_falls_back_to_a_complete_zip(tmp_path):
    files, arrays = _files()
    partial = {k: v for k, v in files.items() if "Inertial" not in k}  # like the shared copy
    _write_folder(tmp_path, partial)
    (tmp_path / "uci_har" / "UCI HAR Dataset.zip").write_bytes(_zip_bytes(files))
    _check(load_dataset("uci_har", tmp_path), arrays)


def test_missing_signal_file(tmp_path):
    files, _ = _files()
    del files["test/Inertial Signals/body_gyro_y_test.txt"]
    with pytest.raises(
        HarvitError, match=r"body_gyro_y_test.txt is missing.*put the 'UCI HAR Dataset' folder"
    ):
        load_dataset("uci_har", _write_folder(tmp_path, files))


def test_missing_everything_says_what_to_put_where(tmp_path):
    with pytest.raises(HarvitError, match="UCI HAR data not found") as e:
        load_dataset("uci_har", tmp_path)
    assert str(tmp_path / "uci_har") in str(e.value) and "HARVIT_OFFLINE" in str(e.value)


def test_short_row_names_file_and_line(tmp_path):
    files, _ = _files()
    rel = "train/Inertial Signals/total_acc_z_train.txt"
    lines = files[rel].decode().splitlines()
    lines[6] = " ".join(lines[6].split()[:100])
    files[rel] = "\r\n".join(lines).encode()
    with pytest.raises(
        HarvitError, match=r"total_acc_z_train.txt line 7: found 100 values, expected 128 \(windows sh"
    ):
        load_dataset("uci_har", _write_folder(tmp_path, files))


def test_row_count_mismatch(tmp_path):
    files, _ = _files()
    rel = "train/Inertial Signals/body_acc_y_train.txt"
    files[rel] = b"".join(files[rel].splitlines(keepends=True)[:19])
    with pytest.raises(
        HarvitError, match=r"body_acc_y_train.txt: found 19 rows, expected 20 \(as in train/y_train"
    ):
        load_dataset("uci_har", _write_folder(tmp_path, files))
    files, _ = _files()
    files["test/subject_test.txt"] += b"2\r\n"
    with pytest.raises(HarvitError, match=r"subject_test.txt: found 11 rows, expected 10"):
        load_dataset("uci_har", _write_folder(tmp_path / "b", files))


def test_label_out_of_range(tmp_path):
    files, _ = _files()
    files["train/y_train.txt"] = files["train/y_train.txt"].replace(b"3\r\n", b"7\r\n", 1)
    with pytest.raises(HarvitError, match=r"y_train.txt row 3: found 7; expected integers 1..6"):
        load_dataset("uci_har", _write_folder(tmp_path, files))


def test_nan_policies(tmp_path):
    files, arrays = _files()
    rel = "test/Inertial Signals/body_acc_x_test.txt"
    lines = files[rel].decode().splitlines()
    values = lines[3].split()
    values[10] = "nan"
    lines[3] = " ".join(values)
    files[rel] = "\r\n".join(lines).encode()
    data = _write_folder(tmp_path, files)
    with pytest.raises(HarvitError, match=r"body_acc_x_test.txt: 1 NaN/Inf values"):
        load_dataset("uci_har", data)
    dropped = load_dataset("uci_har", data, nan_policy="drop")
    assert len(dropped.test) == 9 and dropped.test.meta["dropped_windows"] == 1
    np.testing.assert_array_equal(dropped.test.y, np.delete(arrays["test"][1] - 1, 3))
    filled = load_dataset("uci_har", data, nan_policy="interpolate")
    x = arrays["test"][0][3, 0]
    assert filled.test.x[3, 0, 10] == pytest.approx((x[9] + x[11]) / 2, abs=1e-6)


def test_shared_labels_and_subjects_are_the_official_ones():
    """The real label, subject and activity files (the shared copy has no signal files)."""
    folder = next(
        (d / "uci_har" for d in data_dirs() if (d / "uci_har" / TOP / "train" / "y_train.txt").is_file()), None
    )
    if folder is None:
        absent("real UCI HAR label files absent: set HARVIT_DATA_DIR to the shared data folder")
    with open_source(folder / TOP, uci_har.MARKER) as src:
        assert read_activity_labels(src) == LABELS
        counts = {}
        for split in ("train", "test"):
            y = uci_har.read_ints(src, f"{split}/y_{split}.txt", 1, 6)
            subject = uci_har.read_ints(src, f"{split}/subject_{split}.txt", 0, None)
            assert len(y) == len(subject)
            counts[split] = (np.bincount(y - 1).tolist(), sorted(set(subject.tolist())))
    assert counts["train"][0] == [1226, 1073, 986, 1286, 1374, 1407]
    assert counts["test"] == ([496, 471, 420, 491, 532, 537], [2, 4, 9, 10, 12, 13, 18, 20, 24])
