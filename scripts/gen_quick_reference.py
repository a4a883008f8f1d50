"""Regenerate QUICK_REFERENCE.md from the code: `python scripts/gen_quick_reference.py`.

The flag table comes from :class:`harvit.config.Config`, the presets from ``PRESETS`` and the
commands from the CLI parser, so the page cannot drift (tests/test_docs.py checks it).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from pathlib import Path

from harvit.cli import build_parser, expand_help
from harvit.config import PRESETS, PROFILE_KEYS, Config
from harvit.utils.atomic import write_text

HEADER = """# harvit quick reference

Generated from the code by `python scripts/gen_quick_reference.py`; do not edit by hand.

## Commands

| command | what it does |
|---|---|
"""


def flag_rows() -> list[str]:
    rows = []
    defaults = Config()
    for f in dataclasses.fields(Config):
        name = f.name.replace("_", "-")
        flag = f"--{name}" if "bool" not in str(f.type) else f"--{name} / --no-{name}"
        choices = f.metadata.get("choices")
        text = expand_help(f.metadata["help"], f.metadata.get("registry"))
        text += f" ({', '.join(choices)})" if choices else ""
        rows.append(f"| `{flag}` | `{getattr(defaults, f.name)}` | {f.metadata.get('group')} | "
                    f"{text.replace('|', '/')} |")
    return rows


def _help(action: argparse.Action) -> str:
    """An argument's help with its registry's names filled in (``%(registered)s``)."""
    registered = getattr(action, "registered", None)
    return expand_help(action.help or "", registered.registry if registered else None)


def render() -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, type(parser._subparsers._group_actions[0])))
    lines = [HEADER.rstrip("\n")]
    for action in sub._choices_actions:
        lines.append(f"| `harvit {action.dest}` | {action.help} |")
    lines += ["", "## Other commands' arguments", ""]
    for name, sp in sub.choices.items():
        if name in ("train", "profile"):
            continue
        args = [a for a in sp._actions if a.dest != "help" and not isinstance(a, type(sub))]
        for a in args:
            what = "/".join(a.option_strings) or a.dest.upper()
            default = "" if a.default in (None, False) or a.option_strings == [] else f" (default: {a.default})"
            lines.append(f"- `harvit {name}` `{what}`: {_help(a).replace('|', '/')}{default}")
        for inner in [a for a in sp._actions if isinstance(a, type(sub))]:
            for iname, isp in inner.choices.items():
                for a in isp._actions:
                    if a.dest != "help":
                        what = "/".join(a.option_strings) or a.dest.upper()
                        lines.append(f"- `harvit {name} {iname}` `{what}`: {_help(a)}")
    pr = sub.choices["profile"]
    own = [a for a in pr._actions if a.dest != "help" and a.dest not in PROFILE_KEYS]
    for a in own:
        lines.append(f"- `harvit profile` `{'/'.join(a.option_strings)}`: {a.help or ''} (default: {a.default})")
    lines.append("- `harvit profile`: of the settings below only "
                 + ", ".join(f"`--{k.replace('_', '-')}`" for k in PROFILE_KEYS)
                 + " (the model, its images, the batch and the runtime; it trains nothing)")
    lines += ["", "`python main.py [flags]` is `harvit train [flags]`. Exit codes: 0 done, 2 bad input "
              "(one line on stderr), 130/143 interrupted by SIGINT/SIGTERM after saving `latest.pt`.", "",
              "## Training flags (`harvit train`)", "",
              "Precedence: defaults < `--preset` < `--config FILE` < flags. `harvit train --print-config` prints "
              "the resolved settings as JSON and exits; `--help` gives each preset's value beside the default "
              "where they differ. `--hidden-dims` takes widths separated by commas or spaces.", "",
              "| flag | default | group | meaning |", "|---|---|---|---|", *flag_rows(), "", "## Presets", ""]
    for name, values in PRESETS.items():
        lines.append(f"- `{name}`: " + ", ".join(f"`{k}={v}`" for k, v in values.items()))
    lines += ["", "## Environment", "",
              "| variable | meaning |", "|---|---|",
              "| `HARVIT_DATA_DIR` | data folder when `--data-dir` is not given |",
              "| `HARVIT_CACHE_DIR` | prepared windows and frozen features (default `~/.cache/harvit`) |",
              "| `HARVIT_OFFLINE=1` | never download: a missing dataset or `--pretrained` without "
              "`--pretrained-path` is an error that says what to do |",
              ""]
    return "\n".join(lines)


DEFAULT_OUT = Path(__file__).resolve().parents[1] / "QUICK_REFERENCE.md"


def main(argv: Sequence[str] | None = None) -> int:
    """Write the page (default: QUICK_REFERENCE.md at the repository root); ``--help`` writes nothing."""
    parser = argparse.ArgumentParser(description="Regenerate QUICK_REFERENCE.md from the code (CLI parser, "
                                                 "Config, PRESETS).")
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT,
                        help=f"where to write the page (default: {DEFAULT_OUT.name} at the repository root)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when the page is stale")
    ns = parser.parse_args(argv)
    text = render()
    if ns.check:
        stale = not ns.out.is_file() or ns.out.read_text(encoding="utf-8") != text
        print(f"{ns.out}: {'stale' if stale else 'up to date'}")
        return 1 if stale else 0
    write_text(ns.out, text)
    print(f"wrote {ns.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
