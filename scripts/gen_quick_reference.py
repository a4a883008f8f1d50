"""Regenerate QUICK_REFERENCE.md from the CLI parser: `python scripts/gen_quick_reference.py`.

One section per command (its description and a list of its own arguments: each flag, its default and the
first clause of its help, which ``--help`` prints whole), one list per group of settings, each group printed
in full once (where a command first lists it) and referenced by the commands that list it again; then the
presets and the environment variables. Every word comes from the parser, the settings' help and tags
(:class:`harvit.config.Config`), ``PRESETS`` and the docstrings of :class:`harvit.training.results.TrainingResults`
(the results file's fields), so the page cannot drift (``tests/test_docs.py`` checks that the committed page is
this script's output).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from harvit.cli import build_parser, expand_help
from harvit.cli.flags import LEAD_TITLE, HelpFormatter, default_text
from harvit.config import PRESET_DESCRIPTIONS, Config
from harvit.config.fields import IMPLIED, TAGS, closure, flag, tagged
from harvit.training.results import TRAINING_RESULTS_FILE, TrainingResults
from harvit.utils.atomic import write_text

#: The formatter's width (the terminal's width does not change the page).
WIDTH = 100

HEADER = """# harvit quick reference

Generated from the code by `python scripts/gen_quick_reference.py`; do not edit by hand.
Each flag's meaning is the first clause of its help; `harvit COMMAND --help` prints the whole text.
Precedence of settings: defaults < `--preset` < `--config FILE` < flags; `harvit train --print-config` prints the
resolved settings as JSON and exits."""

FOOTER = """## Environment

| variable | meaning |
|---|---|
| `HARVIT_DATA_DIR` | data folder when `--data-dir` is not given |
| `HARVIT_CACHE_DIR` | prepared windows and frozen features (default `~/.cache/harvit`) |
| `HARVIT_OFFLINE=1` | never download: a missing data set or `--pretrained` without `--pretrained-path` is an \
error that says what to do |

`python main.py [flags]` is `harvit train [flags]`. Exit codes: 0 done, 2 bad input (one line on stderr),
130/143 interrupted by SIGINT/SIGTERM after saving `latest.pt`.
"""


def anchor(title: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as dashes."""
    return re.sub(r"[^a-z0-9 _-]", "", title.lower()).replace(" ", "-")


def cell(text: str) -> str:
    """Text fit for a markdown table cell: no pipes, and ``<name>`` kept visible (not read as an HTML tag)."""
    return re.sub(r"<(?=[A-Za-z])", "&lt;", text.replace("|", "/").replace("\n", " "))


def commands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """Every command as (``harvit NAME [ACTION]``, its one-line help, its parser), in the order of ``--help``."""
    sub = parser._subparsers._group_actions[0]  # type: ignore[union-attr]
    helps = {a.dest: a.help or "" for a in sub._choices_actions}
    for name, sp in sub.choices.items():
        inner = [a for a in sp._actions if isinstance(a, argparse._SubParsersAction)]
        if not inner:
            yield f"harvit {name}", helps[name], sp
            continue
        inner_helps = {a.dest: a.help or "" for a in inner[0]._choices_actions}
        for iname, isp in inner[0].choices.items():
            yield f"harvit {name} {iname}", inner_helps[iname], isp


def listed(group: argparse._ArgumentGroup) -> list[argparse.Action]:
    """The arguments a section of ``--help`` lists (not ``-h``, hidden ones or sub-commands)."""
    return [a for a in group._group_actions if a.help is not argparse.SUPPRESS and a.dest != "help"
            and not isinstance(a, argparse._SubParsersAction)]


def invocation(action: argparse.Action) -> str:
    """How an argument is written: ``--epochs N``, ``--augment, --no-augment``, ``dataset``."""
    return HelpFormatter("harvit", width=WIDTH)._format_action_invocation(action)


