"""Alias resolution: the ONE place a name in a request becomes a collection name.

:meth:`Aliases.resolve` is what every collection route goes through (the service calls it first in each of its
collection methods), so whatever checks a collection name (scoped keys, availability, the reindex write gate)
sees the collection the alias points at. The map is read from the store at start and replaced whole after each
committed change, so a reader never sees half of a list of actions.
"""

from __future__ import annotations

from collections.abc import Sequence

from retrieval.store.aliases import AliasAction, AliasTable

__all__ = ["Aliases"]


class Aliases:
    """The aliases of one store, kept in memory (a dict replaced whole on each change)."""

    def __init__(self, table: AliasTable) -> None:
        self._table = table  # the durable copy
        self._map: dict[str, str] = table.all()  # alias -> collection

    def resolve(self, name: str) -> str:
        """The collection `name` names: the alias's collection, else `name` itself."""
        return self._map.get(name, name)

    def is_alias(self, name: str) -> bool:
        return name in self._map

    def pairs(self) -> list[tuple[str, str]]:
        """(alias, collection) pairs, by alias."""
        return sorted(self._map.items())

    def of(self, collection: str) -> list[str]:
        """The aliases of `collection`, by name."""
        return sorted(a for a, c in self._map.items() if c == collection)

    def apply(self, actions: Sequence[AliasAction]) -> list[tuple[str, str]]:
        """Apply `actions` atomically (store transaction), then swap in the new map."""
        self._map = self._table.apply(actions)
        return self.pairs()

    def reload(self) -> None:
        """Re-read the map (after a collection delete removed its aliases, or a reindex swapped one)."""
        self._map = self._table.all()
