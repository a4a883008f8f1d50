"""HAPT: windows rebuilt from the real raw recordings, bad inputs on small fake zips, the cache."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import harvit.data.hapt as hapt
from harvit.data import CHANNELS, Preprocessing, dataset_info, load_dataset
from harvit.data.cache import prepared_path
from harvit.utils.errors import HarvitError

UCI_HAR_TRAIN = [1226, 1073, 986, 1286, 1374, 1407]
UCI_HAR_TEST = [496, 471, 420, 491, 532, 537]
TEST_SUBJECTS = [2, 4, 9, 10, 12, 13, 18, 20, 24]
LABELS = [
    "WALKING",
    "WALKING_UPSTAIRS",
    "WALKING_DOWNSTAIRS",
    "SITTING",
    "STANDING",
    "LAYING",
    "STAND_TO_SIT",
    "SIT_TO_STAND",
    "SIT_TO_LIE",
    "LIE_TO_SIT",
    "STAND_TO_LIE",
    "LIE_TO_STAND",
]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No downloads and a private cache in every test."""
    monkeypatch.setenv("HARVIT_OFFLINE", "1")
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("HARVIT_DATA_DIR", raising=False)


# ----------------------------------------------------------------------------------- real data


def _official_counts(data_dir: Path, rel: str) -> list[int]:
    with zipfile.ZipFile(data_dir / "hapt" / "HAPT_Data_Set_RawData_and_labels.zip") as z:
        y = np.loadtxt(io.BytesIO(z.read(f"HAPT Data Set/{rel}")), dtype=np.int64)
    return np.bincount(y - 1, minlength=12).tolist()


def test_hapt12_matches_official_counts(hapt12_real, shared_data_dir):
    ds = hapt12_real
    assert (len(ds.train), len(ds.test)) == (7767, 3162)
    assert ds.train.class_counts() == _official_counts(shared_data_dir, "Train/y_train.txt")
    assert ds.test.class_counts() == _official_counts(shared_data_dir, "Test/y_test.txt")
    assert ds.train.classes == LABELS


def test_hapt6_close_to_uci_har(hapt6_real):
    ds = hapt6_real
    assert ds.name == "hapt6"
    assert ds.train.classes == LABELS[:6]
    for got, ref in ((ds.train.class_counts(), UCI_HAR_TRAIN), (ds.test.class_counts(), UCI_HAR_TEST)):
        assert all(abs(g - r) <= 0.05 * r for g, r in zip(got, ref, strict=True)), (got, ref)


def test_hapt_shapes_subjects_channels(hapt6_real, hapt12_real):
    for ds in (hapt6_real, hapt12_real):
        for w in (ds.train, ds.test):
            assert w.x.shape[1:] == (9, 128) and w.x.dtype == np.float32
            assert w.channels == CHANNELS
            assert w.rate_hz == 50.0
            assert np.isfinite(w.x).all()
        assert ds.test.subjects() == TEST_SUBJECTS
        assert len(ds.train.subjects()) == 21
        assert not set(ds.train.subjects()) & set(TEST_SUBJECTS)


def test_hapt_gravity_sanity(hapt6_real):
    x = hapt6_real.train.x
    total = np.linalg.norm(x[:, 6:9], axis=1)  # [N, T] in g
    assert 0.95 < total.mean() < 1.1
    assert np.abs(x[:, 0:3].mean(axis=(0, 2))).max() < 0.01  # body acc ~ 0 g on average
    laying = x[hapt6_real.train.y == 5]
    walking = x[hapt6_real.train.y == 0]
    assert walking[:, 0:3].std() > 5 * laying[:, 0:3].std()  # moving vs still


def test_hapt6_cache_hit_is_fast_and_identical(hapt6_real, shared_data_dir, session_cache_dir, monkeypatch):
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(session_cache_dir))
    monkeypatch.setattr(hapt, "build_hapt", _must_not_build)
    t = time.perf_counter()
    again = load_dataset("hapt6", shared_data_dir)
    assert time.perf_counter() - t < 5.0
    np.testing.assert_array_equal(again.train.x, hapt6_real.train.x)
    np.testing.assert_array_equal(again.test.y, hapt6_real.test.y)
    np.testing.assert_array_equal(again.test.subject, hapt6_real.test.subject)


