"""What every subcommand's parser shares: one flag per setting of :class:`harvit.config.Config` (the preset and
the data set first, then a section per group of settings), the help layout (each default said once, a short
usage line), one-line errors, help texts that list a registry's names, and the settings resolved from
defaults < preset < ``--config`` < flags."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import textwrap
import types
from collections.abc import Collection
from typing import Any, NoReturn, Union, get_args, get_origin, get_type_hints

from harvit.config import GROUPS, PRESET_ALIASES, PRESETS, Config
from harvit.utils.errors import HarvitError

DATA_DIR_HELP = "data folder (default: $HARVIT_DATA_DIR, then ~/.cache/harvit/data)"


#: The settings listed first in ``--help``, in a section of their own: where a newcomer starts.
LEAD = ("preset", "dataset")
LEAD_TITLE = "preset and data set"
#: The order of the settings' sections in ``--help``: the user's own data last (it applies to ``--dataset PATH``).
HELP_ORDER = tuple(sorted(GROUPS, key=lambda g: g == "own data"))
#: Placeholders in ``--help`` where the type alone says too little (the rest: N for integers, X for numbers).
METAVARS = {"dataset": "NAME|PATH", "data_dir": "DIR", "output_dir": "DIR", "pretrained_path": "FILE",
            "init_from": "RUN|FILE", "encodings": "LIST", "channels": "LIST", "columns": "LIST",
            "val_subjects": "LIST", "test_subjects": "LIST", "preset": "NAME", "run_name": "NAME", "encoder": "NAME",
            "gravity_split": "SENSOR"}


def default_text(action: argparse.Action) -> str | None:
    """What ``--help`` and QUICK_REFERENCE.md give as an argument's default, or None where there is none to give
    (unset, a plain switch, or a help text that says it). A setting's flag carries its own (``shown_default``:
    the default and the presets' values where they differ)."""
    shown = getattr(action, "shown_default", None)
    if shown is not None:
        return shown or None
    default = action.default
    if (default is None or default is False or default is argparse.SUPPRESS or default == ""
            or "(default" in (action.help or "")):
        return None
    return str(default)


def show(value: Any) -> str:
    """A setting's value as ``--help`` writes it: booleans as on/off, an empty text as ''."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return "''" if value == "" else str(value)


class HelpFormatter(argparse.HelpFormatter):
    """``--help`` laid out for reading: each default said once, after the help text; a usage line that names the
    command's own arguments and ``[SETTING ...]`` for the settings; descriptions keep their paragraphs, and a line
    that starts with two spaces (a term and its meaning) stays a line of its own."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 30,
                 width: int | None = None) -> None:
        width = width or min(shutil.get_terminal_size().columns, 110) - 2
        super().__init__(prog, indent_increment, max_help_position, width)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = default_text(action)
        return f"{text} (default: {shown.replace('%', '%%')})" if shown else text

    def _format_usage(self, usage: str | None, actions: Any, groups: Any, prefix: str | None) -> str:
        settings = [a for a in actions if getattr(a, "setting", None) and a.setting not in LEAD]
        if usage is not None or len(settings) < 4:
            return super()._format_usage(usage, actions, groups, prefix)
        lines = super()._format_usage(usage, [a for a in actions if a not in settings], groups, prefix).rstrip()
        lines = lines.split("\n")
        if len(lines[-1]) + len(" [SETTING ...]") <= self._width:
            lines[-1] += " [SETTING ...]"
        else:  # a line of its own, under the first argument
            lines.append(" " * (len(lines[0]) - len(lines[0].split(" [", 1)[-1]) - 1) + "[SETTING ...]")
        return "\n".join(lines) + "\n\n"

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for para in text.split("\n\n"):
            out: list[str] = []
            prose: list[str] = []
            for line in para.split("\n") + [""]:
                if line.startswith("  ") or not line:
                    if prose:
                        out.append(textwrap.fill(" ".join(prose), width, initial_indent=indent,
                                                 subsequent_indent=indent))
                        prose = []
                    if line:
                        term = re.match(r"\s+\S+\s+", line)
                        out.append(textwrap.fill(line, width, initial_indent=indent,
                                                 subsequent_indent=indent + " " * (term.end() if term else 4)))
                else:
                    prose.append(line.strip())
            paragraphs.append("\n".join(out))
        return "\n\n".join(paragraphs)


class Parser(argparse.ArgumentParser):
    """argparse that lays out ``--help`` with :class:`HelpFormatter` and reports a bad flag on one line (exit 2),
    without the usage dump."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        # main() prints "harvit: error: "; a subcommand's parser adds its own name ("train: ...")
        sub = self.prog.removeprefix("harvit").strip()
        raise HarvitError(f"{sub + ': ' if sub else ''}{message} (see --help)")


class _Widths(argparse.Action):
    """``--hidden-dims 1024 512 256`` and ``--hidden-dims 1024,512,256``: one comma-separated string."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        parts = [p.strip() for v in values for p in str(v).split(",") if p.strip()]
        setattr(namespace, self.dest, ",".join(parts))


def _base_type(tp: Any) -> Any:
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return args[0]
    return tp


def preset_note(name: str, default: Any) -> str:
    """``"cpu preset: 24"`` for each preset whose value of setting ``name`` differs from ``default``."""
    return "; ".join(f"{p} preset: {show(v[name])}" for p, v in PRESETS.items() if name in v and v[name] != default)


def setting_default(name: str, default: Any) -> str:
    """A setting's default as ``--help`` gives it, with the presets' values where they differ: ``"224; cpu preset:
    24"``; an unset default is said only beside a preset's value (its help text says what unset means)."""
    note = preset_note(name, default)
    if default is None or default == "":
        return f"unset; {note}" if note else ""
    return f"{show(default)}; {note}" if note else show(default)


