"""How a setting is declared and checked, the same way in every group of :class:`harvit.config.Config`.

A setting is a dataclass field whose metadata holds its help text, its group (the section of ``--help``
and of the docs it is listed in), its fixed choices, the registry its names come from, and its tags: the
lists of settings it belongs to (:data:`TAGS`), so that a new setting joins them where it is declared.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from dataclasses import field
from types import MappingProxyType
from typing import Any, TypeVar

from harvit.utils.errors import HarvitError

T = TypeVar("T")


#: The tags a setting may carry: tag -> which settings carry it. A tag implies the tags of :data:`IMPLIED`.
TAGS: dict[str, str] = {
    "encoder": "settings of the encoder and its images: --init-from takes weights only from a run that shares them",
    "arch": "settings that change the network's shape or meaning: a checkpoint with other values is refused",
    "resume": "settings a resumed run must share with its checkpoint: the architecture, the data split, the "
              "averaging",
    "profile": "settings harvit profile reads (the model, its images, the batch, the runtime)",
}
#: tag -> the tags it implies: the encoder is part of the architecture; a resumed run and the profiler need all of it.
IMPLIED: dict[str, tuple[str, ...]] = {"encoder": ("arch",), "arch": ("resume", "profile")}


def closure(tags: Collection[str]) -> frozenset[str]:
    """``tags`` with every tag they imply (:data:`IMPLIED`), checked against :data:`TAGS`."""
    unknown = set(tags) - set(TAGS)
    if unknown:
        raise ValueError(f"unknown setting tag(s) {', '.join(sorted(unknown))}; expected some of {', '.join(TAGS)}")
    done: set[str] = set()
    todo = list(tags)
    while todo:
        tag = todo.pop()
        if tag not in done:
            done.add(tag)
            todo.extend(IMPLIED.get(tag, ()))
    return frozenset(done)


def setting(default: Any, help: str, choices: tuple[str, ...] | None = None, *, tags: Collection[str] = (),
            **meta: Any) -> Any:
    """A setting's field: its default, help text (``%(registered)s`` is filled with a registry's names) and,
    optionally, its fixed ``choices``, the ``registry`` whose names it takes, its ``metavar`` in ``--help``, and
    its ``tags`` (:data:`TAGS`; stored with the tags they imply)."""
    metadata = {"help": help, **({"choices": choices} if choices is not None else {}), "tags": closure(tags), **meta}
    return field(default=default, metadata=metadata)


def tagged(cls: type, tag: str) -> tuple[str, ...]:
    """The names of ``cls``'s settings that carry ``tag`` (:data:`TAGS`), in field order."""
    if tag not in TAGS:
        raise ValueError(f"unknown setting tag {tag!r}; expected one of {', '.join(TAGS)}")
    return tuple(f.name for f in dataclasses.fields(cls) if tag in f.metadata.get("tags", ()))


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
