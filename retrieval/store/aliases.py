"""Aliases in the store: another name for a collection, changed only by whole lists of actions in ONE transaction.

The actions are Qdrant's: create an alias, delete one, rename one. A list of them is applied in order inside one
write transaction, so `[delete docs, create docs -> docs_v2]` re-points `docs` with no instant at which it does
not exist, and any invalid action rolls the whole list back. Aliases and collections share one namespace: an
alias never takes a collection's name, and a collection is never created under an alias's name
(:meth:`Store.create_collection` checks). Deleting a collection deletes its aliases in the same transaction.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from retrieval.common.names import check_name
from retrieval.errors import AliasExistsError, AliasNotFoundError, CollectionNotFoundError, InvalidRequestError
from retrieval.store.db import Database

__all__ = ["AliasAction", "AliasTable", "CreateAlias", "DeleteAlias", "RenameAlias", "alias_owner", "point_alias"]


@dataclass(frozen=True)
class CreateAlias:
    """Make `alias` another name of `collection` (the alias must be new)."""

    alias: str  # the new name
    collection: str  # an existing collection (not an alias)


@dataclass(frozen=True)
class DeleteAlias:
    """Remove `alias` (the collection stays)."""

    alias: str  # an existing alias


@dataclass(frozen=True)
class RenameAlias:
    """Give alias `old` the name `new` (same collection)."""

    old: str  # an existing alias
    new: str  # a free name


AliasAction = CreateAlias | DeleteAlias | RenameAlias


def alias_owner(conn: sqlite3.Connection, name: str) -> str | None:
    """The collection alias `name` points at, None when `name` is no alias."""
    row = conn.execute("SELECT collection FROM aliases WHERE alias = ?", (name,)).fetchone()
    return None if row is None else str(row[0])


def _check_free(conn: sqlite3.Connection, name: str, param: str) -> None:
    check_name(name, "an alias", param)
    if conn.execute("SELECT 1 FROM collections WHERE name = ?", (name,)).fetchone() is not None:
        raise AliasExistsError(name, "a collection", param)
    owner = alias_owner(conn, name)
    if owner is not None:
        raise AliasExistsError(name, f"an alias of `{owner}`", param)


def point_alias(conn: sqlite3.Connection, alias: str, collection: str) -> None:
    """Create `alias` or re-point it at `collection`, inside the caller's transaction (a reindex's swap)."""
    if conn.execute("SELECT 1 FROM collections WHERE name = ?", (collection,)).fetchone() is None:
        raise CollectionNotFoundError(collection)
    if alias_owner(conn, alias) is None:
        _check_free(conn, alias, "swap_alias")
    conn.execute("INSERT OR REPLACE INTO aliases VALUES (?, ?, ?)", (alias, collection, time.time()))


def _apply(conn: sqlite3.Connection, action: AliasAction, i: int) -> None:
    where = f"actions[{i}]"
    if isinstance(action, CreateAlias):
        _check_free(conn, action.alias, f"{where}.create_alias.alias_name")
        if conn.execute("SELECT 1 FROM collections WHERE name = ?", (action.collection,)).fetchone() is None:
            error = CollectionNotFoundError(action.collection)
            error.param = f"{where}.create_alias.collection_name"
            raise error
        conn.execute("INSERT INTO aliases VALUES (?, ?, ?)", (action.alias, action.collection, time.time()))
    elif isinstance(action, DeleteAlias):
        if conn.execute("DELETE FROM aliases WHERE alias = ?", (action.alias,)).rowcount == 0:
            raise AliasNotFoundError(action.alias, f"{where}.delete_alias.alias_name")
    else:
        if alias_owner(conn, action.old) is None:
            raise AliasNotFoundError(action.old, f"{where}.rename_alias.old_alias_name")
        _check_free(conn, action.new, f"{where}.rename_alias.new_alias_name")
        conn.execute("UPDATE aliases SET alias = ? WHERE alias = ?", (action.new, action.old))


class AliasTable:
    """The `aliases` table of one store."""

    def __init__(self, db: Database, commit_hook: Callable[[sqlite3.Connection], None]) -> None:
        self._db = db  # connections and transactions
        self._hook = commit_hook  # the store's fault-injection seam, called before COMMIT

    def all(self) -> dict[str, str]:
        """Every alias -> its collection, by alias name."""
        with self._db.read() as conn:
            return dict(conn.execute("SELECT alias, collection FROM aliases ORDER BY alias").fetchall())

    def apply(self, actions: Sequence[AliasAction]) -> dict[str, str]:
        """Apply `actions` in order, all or none, in one transaction; returns every alias afterwards."""
        if not actions:
            raise InvalidRequestError("give at least one action", param="actions")
        with self._db.write() as (conn, _seq):
            for i, action in enumerate(actions):
                _apply(conn, action, i)
            self._hook(conn)
            return dict(conn.execute("SELECT alias, collection FROM aliases ORDER BY alias").fetchall())
