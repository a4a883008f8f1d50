"""Missing real data: a printed skip on a workstation, a failure in CI."""

from __future__ import annotations

import pytest
from real_data import absent, data_dirs


@pytest.mark.parametrize("ci, outcome", [("true", pytest.fail.Exception), ("1", pytest.fail.Exception),
                                         ("", pytest.skip.Exception), ("false", pytest.skip.Exception)])
def test_absent_data_fails_in_ci_and_skips_elsewhere(monkeypatch, ci, outcome):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="real HAPT data absent"):
        absent("real HAPT data absent: no /nowhere/hapt")


def test_the_data_folder_comes_from_the_environment_first(monkeypatch, tmp_path):
    monkeypatch.setenv("HARVIT_DATA_DIR", str(tmp_path))
    assert data_dirs()[0] == tmp_path and data_dirs()[-1].parts[-2:] == ("shared", "data")
    monkeypatch.setenv("HARVIT_DATA_DIR", "  ")
    assert len(data_dirs()) == 1


def test_pytest_prints_skip_reasons():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    addopts = re.search(r"^addopts\s*=\s*(.+)$", text, flags=re.M)
    assert addopts and "-rs" in addopts.group(1).replace('"', " ").replace("'", " ").split()
