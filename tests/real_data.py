"""Where the tests find the real data sets, and what happens when they are not there.

Locally a missing data folder skips the tests that read it (the reason is printed: pytest runs with ``-rs``).
In CI (``CI`` set to a true value, as CI services do) it fails them: CI is meant to run every real-data test,
and a skip there would hide that it did not.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest


def data_dirs() -> list[Path]:
    """Candidate data folders, in order: ``HARVIT_DATA_DIR``, then the repository's sibling ``shared/data``."""
    env = os.environ.get("HARVIT_DATA_DIR", "").strip()
    return [*([Path(env)] if env else []), Path(__file__).resolve().parents[2] / "shared" / "data"]


def in_ci() -> bool:
    """Whether the ``CI`` environment variable is set to a true value (``true``, ``1``, ``yes``)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def absent(reason: str) -> NoReturn:
    """Skip the calling test for missing real data, or fail it in CI; ``reason`` names what is missing."""
    if in_ci():
        pytest.fail(f"{reason} (CI requires the real data: set HARVIT_DATA_DIR)", pytrace=False)
    pytest.skip(reason)
