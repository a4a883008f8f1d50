"""What every subcommand's parser shares: one flag per setting of :class:`harvit.config.Config` (grouped as
the config groups them), one-line errors, help texts that list a registry's names, and the settings resolved
from defaults < preset < ``--config`` < flags."""

from __future__ import annotations

import argparse
import dataclasses
import os
import types
from collections.abc import Collection
from typing import Any, NoReturn, Union, get_args, get_origin, get_type_hints

from harvit.config import PRESETS, Config
from harvit.utils.errors import HarvitError

DATA_DIR_HELP = "data folder (default: $HARVIT_DATA_DIR, then ~/.cache/harvit/data)"


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag on one line (exit 2), without the usage dump."""

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
    return "; ".join(f"{p} preset: {v[name]}" for p, v in PRESETS.items() if name in v and v[name] != default)


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


def add_config_flags(parser: argparse.ArgumentParser, names: Collection[str] | None = None) -> None:
    """One flag per Config field (``--snake-case``), default SUPPRESS so only given flags are seen.

    Args:
        parser: the (sub)command's parser.
        names: only these settings (default: every one).
    """
    hints = get_type_hints(Config)
    arg_groups: dict[str, argparse._ArgumentGroup] = {}
    defaults = Config()
    for f in dataclasses.fields(Config):
        if names is not None and f.name not in names:
            continue
        group = f.metadata["group"]
        if group not in arg_groups:  # one section of --help per group of settings
            arg_groups[group] = parser.add_argument_group(f"{group} settings")
        g = arg_groups[group]
        tp = _base_type(hints[f.name])
        default = getattr(defaults, f.name)
        note = preset_note(f.name, default)
        help_text = f"{f.metadata.get('help', '')} (default: {default}{'; ' + note if note else ''})"
        flag = "--" + f.name.replace("_", "-")
        kw: dict[str, Any] = dict(dest=f.name, default=argparse.SUPPRESS, help=help_text)
        if tp is bool:
            action = g.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        elif f.name == "hidden_dims":
            action = g.add_argument(flag, nargs="*", action=_Widths, metavar="WIDTH", **kw)
        else:
            if f.metadata.get("choices"):
                kw["choices"] = f.metadata["choices"]
            if f.name == "preset":
                kw["choices"] = tuple(PRESETS)
            action = g.add_argument(flag, type=tp, metavar=f.name.upper() if tp is not str else None, **kw)
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

