"""The store's reads: documents and chunks by id or key, chunk ids by metadata filter, the rows a reindex or a
replay walks, content hashes, page image references and sizes. Every read runs on one read connection, so it
sees one committed instant; a collection that does not exist is CollectionNotFoundError."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from retrieval.errors import CollectionNotFoundError, DocumentNotFoundError, InvalidRequestError
from retrieval.store.db import Database
from retrieval.store.reads import as_chunk_ids, check_vectors, chunk_row, chunk_select, load_json
from retrieval.store.records import ChunkRow, DocumentRow, PageImage, VectorKind

__all__ = ["I64", "StoreReads", "require_collection"]

I64 = npt.NDArray[np.int64]
_NO_VECTORS: Sequence[VectorKind] = ()


def require_collection(conn: sqlite3.Connection, name: str) -> None:
    if conn.execute("SELECT 1 FROM collections WHERE name = ?", (name,)).fetchone() is None:
        raise CollectionNotFoundError(name)


def _ids(rows: list[tuple[Any, ...]]) -> I64:
    return np.array([r[0] for r in rows], dtype=np.int64)


class StoreReads:
    """The read methods of :class:`retrieval.store.Store` (which holds the database)."""

    _db: Database  # connections, transactions, write lock

    def get_document(self, collection: str, doc_id: str) -> DocumentRow:
        """The document with its chunk keys (by position); DocumentNotFoundError if absent."""
        with self._db.read() as conn:
            require_collection(conn, collection)
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
            require_collection(conn, collection)
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
            require_collection(conn, collection)
            rows = conn.execute(sql, (collection, str(ids.tolist()))).fetchall()
        by_id = {row[0]: chunk_row(row, kinds) for row in rows}
        return [by_id[i] for i in ids.tolist() if i in by_id]

    def chunk_documents(self, collection: str, chunk_ids: Any) -> dict[int, str]:
        """Chunk id -> its document's id for ``chunk_ids`` (int64 (n,)); ids not in the collection are absent."""
        ids = as_chunk_ids(chunk_ids)
        sql = "SELECT chunk_id, doc_id FROM chunks WHERE collection = ? AND chunk_id IN "
        sql += "(SELECT value FROM json_each(?))"
        with self._db.read() as conn:
            require_collection(conn, collection)
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
            require_collection(conn, collection)
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
            require_collection(conn, collection)
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
            require_collection(conn, collection)
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
            require_collection(conn, collection)
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
            require_collection(conn, collection)
            rows = conn.execute(sql, (collection, collection, *params)).fetchall()
        return _ids(rows)

    def stats(self, collection: str) -> dict[str, int]:
        """Sizes computed in SQL: ``documents``, ``chunks`` and stored bytes ``dense_bytes``,
        ``multivector_bytes``, ``sparse_bytes`` (ids + weights), ``text_bytes`` (UTF-8 of document and chunk
        texts) and ``metadata_bytes``."""
        with self._db.read() as conn:
            require_collection(conn, collection)
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
