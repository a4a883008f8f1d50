"""One registry per extension point: a name -> an entry (its implementation and metadata).

The module that owns an implementation registers it once (``REGISTRY.add(entry)``, usually through
a decorator that names the entry after its function, as timm's ``register_model`` does); every
reader (CLI help, ``harvit data info``, the checks of ``--dataset`` and ``--encodings``, the docs'
tests) asks the registry and keeps no copy of its names.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

from harvit.utils.errors import HarvitError


class Named(Protocol):
    """What a registry holds: anything with a ``name``."""

    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


class Registry(Generic[T]):
    """Entries by name, in registration order.

    Args:
        kind: what an entry is, for messages (``"data set"``, ``"encoding"``).
        flag: the command-line flag that takes the names (``"--dataset"``), for messages.
    """

    def __init__(self, kind: str, flag: str) -> None:
        self.kind = kind
        self.flag = flag
        self._entries: dict[str, T] = {}

    def add(self, entry: T) -> T:
        """Register ``entry``; a second entry under a registered name is an error (not a silent swap)."""
        name = entry.name
        if not name or not isinstance(name, str) or name != name.strip() or "," in name:
            raise HarvitError(f"{self.kind} name {name!r}: expected a non-empty name without commas or spaces")
        if name in self._entries:
            raise HarvitError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def remove(self, name: str) -> None:
        """Unregister ``name`` (for tests and plug-ins that replace themselves); unknown names are ignored."""
        self._entries.pop(name, None)

    def get(self, name: str) -> T:
        """The entry of ``name``; an unknown name raises one :class:`HarvitError` naming the flag and the choices."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise HarvitError(f"{self.flag}: unknown {self.kind} {name!r}; expected one of {self.listing()}") from None

    def names(self) -> list[str]:
        """The registered names, in registration order."""
        return list(self._entries)

    def listing(self) -> str:
        """``"a, b, c"``: the names for help texts and messages."""
        return ", ".join(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def values(self) -> list[T]:
        """The entries, in registration order."""
        return list(self._entries.values())
