"""Downloads (local server / file:// only), checksums, manifests and safe extraction."""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import socket
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from real_data import absent

import harvit.data.hapt as hapt
from harvit.data import download, load_dataset, safe_extract
from harvit.data.download import (
    fetch_official,
    git_blob_sha1,
    load_manifest,
    open_source,
    verify_manifest,
)
from harvit.utils.errors import HarvitError


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HARVIT_OFFLINE", "1")
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("HARVIT_DATA_DIR", raising=False)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1 by a thread that is shut down after the test."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ----------------------------------------------------------------------------------- download


def test_http_download_good_and_bad_checksum(served, tmp_path):
    root, url = served
    payload = np.random.default_rng(0).bytes(300_000)
    (root / "file.bin").write_bytes(payload)
    good = hashlib.sha256(payload).hexdigest()
    dest = tmp_path / "dl" / "file.bin"
    assert download(f"{url}/file.bin", dest, good) == dest
    assert dest.read_bytes() == payload and _leftovers(dest.parent) == ["file.bin"]
    other = tmp_path / "dl2" / "file.bin"
    with pytest.raises(HarvitError, match="SHA-256 is .* expected 0000.*deleted"):
        download(f"{url}/file.bin", other, "0" * 64)
    assert _leftovers(other.parent) == []


def test_http_download_not_found_and_unreachable(served, tmp_path):
    _, url = served
    dest = tmp_path / "dl" / "missing.bin"
    with pytest.raises(HarvitError, match="cannot download .*missing.bin"):
        download(f"{url}/missing.bin", dest)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    with pytest.raises(HarvitError, match="cannot download"):
        download(f"http://127.0.0.1:{port}/x.zip", dest, timeout_s=5)
    assert _leftovers(dest.parent) == []


def test_file_url_download(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"hello")
    dest = tmp_path / "out" / "copy.bin"
    download(src.as_uri(), dest, hashlib.sha256(b"hello").hexdigest())
    assert dest.read_bytes() == b"hello"


