"""`/v1/aliases` bodies in Qdrant's wire shape: a list of actions applied atomically, and the alias list."""

from __future__ import annotations

from typing import Literal

import msgspec

from retrieval.service.aliases import AliasActionBody, AliasActions

ChangeAliases = AliasActions  # `POST /v1/aliases`: Qdrant's `{"actions": [...]}`, parsed in the retrieval layer

__all__ = ["AliasActionBody", "AliasList", "AliasObject", "ChangeAliases", "alias_list"]


class AliasObject(msgspec.Struct, frozen=True):
    alias_name: str  # the alias
    collection_name: str  # the collection it names


class AliasList(msgspec.Struct, frozen=True):
    """`GET /v1/aliases` (and the answer of `POST /v1/aliases`): every alias, by name."""

    data: list[AliasObject]  # alias -> collection pairs
    object: Literal["list"] = "list"  # the object type


def alias_list(pairs: list[tuple[str, str]]) -> AliasList:
    return AliasList([AliasObject(a, c) for a, c in pairs])
