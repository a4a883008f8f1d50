"""README and QUICK_REFERENCE.md stay true to the code."""

import importlib.util
import re
from pathlib import Path

from harvit.config import PRESETS

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_qr", ROOT / "scripts" / "gen_quick_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_quick_reference_is_generated_from_the_current_code():
    assert (ROOT / "QUICK_REFERENCE.md").read_text() == _generator().render(), (
        "QUICK_REFERENCE.md is stale: run python scripts/gen_quick_reference.py")


def test_readme_flags_exist():
    text = (ROOT / "README.md").read_text()
    qr = (ROOT / "QUICK_REFERENCE.md").read_text()
    lines = [ln for ln in text.splitlines() if "harvit " in ln or "main.py" in ln or ln.startswith("- `--")]
    lines = [ln.split("harvit ", 1)[-1] if "torchrun" in ln else ln for ln in lines]  # torchrun's own flags aside
    flags = set(re.findall(r"(--[a-z][a-z0-9-]+)", "\n".join(lines)))
    assert "--preset" in flags
    for flag in flags:
        assert flag in qr or flag in ("--help",) or flag.startswith("--no-") and flag[5:] in qr, flag
    for preset in PRESETS:
        assert f"`{preset}`" in text


def test_gen_quick_reference_help_writes_nothing(tmp_path):
    """Issue 15: `scripts/gen_quick_reference.py --help` wrote a file named --help."""
    import os
    import subprocess
    import sys

    page = ROOT / "QUICK_REFERENCE.md"
    before = page.stat().st_mtime_ns
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_quick_reference.py"), "--help"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("usage:"), proc.stderr
    assert list(tmp_path.iterdir()) == [] and page.stat().st_mtime_ns == before
    assert _generator().main(["--check"]) == 0  # and the page is current