def test_dataset_info_table(hapt6_real, shared_data_dir, session_cache_dir, monkeypatch):
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(session_cache_dir))
    text = dataset_info("hapt6", str(shared_data_dir))
    assert "128 samples = 2.56 s at 50 Hz" in text
    assert "body_acc_x" in text and "total_acc_z" in text
    assert "train 21" in text and "test  9" in text
    assert str(hapt6_real.train.class_counts()[0]) in text and "LAYING" in text
    last = text.splitlines()[-1].split()
    assert last == ["total", str(len(hapt6_real.train)), str(len(hapt6_real.test))]


def _must_not_build(*args, **kwargs):
    raise AssertionError("prepared windows were rebuilt instead of read from the cache")


# ----------------------------------------------------------------------------------- fake zips

ACC, GYRO = "acc_exp{e:02d}_user{u:02d}.txt", "gyro_exp{e:02d}_user{u:02d}.txt"
# exp, user, activity, start, end (1-based inclusive): user 1 trains, user 2 tests.
SEGMENTS = [(1, 1, 1, 1, 300), (1, 1, 4, 301, 600), (2, 2, 5, 1, 400), (2, 2, 7, 401, 600)]
# windows per segment: (n - 128) // 64 + 1 -> 3, 3, 5, 2


def _recording(n: int, seed: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 50.0
    acc = np.column_stack(
        [0.1 * np.sin(2 * np.pi * 2 * t), 0.05 * rng.normal(size=n), 1 + 0.02 * rng.normal(size=n)]
    )
    gyro = 0.1 * rng.normal(size=(n, 3))
    return [f"{a:.7e} {b:.7e} {c:.7e}" for a, b, c in acc], [f"{a:.7e} {b:.7e} {c:.7e}" for a, b, c in gyro]


def _fake_files(n: int = 600) -> dict[str, str]:
    files = {
        "activity_labels.txt": "".join(f"{i + 1} {name:<18}\n" for i, name in enumerate(LABELS)),
        "RawData/labels.txt": "".join(" ".join(map(str, row)) + "\n" for row in SEGMENTS),
    }
    for e, u in ((1, 1), (2, 2)):
        acc, gyro = _recording(n, e)
        files["RawData/" + ACC.format(e=e, u=u)] = "\n".join(acc) + "\n"
        files["RawData/" + GYRO.format(e=e, u=u)] = "\n".join(gyro) + "\n"
    return files


def _write_zip(path: Path, files: dict[str, str], top: str = "HAPT Data Set/", stored: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w", method) as z:
        for rel, text in files.items():
            z.writestr(top + rel, text)
    return path


def _fake_dir(tmp_path: Path, files: dict[str, str] | None = None, **kw) -> Path:
    data = tmp_path / "data"
    _write_zip(data / "hapt" / "HAPT_Data_Set_RawData_and_labels.zip", files or _fake_files(), **kw)
    return data


def _edit_line(text: str, line: int, new: str) -> str:
    lines = text.splitlines()
    lines[line - 1] = new
    return "\n".join(lines) + "\n"


def test_fake_zip_windows(tmp_path):
    ds = load_dataset("hapt12", _fake_dir(tmp_path))
    assert (len(ds.train), len(ds.test)) == (6, 7)
    assert ds.train.class_counts()[:6] == [3, 0, 0, 3, 0, 0]
    assert ds.test.class_counts()[4] == 5 and ds.test.class_counts()[6] == 2
    assert ds.train.subjects() == [1] and ds.test.subjects() == [2]
    six = load_dataset("hapt6", _fake_dir(tmp_path))
    assert (len(six.train), len(six.test)) == (6, 5) and six.train.classes == LABELS[:6]


def test_preparing_lines_name_the_windowing(tmp_path, monkeypatch, caplog):
    """One run may prepare HAPT under two strides (test windows at 64, training at 32): the log tells them apart."""
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path / "cache"))
    data_dir = _fake_dir(tmp_path)
    with caplog.at_level("INFO", logger="harvit"):
        load_dataset("hapt12", data_dir)
        load_dataset("hapt12", data_dir, params=Preprocessing(stride=32))
    assert "preparing hapt12 windows, 128 samples at stride 64" in caplog.text
    assert "prepared hapt12 windows, 128 samples at stride 32: " in caplog.text


def test_unpacked_folder_and_official_zip_layouts_equal_the_zip(tmp_path):
    files = _fake_files()
    ref = load_dataset("hapt12", _fake_dir(tmp_path / "a"))
    folder = tmp_path / "b" / "hapt" / "HAPT Data Set"
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    official = tmp_path / "c" / "hapt" / hapt.OFFICIAL_ZIP
    _write_zip(official, files, top="")  # the official archive may hold the files at its top level
    for data_dir in (tmp_path / "b", tmp_path / "c"):
        ds = load_dataset("hapt12", data_dir)
        np.testing.assert_array_equal(ds.train.x, ref.train.x)
        np.testing.assert_array_equal(ds.test.y, ref.test.y)


