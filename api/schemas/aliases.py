"""`/v1/aliases` bodies in Qdrant's wire shape: a list of actions applied atomically, and the alias list."""

from __future__ import annotations

from typing import Literal

import msgspec

from retrieval.errors import InvalidRequestError
from retrieval.store.aliases import AliasAction, CreateAlias, DeleteAlias, RenameAlias

__all__ = ["AliasList", "AliasObject", "ChangeAliases", "alias_list"]


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


class ChangeAliases(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/aliases`: the actions, applied in order, all or none."""

    actions: list[AliasActionBody]  # e.g. [{"delete_alias": ...}, {"create_alias": ...}] re-points an alias

    def to_actions(self) -> list[AliasAction]:
        return [a.to_action(i) for i, a in enumerate(self.actions)]


class AliasObject(msgspec.Struct, frozen=True):
    alias_name: str  # the alias
    collection_name: str  # the collection it names


class AliasList(msgspec.Struct, frozen=True):
    """`GET /v1/aliases` (and the answer of `POST /v1/aliases`): every alias, by name."""

    data: list[AliasObject]  # alias -> collection pairs
    object: Literal["list"] = "list"  # the object type


def alias_list(pairs: list[tuple[str, str]]) -> AliasList:
    return AliasList([AliasObject(a, c) for a, c in pairs])
