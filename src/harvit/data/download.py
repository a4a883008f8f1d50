"""Getting data set files: download, checksums, safe extraction and reading archive members.

A data set is read where it lies, as a folder or straight from its zip (one nested zip, like
UCI HAR's official archive, is opened in memory): :func:`open_source` gives a :class:`Source`
whose members are addressed by their path below the data set's top folder. Nothing is
extracted for loading; :func:`safe_extract` exists for callers that need files on disk.
Downloads are streamed to a temporary file beside the destination, checked, then renamed.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import logging
import os
import stat
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterable
from importlib import resources
from pathlib import Path, PurePosixPath

from harvit.utils.atomic import atomic_open
from harvit.utils.errors import HarvitError
from harvit.utils.logging import progress_bar

log = logging.getLogger("harvit.data")

_CHUNK = 1 << 20
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError)


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
            while chunk := response.read(_CHUNK):
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


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (streamed)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def git_blob_sha1(data: bytes) -> str:
    """Git's blob id of ``data``: ``sha1(b"blob <size>\\0" + data)`` (what ``git hash-object`` prints)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


# --------------------------------------------------------------------------------------------- extract


def safe_extract(zip_path: Path, dest_dir: Path, members: Iterable[str] | None = None) -> list[Path]:
    """Extract ``members`` (default: all) of a zip below ``dest_dir``; return the files written.

    Every entry is checked before anything is written: absolute paths, drive letters, ``..``
    components and symlink entries raise :class:`HarvitError`. Files are written atomically.
    """
    zip_path, dest_dir = Path(zip_path), Path(dest_dir)
    with _open_zip(zip_path) as zf:
        infos = _select_members(zf, zip_path, members)
        for info in infos:
            _check_member(info, zip_path)
        written: list[Path] = []
        base = dest_dir.resolve()
        for info in infos:
            target = (base / info.filename).resolve()
            if base != target and base not in target.parents:
                raise HarvitError(f"{zip_path}: entry {info.filename!r} would be written outside {dest_dir}")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            try:
                with zf.open(info) as src, atomic_open(target) as dst:
                    while chunk := src.read(_CHUNK):
                        dst.write(chunk)
            except _ZIP_ERRORS as e:
                raise HarvitError(f"{zip_path}: cannot extract {info.filename!r}: {e}") from None
            written.append(target)
    return written


def _select_members(
    zf: zipfile.ZipFile, zip_path: Path, members: Iterable[str] | None
) -> list[zipfile.ZipInfo]:
    if members is None:
        return zf.infolist()
    infos = []
    for name in members:
        try:
            infos.append(zf.getinfo(name))
        except KeyError:
            raise HarvitError(f"{zip_path}: has no entry {name!r}") from None
    return infos


def _check_member(info: zipfile.ZipInfo, zip_path: Path) -> None:
    name = info.filename
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise HarvitError(f"{zip_path}: entry {name!r} has an absolute path; expected a relative path")
    if ".." in parts:
        raise HarvitError(f"{zip_path}: entry {name!r} contains '..'; expected a path inside the archive")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise HarvitError(f"{zip_path}: entry {name!r} is a symbolic link; expected regular files only")


# --------------------------------------------------------------------------------------------- sources


