"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
from real_data import absent, data_dirs

HAPT_ZIP = "HAPT_Data_Set_RawData_and_labels.zip"


@pytest.fixture(autouse=True)
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Caches written by a test (prepared windows, baseline results) go to the session's temporary folder,
    never the user's; a test that sets ``HARVIT_CACHE_DIR`` itself overrides this."""
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "harvit-cache-default"))


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The real data folder holding the HAPT zip: ``HARVIT_DATA_DIR`` or ``../shared/data``."""
    for path in data_dirs():
        if (path / "hapt" / HAPT_ZIP).is_file():
            return path
    absent(f"real HAPT data absent: set HARVIT_DATA_DIR to a folder holding hapt/{HAPT_ZIP}")


@pytest.fixture(scope="session")
def devices_dir() -> Path:
    """The real research-device files (``devices/`` of ``HARVIT_DATA_DIR`` or ``../shared/data``)."""
    for path in data_dirs():
        if (path / "devices" / "ax3_testfile.cwa").is_file():
            return path / "devices"
    absent("real device files absent: set HARVIT_DATA_DIR to a folder holding devices/ax3_testfile.cwa")


@pytest.fixture(scope="session")
def session_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared-windows cache folder shared by the whole test session (never the user's own)."""
    return tmp_path_factory.mktemp("harvit-cache")


def _load_real(name: str, data_dir: Path, cache: Path):
    from harvit.data import load_dataset

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARVIT_CACHE_DIR", str(cache))
        mp.setenv("HARVIT_OFFLINE", "1")
        return load_dataset(name, data_dir)


@pytest.fixture(scope="session")
def hapt12_real(shared_data_dir: Path, session_cache_dir: Path):
    """The real ``hapt12`` data set, prepared once per session (cached in ``session_cache_dir``)."""
    return _load_real("hapt12", shared_data_dir, session_cache_dir)


@pytest.fixture(scope="session")
def hapt6_real(hapt12_real, shared_data_dir: Path, session_cache_dir: Path):
    """The real ``hapt6`` data set (derived from the cached ``hapt12``)."""
    return _load_real("hapt6", shared_data_dir, session_cache_dir)
