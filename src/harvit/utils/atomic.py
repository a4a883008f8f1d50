"""Atomic file writes: write a temporary file in the same folder, fsync, then ``os.replace``.

A process killed at any point leaves either the old file or the new one, never a torn file.
A write that fails (disk full, folder not writable) raises :class:`HarvitError` and leaves
the previous file untouched.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from harvit.utils.errors import HarvitError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary file path beside ``path`` for writers that open files by name (``torch.onnx.export``);
    on clean exit it gets the usual mode (``0666 & ~umask``, as every other atomic write) and replaces ``path``.

    ``tempfile.mkstemp`` creates the file with mode 0600, and a writer that reopens an existing file keeps
    that mode, so without this the result would be 0600 while its neighbours are 0644.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as e:
        raise HarvitError(f"cannot write {path}: {e.strerror or e}") from None
    tmp = Path(name)
    ok = False
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        ok = True
    except OSError as e:
        raise HarvitError(f"cannot write {path}: {e.strerror or e}; the previous file is unchanged") from None
    finally:
        if not ok:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a binary temporary file beside ``path``; on clean exit it replaces ``path`` (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        yield f


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Atomically write ``data`` to ``path``."""
    with atomic_open(path) as f:
        f.write(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Atomically write UTF-8 ``text`` to ``path``."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_with(path: str | os.PathLike[str], writer: Callable[[BinaryIO], None]) -> None:
    """Atomically write ``path`` with ``writer(file)`` (e.g. ``torch.save``, ``np.savez``)."""
    buf = io.BytesIO()
    writer(buf)
    write_bytes(path, buf.getvalue())


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