class Source:
    """A data set's files, in a folder or a zip, addressed by path below its top folder.

    Use :func:`open_source` to make one; close it (or use ``with``) when done.
    """

    def __init__(
        self,
        path: Path,
        root: Path | None = None,
        zf: zipfile.ZipFile | None = None,
        prefix: str = "",
        label: str = "",
        owned: tuple[zipfile.ZipFile, ...] = (),
    ) -> None:
        self.path = path
        self._root = root
        self._zf = zf
        self._prefix = prefix
        self._label = label or str(path)
        self._owned = owned
        self._members: dict[str, zipfile.ZipInfo] = {}
        if zf is not None:
            for info in zf.infolist():
                if info.filename.startswith(prefix) and not info.is_dir():
                    self._members[info.filename[len(prefix) :]] = info

    @property
    def is_zip(self) -> bool:
        return self._zf is not None

    def where(self, rel: str) -> str:
        """Human name of a member: ``<zip>: <member>`` or the file's path."""
        if self._zf is not None:
            return f"{self._label}: {self._prefix}{rel}"
        assert self._root is not None
        return str(self._root / rel)

    def has(self, rel: str) -> bool:
        if self._zf is not None:
            return rel in self._members
        assert self._root is not None
        return (self._root / rel).is_file()

    def names(self, folder: str = "") -> list[str]:
        """Sorted member paths below ``folder`` (relative to the top folder)."""
        folder = folder.rstrip("/") + "/" if folder else ""
        if self._zf is not None:
            return sorted(n for n in self._members if n.startswith(folder))
        assert self._root is not None
        base = self._root / folder if folder else self._root
        if not base.is_dir():
            return []
        return sorted(p.relative_to(self._root).as_posix() for p in base.rglob("*") if p.is_file())

    def read(self, rel: str) -> bytes:
        """The bytes of one member; a missing, unreadable or corrupt member raises :class:`HarvitError`."""
        if not self.has(rel):
            raise HarvitError(f"{self.where(rel)} is missing; expected this file in {self._label}")
        try:
            if self._zf is not None:
                return self._zf.read(self._members[rel])
            assert self._root is not None
            return (self._root / rel).read_bytes()
        except _ZIP_ERRORS as e:
            raise HarvitError(f"{self.where(rel)} cannot be read ({e}); the archive may be corrupt") from None

    def fingerprint(self, rels: Iterable[str]) -> str:
        """A hash that changes when the data changes: a zip's SHA-256, or a folder's files' sizes+mtimes."""
        if self._zf is not None:
            return "sha256:" + sha256_file(self.path)
        assert self._root is not None
        digest = hashlib.sha256()
        for rel in sorted(rels):
            try:
                st = (self._root / rel).stat()
            except OSError:
                raise HarvitError(f"{self._root / rel} is missing; expected it in {self._root}") from None
            digest.update(f"{rel}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
        return "files:" + digest.hexdigest()

    def close(self) -> None:
        for zf in self._owned:
            zf.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_source(path: Path, marker: str) -> Source:
    """Open a data set folder or zip; its top folder is where ``marker`` (e.g. ``RawData/labels.txt``) is.

    For a folder, the marker is looked for in it and in its direct subfolders. For a zip, in any
    member path, then in any zip nested one level inside it. No marker -> :class:`HarvitError`.
    """
    path = Path(path)
    if path.is_dir():
        return _open_folder(path, marker)
    if not path.is_file():
        raise HarvitError(f"{path} does not exist; expected a data set folder or zip file")
    outer = _open_zip(path)
    prefix = _find_prefix(outer.namelist(), marker)
    if prefix is not None:
        return Source(path, zf=outer, prefix=prefix, label=str(path), owned=(outer,))
    for name in sorted(n for n in outer.namelist() if n.lower().endswith(".zip") and not _is_junk(n)):
        try:
            inner = zipfile.ZipFile(io.BytesIO(outer.read(name)))
        except _ZIP_ERRORS as e:
            outer.close()
            raise HarvitError(f"{path}: nested zip {name!r} is unreadable ({e}); it may be corrupt") from None
        prefix = _find_prefix(inner.namelist(), marker)
        if prefix is not None:
            return Source(path, zf=inner, prefix=prefix, label=f"{path}: {name}", owned=(inner, outer))
        inner.close()
    outer.close()
    raise HarvitError(f"{path} has no member {marker!r} (nor a nested zip with it); expected the data set")


def _open_folder(path: Path, marker: str) -> Source:
    if (path / marker).is_file():
        return Source(path, root=path)
    for sub in sorted(p for p in path.iterdir() if p.is_dir()):
        if (sub / marker).is_file():
            return Source(path, root=sub)
    raise HarvitError(f"{path} has no {marker}; expected the data set's folder holding {marker}")


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except _ZIP_ERRORS as e:
        raise HarvitError(
            f"{path} is not a readable zip file ({e}); it is truncated or corrupt: download it again"
        ) from None


def _find_prefix(names: list[str], marker: str) -> str | None:
    hits = [n for n in names if (n == marker or n.endswith("/" + marker)) and not _is_junk(n)]
    if not hits:
        return None
    best = min(hits, key=len)
    return best[: len(best) - len(marker)]


def _is_junk(name: str) -> bool:
    return PurePosixPath(name).parts[:1] == ("__MACOSX",)


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
