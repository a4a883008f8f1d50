import os

import pytest

from harvit.utils.atomic import write_json, write_text
from harvit.utils.errors import HarvitError


def test_atomic_write_mode_follows_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert not list(tmp_path.glob(".*.tmp"))


def test_failed_write_keeps_the_old_file(tmp_path):
    p = tmp_path / "r.json"
    write_json(p, {"a": 1})
    with pytest.raises(TypeError):
        write_json(p, {"a": object()})
    assert p.read_text().strip().startswith("{") and '"a": 1' in p.read_text()
    assert not list(tmp_path.glob(".*.tmp"))


def test_unwritable_target_is_one_harvit_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(HarvitError, match="cannot write"):
        write_text(tmp_path / "file" / "sub.txt", "y")


def test_atomic_path_gives_a_named_writers_file_the_usual_mode(tmp_path):
    from harvit.utils.atomic import atomic_path

    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "g.bin") as tmp:
            with open(tmp, "wb") as f:  # a writer that opens by name keeps mkstemp's 0600
                f.write(b"graph")
            assert tmp.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
    assert (tmp_path / "g.bin").read_bytes() == b"graph"
    assert (tmp_path / "g.bin").stat().st_mode & 0o777 == 0o644
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "g.bin") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("exporter failed")
    assert (tmp_path / "g.bin").read_bytes() == b"graph" and not list(tmp_path.glob(".*.tmp"))
