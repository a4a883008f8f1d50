"""The README, docs/ and QUICK_REFERENCE.md stay true to the code, small, linked, and sourced.

- QUICK_REFERENCE.md is generated from the parser;
- every flag the pages show on a ``harvit`` command line exists;
- the README is at most 10 KB, starts with the two commands CI and users run, and shows its picture;
- every relative link (file and ``#anchor``) resolves;
- every figure in a results or benchmarks table has a command and a date beside it;
- the user pages hold no words of the project's workshop (rounds, sessions, issue numbers).
"""

import argparse
import importlib.util
import re
from pathlib import Path

import pytest

from harvit.cli import build_parser
from harvit.config import PRESETS

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
#: Pages kept for the record, not for users: their figures are dated history, their words the workshop's.
RECORD_PAGES = {"history.md"}
README_MAX_BYTES = 10 * 1024
USER_DOCS_MAX_BYTES = 224_132 // 2  # half of README, QUICK_REFERENCE, docs/, examples/README before the rewrite
FIRST_COMMANDS = [
    'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[dev]" && '
    "HARVIT_DATA_DIR=../shared/data harvit train --preset cpu --dataset hapt6",
    "HARVIT_DATA_DIR=../shared/data python -m pytest -q",
]


def user_pages() -> list[Path]:
    """README, docs/*.md (less the record pages) and examples/README.md: what a user reads."""
    docs = sorted(p for p in DOCS.glob("*.md") if p.name not in RECORD_PAGES)
    return [README, *docs, ROOT / "examples" / "README.md"]


def linked_pages() -> list[Path]:
    """Every page whose links must resolve: the user pages, the record pages and the changelog."""
    return [*user_pages(), *(DOCS / name for name in sorted(RECORD_PAGES)), ROOT / "CHANGELOG.md"]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_qr", ROOT / "scripts" / "gen_quick_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _outside_code(text: str) -> str:
    """``text`` with fenced code blocks blanked (their ``#`` lines are comments, not headings)."""
    out, fence = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fence = not fence
            out.append("")
            continue
        out.append("" if fence else line)
    return "\n".join(out)


def anchors(text: str) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to hyphens, repeats -1, -2."""
    seen: dict[str, int] = {}
    out = set()
    for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", _outside_code(text), re.M):
        slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def all_option_strings() -> set[str]:
    """Every ``--flag`` of every ``harvit`` subcommand, read from the parser."""
    found: set[str] = set()

    def walk(parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            found.update(s for s in action.option_strings if s.startswith("--"))
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    walk(sub)

    walk(build_parser())
    return found


# ---- QUICK_REFERENCE.md --------------------------------------------------------------------------------
def test_quick_reference_is_generated_from_the_current_code():
    assert (ROOT / "QUICK_REFERENCE.md").read_text() == _generator().render(), (
        "QUICK_REFERENCE.md is stale: run python scripts/gen_quick_reference.py")


def test_gen_quick_reference_help_writes_nothing(tmp_path):
    """`scripts/gen_quick_reference.py --help` prints its usage and writes no file named --help."""
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


# ---- flags and presets ---------------------------------------------------------------------------------
def command_flags(text: str) -> set[str]:
    """``--flags`` on the pages' ``harvit`` command lines (torchrun's own flags and the benchmark scripts' aside)."""
    flags = set()
    for line in text.splitlines():
        if "benchmarks/" in line or "scripts/" in line or "pytest" in line:
            continue
        if "harvit " in line or "main.py" in line:
            part = line.split("harvit ", 1)[-1] if "torchrun" in line else line
            flags.update(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]+)", part))
    return flags


def test_command_flags_on_the_pages_exist():
    known = all_option_strings() | {"--help"}
    assert {"--preset", "--dataset", "--table"} <= known
    for page in user_pages():
        unknown = sorted(f for f in command_flags(page.read_text(encoding="utf-8")) if f not in known)
        assert unknown == [], f"{page.relative_to(ROOT)}: no such flag {unknown}"


def test_command_flags_reads_commands_only():
    text = ("harvit train --preset cpu --dataset x  # --resume\n"
            "torchrun --nproc_per_node=2 -m harvit train --device cpu\n"
            "python benchmarks/real_datasets.py --extra DIR\nplain --words here\n")
    assert command_flags(text) == {"--preset", "--dataset", "--resume", "--device"}


def test_every_preset_is_explained():
    page = (DOCS / "how-it-works.md").read_text(encoding="utf-8")
    for preset in PRESETS:
        assert f"`{preset}`" in page, preset
    assert "`cpu`" in README.read_text(encoding="utf-8")


# ---- the README ----------------------------------------------------------------------------------------
def test_readme_is_small_and_starts_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) <= README_MAX_BYTES, f"README.md is {len(text.encode())} bytes"
    first_block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [ln for ln in first_block.splitlines() if ln and not ln.startswith("#")]
    assert commands == FIRST_COMMANDS
    assert text.index("```bash") < text.index("\n## "), "the two commands come before the first section"


def test_readme_picture_is_committed_and_small():
    text = README.read_text(encoding="utf-8")
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text)
    assert pictures, "the README shows a picture"
    for rel in pictures:
        png = ROOT / rel
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", rel
        assert png.stat().st_size < 150_000, f"{rel}: {png.stat().st_size} bytes"
    assert (ROOT / "scripts" / "make_readme_figure.py").is_file()  # and the script that makes it