def registered_names(registry: str) -> list[str]:
    """The names in a registry: ``datasets`` (:data:`harvit.data.DATASETS`) or ``encodings``
    (:data:`harvit.imaging.encodings.ENCODINGS`), imported when first asked (the encodings load torch)."""
    if registry == "datasets":
        from harvit.data import dataset_names

        return dataset_names()
    if registry == "baselines":
        from harvit.evaluation.baseline import ordered

        return ordered()
    from harvit.imaging.encodings import ENCODINGS

    return ENCODINGS.names()


class Registered:
    """``%(registered)s`` in a help text: the registry's names, read only when the help is shown."""

    def __init__(self, registry: str) -> None:
        self.registry = registry

    def __str__(self) -> str:
        return ", ".join(registered_names(self.registry))


def expand_help(text: str, registry: str | None) -> str:
    """A help text with ``%(registered)s`` filled from ``registry`` (for pages generated from the help)."""
    return text % {"registered": Registered(registry)} if registry else text


def check_registered(cfg: Config) -> Config:
    """Check the settings that name registered things (``--dataset``, ``--encodings``) against their registries,
    which sit above :mod:`harvit.config`; a bad name raises one :class:`HarvitError` naming the flag."""
    from harvit.data import check_dataset
    from harvit.imaging.encodings import check_encodings

    check_dataset(cfg.dataset)
    check_encodings(cfg.encoding_list)
    return cfg


def add_config_flags(parser: argparse.ArgumentParser, names: Collection[str] | None = None,
                     shown: Collection[str] | None = None) -> None:
    """One flag per Config field (``--snake-case``), default SUPPRESS so only given flags are seen.

    ``--help`` lists the settings of :data:`LEAD` (the preset, the data set) first, in a section of their own,
    then one section per group of settings (:data:`HELP_ORDER`), each opened by its group's one-line summary.

    Args:
        parser: the (sub)command's parser.
        names: only these settings (default: every one).
        shown: list only these in ``--help`` (default: every one); the others are flags all the same, hidden
            (a command that takes every training setting points to ``harvit train --help`` instead).
    """
    hints = get_type_hints(Config)
    fields = {f.name: f for f in dataclasses.fields(Config) if names is None or f.name in names}
    visible = [n for n in fields if shown is None or n in shown]
    sections: dict[str, argparse._ArgumentGroup] = {}
    if any(n in LEAD for n in visible):
        sections[LEAD_TITLE] = parser.add_argument_group(LEAD_TITLE)
        parser._action_groups.insert(1, parser._action_groups.pop())  # right after the positional arguments
    for group in HELP_ORDER:
        if any(fields[n].metadata["group"] == group and n not in LEAD for n in visible):
            summary = (GROUPS[group].__doc__ or "").strip().split("\n")[0]
            sections[group] = parser.add_argument_group(f"{group} settings", summary or None)
    defaults = Config()
    for name in [*(n for n in LEAD if n in fields), *(n for n in fields if n not in LEAD)]:
        f = fields[name]
        if name not in visible:
            target: argparse._ActionsContainer = parser
        else:
            target = sections[LEAD_TITLE if name in LEAD else f.metadata["group"]]
        tp = _base_type(hints[name])
        kw: dict[str, Any] = dict(dest=name, default=argparse.SUPPRESS,
                                  help=f.metadata.get("help", "") if name in visible else argparse.SUPPRESS)
        flag = "--" + name.replace("_", "-")
        if tp is bool:
            action = target.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        elif name == "hidden_dims":
            action = target.add_argument(flag, nargs="*", action=_Widths, metavar="WIDTH", **kw)
        else:
            if f.metadata.get("choices"):
                kw["choices"] = f.metadata["choices"]
            if name == "preset":
                kw["choices"] = (*PRESETS, *PRESET_ALIASES)  # a former name still runs its preset
            metavar = METAVARS.get(name) or ("COLUMN" if name.endswith("_column") else
                                             {int: "N", float: "X"}.get(tp, "TEXT"))
            action = target.add_argument(flag, type=tp, metavar=None if "choices" in kw and name != "preset"
                                         else metavar, **kw)
        action.setting = name  # type: ignore[attr-defined]
        action.shown_default = setting_default(name, getattr(defaults, name))  # type: ignore[attr-defined]
        if f.metadata.get("registry"):
            action.registered = Registered(f.metadata["registry"])  # type: ignore[attr-defined]


def explicit_settings(ns: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags (a flag's default is SUPPRESS, so an absent flag is absent here)."""
    names = {f.name for f in dataclasses.fields(Config)}
    return {k: v for k, v in vars(ns).items() if k in names}


def config_from_args(ns: argparse.Namespace) -> tuple[Config, str]:
    """Defaults < preset < --config file < flags."""

    explicit = explicit_settings(ns)
    if getattr(ns, "config", None):
        base = Config.load(ns.config).to_dict()
        base.update(explicit)
        explicit = base
    return resolve_checked(explicit)


def resolve_checked(explicit: dict[str, Any]) -> tuple[Config, str]:
    """:func:`harvit.config.resolve` (the preset by device when none is given, the data set's windowing from
    :func:`harvit.data.windowing`), then the registered names checked (:func:`check_registered`)."""
    import torch

    from harvit.config import resolve
    from harvit.data import windowing

    cfg, preset = resolve(explicit, torch.cuda.is_available(), windowing)
    return check_registered(cfg), preset


def torchrun_rank() -> int:
    """This process's rank under torchrun (0 outside it)."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0

