"""Where data lives, and the cache of prepared windows.

Prepared windows are saved as ``.npz`` under ``cache_dir()/prepared/``, named by a key that
hashes the source data's fingerprint and every preprocessing parameter, so a changed input or
parameter builds afresh. The data folder itself is never written to (it may be read-only).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from harvit.data.windows import Dataset, Windows
from harvit.utils.atomic import write_with
from harvit.utils.errors import HarvitError
from harvit.utils.paths import cache_dir, user_cache_root

log = logging.getLogger("harvit.data")

CACHE_VERSION = 1
"""Bump when the code that prepares windows changes its output: every cached file is rebuilt."""


def resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    """The data folder: ``data_dir``, else env ``HARVIT_DATA_DIR``, else ``$XDG_CACHE_HOME/harvit/data``
    (or ``~/.cache/harvit/data``)."""
    if data_dir is not None and str(data_dir).strip():
        return Path(data_dir).expanduser()
    env = os.environ.get("HARVIT_DATA_DIR", "").strip()
    if env:
        return Path(env).expanduser()
    return user_cache_root() / "data"


def cache_key(**parts: Any) -> str:
    """A short stable hash of ``parts`` (JSON-serialisable values) plus :data:`CACHE_VERSION`."""
    blob = json.dumps({"cache_version": CACHE_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]


def prepared_path(name: str, key: str) -> Path:
    """File of the prepared windows of data set ``name`` under ``key``."""
    return cache_dir() / "prepared" / f"{name}-{key}.npz"


def save_dataset(path: Path, ds: Dataset) -> None:
    """Write a :class:`Dataset` to ``path`` as an npz (atomically; no pickled objects)."""
    arrays: dict[str, np.ndarray] = {"name": np.array(ds.name), "notes": np.array(json.dumps(ds.notes))}
    for split, w in (("train", ds.train), ("test", ds.test)):
        arrays[f"{split}_x"] = w.x
        arrays[f"{split}_y"] = w.y
        arrays[f"{split}_subject"] = w.subject
        arrays[f"{split}_channels"] = np.array(w.channels, dtype=str)
        arrays[f"{split}_classes"] = np.array(w.classes, dtype=str)
        arrays[f"{split}_rate_hz"] = np.array(w.rate_hz, dtype=np.float64)
        arrays[f"{split}_meta"] = np.array(json.dumps(w.meta, default=str))
    write_with(path, lambda f: np.savez(f, **arrays))


def load_saved_dataset(path: Path) -> Dataset:
    """Read a file written by :func:`save_dataset`; any problem raises (see :func:`cached_dataset`)."""
    with np.load(path, allow_pickle=False) as z:
        splits = {}
        for split in ("train", "test"):
            splits[split] = Windows(
                x=z[f"{split}_x"],
                y=z[f"{split}_y"],
                subject=z[f"{split}_subject"],
                channels=[str(c) for c in z[f"{split}_channels"]],
                classes=[str(c) for c in z[f"{split}_classes"]],
                rate_hz=float(z[f"{split}_rate_hz"]),
                meta=json.loads(str(z[f"{split}_meta"])),
            )
        notes = json.loads(str(z["notes"])) if "notes" in z.files else []
        return Dataset(str(z["name"]), splits["train"], splits["test"], [str(n) for n in notes])


def cached_dataset(name: str, key: str, build: Callable[[], Dataset], use_cache: bool = True,
                   detail: str = "") -> Dataset:
    """Return the prepared data set under ``key`` from the cache, or ``build()`` it and save it.

    ``detail`` (e.g. "128 samples at stride 64") tells the log's lines apart where one run prepares
    the same data set under two keys.

    A cache file that cannot be read (corrupt, truncated, old layout) is ignored and rebuilt.
    A cache folder that cannot be written only logs a warning.
    """
    path = prepared_path(name, key)
    if use_cache and path.is_file():
        try:
            ds = load_saved_dataset(path)
            for w in (ds.train, ds.test):
                w.meta["cache_file"] = str(path)
            return ds
        except Exception as e:  # any unreadable cache file is simply rebuilt
            log.warning("ignoring unreadable cache file %s (%s); rebuilding", path, e)
    what = f"{name} windows, {detail}" if detail else f"{name} windows"
    log.info("preparing %s (once; later runs read them from %s)", what, path.parent)
    t0 = time.perf_counter()
    ds = build()
    log.info("prepared %s: %d train / %d test in %.1f s", what, len(ds.train), len(ds.test),
             time.perf_counter() - t0)
    if use_cache:
        try:
            save_dataset(path, ds)
        except HarvitError as e:
            log.warning("could not cache prepared windows: %s", e)
    return ds