def test_readme_has_the_sections_a_newcomer_needs():
    text = README.read_text(encoding="utf-8")
    for section in ("## Install", "## Quickstart", "## Results", "## Your own data", "## Documentation", "## Citing",
                    "## Licence"):
        assert section in text, section
    for command in ("harvit data info hapt6", "harvit train --preset cpu --dataset hapt6", "harvit predict ",
                    "--table "):
        assert command in text, command
    assert "Neurocomputing 171" in text and "ESANN 2013" in text and "1811.00075" in text  # the data sets cited
    assert "MIT" in text


def test_user_docs_stay_small():
    """The README, docs/ (less the record pages), examples/README.md and QUICK_REFERENCE.md: at most 110 KiB."""
    pages = [*user_pages(), ROOT / "QUICK_REFERENCE.md"]
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_bytes()) for p in pages}
    assert sum(sizes.values()) <= USER_DOCS_MAX_BYTES, f"{sum(sizes.values())} bytes: {sizes}"


# ---- links ---------------------------------------------------------------------------------------------
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


def broken_links(page: Path) -> list[str]:
    """The relative links of ``page`` whose file or ``#anchor`` does not exist."""
    text = page.read_text(encoding="utf-8")
    broken = []
    for m in LINK.finditer(_outside_code(text)):
        target = m.group(1) or m.group(2)
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text(encoding="utf-8")):
            broken.append(target)
    return broken


def test_every_relative_link_resolves():
    for page in linked_pages():
        assert broken_links(page) == [], page.relative_to(ROOT)


def test_link_check_catches_a_missing_file_and_anchor(tmp_path):
    (tmp_path / "a.md").write_text("# Title\n\n## Two words\n\n```\n# not a heading\n```\n")
    page = tmp_path / "b.md"
    page.write_text("[ok](a.md#two-words) [ok](a.md) [ok](#here) [web](https://x.org/y)\n\n## Here\n\n"
                    "[bad](a.md#not-a-heading) [bad](c.md) ![bad](img.png)\n")
    assert broken_links(page) == ["a.md#not-a-heading", "c.md", "img.png"]


# ---- figures and their commands ------------------------------------------------------------------------
FIGURE = re.compile(r"(?<![\w.-])\d[\d,]*(?:\.\d+)?\s?(?:%|s|ms|min)(?![\w])|^\s*\**\d+\.\d+\**\s*$")
COMMAND = re.compile(r"`[^`]*(?:harvit |python|benchmarks/)[^`]*`")
DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")


def unsourced_rows(text: str) -> list[str]:
    """Table rows holding a figure (a percentage, a time, or a decimal in a cell of its own) with no command and
    date in the row itself or in the text from the section's heading down to the table."""
    bad = []
    lines = _outside_code(text).splitlines()
    context_start = 0
    for i, line in enumerate(lines):
        if line.startswith("#"):
            context_start = i
        if not line.startswith("|") or re.match(r"^\|[\s|:-]+\|$", line):
            continue
        start = i
        while start > 0 and lines[start - 1].startswith("|"):
            start -= 1
        if start == i or start + 1 == i:  # the header and the separator
            continue
        cells = line.strip("|").split("|")
        if not any(FIGURE.search(cell) for cell in cells) or "not measured" in line:
            continue
        context = "\n".join(lines[context_start:start]) + "\n" + line
        if not (COMMAND.search(context) and DATE.search(context)):
            bad.append(line)
    return bad


def test_every_figure_has_its_command_and_date():
    pages = [README, DOCS / "results.md", DOCS / "benchmarks.md"]
    for page in pages:
        assert unsourced_rows(page.read_text(encoding="utf-8")) == [], page.relative_to(ROOT)


def test_figure_check_catches_a_row_without_command():
    sourced = "## A\n\n`harvit train --preset cpu` on 2026-12-05, 2 cores:\n\n| x | acc |\n|---|---|\n| a | 97.9% |\n"
    assert unsourced_rows(sourced) == []
    bare = "## B\n\nMeasured once.\n\n| x | time |\n|---|---|\n| a | 152 s |\n| b | 98.03 |\n| c | text |\n"
    assert unsourced_rows(bare) == ["| a | 152 s |", "| b | 98.03 |"]
    in_row = "## C\n\n| command | acc |\n|---|---|\n| `harvit train` 2026-12-01 | 95% |\n"
    assert unsourced_rows(in_row) == []


# ---- words of the workshop -----------------------------------------------------------------------------
#: Rounds, sessions and issue numbers of the project's own work; ``session`` alone is a column name in tables.
WORKSHOP = re.compile(r"\bround[ -]?\d|\brounds\b|\b(?:this|that|each|every|next|previous|the|a) sessions?\b|"
                      r"\bsession \d|§|\bissues? \d|\bissue's\b|layered house|reference design|\bhelpers?\b|\blent\b",
                      re.I)


@pytest.mark.parametrize("page", user_pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_user_pages_hold_no_workshop_words(page):
    hits = [ln.strip() for ln in page.read_text(encoding="utf-8").splitlines() if WORKSHOP.search(ln)]
    assert hits == [], hits


def test_code_points_only_to_pages_that_exist():
    """A ``docs/<page>.md`` named in the code, tests, benchmarks, scripts, examples or --help exists."""
    missing = []
    for folder in ("src", "tests", "benchmarks", "scripts", "examples"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in (".py", ".sh", ".md") or "egg-info" in str(path):
                continue
            for name in re.findall(r"\bdocs/([\w.-]+\.md)\b", path.read_text(encoding="utf-8", errors="replace")):
                if not (DOCS / name).is_file():
                    missing.append(f"{path.relative_to(ROOT)}: docs/{name}")
    assert missing == [], "pages renamed: ACCURACY.md -> results.md (history.md for rounds), BENCHMARKS.md -> " \
                          f"benchmarks.md, RELIABILITY.md -> reliability.md: {missing}"
