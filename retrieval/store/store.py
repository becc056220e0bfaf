"""The document store: the service's source of truth, one SQLite file (see DESIGN.md, storage contract).

Collections hold documents; documents hold chunks; chunks hold the vectors. Every write is one transaction
stamped with a global sequence number (``seq``). Indexes are derived: build one from :meth:`Store.iter_chunks`
and record ``S = last_seq()`` taken before the scan (pass ``upto_seq=S``); later bring it up to date by adding
``iter_chunks(after_seq=S)`` and removing ``removed_after(S)``. Chunk ids are never reused, so the order of
those two steps does not matter and a removal of an id the index lacks must be ignored (every ``index/``
family does).

Thread safety: any number of threads may read while one writes (WAL; one connection per thread); writes
are serialised. ``Store`` methods may be called from any thread; :meth:`close` closes every thread's
connection.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from retrieval.errors import (
    AliasExistsError,
    CollectionExistsError,
    CollectionNotFoundError,
    InvalidRequestError,
)
from retrieval.store.aliases import AliasTable, alias_owner
from retrieval.store.db import Database
from retrieval.store.lookups import StoreReads, require_collection
from retrieval.store.reads import load_json
from retrieval.store.records import (
    CollectionRow,
    DocumentRecord,
    WriteResult,
)
from retrieval.store.reindex_jobs import ReindexJobTable
from retrieval.store.writes import apply, check_deletes, encode_json, prepare

__all__ = ["Store"]

_COLLECTION_COUNTS = (
    "SELECT c.name, c.config, c.created_at, "
    "(SELECT count(*) FROM documents d WHERE d.collection = c.name), "
    "(SELECT count(*) FROM chunks k WHERE k.collection = c.name) FROM collections c"
)


class Store(StoreReads):
    """The SQLite document store. Open with :meth:`open`; use as a context manager or call :meth:`close`."""

    def __init__(self, db: Database, *, before_commit: Callable[[sqlite3.Connection], None] | None = None) -> None:
        """Wrap an open :class:`Database`. ``before_commit`` is a test seam called with the transaction's
        connection inside every write transaction just before COMMIT (so a test can make SQLite itself fail,
        e.g. ``PRAGMA max_page_count`` for SQLITE_FULL); if it raises, the write rolls back and the error
        propagates (a sqlite3 error, ENOSPC or EDQUOT as StorageError / StorageFullError). It may be swapped at
        any time by assigning :attr:`before_commit`."""
        self._db = db  # connections, transactions, write lock
        self.before_commit = before_commit  # fault-injection seam (tests only)
        self.aliases = AliasTable(db, self._commit_hook)  # other names of collections
        self.reindex_jobs = ReindexJobTable(db, self._commit_hook)  # durable reindex jobs

    @classmethod
    def open(cls, path: Path | str, *, before_commit: Callable[[sqlite3.Connection], None] | None = None) -> Store:
        """Open or create the database file at ``path`` (parent directories too) and migrate its schema.

        A file written by a newer schema version, or one that is not a SQLite database, raises StorageError.
        """
        return cls(Database(Path(path)), before_commit=before_commit)

    @property
    def path(self) -> Path:
        """The database file."""
        return self._db.path

    def backup(self, dest: Path | str) -> None:
        """Copy the store into the new file ``dest`` as of one committed instant (SQLite's online backup API;
        writes go on meanwhile). StorageError (StorageFullError when the disk is full) on failure."""
        self._db.backup(Path(dest))

    def close(self) -> None:
        """Close every connection; later calls raise StorageError. Idempotent."""
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # collections ------------------------------------------------------------------------------------------

    def create_collection(self, name: str, config: Mapping[str, Any], *, dims: Mapping[str, int] | None = None) -> int:
        """Create collection ``name`` with a JSON ``config``; returns the write's seq.

        ``dims`` optionally pins vector widths (``{"dense": 384, "multivector": 128}``); otherwise the first
        write of each kind pins it. CollectionExistsError if the name is taken.
        """
        if not isinstance(name, str) or not name:
            raise InvalidRequestError(
                "a collection name must be a non-empty string",
                param="name",
                received=repr(name)[:40],
                allowed="non-empty string",
            )
        config_json = encode_json(dict(config), "config")
        pinned = _check_dims(dims or {})
        with self._db.write() as (conn, seq):
            if conn.execute("SELECT 1 FROM collections WHERE name = ?", (name,)).fetchone() is not None:
                raise CollectionExistsError(name)
            if (owner := alias_owner(conn, name)) is not None:
                raise AliasExistsError(name, f"an alias of `{owner}`", "name")
            conn.execute("INSERT INTO collections VALUES (?, ?, ?)", (name, config_json, time.time()))
            conn.executemany("INSERT INTO vector_dims VALUES (?, ?, ?)", [(name, k, d) for k, d in pinned.items()])
            self._commit_hook(conn)
        return seq

    def update_collection(self, name: str, config: Mapping[str, Any]) -> int:
        """Replace the JSON ``config`` of collection ``name`` (settings that need no reindexing) in one durable
        transaction; returns the write's seq. CollectionNotFoundError if absent."""
        config_json = encode_json(dict(config), "config")
        with self._db.write() as (conn, seq):
            require_collection(conn, name)
            conn.execute("UPDATE collections SET config = ? WHERE name = ?", (config_json, name))
            self._commit_hook(conn)
        return seq

    def get_collection(self, name: str) -> CollectionRow:
        """The collection with its document and chunk counts; CollectionNotFoundError if absent."""
        with self._db.read() as conn:
            row = conn.execute(f"{_COLLECTION_COUNTS} WHERE c.name = ?", (name,)).fetchone()
            if row is None:
                raise CollectionNotFoundError(name)
            return self._collection_row(conn, row)

    def list_collections(self) -> list[CollectionRow]:
        """Every collection, by name."""
        with self._db.read() as conn:
            rows = conn.execute(f"{_COLLECTION_COUNTS} ORDER BY c.name").fetchall()
            return [self._collection_row(conn, row) for row in rows]

    @staticmethod
    def _collection_row(conn: sqlite3.Connection, row: tuple[Any, ...]) -> CollectionRow:
        name, config, created_at, documents, chunks = row
        dims = dict(conn.execute("SELECT kind, dim FROM vector_dims WHERE collection = ?", (name,)).fetchall())
        return CollectionRow(name, load_json(config, f"config of `{name}`"), documents, chunks, created_at, dims)

    def delete_collection(self, name: str) -> int:
        """Remove the collection and every row of it in one transaction; returns the write's seq."""
        with self._db.write() as (conn, seq):
            require_collection(conn, name)
            for table, column in (
                ("aliases", "collection"),
                ("pages", "collection"),
                ("chunks", "collection"),
                ("removals", "collection"),
                ("documents", "collection"),
                ("vector_dims", "collection"),
                ("collections", "name"),
            ):
                conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (name,))
            self._commit_hook(conn)
        return seq

    def import_collection(
        self,
        name: str,
        config: Mapping[str, Any],
        dims: Mapping[str, int],
        batches: Iterable[Sequence[DocumentRecord]],
    ) -> WriteResult:
        """Create collection ``name`` and write every document of ``batches`` in ONE transaction (an import):
        either all of it is visible after COMMIT or nothing is. CollectionExistsError if the name is taken; an
        error raised while ``batches`` is consumed rolls everything back. Returns the write's seq and chunk ids.
        """
        config_json = encode_json(dict(config), "config")
        pinned = _check_dims(dims)
        added: list[Any] = []
        with self._db.write() as (conn, seq):
            if conn.execute("SELECT 1 FROM collections WHERE name = ?", (name,)).fetchone() is not None:
                raise CollectionExistsError(name)
            conn.execute("INSERT INTO collections VALUES (?, ?, ?)", (name, config_json, time.time()))
            conn.executemany("INSERT INTO vector_dims VALUES (?, ?, ?)", [(name, k, d) for k, d in pinned.items()])
            for batch in batches:
                added.append(apply(conn, name, seq, prepare(batch, []), [], False).added)
            self._commit_hook(conn)
        return WriteResult(seq, np.concatenate(added) if added else np.zeros(0, np.int64))

    # writes -----------------------------------------------------------------------------------------------

    def write(
        self,
        collection: str,
        upserts: Sequence[DocumentRecord] = (),
        deletes: Sequence[str] = (),
        *,
        skip_unchanged: bool = True,
        first_ids: Mapping[str, int] | None = None,
    ) -> WriteResult:
        """Upsert and delete documents in ONE transaction; returns only after COMMIT.

        An upsert of an existing id removes all its old chunks (logged in ``removals``) and inserts the new
        ones; with ``skip_unchanged`` an upsert whose ``content_hash`` equals the stored one is left alone and
        listed in ``skipped``. Deleting an unknown id is a no-op. An id may not be both upserted and deleted.
        Vectors are validated here (InvalidRequestError, param ``vectors.dense`` ...): finite values, and the
        width pinned for the collection. A SQLite failure rolls back and raises StorageError; nothing partial
        is ever visible. `first_ids` (a shard of a sharded collection): doc id -> the id of its first chunk, as
        the coordinator handed them out (ids never reused: each is above every id the store ever gave).
        """
        delete_ids = check_deletes(deletes)
        prepared = prepare(upserts, delete_ids)
        if not prepared and not delete_ids:
            with self._db.read() as conn:
                require_collection(conn, collection)
                return WriteResult(self._last_seq(conn))
        with self._db.write() as (conn, seq):
            require_collection(conn, collection)
            result = apply(conn, collection, seq, prepared, delete_ids, skip_unchanged, first_ids)
            self._commit_hook(conn)
        return result

    def _commit_hook(self, conn: sqlite3.Connection) -> None:
        if self.before_commit is not None:
            self.before_commit(conn)


def _check_dims(dims: Mapping[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for kind, dim in dims.items():
        if kind not in ("dense", "multivector") or isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise InvalidRequestError(
                f"cannot pin width {dim!r} for {kind!r}",
                param="dims",
                received={kind: dim},
                allowed="{'dense'|'multivector': int >= 1}",
            )
        out[kind] = dim
    return out
