"""Broken data files: each is one clear ``harvit: error:`` line and exit code 2, never a traceback.

Empty and header-only tables, corrupt and truncated parquet, gzip, and ``.npz`` files, through both
``harvit data info PATH`` and ``harvit train --dataset PATH`` (the CLI in-process, so each case is fast).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harvit.cli import main


def good_table(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"subject": np.repeat([1, 2], n // 2), "time": np.tile(np.arange(n // 2) / 20, 2),
                         "activity": "walk", "acc_x": rng.normal(size=n), "acc_y": 0.0, "acc_z": 1.0})


def good_npz(path: Path, compressed: bool = False) -> bytes:
    rng = np.random.default_rng(0)
    save = np.savez_compressed if compressed else np.savez
    save(path, x=rng.normal(size=(40, 3, 32)).astype(np.float32), y=np.arange(40) % 2)
    return path.read_bytes()


def make(case: str, folder: Path) -> Path:
    """Write the broken file ``case`` into ``folder``; returns its path."""
    if case == "empty.csv":
        path = folder / case
        path.write_bytes(b"")
    elif case == "header_only.csv":
        path = folder / case
        path.write_text("subject,time,activity,acc_x,acc_y,acc_z\n")
    elif case == "header_only.parquet":
        path = folder / case
        good_table().iloc[:0].to_parquet(path)
    elif case in ("random.parquet", "truncated.parquet", "zeroed.parquet"):
        good_table().to_parquet(folder / "good.parquet")
        data = (folder / "good.parquet").read_bytes()
        path = folder / case
        path.write_bytes({"random.parquet": np.random.default_rng(1).bytes(3000),
                          "truncated.parquet": data[:len(data) // 2],
                          "zeroed.parquet": data[:100] + bytes(200) + data[300:]}[case])
    elif case == "truncated.csv.gz":
        path = folder / case
        path.write_bytes(gzip.compress(good_table().to_csv(index=False).encode())[:300])
    elif case == "empty.npz":
        path = folder / case
        np.savez(path)
    elif case in ("random.npz", "truncated.npz"):
        data = good_npz(folder / "good.npz")
        path = folder / case
        path.write_bytes(np.random.default_rng(2).bytes(2000) if case == "random.npz" else data[:len(data) // 2])
    elif case in ("bad_member.npz", "bad_crc.npz"):
        data = bytearray(good_npz(folder / "good.npz", compressed=case == "bad_member.npz"))
        # bad_member: the deflated x's .npy header damaged; bad_crc: x's values (its CRC-32 no longer matches);
        # the archive's directory is intact in both
        start = 200 if case == "bad_member.npz" else 1000
        data[start:start + 60] = bytes(60)
        path = folder / case
        path.write_bytes(bytes(data))
    else:
        raise AssertionError(case)
    return path


CASES = {  # file -> what its one line must say
    "empty.csv": "is empty",
    "header_only.csv": "no rows",
    "header_only.parquet": "no rows",
    "random.parquet": "cannot read as a table",
    "truncated.parquet": "cannot read as a table",
    "zeroed.parquet": "cannot read as a table",
    "truncated.csv.gz": "cannot read",
    "empty.npz": "missing key(s) x, y",
    "random.npz": "not a .npz archive",
    "truncated.npz": "not a .npz archive",
    "bad_member.npz": "not a readable .npz",
    "bad_crc.npz": "not a readable .npz",
}


@pytest.mark.parametrize("command", ["data info", "train"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_broken_file_is_one_line_and_exit_2(case: str, command: str, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path / "cache"))
    path = make(case, tmp_path)
    argv = (["data", "info", str(path)] if command == "data info" else
            ["train", "--preset", "cpu", "--dataset", str(path), "--device", "cpu", "--output-dir",
             str(tmp_path / "runs")])
    assert main(argv) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("harvit: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert path.name in errors[0] and CASES[case] in errors[0], errors[0]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.pt"))  # nothing trained
