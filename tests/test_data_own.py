"""Your own data: tables of recordings, .npz window arrays and .ts files become windows."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harvit.cli import check_registered, main
from harvit.config import Config
from harvit.data import NO_SUBJECT, OwnOptions, load_dataset, train_val_split
from harvit.data import ts_files as ts_module
from harvit.data.splits import NO_SUBJECT_NOTE
from harvit.utils.errors import HarvitError

RATE = 50.0
WINDOW = 128  # 2.56 s at 50 Hz
STRIDE = 64
AXES = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path / "cache"))


def n_windows(n: int, length: int = WINDOW, stride: int = STRIDE) -> int:
    return 0 if n < length else (n - length) // stride + 1


def recording(subject, session: int, runs: list[tuple[str, int]], seed: int = 0, rate: float = RATE) -> pd.DataFrame:
    """One recording: ``runs`` of (label, samples) back to back ('' = unlabelled), 6 channels."""
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.full(n, name, dtype=object) for name, n in runs])
    n = len(labels)
    frame = pd.DataFrame({"subject": subject, "session": session, "time_s": np.arange(n) / rate,
                          "activity": labels})
    for k, axis in enumerate(AXES):
        frame[axis] = rng.normal(size=n) + (1.0 if axis == "acc_z" else 0.0) + k
    return frame


def table(subjects=(1, 2, 3, 4), runs=(("walk", 600), ("", 40), ("sit", 500))) -> pd.DataFrame:
    return pd.concat([recording(s, e, list(runs), seed=10 * k + e) for k, s in enumerate(subjects) for e in (1, 2)],
                     ignore_index=True)


def expected_counts(runs, recordings: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, n in runs:
        if name:
            out[name] = out.get(name, 0) + recordings * n_windows(n)
    return out


def counts(ds) -> dict[str, int]:
    total = {}
    for w in (ds.train, ds.test):
        for name, c in zip(w.classes, w.class_counts(), strict=True):
            total[name] = total.get(name, 0) + c
    return total


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


# ---- tables ----------------------------------------------------------------------------------
def test_csv_windows_lie_inside_labelled_runs(tmp_path: Path):
    runs = (("walk", 600), ("", 40), ("sit", 500))
    frame = table(runs=runs)
    ds = load_dataset(str(write_csv(frame, tmp_path / "rec.csv")))
    assert ds.train.channels == list(AXES) and ds.train.rate_hz == RATE and ds.train.length == WINDOW
    assert ds.train.classes == ["sit", "walk"]
    assert counts(ds) == expected_counts(runs, 8)
    # every window is a verbatim copy of consecutive rows of one recording, with the run's label
    first = frame[(frame.subject == ds.train.subject[0])]
    rows = first[list(AXES)].to_numpy(np.float32)
    start = int(np.flatnonzero(np.all(np.isclose(rows, ds.train.x[0, :, 0]), axis=1))[0])
    np.testing.assert_allclose(ds.train.x[0].T, rows[start:start + WINDOW], rtol=1e-6)
    assert set(first.activity.iloc[start:start + WINDOW]) == {ds.train.classes[ds.train.y[0]]}


def test_parquet_gzip_and_folder_give_the_same_windows(tmp_path: Path):
    frame = table()
    ref = load_dataset(str(write_csv(frame, tmp_path / "a.csv")))
    frame.to_parquet(tmp_path / "a.parquet")
    with gzip.open(tmp_path / "a.csv.gz", "wt") as f:
        frame.to_csv(f, index=False)
    folder = tmp_path / "folder"
    folder.mkdir()
    for s, part in frame.groupby("subject"):
        part.to_csv(folder / f"subject{s}.csv", index=False)
    for path in (tmp_path / "a.parquet", tmp_path / "a.csv.gz", folder):
        ds = load_dataset(str(path))
        np.testing.assert_array_equal(ds.train.x, ref.train.x)
        np.testing.assert_array_equal(ds.test.y, ref.test.y)
        assert ds.test.subjects() == ref.test.subjects()


def test_folder_files_must_share_columns(tmp_path: Path):
    frame = table(subjects=(1, 2))
    frame[frame.subject == 1].to_csv(tmp_path / "a.csv", index=False)
    frame[frame.subject == 2].drop(columns=["gyro_z"]).to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(HarvitError, match=r"b\.csv has columns .*expected those of"):
        load_dataset(str(tmp_path))


def test_gap_splits_a_recording(tmp_path: Path):
    frame = recording(1, 1, [("walk", 600)])
    frame.loc[300:, "time_s"] += 2.0  # a 2 s hole after 300 samples
    other = recording(2, 1, [("walk", 600), ("sit", 600)], seed=1)
    frame = pd.concat([frame, recording(1, 2, [("sit", 600)], seed=2), other], ignore_index=True)
    ds = load_dataset(str(write_csv(frame, tmp_path / "gap.csv")), options=OwnOptions(test_subjects="2"))
    assert ds.train.class_counts()[ds.train.classes.index("walk")] == 2 * n_windows(300)
    assert ds.train.meta["load_stats"]["pieces"] == 4


def test_jittery_time_goes_onto_a_regular_grid(tmp_path: Path):
    frame = table(subjects=(1, 2))
    rng = np.random.default_rng(3)
    frame["time_s"] += rng.uniform(-0.008, 0.008, len(frame))  # +-0.4 of a sample period
    ds = load_dataset(str(write_csv(frame, tmp_path / "jitter.csv")))
    stats = ds.train.meta["load_stats"]
    assert stats["gridded_pieces"] == stats["pieces"] == 4
    assert abs(ds.train.rate_hz - RATE) < 0.5 and ds.train.length == WINDOW
    total = sum(counts(ds).values())
    assert abs(total - sum(expected_counts((("walk", 600), ("", 40), ("sit", 500)), 4).values())) <= 4


@pytest.mark.parametrize("unit", ["ms", "us", "ns_epoch", "iso", "ms_name"])
def test_time_units_are_detected(tmp_path: Path, unit: str, caplog: pytest.LogCaptureFixture):
    frame = table(subjects=(1, 2))
    ref = load_dataset(str(write_csv(frame, tmp_path / "s.csv")))
    t = frame.pop("time_s")
    if unit == "ms":
        frame["time"] = np.round(t * 1000).astype(np.int64)
    elif unit == "us":
        frame["timestamp"] = np.round(t * 1e6).astype(np.int64)
    elif unit == "ns_epoch":
        frame["timestamp"] = 1_700_000_000_000_000_000 + np.round(t * 1e9).astype(np.int64)
    elif unit == "iso":
        frame["time"] = (pd.Timestamp("2024-05-01T10:00:00") + pd.to_timedelta(t, unit="s")).dt.strftime(
            "%Y-%m-%dT%H:%M:%S.%f")
    else:
        frame["t_ms"] = t * 1000  # only the name says ms
    caplog.set_level("INFO", logger="harvit.data")
    options = OwnOptions(time_column="t_ms") if unit == "ms_name" else None
    ds = load_dataset(str(write_csv(frame, tmp_path / f"{unit}.csv")), options=options)
    np.testing.assert_allclose(ds.train.x, ref.train.x, atol=1e-5)
    assert ds.train.rate_hz == RATE
    word = {"ns_epoch": "ns", "iso": "ISO", "ms_name": "ms"}.get(unit, unit)
    assert any(word in r.getMessage() and "time column" in r.getMessage() for r in caplog.records)


def test_rate_resamples_with_an_anti_alias_filter(tmp_path: Path):
    rate = 100.0
    n = 2000
    t = np.arange(n) / rate
    frame = pd.DataFrame({"subject": np.repeat([1, 2], n), "time_s": np.tile(t, 2),
                          "label": np.tile(np.where(np.arange(n) < n // 2, "a", "b"), 2)})
    frame["slow"] = np.tile(np.sin(2 * np.pi * 2.0 * t), 2)  # 2 Hz: kept at 50 Hz
    frame["fast"] = np.tile(np.sin(2 * np.pi * 40.0 * t), 2)  # 40 Hz: above 25 Hz Nyquist, must vanish
    path = write_csv(frame, tmp_path / "r.csv")
    ds = load_dataset(str(path), options=OwnOptions(rate=50.0))
    assert ds.train.rate_hz == 50.0 and ds.train.length == WINDOW
    x = np.concatenate([ds.train.x, ds.test.x])
    assert np.abs(x[:, 0]).max() > 0.95  # the 2 Hz sine keeps its amplitude
    assert np.abs(x[:, 1]).std() < 0.05  # the 40 Hz one is filtered out, not aliased to 10 Hz
    native = load_dataset(str(path))
    assert native.train.rate_hz == rate and native.train.length == int(round(2.56 * rate))


def test_no_time_column_needs_rate(tmp_path: Path):
    frame = table(subjects=(1, 2)).drop(columns=["time_s"])
    path = write_csv(frame, tmp_path / "notime.csv")
    with pytest.raises(HarvitError, match="--rate"):
        load_dataset(str(path))
    ds = load_dataset(str(path), options=OwnOptions(rate=RATE))
    assert sum(counts(ds).values()) == sum(expected_counts((("walk", 600), ("", 40), ("sit", 500)), 4).values())


def test_window_and_overlap(tmp_path: Path):
    frame = table(subjects=(1, 2))
    ds = load_dataset(str(write_csv(frame, tmp_path / "w.csv")), options=OwnOptions(window_s=2.0, overlap=0.75))
    assert ds.train.length == 100 and ds.train.meta["stride"] == 25
    assert counts(ds) == {"walk": 4 * n_windows(600, 100, 25), "sit": 4 * n_windows(500, 100, 25)}


def test_export_quirks(tmp_path: Path):
    frame = table(subjects=(1, 2))
    ref = load_dataset(str(write_csv(frame, tmp_path / "plain.csv")))
    text = frame.to_csv(index=False, float_format="%.9g")
    lines = text.splitlines()
    quirky = "\ufeff" + "\n".join(line + ";" if i % 2 == 0 else line + ";\n" for i, line in enumerate(lines))
    (tmp_path / "quirks.csv").write_text(quirky, encoding="utf-8")  # BOM, blank lines, trailing ';'
    semi = frame.to_csv(index=False, sep=";", float_format="%.9g").replace("\n", ";\n")
    (tmp_path / "semicolons.csv").write_text(semi, encoding="utf-8")
    headless = frame.to_csv(index=False, header=False, float_format="%.9g")
    (tmp_path / "headless.csv").write_text(headless, encoding="utf-8")
    for name, options in (("quirks.csv", None), ("semicolons.csv", None),
                          ("headless.csv", OwnOptions(columns=",".join(frame.columns)))):
        ds = load_dataset(str(tmp_path / name), options=options)
        assert ds.train.channels == list(AXES), name
        np.testing.assert_allclose(ds.train.x, ref.train.x, rtol=1e-6, err_msg=name)


def test_channels_flag_and_text_columns(tmp_path: Path):
    frame = table(subjects=(1, 2))
    frame["device"] = "watch"  # text: not a channel
    path = write_csv(frame, tmp_path / "c.csv")
    assert load_dataset(str(path)).train.channels == list(AXES)
    ds = load_dataset(str(path), options=OwnOptions(channels="acc_x,acc_y,acc_z"))
    assert ds.train.channels == ["acc_x", "acc_y", "acc_z"] and ds.train.n_channels == 3


def test_gravity_split_and_lowpass(tmp_path: Path):
    frame = table(subjects=(1, 2))
    path = write_csv(frame, tmp_path / "g.csv")
    plain = load_dataset(str(path))
    ds = load_dataset(str(path), options=OwnOptions(gravity_split="acc", lowpass=20.0))
    assert ds.train.channels == ["body_acc_x", "body_acc_y", "body_acc_z", "gyro_x", "gyro_y", "gyro_z",
                                 "total_acc_x", "total_acc_y", "total_acc_z"]
    body, total = ds.train.x[:, :3], ds.train.x[:, 6:]
    gravity = total - body
    assert np.abs(np.diff(gravity, axis=2)).mean() < 0.1 * np.abs(np.diff(total, axis=2)).mean()  # slow part
    assert abs(gravity[:, 2].mean() - (1.0 + 2)) < 0.2  # acc_z's offset is the gravity
    assert np.abs(ds.train.x[:, 3:6]).std() < plain.train.x[:, 3:6].std()  # the low-pass removed noise
    with pytest.raises(HarvitError, match="--gravity-split gyr.*triples present: acc, gyro"):
        load_dataset(str(path), options=OwnOptions(gravity_split="gyr"))


def test_subject_splits(tmp_path: Path):
    frame = table(subjects=tuple(range(1, 11)))
    path = write_csv(frame, tmp_path / "s.csv")
    ds = load_dataset(str(path), options=OwnOptions(test_subjects="2,4,9"))
    assert ds.test.subjects() == [2, 4, 9] and not set(ds.train.subjects()) & {2, 4, 9}
    drawn = load_dataset(str(path), options=OwnOptions(test_fraction=0.3))
    assert len(drawn.test.subjects()) == 3 and not set(drawn.train.subjects()) & set(drawn.test.subjects())
    again = load_dataset(str(path), options=OwnOptions(test_fraction=0.3), use_cache=False)
    assert again.test.subjects() == drawn.test.subjects()
    train, val = train_val_split(ds.train, 0.2, seed=0)
    assert not set(train.subjects()) & set(val.subjects())
    with pytest.raises(HarvitError, match="--test-subjects: no subject 42"):
        load_dataset(str(path), options=OwnOptions(test_subjects="2,42"))


def test_named_subjects(tmp_path: Path):
    frame = table(subjects=("alice", "bob", "carol"))
    ds = load_dataset(str(write_csv(frame, tmp_path / "n.csv")), options=OwnOptions(test_subjects="bob"))
    assert ds.test.subjects() == [2] and ds.train.subjects() == [1, 3]
    assert ds.test.meta["subject_names"]["2"] == "bob"


def test_no_subjects_split_windows_with_a_note(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    frame = table(subjects=(1, 2))
    frame["session"] += 10 * frame.pop("subject")  # recordings, but nobody named
    caplog.set_level("WARNING")
    ds = load_dataset(str(write_csv(frame, tmp_path / "anon.csv")))
    assert ds.notes == [NO_SUBJECT_NOTE] and NO_SUBJECT_NOTE in caplog.text
    assert not ds.train.has_subjects and (ds.train.subject == NO_SUBJECT).all()
    n = len(ds.train) + len(ds.test)
    assert abs(len(ds.test) - 0.3 * n) <= 2
    assert set(ds.test.y.tolist()) == set(ds.train.y.tolist()) == {0, 1}
    train, val = train_val_split(ds.train, 0.2, seed=1)
    assert len(train) + len(val) == len(ds.train) and set(val.y.tolist()) == {0, 1}
    cached = load_dataset(str(tmp_path / "anon.csv"))
    assert cached.notes == ds.notes and "cache_file" in cached.train.meta


def test_cache_key_follows_files_and_options(tmp_path: Path):
    path = write_csv(table(subjects=(1, 2)), tmp_path / "k.csv")
    first = load_dataset(str(path))
    again = load_dataset(str(path))
    assert again.train.meta["cache_key"] == first.train.meta["cache_key"] and "cache_file" in again.train.meta
    assert load_dataset(str(path), options=OwnOptions(overlap=0.25)).train.meta["cache_key"] != \
        first.train.meta["cache_key"]
    write_csv(table(subjects=(1, 2, 3)), path)
    assert load_dataset(str(path)).train.meta["cache_key"] != first.train.meta["cache_key"]


def test_train_stride_gives_denser_training_windows(tmp_path: Path):
    path = write_csv(table(), tmp_path / "d.csv")
    std = load_dataset(str(path))
    dense = load_dataset(str(path), train_stride=32)
    assert len(dense.train) > 1.8 * len(std.train)
    np.testing.assert_array_equal(dense.test.x, std.test.x)


# ---- table errors ----------------------------------------------------------------------------
def test_missing_label_column_names_the_columns(tmp_path: Path):
    path = write_csv(table(subjects=(1, 2)).rename(columns={"activity": "what"}), tmp_path / "e.csv")
    with pytest.raises(HarvitError, match=r"no label column .*found columns: subject, session, time_s, what"):
        load_dataset(str(path))
    assert load_dataset(str(path), options=OwnOptions(label_column="what")).train.classes == ["sit", "walk"]


@pytest.mark.parametrize("flag,value", [("subject_column", "person"), ("time_column", "clock"),
                                        ("recording_column", "run"), ("label_column", "act"),
                                        ("channels", "acc_x,acc_q")])
def test_flag_naming_a_missing_column(tmp_path: Path, flag: str, value: str):
    path = write_csv(table(subjects=(1, 2)), tmp_path / "e.csv")
    with pytest.raises(HarvitError, match=r"--[a-z-]+.*found columns: subject, session"):
        load_dataset(str(path), options=OwnOptions(**{flag: value}))


def test_non_numeric_value_names_file_row_and_column(tmp_path: Path):
    frame = table(subjects=(1, 2))
    frame["gyro_y"] = frame["gyro_y"].astype(object)
    frame.loc[1234, "gyro_y"] = "oops"
    path = write_csv(frame, tmp_path / "bad.csv")
    with pytest.raises(HarvitError, match=r"bad\.csv row 1235 column 'gyro_y': found 'oops'"):
        load_dataset(str(path))


def test_time_stepping_back_starts_a_new_piece(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    # two sessions of one subject without a session column: the device clock restarts between them
    frame = table(subjects=(1, 2)).drop(columns=["session"])
    caplog.set_level("INFO", logger="harvit.data")
    ds = load_dataset(str(write_csv(frame, tmp_path / "back.csv")))
    assert ds.train.meta["load_stats"]["pieces"] == 4
    assert counts(ds) == expected_counts((("walk", 600), ("", 40), ("sit", 500)), 4)
    assert "time steps back 2 time(s) within a recording" in caplog.text


def test_a_time_unit_that_shreds_the_table_is_an_error(tmp_path: Path):
    frame = table(subjects=(1, 2))
    frame["time_s"] = np.random.default_rng(0).permutation(len(frame)) / RATE  # rows in no time order
    with pytest.raises(HarvitError, match=r"time column 'time_s' read in s \(.* Hz\) cuts 4 recording\(s\) into "
                                          r"\d+ pieces .*--time-unit"):
        load_dataset(str(write_csv(frame, tmp_path / "shred.csv")))


def test_rates_differing_over_5_percent_name_the_files(tmp_path: Path):
    recording(1, 1, [("walk", 600), ("sit", 600)]).to_csv(tmp_path / "a50.csv", index=False)
    recording(2, 1, [("walk", 600), ("sit", 600)], rate=60.0).to_csv(tmp_path / "b60.csv", index=False)
    with pytest.raises(HarvitError, match=r"b60\.csv is at 60 Hz.*a50\.csv at 50 Hz"):
        load_dataset(str(tmp_path))
    ds = load_dataset(str(tmp_path), options=OwnOptions(rate=50.0))
    assert ds.train.rate_hz == 50.0


def test_short_recordings_are_skipped_then_an_error(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    frame = pd.concat([table(subjects=(1, 2)), recording(3, 1, [("walk", 100)])], ignore_index=True)
    caplog.set_level("WARNING")
    ds = load_dataset(str(write_csv(frame, tmp_path / "short.csv")))
    assert 3 not in ds.train.subjects() + ds.test.subjects()
    assert "skipped 1 of 5 recording pieces shorter than one window" in caplog.text
    tiny = pd.concat([recording(s, 1, [("walk", 60), ("sit", 60)]) for s in (1, 2)], ignore_index=True)
    with pytest.raises(HarvitError, match="no windows: .* 2 pieces are shorter than a window"):
        load_dataset(str(write_csv(tiny, tmp_path / "tiny.csv")))


def test_one_class_only_and_test_class_absent_from_training(tmp_path: Path):
    one = table(subjects=(1, 2), runs=(("walk", 600),))
    with pytest.raises(HarvitError, match="one class only"):
        load_dataset(str(write_csv(one, tmp_path / "one.csv")))
    frame = pd.concat([table(subjects=(1, 2)), recording(3, 1, [("run", 600), ("sit", 600)])], ignore_index=True)
    with pytest.raises(HarvitError, match="test class\\(es\\) run absent from training"):
        load_dataset(str(write_csv(frame, tmp_path / "absent.csv")), options=OwnOptions(test_subjects="3"))


def test_config_dataset_is_a_name_or_an_existing_path(tmp_path: Path):
    path = write_csv(table(subjects=(1, 2)), tmp_path / "ok.csv")
    assert Config(dataset=str(path)).validate().dataset == str(path)
    with pytest.raises(HarvitError, match="--dataset: .*nor an existing file or folder"):
        check_registered(Config(dataset=str(tmp_path / "nope.csv")).validate())  # the data layer knows data sets
    with pytest.raises(HarvitError, match="--window-s"):
        Config(dataset=str(path), window_s=0).validate()
    with pytest.raises(HarvitError, match="--window-s: only for your own data"):
        load_dataset("hapt6", tmp_path, options=OwnOptions(window_s=5.0))


# ---- .npz ------------------------------------------------------------------------------------
def npz_arrays(n: int = 60, c: int = 4, t: int = 32, subjects: bool = True) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    arrays = {"x": rng.normal(size=(n, c, t)).astype(np.float32), "y": np.arange(n) % 3}
    if subjects:
        arrays["subject"] = np.arange(n) % 6 + 1
    return arrays


def test_npz_with_subjects_names_and_rate(tmp_path: Path):
    arrays = npz_arrays()
    arrays.update(channels=np.array(["a_x", "a_y", "a_z", "hr"]), classes=np.array(["rest", "walk", "run"]),
                  rate_hz=np.array(25.0))
    np.savez(tmp_path / "w.npz", **arrays)
    ds = load_dataset(str(tmp_path / "w.npz"), options=OwnOptions(test_subjects="1,2"))
    assert ds.train.channels == ["a_x", "a_y", "a_z", "hr"] and ds.train.classes == ["rest", "walk", "run"]
    assert ds.train.rate_hz == 25.0 and ds.test.subjects() == [1, 2] and len(ds.train) + len(ds.test) == 60
    np.testing.assert_array_equal(ds.test.x, arrays["x"][np.isin(arrays["subject"], [1, 2])])


def test_npz_string_labels_own_split_and_no_subjects(tmp_path: Path):
    arrays = npz_arrays(subjects=False)
    arrays["y"] = np.array(["sit", "walk", "lie"])[arrays["y"]]
    arrays["split"] = np.where(np.arange(60) >= 45, "test", "train")
    np.savez(tmp_path / "s.npz", **arrays)
    ds = load_dataset(str(tmp_path / "s.npz"))
    assert ds.train.classes == ["lie", "sit", "walk"] and (len(ds.train), len(ds.test)) == (45, 15)
    assert ds.notes == [] and ds.train.channels == ["ch0", "ch1", "ch2", "ch3"] and ds.train.rate_hz == 50.0
    assert [ds.test.classes[k] for k in ds.test.y] == list(arrays["y"][45:])
    del arrays["split"]
    np.savez(tmp_path / "n.npz", **arrays)
    assert load_dataset(str(tmp_path / "n.npz")).notes == [NO_SUBJECT_NOTE]
    with pytest.raises(HarvitError, match="--window-s: only for tables"):
        load_dataset(str(tmp_path / "n.npz"), options=OwnOptions(window_s=3.0))


@pytest.mark.parametrize("change,message", [
    (lambda a: a.pop("y"), "missing key\\(s\\) y"),
    (lambda a: a.update(x=a["x"][:, 0]), "x has shape \\[60, 32\\]"),
    (lambda a: a.update(y=a["y"][:10]), "y has shape \\[10\\]; expected \\[60\\]"),
    (lambda a: a.update(subject=a["subject"][:, None]), "subject has shape"),
    (lambda a: a.update(channels=np.array(["a", "b"])), "channels has shape \\[2\\]; expected \\[4\\]"),
    (lambda a: a.update(split=np.array(["train", "val"] * 30)), "split holds val"),
    (lambda a: a.update(y=np.zeros(60, dtype=int)), "one class only"),
])
def test_npz_errors(tmp_path: Path, change, message: str):
    arrays = npz_arrays()
    change(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(HarvitError, match=message):
        load_dataset(str(tmp_path / "bad.npz"))


def test_npz_refuses_pickled_objects(tmp_path: Path):
    arrays = npz_arrays()
    arrays["y"] = np.array([{"a": 1}] * 60, dtype=object)
    np.savez(tmp_path / "obj.npz", **arrays)
    with pytest.raises(HarvitError, match="obj.npz"):
        load_dataset(str(tmp_path / "obj.npz"))


# ---- .ts -------------------------------------------------------------------------------------
def write_ts(path: Path, x: np.ndarray, labels: list[str], classes: list[str]) -> Path:
    head = [f"# {path.name}", "@problemName Toy", "@timeStamps false", "@missing false",
            f"@univariate {'true' if x.shape[1] == 1 else 'false'}", f"@dimensions {x.shape[1]}",
            "@equalLength true", f"@seriesLength {x.shape[2]}", f"@classLabel true {' '.join(classes)}", "@data"]
    body = [":".join(",".join(f"{v:.6g}" for v in dim) for dim in case) + f":{lab}" for case, lab in zip(x, labels,
                                                                                                         strict=True)]
    path.write_text("\n".join(head + body) + "\n", encoding="utf-8")
    return path


def ts_pair_files(tmp_path: Path, d: int = 3, t: int = 20) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x_train, x_test = rng.normal(size=(12, d, t)), rng.normal(size=(6, d, t))
    classes = ["standing", "walking", "running"]
    write_ts(tmp_path / "Toy_TRAIN.ts", x_train, [classes[k % 3] for k in range(12)], classes)
    write_ts(tmp_path / "Toy_TEST.ts", x_test, [classes[k % 3] for k in range(6)], classes)
    return x_train, x_test


@pytest.mark.parametrize("reader", ["aeon", "parser"])
def test_ts_pair_keeps_the_official_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reader: str):
    if reader == "aeon":
        pytest.importorskip("aeon")
    else:
        monkeypatch.setattr(ts_module, "read_ts", ts_module.parse_ts)
    x_train, x_test = ts_pair_files(tmp_path)
    for target in (tmp_path / "Toy_TRAIN.ts", tmp_path / "Toy_TEST.ts", tmp_path):
        ds = load_dataset(str(target), use_cache=False)
        assert ds.name == "Toy" and ds.train.classes == ["standing", "walking", "running"]
        np.testing.assert_allclose(ds.train.x, x_train, rtol=1e-5)
        np.testing.assert_allclose(ds.test.x, x_test, rtol=1e-5)
        assert ds.train.y.tolist() == [k % 3 for k in range(12)] and ds.train.channels == ["dim0", "dim1", "dim2"]
        assert ds.notes == [] and not ds.train.has_subjects


def test_ts_parser_agrees_with_aeon(tmp_path: Path):
    pytest.importorskip("aeon")
    ts_pair_files(tmp_path, d=1, t=15)
    ours, theirs = ts_module.parse_ts(tmp_path / "Toy_TRAIN.ts"), ts_module.read_ts(tmp_path / "Toy_TRAIN.ts")
    np.testing.assert_array_equal(ours.x, theirs.x)
    assert ours.labels == theirs.labels and ours.class_values == theirs.class_values


@pytest.mark.parametrize("reader", ["aeon", "parser"])
def test_ts_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reader: str):
    if reader == "aeon":
        pytest.importorskip("aeon")
    else:
        monkeypatch.setattr(ts_module, "read_ts", ts_module.parse_ts)
    ts_pair_files(tmp_path)
    (tmp_path / "Toy_TEST.ts").unlink()
    with pytest.raises(HarvitError, match="partner Toy_TEST.ts is missing"):
        load_dataset(str(tmp_path / "Toy_TRAIN.ts"))
    text = "\n".join(["@problemName U", "@timeStamps false", "@univariate true", "@equalLength false",
                      "@classLabel true a b", "@data", "1,2,3,4:a", "1,2,3:b", ""])
    (tmp_path / "U_TRAIN.ts").write_text(text)
    (tmp_path / "U_TEST.ts").write_text(text)
    with pytest.raises(HarvitError, match="unequal lengths"):
        load_dataset(str(tmp_path / "U_TRAIN.ts"))


# ---- command line ----------------------------------------------------------------------------
def test_data_info_on_a_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = write_csv(table(subjects=(1, 2, 3)), tmp_path / "info.csv")
    assert main(["data", "info", str(path), "--test-subjects", "3", "--gravity-split", "acc"]) == 0
    out = capsys.readouterr().out
    assert "channels  9: body_acc_x" in out and "total_acc_z" in out
    assert "window    128 samples = 2.56 s at 50 Hz" in out and "test  1: 3" in out
    assert ["walk", str(4 * n_windows(600)), str(2 * n_windows(600))] in [line.split() for line in out.splitlines()]


def test_cli_bad_input_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    frame = table(subjects=(1, 2)).rename(columns={"activity": "what"})
    path = write_csv(frame, tmp_path / "e.csv")
    assert main(["data", "info", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len([line for line in err if line.startswith("harvit: error:")]) == 1
    assert "no label column" in err[-1] and "found columns" in err[-1]
    assert main(["data", "info", str(tmp_path / "missing.csv")]) == 2
    assert "--dataset" in capsys.readouterr().err


# ---- end to end: a TINY run trains from each format through Config alone -----------------------
@pytest.mark.parametrize("fmt", ["table", "npz", "ts"])
def test_tiny_train_on_each_format(tmp_path: Path, fmt: str):
    import json

    if fmt == "table":
        path = write_csv(table(subjects=(1, 2, 3, 4, 5)), tmp_path / "rec.csv")
        extra = {"gravity_split": "acc", "test_subjects": "5", "window_s": 1.28}
    elif fmt == "npz":
        arrays = npz_arrays(n=90, c=3, t=32)
        arrays["channels"] = np.array(["acc_x", "acc_y", "acc_z"])
        np.savez(tmp_path / "w.npz", **arrays)
        path, extra = tmp_path / "w.npz", {}
    else:
        ts_pair_files(tmp_path, d=2, t=24)
        path, extra = tmp_path / "Toy_TRAIN.ts", {}
    run = _train_from_config(tmp_path / "runs", str(path), extra)
    results = json.loads((run / "training_results.json").read_text())
    saved = json.loads((run / "config.json").read_text())
    assert saved["dataset"] == str(path) and all(saved[k] == v for k, v in extra.items())
    # the saved predictions are the test windows of the file, read again from the run's config alone
    from harvit.evaluation.evaluate import evaluate_checkpoint

    again = evaluate_checkpoint(str(run), split="test", device="cpu")
    y_true, y_pred = np.asarray(results["test_y_true"]), np.asarray(results["test_y_pred"])
    assert again["y_true"] == y_true.tolist() and again["y_pred"] == y_pred.tolist()
    assert results["test_accuracy"] == pytest.approx(float(np.mean(y_true == y_pred)))
    if fmt == "ts":  # the official test file: 6 windows, classes in the file's order
        assert y_true.tolist() == [k % 3 for k in range(6)]
    else:  # every test window comes from the held-out subjects, none from training
        split = results["split"]
        assert set(again["subjects"]) == set(split["test"]["subjects"]) and again["windows"] == len(y_true)
        assert set(split["test"]["subjects"]).isdisjoint(split["train"]["subjects"] + split["val"]["subjects"])


def _train_from_config(output_dir: Path, dataset: str, extra: dict) -> Path:
    from helpers_runs import tiny_config

    from harvit.training import train

    cfg = tiny_config(output_dir, dataset=dataset, epochs=1, **extra).validate()
    train(cfg)
    return cfg.run_dir


def test_nan_policy_on_tables(tmp_path: Path):
    frame = table(subjects=(1, 2))
    frame["gyro_x"] = frame["gyro_x"].astype(float)
    frame.loc[[10, 11], "gyro_x"] = np.nan  # inside subject 1's first walking run
    path = write_csv(frame, tmp_path / "nan.csv")
    with pytest.raises(HarvitError, match=r"nan\.csv: 2 empty or NaN/Inf channel values.*--nan-policy"):
        load_dataset(str(path))
    clean = sum(expected_counts((("walk", 600), ("", 40), ("sit", 500)), 4).values())
    dropped = load_dataset(str(path), nan_policy="drop")
    assert len(dropped.train) + len(dropped.test) == clean - 1  # the one window holding rows 10-11
    filled = load_dataset(str(path), nan_policy="interpolate")
    assert len(filled.train) + len(filled.test) == clean and np.isfinite(filled.train.x).all()