def meaning(action: argparse.Action) -> str:
    """An argument's help with its registry's names filled in (``%(registered)s``)."""
    registered = getattr(action, "registered", None)
    return expand_help(action.help or "", registered.registry if registered else None)


#: A flag's meaning on the page is cut at its first clause break (``; ``, `` (`` or ``. ``, outside brackets and
#: code) that comes after this many characters; ``--help`` keeps the whole text.
SHORT = 40
BREAKS = ("; ", " (", ". ")


def split_default(text: str) -> tuple[str, str | None]:
    """A help text less its ``(default: X)`` part, and ``X`` (None where the text names no default)."""
    m = re.search(r" ?\(default: ((?:[^()]|\([^()]*\))*)\)", text)
    if not m:
        return text, None
    return (text[:m.start()] + text[m.end():]).strip(), m[1]


def short(text: str, at: int = SHORT) -> str:
    """``text`` cut before its first clause break (:data:`BREAKS`) at or beyond character ``at`` that lies
    outside brackets and code spans (the text whole where there is none)."""
    depth, code = 0, False
    for i, ch in enumerate(text):
        if i >= at and depth == 0 and not code and text[i:i + 2] in BREAKS and text[i - 1:i + 1] != "..":
            return text[:i]
        if ch == "`":
            code = not code
        elif not code and ch in "()[]":
            depth += 1 if ch in "([" else -1
    return text


def table(actions: list[argparse.Action]) -> list[str]:
    """One list item per argument: how it is written, its default in parentheses, the first clause of its help."""
    rows = []
    for a in actions:
        text, said = split_default(meaning(a))
        default = default_text(a) or said
        shown = f" ({cell(default)})" if default else ""
        rows.append(f"- `{invocation(a)}`{shown}: {cell(short(text))}")
    return rows


def markdown(text: str) -> list[str]:
    """A description as markdown: its paragraphs, and each indented ``term  meaning`` line as a list item (the
    presets, described under Presets, as one item that links there)."""
    lines: list[str] = []
    presets = ", ".join(f"`{p}`" for p in PRESET_DESCRIPTIONS)
    for para in text.split("\n\n"):
        prose: list[str] = []
        for line in para.split("\n"):
            if line.startswith("  "):
                if prose:
                    lines += [" ".join(prose), ""]
                    prose = []
                term, _, rest = line.strip().partition("  ")
                if term not in PRESET_DESCRIPTIONS:
                    lines.append(f"- `{term}`: {rest.strip()}")
                elif f"- {presets}: see [Presets](#presets)" not in lines:
                    lines.append(f"- {presets}: see [Presets](#presets)")
            else:
                if lines and lines[-1].startswith("- "):
                    lines.append("")
                prose.append(line.strip())
        if prose:
            lines.append(" ".join(prose))
        lines.append("")
    return lines


def render() -> str:
    cmds = list(commands(build_parser()))
    lines = [HEADER, "", "## Commands", "", "| command | what it does |", "|---|---|"]
    lines += [f"| [`{name}`](#{anchor(name)}) | {cell(help_)} |" for name, help_, _ in cmds]
    printed: dict[str, set[str]] = {}  # a group of settings printed in full: its flags
    for name, _, sp in cmds:
        lines += ["", f"## {name}", ""]
        lines += markdown(sp.description) if sp.description else []
        for group in sp._action_groups:
            actions = listed(group)
            if not actions:
                continue
            shared = group.title is not None and (group.title == LEAD_TITLE or group.title.endswith(" settings"))
            if not shared:
                lines += [f"**{group.title}**", "", *table(actions), ""]
                continue
            dests = {a.dest for a in actions}
            title = str(group.title)
            if title in printed and dests <= printed[title]:
                which = ("all of" if dests == printed[title]
                         else ", ".join(f"`{a.option_strings[0]}`" for a in actions) + " of")
                lines += [f"**{title}**: {which} [{title}](#{anchor(title)}).", ""]
                continue
            printed.setdefault(title, dests)
            lines += [f"### {title}", ""]
            if group.description:
                lines += [group.description, ""]
            lines += [*table(actions), ""]
        if sp.epilog:
            lines += markdown(sp.epilog)
    lines += ["## Presets", "", "`--preset NAME` starts from these settings (each flag above gives a preset's value "
              "where it differs from the default); flags override them.", "",
              "| preset | what it is |", "|---|---|"]
    for preset, what in PRESET_DESCRIPTIONS.items():
        lines.append(f"| `{preset}` | {cell(what)} |")
    lines += ["", FOOTER, *config_keys(), "", *results_fields()]
    return "\n".join(lines)


