"""A run's saved settings become its data set in one place: ``harvit.data.load_run_dataset``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_data_own import table, write_csv

import harvit.data
from harvit.config import Config
from harvit.data import OwnOptions, load_dataset, load_run_dataset


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple, dict]]:
    """Every call of the loader under load_run_dataset, which returns nothing useful."""
    seen: list[tuple[tuple, dict]] = []
    monkeypatch.setattr(harvit.data.registry, "load_dataset", lambda *a, **k: seen.append((a, k)))
    return seen


def test_a_config_and_its_saved_json_load_the_same_windows(tmp_path: Path):
    path = write_csv(table(subjects=(1, 2, 3, 4, 5)), tmp_path / "rec.csv")
    cfg = Config(dataset=str(path), window_s=2.0, overlap=0.25, test_subjects="2,4", train_stride=40)
    cfg.save(tmp_path / "config.json")
    ds = load_run_dataset(cfg)
    expected = load_dataset(str(path), train_stride=40,
                            options=OwnOptions(window_s=2.0, overlap=0.25, test_subjects="2,4"))
    for got, want in ((ds.train, expected.train), (ds.test, expected.test)):
        np.testing.assert_array_equal(got.x, want.x)
        np.testing.assert_array_equal(got.subject, want.subject)
    assert ds.train.length == 100 and sorted(ds.test.subjects()) == [2, 4]  # the run's options, not the defaults
    saved = Config.load(tmp_path / "config.json").to_dict()
    np.testing.assert_array_equal(load_run_dataset(saved).train.x, ds.train.x)


def test_an_older_config_json_without_newer_settings_still_loads(calls):
    load_run_dataset({"dataset": "hapt12", "data_dir": "/d", "seed": 1})  # no nan_policy, stride, own-data keys
    (args, kw), = calls
    assert args == ("hapt12", "/d", "error") and kw["train_stride"] is None and kw["options"] == OwnOptions()


def test_the_runs_stride_applies_to_its_own_data_set_only(calls):
    cfg = Config(dataset="hapt6", train_stride=32, nan_policy="drop")
    load_run_dataset(cfg)
    load_run_dataset(cfg, dense_train=False)  # the test split never needs the dense training windows
    load_run_dataset(cfg, dataset="hapt12", data_dir="/other")  # harvit evaluate --dataset --data-dir
    assert [(a, k["train_stride"]) for a, k in calls] == [
        (("hapt6", None, "drop"), 32), (("hapt6", None, "drop"), None), (("hapt12", "/other", "drop"), None)]


def test_own_data_options_follow_a_path_not_a_built_in_set(calls, tmp_path: Path):
    cfg = Config(dataset=str(tmp_path / "mine.csv"), window_s=3.0)
    load_run_dataset(cfg, dataset="hapt6")  # a built-in set takes no own-data options
    load_run_dataset(cfg, dataset=str(tmp_path / "other.csv"))  # another table is read like the run's
    assert calls[0][1]["options"] is None and calls[1][1]["options"] == OwnOptions(window_s=3.0)


def test_cv_loads_the_own_data_options_of_its_settings(calls, tmp_path: Path):
    """harvit cv once loaded a table with the default options whatever the flags said."""
    from harvit.training.cv import run_cv

    cfg = Config(dataset=str(tmp_path / "mine.csv"), window_s=3.0, output_dir=str(tmp_path))
    with pytest.raises(AttributeError):  # the recorded loader returns None: cv stops at its first use
        run_cv(cfg, 2)
    assert calls[0][1]["options"] == OwnOptions(window_s=3.0)
