"""Alias resolution: the ONE place a name in a request becomes a collection name.

:meth:`Aliases.resolve` is what every collection route goes through (the service calls it first in each of its
collection methods), so whatever checks a collection name (scoped keys, availability, the reindex write gate)
sees the collection the alias points at. The map is read from the store at start and replaced whole after each
committed change, so a reader never sees half of a list of actions.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from retrieval.errors import InvalidRequestError
from retrieval.store.aliases import AliasAction, AliasTable, CreateAlias, DeleteAlias, RenameAlias

__all__ = ["AliasActionBody", "AliasActions", "Aliases"]


class CreateAliasBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    alias_name: str  # the new alias
    collection_name: str  # the collection it names (not an alias)


class DeleteAliasBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    alias_name: str  # the alias to remove (its collection stays)


class RenameAliasBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    old_alias_name: str  # an existing alias
    new_alias_name: str  # its new name


class AliasActionBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """Exactly one of the three keys."""

    create_alias: CreateAliasBody | None = None  # make a new alias of a collection
    delete_alias: DeleteAliasBody | None = None  # remove an alias
    rename_alias: RenameAliasBody | None = None  # rename an alias

    def to_action(self, i: int) -> AliasAction:
        given = [a for a in (self.create_alias, self.delete_alias, self.rename_alias) if a is not None]
        if len(given) != 1:
            raise InvalidRequestError(
                "each action holds exactly one of create_alias, delete_alias, rename_alias",
                param=f"actions[{i}]",
                received=len(given),
                allowed=["create_alias", "delete_alias", "rename_alias"],
            )
        (action,) = given
        if isinstance(action, CreateAliasBody):
            return CreateAlias(action.alias_name, action.collection_name)
        if isinstance(action, DeleteAliasBody):
            return DeleteAlias(action.alias_name)
        return RenameAlias(action.old_alias_name, action.new_alias_name)


class AliasActions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/aliases`: the actions, applied in order, all or none."""

    actions: list[AliasActionBody]  # e.g. [{"delete_alias": ...}, {"create_alias": ...}] re-points an alias

    def to_actions(self) -> list[AliasAction]:
        return [a.to_action(i) for i, a in enumerate(self.actions)]


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
