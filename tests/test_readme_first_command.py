"""The README's first command, as written, on real hapt6 with a fresh cache: its test accuracy and wall time.

The command is read out of README.md's first ``bash`` block (the ``harvit train ...`` part of the line that
holds it; a ``VAR=value`` prefix is kept as environment), so this test runs what the README says. It runs
in a temporary working folder with an empty ``HARVIT_CACHE_DIR``, then reads the run folder's
``training_results.json``.

``HARVIT_README_TEST_ARGS`` (development only, e.g. ``--epochs 1``) appends flags to the command; the
accuracy goal is then replaced by "well above chance", since a shortened run is not the README's run.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
GOAL = 0.975  # the README's first run: test accuracy at least 97.5% on hapt6


def first_bash_block(text: str) -> str:
    """The body of the first fenced code block tagged ``bash`` (or ``sh``/``shell``/``console``)."""
    match = re.search(r"^```(?:bash|sh|shell|console)[^\n]*\n(.*?)^```", text, flags=re.S | re.M)
    assert match, "README.md has no ```bash code block"
    return match.group(1)


def train_command(block: str) -> tuple[dict[str, str], list[str]]:
    """``(environment, argv)`` of the block's first ``harvit train`` command.

    Continuation lines are joined, comments dropped; the command is the shell words from ``harvit`` up to the
    next ``&&``, ``||``, ``;``, ``|`` or the end of the line, and ``VAR=value`` words just before ``harvit``
    (``HARVIT_DATA_DIR=... harvit train ...``) are returned as environment.
    """
    joined = re.sub(r"\\\n", " ", block)
    for line in joined.splitlines():
        line = line.strip()
        if line.startswith("#") or "harvit train" not in line:
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words = list(lexer)
        start = next(i for i, w in enumerate(words) if w == "harvit" and words[i + 1:i + 2] == ["train"])
        env: dict[str, str] = {}
        back = start - 1
        while back >= 0 and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[back]):
            key, value = words[back].split("=", 1)
            env[key] = value
            back -= 1
        argv: list[str] = []
        for word in words[start:]:
            if word in ("&&", "||", ";", "|", "&"):
                break
            argv.append(word)
        return env, argv
    raise AssertionError("README.md's first bash block has no `harvit train` command")


def test_the_parser_finds_the_command_in_the_readme_shapes():
    block = (
        "# 1. set up and train\n"
        "python3 -m venv .venv && . .venv/bin/activate && pip install -e \".[dev]\" && "
        "HARVIT_DATA_DIR=../shared/data harvit train --preset cpu --dataset hapt6  # first run\n"
        "harvit predict checkpoints/optimized --table t.csv\n"
    )
    env, argv = train_command(block)
    assert env == {"HARVIT_DATA_DIR": "../shared/data"}
    assert argv == ["harvit", "train", "--preset", "cpu", "--dataset", "hapt6"]
    env, argv = train_command("harvit train \\\n  --preset cpu --dataset hapt6; echo done\n")
    assert env == {} and argv == ["harvit", "train", "--preset", "cpu", "--dataset", "hapt6"]
    with pytest.raises(AssertionError, match="no `harvit train`"):
        train_command("pip install harvit\n")


def test_the_readme_first_command_reaches_its_accuracy(shared_data_dir: Path, tmp_path: Path, capsys):
    env_words, argv = train_command(first_bash_block(README.read_text(encoding="utf-8")))
    assert argv[:2] == ["harvit", "train"] and "--preset" in argv and "hapt6" in argv, argv
    extra = shlex.split(os.environ.get("HARVIT_README_TEST_ARGS", ""))
    harvit = Path(sys.executable).with_name("harvit")
    command = [str(harvit) if harvit.is_file() else "harvit", *argv[1:], *extra]
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ)
    env.update({k: v for k, v in env_words.items() if k != "HARVIT_DATA_DIR"})
    # The README's relative data path is the repository's sibling folder; here, the real data found.
    env.update(HARVIT_DATA_DIR=str(shared_data_dir), HARVIT_CACHE_DIR=str(tmp_path / "fresh-cache"),
               MPLBACKEND="Agg", HARVIT_OFFLINE="1")
    start = time.perf_counter()
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    assert done.returncode == 0, f"{shlex.join(argv)} exited {done.returncode}:\n{done.stderr[-4000:]}"
    results = sorted(work.rglob("training_results.json"))
    assert len(results) == 1, f"expected one run folder under {work}, found {results}"
    assert results[0].parent == work / "checkpoints" / "optimized"  # the run folder the README names
    r = json.loads(results[0].read_text())
    accuracy = r["test_accuracy"]
    with capsys.disabled():
        print(f"\nREADME first command `{shlex.join(argv)}`{' ' + shlex.join(extra) if extra else ''}: "
              f"test accuracy {100 * accuracy:.2f}%, wall time {wall:.0f} s (fresh cache)")
    assert r["dataset"] == "hapt6" and len(r["classes"]) == 6
    assert (results[0].parent / "report.md").is_file() and (results[0].parent / "best.pt").is_file()
    if extra:
        assert accuracy > 0.6, f"shortened run ({shlex.join(extra)}): test accuracy {accuracy:.4f}"
    else:
        assert accuracy >= GOAL, f"README first command: test accuracy {accuracy:.4f} < {GOAL}"
    # the quickstart's next step: the README's predict block, as written, on the run just trained
    block = predict_block(README.read_text(encoding="utf-8"))
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=work, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, f"README predict block exited {done.returncode}:\n{block}\n{done.stderr[-3000:]}"
    assert "summary:" in done.stdout and "every window:" in done.stdout, done.stdout[-2000:]


def predict_block(text: str) -> str:
    """The first ``bash`` block of the README whose commands predict with the run folder the README trains."""
    for match in re.finditer(r"^```bash[^\n]*\n(.*?)^```", text, flags=re.S | re.M):
        if "harvit predict checkpoints/optimized" in match.group(1):
            return match.group(1)
    raise AssertionError("README.md has no bash block with `harvit predict checkpoints/optimized`")
