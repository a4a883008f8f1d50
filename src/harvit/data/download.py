"""Getting data set files: download, offline switch, shipped manifests and the official-archive fetch.

Downloads are streamed to a temporary file beside the destination, checked, then renamed.
Reading a folder or zip (:class:`Source`, :func:`open_source`) and :func:`safe_extract` live in
:mod:`harvit.data.archive` and are re-exported here.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from harvit.data.archive import CHUNK, Source, open_source, safe_extract, sha256_file
from harvit.utils.errors import HarvitError
from harvit.utils.logging import progress_bar

__all__ = [
    "Source",
    "download",
    "fetch_official",
    "git_blob_sha1",
    "load_manifest",
    "offline",
    "open_source",
    "safe_extract",
    "sha256_file",
    "verify_manifest",
]

log = logging.getLogger("harvit.data")


def offline() -> bool:
    """True when env ``HARVIT_OFFLINE`` is set to a true value: never download then."""
    return os.environ.get("HARVIT_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


# --------------------------------------------------------------------------------------------- download


def download(url: str, dest: Path, sha256: str | None = None, timeout_s: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` atomically and return ``dest``.

    The bytes go to a temporary file beside ``dest``; when ``sha256`` is given the file's
    SHA-256 must match it, else the partial file is deleted and :class:`HarvitError` is raised.
    Only then is the file renamed to ``dest``. Works for ``http(s)://`` and ``file://`` URLs.
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as e:
        raise HarvitError(f"cannot download to {dest}: {e.strerror or e}") from None
    done = False
    try:
        log.info("downloading %s -> %s", url, dest)
        digest = hashlib.sha256()
        t0, size = time.perf_counter(), 0
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=timeout_s) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            bar = progress_bar(True, total, f"download {dest.name}", unit="B", unit_scale=True)
            while chunk := response.read(CHUNK):
                f.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
            if bar is not None:
                bar.close()
            f.flush()
            os.fsync(f.fileno())
        log.info("downloaded %.1f MB in %.1f s", size / 1e6, time.perf_counter() - t0)
        got = digest.hexdigest()
        if sha256 is not None and got != sha256.strip().lower():
            raise HarvitError(
                f"download {url}: SHA-256 is {got}, expected {sha256.strip().lower()}; the file was deleted"
            )
        os.replace(tmp, dest)
        done = True
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or e
        raise HarvitError(f"cannot download {url} to {dest}: {reason}") from None
    finally:
        if not done:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return dest


def git_blob_sha1(data: bytes) -> str:
    """Git's blob id of ``data``: ``sha1(b"blob <size>\\0" + data)`` (what ``git hash-object`` prints)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


# --------------------------------------------------------------------------------------------- manifests


def load_manifest(name: str) -> tuple[str, dict[str, tuple[str, ...]]]:
    """Read a shipped manifest ``manifests/<name>``: (algorithm, {member path: accepted hex digests}).

    The algorithm is ``sha256`` or ``git_blob_sha1``, taken from the file name.
    """
    algo = "sha256" if "sha256" in name else "git_blob_sha1" if "git_blob_sha1" in name else ""
    if not algo:
        raise HarvitError(f"manifest {name}: unknown digest; expected sha256 or git_blob_sha1 in its name")
    text = resources.files("harvit.data").joinpath("manifests", name).read_text(encoding="utf-8")
    entries: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        rel, *digests = line.split("\t")
        entries[rel] = tuple(d for d in digests if d and d != "-")
    return algo, entries


def verify_manifest(source: Source, manifest: str, required: Iterable[str] | None = None) -> int:
    """Check ``source``'s members against a shipped manifest; return how many were checked.

    Members in ``required`` (default: every manifest entry) must be present; others are checked
    when present. A missing required member or a digest mismatch raises :class:`HarvitError`.
    """
    algo, entries = load_manifest(manifest)
    must = set(entries) if required is None else set(required)
    checked = 0
    for rel, accepted in entries.items():
        if not source.has(rel):
            if rel in must:
                raise HarvitError(f"{source.where(rel)} is missing; the official release has it")
            continue
        data = source.read(rel)
        got = hashlib.sha256(data).hexdigest() if algo == "sha256" else git_blob_sha1(data)
        if got not in accepted:
            raise HarvitError(f"{source.where(rel)}: {algo} is {got}, expected {' or '.join(accepted)}")
        checked += 1
    return checked


def fetch_official(
    url: str, dest: Path, marker: str, manifest: str, required: Iterable[str] | None, missing: str
) -> Path:
    """Download an official archive to ``dest`` and verify its members, or explain what to do.

    ``missing`` is the one-line "put file X in folder Y" message used when downloading is off
    (``HARVIT_OFFLINE=1``) or fails. A member that does not match the manifest deletes the download.
    """
    if offline():
        raise HarvitError(f"{missing} (HARVIT_OFFLINE=1, so it was not downloaded)")
    if not _writable(dest.parent):
        raise HarvitError(f"{missing} ({dest.parent} is read-only, so it was not downloaded)")
    try:
        download(url, dest)
    except HarvitError as e:
        raise HarvitError(f"{missing} (automatic download failed: {e})") from None
    try:
        with open_source(dest, marker) as src:
            n = verify_manifest(src, manifest, required)
    except HarvitError as e:
        with contextlib.suppress(OSError):
            dest.unlink()
        raise HarvitError(f"{e}; the download {dest} was deleted") from None
    log.info("verified %d files of %s", n, dest)
    return dest


def _writable(folder: Path) -> bool:
    """Whether ``folder`` (or its nearest existing parent) may be written: permission bits set and access
    granted, so a read-only data folder is left alone even by root."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return bool(folder.stat().st_mode & 0o222) and os.access(folder, os.W_OK)
    except OSError:
        return False
