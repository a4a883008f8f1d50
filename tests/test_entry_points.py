"""The entry points a user of the reference design knows: ``python main.py`` and ``python examples.py``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_examples_lists_the_ten_scenarios_and_shows_one() -> None:
    listing = run("examples.py")
    assert listing.returncode == 0, listing.stderr
    rows = [ln for ln in listing.stdout.splitlines() if ln[:2].strip().isdigit()]
    assert [int(r[:2]) for r in rows] == list(range(1, 11))
    assert all(".sh" in r and len(r.split(".sh", 1)[1].strip()) > 10 for r in rows)  # each has its summary
    shown = run("examples.py", "6", "--show")
    assert shown.returncode == 0 and shown.stdout == (ROOT / "examples" / "06_resume_after_interrupt.sh").read_text()


def test_examples_refuses_an_unknown_scenario_in_one_line() -> None:
    bad = run("examples.py", "11")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no scenario 11" in bad.stderr


def test_main_py_is_harvit_train() -> None:
    out = run("main.py", "--help")
    assert out.returncode == 0 and "--encoder" in out.stdout and "--epochs" in out.stdout
