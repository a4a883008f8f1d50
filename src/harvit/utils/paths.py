"""Where harvit keeps what it computes: the user's cache folder."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_root() -> Path:
    """``$XDG_CACHE_HOME/harvit``, else ``~/.cache/harvit`` (the root of harvit's caches and downloads)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".cache") / "harvit"


def cache_dir() -> Path:
    """Folder for prepared windows, stored features, baselines and probes: env ``HARVIT_CACHE_DIR``, else
    :func:`user_cache_root`."""
    env = os.environ.get("HARVIT_CACHE_DIR", "").strip()
    return Path(env).expanduser() if env else user_cache_root()
