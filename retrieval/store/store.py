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

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from retrieval.errors import (
    AliasExistsError,
    CollectionExistsError,
    CollectionNotFoundError,
    DocumentNotFoundError,
    InvalidRequestError,
)
from retrieval.store.aliases import AliasTable, alias_owner
from retrieval.store.db import Database
from retrieval.store.reads import as_chunk_ids, check_vectors, chunk_row, chunk_select, load_json
from retrieval.store.records import (
    ChunkRow,
    CollectionRow,
    DocumentRecord,
    DocumentRow,
    PageImage,
    VectorKind,
    WriteResult,
)
from retrieval.store.reindex_jobs import ReindexJobTable
from retrieval.store.writes import apply, check_deletes, encode_json, prepare

__all__ = ["Store"]

I64 = npt.NDArray[np.int64]
_NO_VECTORS: Sequence[VectorKind] = ()
_COLLECTION_COUNTS = (
    "SELECT c.name, c.config, c.created_at, "
    "(SELECT count(*) FROM documents d WHERE d.collection = c.name), "
    "(SELECT count(*) FROM chunks k WHERE k.collection = c.name) FROM collections c"
)


def _require_collection(conn: sqlite3.Connection, name: str) -> None:
    if conn.execute("SELECT 1 FROM collections WHERE name = ?", (name,)).fetchone() is None:
        raise CollectionNotFoundError(name)


def _ids(rows: list[tuple[Any, ...]]) -> I64:
    return np.array([r[0] for r in rows], dtype=np.int64)