def test_git_blob_sha1():
    assert git_blob_sha1(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    assert git_blob_sha1(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"


# ----------------------------------------------------------------------------------- extraction


def _zip_with(path: Path, name: str, data: bytes = b"x", symlink: bool = False) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("ok/fine.txt", b"fine")
        info = zipfile.ZipInfo(name)
        if symlink:
            info.external_attr = (0o120777 << 16) | 0
        z.writestr(info, data)
    return path


def test_safe_extract_good(tmp_path):
    zpath = _zip_with(tmp_path / "good.zip", "ok/sub/also.txt", b"also")
    written = safe_extract(zpath, tmp_path / "out")
    assert (tmp_path / "out" / "ok" / "sub" / "also.txt").read_bytes() == b"also"
    assert len(written) == 2
    only = safe_extract(zpath, tmp_path / "out2", members=["ok/fine.txt"])
    assert only == [(tmp_path / "out2" / "ok" / "fine.txt").resolve()]


@pytest.mark.parametrize(
    ("name", "symlink", "match"),
    [
        ("/etc/evil.txt", False, "absolute path"),
        ("C:/evil.txt", False, "absolute path"),
        ("ok/../../evil.txt", False, r"contains '\.\.'"),
        ("ok/link", True, "symbolic link"),
    ],
)
def test_safe_extract_refuses_bad_entries(tmp_path, name, symlink, match):
    zpath = _zip_with(tmp_path / "bad.zip", name, b"/etc/passwd" if symlink else b"evil", symlink)
    out = tmp_path / "out"
    with pytest.raises(HarvitError, match=match):
        safe_extract(zpath, out)
    assert not out.exists()  # checked before anything is written
    assert not (tmp_path / "evil.txt").exists()


# ----------------------------------------------------------------------------------- manifests


def test_hapt_manifest_matches_the_real_zip(shared_data_dir):
    algo, entries = load_manifest(hapt.MANIFEST)
    assert algo == "sha256" and len(entries) == 124  # 122 recordings + labels.txt + activity_labels.txt
    with open_source(shared_data_dir / "hapt" / hapt.RAW_ZIP, hapt.MARKER) as src:
        assert verify_manifest(src, hapt.MANIFEST) == 124


def test_uci_har_manifest_matches_the_real_label_files(shared_data_dir):
    folder = shared_data_dir / "uci_har" / "UCI HAR Dataset"
    if not folder.is_dir():
        absent(f"real UCI HAR label files absent: no {folder}")
    _, entries = load_manifest("uci_har_git_blob_sha1.tsv")
    assert len(entries) == 28
    with open_source(folder, "train/y_train.txt") as src:
        present = [rel for rel in entries if src.has(rel)]
        assert verify_manifest(src, "uci_har_git_blob_sha1.tsv", required=present) == len(present) >= 7


def _fake_hapt_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("RawData/labels.txt", "1 1 1 1 200\n")
        z.writestr("activity_labels.txt", "1 WALKING\n")
    return path


def test_fetch_offline_explains(tmp_path):
    with pytest.raises(HarvitError, match=r"put X in Y \(HARVIT_OFFLINE=1"):
        fetch_official("http://127.0.0.1:9/x.zip", tmp_path / "x.zip", "m", hapt.MANIFEST, None, "put X in Y")


def test_fetch_mismatch_deletes_the_download(served, tmp_path, monkeypatch):
    monkeypatch.delenv("HARVIT_OFFLINE")
    root, url = served
    _fake_hapt_zip(root / "hapt.zip")
    dest = tmp_path / "data" / "hapt" / hapt.OFFICIAL_ZIP
    with pytest.raises(HarvitError, match="labels.txt: sha256 is .*expected .*the download .* was deleted"):
        fetch_official(f"{url}/hapt.zip", dest, hapt.MARKER, hapt.MANIFEST, [], "put X in Y")
    assert _leftovers(dest.parent) == []
    with pytest.raises(HarvitError, match="acc_exp01_user01.txt is missing.*the download .* was deleted"):
        fetch_official(f"{url}/hapt.zip", dest, hapt.MARKER, hapt.MANIFEST, None, "put X in Y")
    assert _leftovers(dest.parent) == []


def test_fetch_failure_explains(tmp_path, monkeypatch):
    monkeypatch.delenv("HARVIT_OFFLINE")
    monkeypatch.setattr(hapt, "HAPT_URL", (tmp_path / "nowhere.zip").as_uri())
    with pytest.raises(
        HarvitError, match=r"put HAPT_Data_Set_RawData_and_labels.zip .*automatic download failed"
    ):
        load_dataset("hapt6", tmp_path / "data")


def test_load_downloads_and_verifies_the_official_zip(
    shared_data_dir, session_cache_dir, hapt6_real, tmp_path, monkeypatch
):
    """A missing data set is fetched (here from a file:// copy of the real zip), verified, then loaded."""
    monkeypatch.delenv("HARVIT_OFFLINE")
    monkeypatch.setenv("HARVIT_CACHE_DIR", str(session_cache_dir))  # same zip bytes -> same cache key
    mirror = tmp_path / "mirror.zip"
    shutil.copyfile(shared_data_dir / "hapt" / hapt.RAW_ZIP, mirror)
    monkeypatch.setattr(hapt, "HAPT_URL", mirror.as_uri())
    ds = load_dataset("hapt6", tmp_path / "data")
    assert (tmp_path / "data" / "hapt" / hapt.OFFICIAL_ZIP).is_file()
    assert ds.train.class_counts() == hapt6_real.train.class_counts()


def test_fetch_never_writes_into_a_read_only_data_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("HARVIT_OFFLINE")
    folder = tmp_path / "ro" / "hapt"
    folder.mkdir(parents=True)
    folder.chmod(0o555)
    try:
        with pytest.raises(HarvitError, match="put X .*is read-only, so it was not downloaded"):
            fetch_official("http://127.0.0.1:9/x.zip", folder / "x.zip", "m", hapt.MANIFEST, None, "put X")
    finally:
        folder.chmod(0o755)
    assert _leftovers(folder) == []
