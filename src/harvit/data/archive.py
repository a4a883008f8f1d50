"""Data set files where they lie: a folder or a zip read as a :class:`Source`, and safe extraction.

A data set is read where it lies, as a folder or straight from its zip (one nested zip, like
UCI HAR's official archive, is opened in memory): :func:`open_source` gives a :class:`Source`
whose members are addressed by their path below the data set's top folder. Nothing is
extracted for loading; :func:`safe_extract` exists for callers that need files on disk.
"""

from __future__ import annotations

import hashlib
import io
import stat
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from harvit.utils.atomic import atomic_open
from harvit.utils.errors import HarvitError

__all__ = ["CHUNK", "ZIP_ERRORS", "Source", "open_source", "safe_extract", "sha256_file"]

CHUNK = 1 << 20
"""Bytes read at a time when streaming a file or an archive member."""
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError)
"""What reading a truncated or corrupt zip may raise."""


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (streamed)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


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
                    while chunk := src.read(CHUNK):
                        dst.write(chunk)
            except ZIP_ERRORS as e:
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
        except ZIP_ERRORS as e:
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
        except ZIP_ERRORS as e:
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
    except ZIP_ERRORS as e:
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