class Store:
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
            _require_collection(conn, name)
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
            _require_collection(conn, name)
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
                _require_collection(conn, collection)
                return WriteResult(self._last_seq(conn))
        with self._db.write() as (conn, seq):
            _require_collection(conn, collection)
            result = apply(conn, collection, seq, prepared, delete_ids, skip_unchanged, first_ids)
            self._commit_hook(conn)
        return result

    def _commit_hook(self, conn: sqlite3.Connection) -> None:
        if self.before_commit is not None:
            self.before_commit(conn)

    # reads ------------------------------------------------------------------------------------------------

    def get_document(self, collection: str, doc_id: str) -> DocumentRow:
        """The document with its chunk keys (by position); DocumentNotFoundError if absent."""
        with self._db.read() as conn:
            _require_collection(conn, collection)
            row = conn.execute(
                "SELECT id, text, metadata, content_hash, source, page, seq FROM documents "
                "WHERE collection = ? AND id = ?",
                (collection, doc_id),
            ).fetchone()
            if row is None:
                raise DocumentNotFoundError(collection, doc_id)
            keys = conn.execute(
                "SELECT key FROM chunks WHERE collection = ? AND doc_id = ? ORDER BY position", (collection, doc_id)
            ).fetchall()
        metadata = load_json(row[2], f"metadata of `{doc_id}`")
        return DocumentRow(row[0], row[1], metadata, row[3], row[4], row[5], row[6], tuple(k[0] for k in keys))

    def get_chunk_by_key(self, collection: str, key: str, *, vectors: Sequence[VectorKind] = _NO_VECTORS) -> ChunkRow:
        """The chunk whose client-visible key is ``key``; DocumentNotFoundError if absent."""
        kinds = check_vectors(vectors)
        with self._db.read() as conn:
            _require_collection(conn, collection)
            row = conn.execute(
                f"{chunk_select(kinds)} WHERE c.collection = ? AND c.key = ?", (collection, key)
            ).fetchone()
        if row is None:
            raise DocumentNotFoundError(collection, key)
        return chunk_row(row, kinds)

    def get_chunks(
        self, collection: str, chunk_ids: Any, *, vectors: Sequence[VectorKind] = _NO_VECTORS
    ) -> list[ChunkRow]:
        """Chunks for ``chunk_ids`` (int64 (n,)) in the order given; ids not in the collection are skipped."""
        ids, kinds = as_chunk_ids(chunk_ids), check_vectors(vectors)
        sql = f"{chunk_select(kinds)} WHERE c.collection = ? AND c.chunk_id IN (SELECT value FROM json_each(?))"
        with self._db.read() as conn:
            _require_collection(conn, collection)
            rows = conn.execute(sql, (collection, str(ids.tolist()))).fetchall()
        by_id = {row[0]: chunk_row(row, kinds) for row in rows}
        return [by_id[i] for i in ids.tolist() if i in by_id]

    def chunk_documents(self, collection: str, chunk_ids: Any) -> dict[int, str]:
        """Chunk id -> its document's id for ``chunk_ids`` (int64 (n,)); ids not in the collection are absent."""
        ids = as_chunk_ids(chunk_ids)
        sql = "SELECT chunk_id, doc_id FROM chunks WHERE collection = ? AND chunk_id IN "
        sql += "(SELECT value FROM json_each(?))"
        with self._db.read() as conn:
            _require_collection(conn, collection)
            return {int(c): str(d) for c, d in conn.execute(sql, (collection, str(ids.tolist()))).fetchall()}

    def iter_chunks(
        self,
        collection: str,
        *,
        after_seq: int = 0,
        upto_seq: int | None = None,
        vectors: Sequence[VectorKind] = _NO_VECTORS,
        batch: int = 1000,
    ) -> Iterator[list[ChunkRow]]:
        """Live chunks with ``after_seq < seq <= upto_seq`` in chunk_id order (= seq order), ``batch`` at a time.

        Each batch is its own read snapshot, so a long scan never blocks checkpoints; rows written during the
        scan appear only if ``upto_seq`` allows. Take ``upto_seq = last_seq()`` before a build for a replay
        point that is exact up to removals replayed afterwards.
        """
        kinds = check_vectors(vectors)
        if batch < 1:
            raise InvalidRequestError("batch must be >= 1", param="batch", received=batch, allowed=">= 1")
        top = (1 << 63) - 1 if upto_seq is None else upto_seq
        # seq never decreases as chunk_id grows (both are assigned under the write lock), so a chunk_id cursor
        # starting at the first chunk after `after_seq` visits exactly the wanted rows; the seq terms are a guard
        sql = (
            f"{chunk_select(kinds)} WHERE c.collection = ? AND c.chunk_id > ? AND +c.seq > ? AND +c.seq <= ? "
            "ORDER BY c.chunk_id LIMIT ?"
        )
        with self._db.read() as conn:
            _require_collection(conn, collection)
            first = conn.execute(
                "SELECT chunk_id FROM chunks WHERE collection = ? AND seq > ? ORDER BY seq, chunk_id LIMIT 1",
                (collection, after_seq),
            ).fetchone()
        cursor = 0 if first is None else first[0] - 1
        while first is not None:
            with self._db.read() as conn:
                rows = conn.execute(sql, (collection, cursor, after_seq, top, batch)).fetchall()
            if rows:
                yield [chunk_row(row, kinds) for row in rows]
                cursor = rows[-1][0]
            if len(rows) < batch:
                return

    def documents_after(self, collection: str, seq: int, doc_id: str, limit: int) -> list[DocumentRow]:
        """Up to ``limit`` documents after ``(seq, doc_id)`` in ``(seq, id)`` order (a reindex's scan: a document
        written later always has a larger seq, so a scan that reaches the end has seen every live document)."""
        with self._db.read() as conn:
            _require_collection(conn, collection)
            rows = conn.execute(
                "SELECT id, text, metadata, content_hash, source, page, seq FROM documents WHERE collection = ? "
                "AND (seq > ? OR (seq = ? AND id > ?)) ORDER BY seq, id LIMIT ?",
                (collection, seq, seq, doc_id, limit),
            ).fetchall()
        return [
            DocumentRow(r[0], r[1], load_json(r[2], f"metadata of `{r[0]}`"), r[3], r[4], r[5], r[6], ()) for r in rows
        ]

    def document_chunks(
        self, collection: str, doc_ids: Sequence[str], *, vectors: Sequence[VectorKind] = _NO_VECTORS
    ) -> dict[str, list[ChunkRow]]:
        """``{doc_id: its chunks by position}`` for those of ``doc_ids`` that exist."""
        kinds = check_vectors(vectors)
        sql = (
            f"{chunk_select(kinds)} WHERE c.collection = ? AND c.doc_id IN (SELECT value FROM json_each(?)) "
            "ORDER BY c.doc_id, c.position"
        )
        with self._db.read() as conn:
            rows = conn.execute(sql, (collection, _json_list(doc_ids))).fetchall()
        out: dict[str, list[ChunkRow]] = {}
        for row in rows:
            chunk = chunk_row(row, kinds)
            out.setdefault(chunk.doc_id, []).append(chunk)
        return out

    def document_ids(self, collection: str) -> list[str]:
        """Every live document id of ``collection``, ascending."""
        with self._db.read() as conn:
            rows = conn.execute("SELECT id FROM documents WHERE collection = ? ORDER BY id", (collection,)).fetchall()
        return [r[0] for r in rows]

    def missing_from(self, collection: str, other: str) -> list[str]:
        """Ids of the documents of ``collection`` that ``other`` does not hold (deleted there since a copy)."""
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT id FROM documents t WHERE t.collection = ? AND NOT EXISTS "
                "(SELECT 1 FROM documents s WHERE s.collection = ? AND s.id = t.id) ORDER BY id",
                (collection, other),
            ).fetchall()
        return [r[0] for r in rows]

    def removed_after(self, collection: str, seq: int, *, upto_seq: int | None = None) -> I64:
        """Chunk ids removed by writes with ``seq < s <= upto_seq``: int64 (n,), ascending."""
        top = (1 << 63) - 1 if upto_seq is None else upto_seq
        with self._db.read() as conn:
            _require_collection(conn, collection)
            rows = conn.execute(
                "SELECT chunk_id FROM removals WHERE collection = ? AND seq > ? AND seq <= ? ORDER BY chunk_id",
                (collection, seq, top),
            ).fetchall()
        return _ids(rows)

    def last_seq(self) -> int:
        """The sequence number of the last committed write (0 for a new store)."""
        with self._db.read() as conn:
            return self._last_seq(conn)

    def last_chunk_id(self) -> int:
        """The largest chunk id this store ever gave or took (0 for a new store); ids are never reused."""
        with self._db.read() as conn:
            row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'chunks'").fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def _last_seq(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0])

    def content_hashes(self, collection: str, ids: Sequence[str]) -> dict[str, str]:
        """``{doc_id: content_hash}`` for those of ``ids`` that exist."""
        with self._db.read() as conn:
            _require_collection(conn, collection)
            rows = conn.execute(
                "SELECT id, content_hash FROM documents WHERE collection = ? AND id IN "
                "(SELECT value FROM json_each(?))",
                (collection, _json_list(ids)),
            ).fetchall()
        return dict(rows)

    def page_images(self, collection: str, doc_ids: Sequence[str]) -> dict[str, PageImage]:
        """``{doc_id: PageImage}`` for those of ``doc_ids`` that are rendered PDF pages."""
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT doc_id, digest, width, height FROM pages WHERE collection = ? AND doc_id IN "
                "(SELECT value FROM json_each(?))",
                (collection, _json_list(doc_ids)),
            ).fetchall()
        return {r[0]: PageImage(r[1], r[2], r[3]) for r in rows}

    def has_page_image(self, collection: str, digest: str) -> bool:
        """Whether a live document of ``collection`` references the page image ``digest``."""
        with self._db.read() as conn:
            sql = "SELECT 1 FROM pages WHERE digest = ? AND collection = ? LIMIT 1"
            return conn.execute(sql, (digest, collection)).fetchone() is not None

    def page_digests(self) -> set[str]:
        """Every page image digest referenced by any collection (what garbage collection keeps)."""
        with self._db.read() as conn:
            return {r[0] for r in conn.execute("SELECT DISTINCT digest FROM pages").fetchall()}

    def chunk_ids_where(self, collection: str, where_sql: str, params: Sequence[object]) -> I64:
        """Chunk ids (int64 (n,), ascending) of documents whose row satisfies ``where_sql``.

        ``where_sql`` is a boolean SQL fragment over the document's ``metadata`` column (JSON text), e.g.
        ``"json_extract(metadata, ?) = ?"`` with ``params = ["$.year", 2020]``. It is interpolated into the
        statement verbatim: pass only fragments compiled by the filter compiler, never user text; every user
        value must travel in ``params``.
        """
        sql = (
            "SELECT chunk_id FROM chunks WHERE collection = ? AND doc_id IN "
            f"(SELECT id FROM documents WHERE collection = ? AND ({where_sql})) ORDER BY chunk_id"
        )
        with self._db.read() as conn:
            _require_collection(conn, collection)
            rows = conn.execute(sql, (collection, collection, *params)).fetchall()
        return _ids(rows)

    def stats(self, collection: str) -> dict[str, int]:
        """Sizes computed in SQL: ``documents``, ``chunks`` and stored bytes ``dense_bytes``,
        ``multivector_bytes``, ``sparse_bytes`` (ids + weights), ``text_bytes`` (UTF-8 of document and chunk
        texts) and ``metadata_bytes``."""
        with self._db.read() as conn:
            _require_collection(conn, collection)
            chunks = conn.execute(
                "SELECT count(*), total(length(dense)), total(length(multivector)), "
                "total(length(sparse_ids)) + total(length(sparse_weights)), total(length(CAST(text AS BLOB))) "
                "FROM chunks WHERE collection = ?",
                (collection,),
            ).fetchone()
            docs = conn.execute(
                "SELECT count(*), total(length(CAST(text AS BLOB))), "
                "total(length(CAST(metadata AS BLOB))) FROM documents WHERE collection = ?",
                (collection,),
            ).fetchone()
        n_chunks, dense, mv, sparse, chunk_text = (int(v) for v in chunks)
        n_docs, doc_text, metadata = (int(v) for v in docs)
        return {
            "documents": n_docs,
            "chunks": n_chunks,
            "dense_bytes": dense,
            "multivector_bytes": mv,
            "sparse_bytes": sparse,
            "text_bytes": doc_text + chunk_text,
            "metadata_bytes": metadata,
        }


def _json_list(ids: Sequence[str]) -> str:
    return json.dumps([str(i) for i in ids])


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