def config_keys() -> list[str]:
    """How a flag names its ``config.json`` key, and each tag's settings (those not implied by a wider tag)."""
    flags = {f.name: flag(f.name) for f in dataclasses.fields(Config)}
    lines = ["## config.json keys", "",
             f"Every flag `--foo-bar` of the settings tables is the `config.json` key `foo_bar` ({len(flags)} "
             "settings; `--print-config` prints them all). Tags (a tag implies those after its arrow):", ""]
    for tag, what in TAGS.items():
        wider = [t for t in TAGS if t != tag and tag in closure({t})]
        own = [n for n in tagged(Config, tag) if not any(n in tagged(Config, t) for t in wider)]
        implied = f" -> {', '.join(IMPLIED[tag])}" if tag in IMPLIED else ""
        also = f"; also every {', '.join(f'`{t}`' for t in wider)} setting" if wider else ""
        lines.append(f"- `{tag}`{implied} ({cell(what)}{also}): " + ", ".join(f"`{n}`" for n in own))
    return lines


def attributes(cls: type) -> dict[str, str]:
    """A dataclass's ``Attributes:`` docstring section as field name -> one-line description (``a, b: text``
    gives both); Sphinx roles shown as code with their last name."""
    doc = inspect.getdoc(cls) or ""
    out: dict[str, str] = {}
    names: list[str] = []
    for line in doc.partition("Attributes:")[2].splitlines():
        entry = re.match(r"^    ([a-z_][a-z0-9_, ]*): (.*)$", line)
        if entry:
            names = [n.strip() for n in entry[1].split(",")]
            text = entry[2]
        elif line.startswith("        ") and names:
            text = out[names[0]] + " " + line.strip()
        else:
            continue
        text = re.sub(r":[a-z]+:`~?(?:[\w.]+\.)?(\w+)`", r"`\1`", text).replace("``", "`")
        out.update(dict.fromkeys(names, text))
    return out


def results_fields() -> list[str]:
    """The results file: one table per dataclass, :class:`TrainingResults` first, then those its fields hold."""
    lines = [f"## {TRAINING_RESULTS_FILE}", "",
             f"One key per field (`TrainingResults.load` reads it). "
             f"{inspect.getdoc(TrainingResults).splitlines()[0].partition('. ')[2]}"]
    todo, seen = [TrainingResults], set()
    while todo:
        cls = todo.pop(0)
        seen.add(cls)
        doc = attributes(cls)
        lines += ["", f"**{cls.__name__}**", "", "| field | type | meaning |", "|---|---|---|"]
        for f in dataclasses.fields(cls):
            about = doc.get(f.name, "").rstrip(".").replace("|", "/")  # code spans keep `<key>` visible
            kind = str(f.type).replace("|", "\\|")  # a pipe ends a table cell
            lines.append(f"| `{f.name}` | {kind} | {about} |")
            for name in re.findall(r"[A-Z]\w+", str(f.type)):
                nested = getattr(inspect.getmodule(cls), name, None)
                if dataclasses.is_dataclass(nested) and nested not in seen and nested is not Config \
                        and nested not in todo:
                    todo.append(nested)
    return lines + [""]


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
