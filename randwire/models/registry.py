"""The one shape of an extension point: a table of records by name (generators, node ops), built-ins fixed,
others added by a module of the user's when it is imported. No torch here."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from .errors import ConfigError, require_choice

Entry = TypeVar("Entry")


class Registry(Generic[Entry]):
    """``key``: the config key that names an entry (``graph``, ``node_op``); ``kind``: the record type."""

    def __init__(self, key: str, kind: type, builtin: tuple[str, ...]) -> None:
        self.key, self.kind, self.builtin = key, kind, builtin
        self.entries: dict[str, Entry] = {}

    def register(self, entry: Entry, *, builtin: bool = False) -> Entry:
        """Add an entry; a built-in name cannot be taken by another, registering a name again replaces it."""
        if not isinstance(entry, self.kind):
            raise ConfigError(f"{self.key}: register takes a {self.kind.__name__} record, not a {type(entry).__name__}")
        name = entry.name  # type: ignore[attr-defined]
        if not builtin and name in self.builtin and name in self.entries:
            raise ConfigError(f"{self.key}={name!r} is built in: give yours another name")
        self.entries[name] = entry
        return entry

    def __getitem__(self, name: Any) -> Entry:
        """The entry ``<key>=<name>`` names; one line listing the registered names otherwise."""
        require_choice(self.key, name, tuple(self.entries))
        return self.entries[name]

    def find(self, name: Any) -> Entry | None:
        return self.entries.get(name)

    def names(self) -> tuple[str, ...]:
        """In registration order: the built-ins' (the paper's), then the user's."""
        return tuple(self.entries)

    def copy(self) -> Registry[Entry]:
        """The same entries in a table of their own (a test registers into it and throws it away)."""
        twin: Registry[Entry] = Registry(self.key, self.kind, self.builtin)
        twin.entries = dict(self.entries)
        return twin
