"""How a setting is declared and checked, the same way in every group of :class:`harvit.config.Config`.

A setting is a dataclass field whose metadata holds its help text, its group (the section of ``--help``
and of the docs it is listed in), its fixed choices and the registry its names come from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import field
from types import MappingProxyType
from typing import Any, TypeVar

from harvit.utils.errors import HarvitError

T = TypeVar("T")


def setting(default: Any, help: str, choices: tuple[str, ...] | None = None, **meta: Any) -> Any:
    """A setting's field: its default, help text (``%(registered)s`` is filled with a registry's names) and,
    optionally, its fixed ``choices`` or the ``registry`` whose names it takes."""
    metadata = {"help": help, **({"choices": choices} if choices is not None else {}), **meta}
    return field(default=default, metadata=metadata)


def in_group(name: str) -> Callable[[type[T]], type[T]]:
    """Class decorator (under ``@dataclass``): record ``name`` as the group of every setting of the class."""

    def stamp(cls: type[T]) -> type[T]:
        for value in vars(cls).values():
            if isinstance(value, dataclasses.Field):
                value.metadata = MappingProxyType({**value.metadata, "group": name})
        return cls

    return stamp


def flag(name: str) -> str:
    """A setting's flag without the dashes: ``train_stride`` -> ``train-stride``."""
    return name.replace("_", "-")


def check(ok: bool, name: str, value: Any, expected: str) -> None:
    """Raise :class:`HarvitError` ``--FLAG: got VALUE, expected EXPECTED`` unless ``ok``."""
    if not ok:
        raise HarvitError(f"--{flag(name)}: got {value!r}, expected {expected}")


def check_choices(settings: Any, group: type) -> None:
    """Check every setting of ``group`` that has fixed choices; a value outside them raises one error."""
    for f in dataclasses.fields(group):
        choices = f.metadata.get("choices")
        value = getattr(settings, f.name)
        if choices and value is not None and value not in choices:
            raise HarvitError(f"--{flag(f.name)}: unknown value {value!r}; expected one of {', '.join(choices)}")


def check_at_least_zero(settings: Any, names: tuple[str, ...]) -> None:
    """Check that each of the integer settings ``names`` is >= 0."""
    for name in names:
        check(getattr(settings, name) >= 0, name, getattr(settings, name), ">= 0")


def split_list(text: str | None) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]``; None -> ``[]``."""
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def subject_list(text: str | None) -> list[int | str] | None:
    """Comma-separated subjects as ints where they are integers, else the names as given; None when empty."""
    return [int(t) if t.lstrip("-").isdigit() else t for t in split_list(text)] or None