def test_missing_dataset_says_what_to_put_where(tmp_path):
    with pytest.raises(HarvitError, match="HAPT_Data_Set_RawData_and_labels.zip") as e:
        load_dataset("hapt6", tmp_path / "empty")
    assert str(tmp_path / "empty" / "hapt") in str(e.value) and "\n" not in str(e.value)


def test_unknown_dataset_lists_known_names(tmp_path):
    with pytest.raises(HarvitError, match="hapt6, hapt12, uci_har"):
        load_dataset("hapt7", tmp_path)


def test_corrupt_and_truncated_zip(tmp_path):
    data = _fake_dir(tmp_path)
    zpath = data / "hapt" / "HAPT_Data_Set_RawData_and_labels.zip"
    good = zpath.read_bytes()
    zpath.write_bytes(good[: len(good) // 2])
    with pytest.raises(HarvitError, match="truncated or corrupt"):
        load_dataset("hapt12", data)
    zpath.write_bytes(b"PK\x03\x04 this is not a zip" * 10)
    with pytest.raises(HarvitError, match="not a readable zip"):
        load_dataset("hapt12", data)


def test_crc_error_names_the_member(tmp_path):
    data = _fake_dir(tmp_path, stored=True)
    zpath = data / "hapt" / "HAPT_Data_Set_RawData_and_labels.zip"
    raw = bytearray(zpath.read_bytes())
    first_line = _fake_files()["RawData/" + GYRO.format(e=2, u=2)].splitlines()[0].encode()
    at = raw.find(first_line)
    raw[at] = ord("9") if raw[at] != ord("9") else ord("8")
    zpath.write_bytes(bytes(raw))
    with pytest.raises(HarvitError, match="gyro_exp02_user02.txt cannot be read"):
        load_dataset("hapt12", data)


def test_missing_member(tmp_path):
    files = _fake_files()
    del files["RawData/" + GYRO.format(e=2, u=2)]
    with pytest.raises(HarvitError, match="gyro_exp02_user02.txt is missing"):
        load_dataset("hapt12", _fake_dir(tmp_path, files))


def test_non_numeric_row_names_file_and_line(tmp_path):
    files = _fake_files()
    rel = "RawData/" + ACC.format(e=1, u=1)
    files[rel] = _edit_line(files[rel], 5, "0.1 abc 0.3")
    with pytest.raises(HarvitError, match=r"acc_exp01_user01.txt line 5: found non-numeric value 'abc'"):
        load_dataset("hapt12", _fake_dir(tmp_path, files))


def test_short_row_names_file_and_line(tmp_path):
    files = _fake_files()
    rel = "RawData/" + GYRO.format(e=1, u=1)
    files[rel] = _edit_line(files[rel], 7, "0.1 0.2")
    with pytest.raises(HarvitError, match=r"gyro_exp01_user01.txt line 7: found 2 values, expected 3"):
        load_dataset("hapt12", _fake_dir(tmp_path, files))


def _with_nan(line: int = 50) -> dict[str, str]:
    files = _fake_files()
    rel = "RawData/" + ACC.format(e=1, u=1)
    files[rel] = _edit_line(files[rel], line, "nan 0.0 inf")
    return files


def test_nan_policy_error(tmp_path):
    with pytest.raises(HarvitError, match=r"acc_exp01_user01.txt: 2 NaN/Inf values"):
        load_dataset("hapt12", _fake_dir(tmp_path, _with_nan()))


def test_nan_policy_drop_and_interpolate(tmp_path):
    clean = load_dataset("hapt12", _fake_dir(tmp_path / "clean"))
    data = _fake_dir(tmp_path / "nan", _with_nan(50))  # sample 49: only the first window [0, 128)
    dropped = load_dataset("hapt12", data, nan_policy="drop")
    assert len(dropped.train) == len(clean.train) - 1 and dropped.train.meta["dropped_windows"] == 1
    np.testing.assert_allclose(dropped.train.x, clean.train.x[1:], atol=0.1)
    assert len(dropped.test) == len(clean.test)
    filled = load_dataset("hapt12", data, nan_policy="interpolate")
    assert len(filled.train) == len(clean.train) and np.isfinite(filled.train.x).all()
    with pytest.raises(HarvitError, match="nan_policy"):
        load_dataset("hapt12", data, nan_policy="ignore")


def test_unknown_activity_id(tmp_path):
    files = _fake_files()
    files["RawData/labels.txt"] = _edit_line(files["RawData/labels.txt"], 2, "1 1 13 301 600")
    with pytest.raises(HarvitError, match=r"labels.txt line 2: activity id 13 is not in activity_labels.txt"):
        load_dataset("hapt12", _fake_dir(tmp_path, files))


def test_segment_beyond_recording_end(tmp_path):
    files = _fake_files()
    files["RawData/labels.txt"] = _edit_line(files["RawData/labels.txt"], 4, "2 2 7 401 700")
    with pytest.raises(
        HarvitError, match=r"line 4 \(exp 2, user 2\): segment 401..700 ends beyond .* 600 samples"
    ):
        load_dataset("hapt12", _fake_dir(tmp_path, files))


def test_acc_gyro_length_mismatch(tmp_path):
    files = _fake_files()
    rel = "RawData/" + GYRO.format(e=1, u=1)
    files[rel] = "\n".join(files[rel].splitlines()[:-3]) + "\n"
    with pytest.raises(
        HarvitError, match=r"acc_exp01_user01.txt has 600 rows but .*gyro_exp01_user01.txt has 597"
    ):
        load_dataset("hapt12", _fake_dir(tmp_path, files))


# ----------------------------------------------------------------------------------- cache


def test_second_load_hits_the_cache(tmp_path, monkeypatch):
    data = _fake_dir(tmp_path)
    first = load_dataset("hapt12", data)
    key = first.train.meta["cache_key"]
    assert prepared_path("hapt12", key).is_file()
    monkeypatch.setattr(hapt, "build_hapt", _must_not_build)
    second = load_dataset("hapt12", data)
    assert second.train.meta["cache_key"] == key
    for a, b in ((first.train, second.train), (first.test, second.test)):
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.y, b.y)
        np.testing.assert_array_equal(a.subject, b.subject)
        assert (a.channels, a.classes, a.rate_hz) == (b.channels, b.classes, b.rate_hz)


def test_changed_parameter_or_source_changes_the_key(tmp_path):
    data = _fake_dir(tmp_path)
    base = load_dataset("hapt12", data).train.meta["cache_key"]
    assert load_dataset("hapt6", data).train.meta["cache_key"] != base
    assert load_dataset("hapt12", data, nan_policy="drop").train.meta["cache_key"] != base
    for params in (
        Preprocessing(stride=32),
        Preprocessing(noise_cutoff_hz=15.0),
        Preprocessing(median_kernel=5),
    ):
        other = load_dataset("hapt12", data, params=params)
        assert other.train.meta["cache_key"] != base
    assert len(load_dataset("hapt12", data, params=Preprocessing(stride=32)).train) == 6 + 6
    files = _fake_files()
    files["RawData/labels.txt"] = _edit_line(files["RawData/labels.txt"], 1, "1 1 1 2 300")
    changed = _fake_dir(tmp_path / "changed", files)
    assert load_dataset("hapt12", changed).train.meta["cache_key"] != base


def test_corrupt_cache_file_is_rebuilt(tmp_path):
    data = _fake_dir(tmp_path)
    first = load_dataset("hapt12", data)
    path = prepared_path("hapt12", first.train.meta["cache_key"])
    path.write_bytes(path.read_bytes()[:1000])
    again = load_dataset("hapt12", data)
    np.testing.assert_array_equal(again.train.x, first.train.x)
    assert path.stat().st_size > 1000


def test_train_stride_makes_denser_training_windows_only(tmp_path):
    data_dir = _fake_dir(tmp_path)
    std = load_dataset("hapt12", data_dir)
    dense = load_dataset("hapt12", data_dir, train_stride=32)
    assert len(dense.train) > len(std.train)
    np.testing.assert_array_equal(dense.test.x, std.test.x)  # test windows keep the standard stride
    np.testing.assert_array_equal(dense.test.y, std.test.y)
    rows = {w.tobytes() for w in dense.train.x}
    assert all(w.tobytes() in rows for w in std.train.x)  # stride-64 starts are a subset of stride-32 starts
    assert load_dataset("hapt12", data_dir, train_stride=64).train.x.shape == std.train.x.shape
    with pytest.raises(HarvitError, match="--train-stride: uci_har"):
        load_dataset("uci_har", data_dir, train_stride=32)
    with pytest.raises(HarvitError, match="--train-stride"):
        load_dataset("hapt12", data_dir, train_stride=0)
