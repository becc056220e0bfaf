"""The two halves of a store write: validate and encode (pure, outside any lock), then apply in a transaction.

:func:`prepare` checks every :class:`DocumentRecord` and encodes its vectors with
:mod:`retrieval.store.codecs`; :func:`apply` runs inside :meth:`Database.write` and touches only the
connection it is given, so a failure anywhere leaves nothing behind.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from retrieval.errors import InvalidRequestError
from retrieval.store.codecs import encode_dense, encode_multivector, encode_sparse
from retrieval.store.records import ChunkRecord, DocumentRecord, WriteResult

__all__ = [
    "MAX_ID_BYTES",
    "PreparedDocument",
    "apply",
    "check_deletes",
    "check_document_id",
    "chunk_key",
    "encode_json",
    "prepare",
]

MAX_ID_BYTES = 512  # a document id's length in bytes of UTF-8 (every way in: REST, MCP, uploads, bulk, import)

_CHUNK_COLUMNS = (
    "collection, doc_id, key, position, char_start, char_end, page, text, seq, "
    "dense, multivector, mv_rows, mv_dim, sparse_ids, sparse_weights"
)
_INSERT_CHUNK = f"INSERT INTO chunks ({_CHUNK_COLUMNS}) VALUES ({', '.join('?' * 15)})"
_INSERT_CHUNK_AT = f"INSERT INTO chunks (chunk_id, {_CHUNK_COLUMNS}) VALUES ({', '.join('?' * 16)})"
_INSERT_DOC = (
    "INSERT INTO documents (collection, id, text, metadata, content_hash, source, page, seq) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True, slots=True)
class PreparedDocument:
    """A validated document with its chunks already encoded to column values."""

    record: DocumentRecord  # the document as given
    metadata_json: str  # metadata serialised as a JSON object
    chunks: tuple[tuple[Any, ...], ...]  # per chunk: (key, position, char_start, char_end, page, text, dense,
    #                                      multivector, mv_rows, mv_dim, sparse_ids, sparse_weights)
    dims: dict[str, int]  # vector width per kind used by this document ("dense", "multivector")


def chunk_key(doc_id: str, position: int, n_chunks: int) -> str:
    """The client-visible id of a chunk: the document id alone when it is the only chunk.

    >>> chunk_key("a", 0, 1), chunk_key("a", 2, 3)
    ('a', 'a#2')
    """
    return doc_id if n_chunks == 1 else f"{doc_id}#{position}"


def encode_json(value: Any, param: str) -> str:
    """``value`` (a dict) as strict JSON text; anything else, NaN included, is an InvalidRequestError."""
    if not isinstance(value, dict):
        raise InvalidRequestError(
            f"{param} must be a JSON object", param=param, received=type(value).__name__, allowed="object"
        )
    if not value:
        return "{}"  # the common case (no metadata) without building a JSON encoder per document
    try:
        return json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise InvalidRequestError(
            f"{param} is not JSON-serialisable ({e})", param=param, received="non-JSON value", allowed="JSON object"
        ) from e


def _bad(message: str, param: str, received: object, allowed: object) -> InvalidRequestError:
    return InvalidRequestError(message, param=param, received=received, allowed=allowed)


def _check_chunk(doc: DocumentRecord, chunk: object) -> ChunkRecord:
    if not isinstance(chunk, ChunkRecord):
        raise _bad(f"document `{doc.id}`: chunks must be ChunkRecord", "chunks", type(chunk).__name__, "ChunkRecord")
    if not isinstance(chunk.text, str) or not isinstance(chunk.position, int) or chunk.position < 0:
        raise _bad(
            f"document `{doc.id}`: chunk needs str text and a position >= 0",
            "chunks.position",
            chunk.position,
            "integer >= 0",
        )
    if not 0 <= chunk.char_start <= chunk.char_end <= len(doc.text):
        raise _bad(
            f"document `{doc.id}` chunk {chunk.position}: char range outside the text",
            "chunks.char_start",
            (chunk.char_start, chunk.char_end),
            f"0 <= start <= end <= {len(doc.text)}",
        )
    return chunk


def _encode_chunk(doc: DocumentRecord, chunk: ChunkRecord, dims: dict[str, int]) -> tuple[Any, ...]:
    where = f" (document `{doc.id}`, chunk {chunk.position})"
    dense = mv = ids = weights = None
    rows = width = None
    try:
        if chunk.dense is not None:
            dense = encode_dense(chunk.dense)
            _same_dim(dims, "dense", len(dense) // 4)
        if chunk.multivector is not None:
            mv, rows, width = encode_multivector(chunk.multivector)
            _same_dim(dims, "multivector", width)
        if chunk.sparse is not None:
            ids, weights = encode_sparse(chunk.sparse)
    except InvalidRequestError as e:
        raise InvalidRequestError(e.message + where, param=e.param, received=e.received, allowed=e.allowed) from e
    key = chunk_key(doc.id, chunk.position, len(doc.chunks))
    return (
        key,
        chunk.position,
        chunk.char_start,
        chunk.char_end,
        chunk.page,
        chunk.text,
        dense,
        mv,
        rows,
        width,
        ids,
        weights,
    )


def _same_dim(dims: dict[str, int], kind: str, dim: int) -> None:
    if dims.setdefault(kind, dim) != dim:
        raise _bad(f"vectors.{kind} widths differ within one write", f"vectors.{kind}", dim, dims[kind])


def check_document_id(doc_id: object, param: str = "id") -> str:
    """`doc_id` itself when it is a non-empty string of at most `MAX_ID_BYTES` bytes of UTF-8, else
    InvalidRequestError naming `param`.

    >>> check_document_id("a" * 512) == "a" * 512
    True
    >>> check_document_id("é" * 257)
    Traceback (most recent call last):
    ...
    retrieval.errors.InvalidRequestError: a document id may be at most 512 bytes of UTF-8; this one is 514 bytes
    """
    if not isinstance(doc_id, str) or not doc_id:
        raise _bad("a document id must be a non-empty string", param, repr(doc_id)[:40], "non-empty string")
    size = len(doc_id.encode("utf-8", "surrogatepass"))
    if size > MAX_ID_BYTES:
        raise _bad(
            f"a document id may be at most {MAX_ID_BYTES} bytes of UTF-8; this one is {size} bytes",
            param,
            f"{doc_id[:40]}... ({size} bytes)",
            f"<= {MAX_ID_BYTES} bytes",
        )
    return doc_id


def _prepare_one(doc: object) -> PreparedDocument:
    if not isinstance(doc, DocumentRecord):
        raise _bad("upserts must be DocumentRecord", "documents", type(doc).__name__, "DocumentRecord")
    check_document_id(doc.id)
    if not isinstance(doc.text, str) or not isinstance(doc.content_hash, str):
        raise _bad(
            f"document `{doc.id}`: text and content_hash must be strings", "text", type(doc.text).__name__, "string"
        )
    chunks = [_check_chunk(doc, c) for c in doc.chunks]
    if len({c.position for c in chunks}) != len(chunks):
        raise _bad(
            f"document `{doc.id}`: chunk positions repeat",
            "chunks.position",
            sorted(c.position for c in chunks),
            "distinct positions",
        )
    dims: dict[str, int] = {}
    encoded = tuple(_encode_chunk(doc, c, dims) for c in chunks)
    return PreparedDocument(doc, encode_json(doc.metadata, "metadata"), encoded, dims)


def prepare(upserts: Sequence[DocumentRecord], deletes: Sequence[str]) -> list[PreparedDocument]:
    """Validate and encode ``upserts`` (and check they share no id with ``deletes`` or each other)."""
    prepared = [_prepare_one(doc) for doc in upserts]
    ids = [p.record.id for p in prepared]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise _bad(f"document `{dup}` appears twice in one write", "id", dup, "distinct ids")
    both = set(ids) & set(deletes)
    if both:
        raise _bad(f"document `{min(both)}` is both upserted and deleted", "id", min(both), "one action per id")
    for kind in ("dense", "multivector"):
        widths = {p.dims[kind] for p in prepared if kind in p.dims}
        if len(widths) > 1:
            raise _bad(f"vectors.{kind} widths differ within one write", f"vectors.{kind}", sorted(widths), "one width")
    return prepared


def check_deletes(deletes: Sequence[str]) -> list[str]:
    """``deletes`` as a list of strings, or InvalidRequestError."""
    if isinstance(deletes, str) or not all(isinstance(d, str) for d in deletes):
        raise _bad("deletes must be a sequence of document ids", "deletes", type(deletes).__name__, "list of str")
    return list(deletes)


def _check_dims(conn: sqlite3.Connection, collection: str, prepared: list[PreparedDocument]) -> None:
    pinned = dict(conn.execute("SELECT kind, dim FROM vector_dims WHERE collection = ?", (collection,)).fetchall())
    for p in prepared:
        for kind, dim in p.dims.items():
            if kind not in pinned:
                conn.execute("INSERT INTO vector_dims VALUES (?, ?, ?)", (collection, kind, dim))
                pinned[kind] = dim
            elif pinned[kind] != dim:
                raise _bad(
                    f"vectors.{kind} of document `{p.record.id}` has width {dim}; collection `{collection}` "
                    f"stores width {pinned[kind]}",
                    f"vectors.{kind}",
                    dim,
                    pinned[kind],
                )


def _remove_document(conn: sqlite3.Connection, collection: str, doc_id: str, seq: int) -> list[int]:
    """Delete a document and its chunks, logging the chunk ids in ``removals``; [] when it does not exist."""
    rows = conn.execute("SELECT chunk_id FROM chunks WHERE collection = ? AND doc_id = ?", (collection, doc_id))
    removed = [r[0] for r in rows.fetchall()]
    conn.executemany(
        "INSERT INTO removals (chunk_id, collection, seq) VALUES (?, ?, ?)", [(c, collection, seq) for c in removed]
    )
    conn.execute("DELETE FROM chunks WHERE collection = ? AND doc_id = ?", (collection, doc_id))
    conn.execute("DELETE FROM documents WHERE collection = ? AND id = ?", (collection, doc_id))
    return removed


def _last_chunk_id(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'chunks'").fetchone()
    return int(row[0]) if row else 0


def _collision(conn: sqlite3.Connection, collection: str, rows: list[tuple[Any, ...]]) -> InvalidRequestError:
    """The chunk key of `rows` that another document holds (what made the insert fail)."""
    for row in rows:
        owner = conn.execute(
            "SELECT doc_id FROM chunks WHERE collection = ? AND key = ? AND doc_id != ?", (collection, row[2], row[1])
        ).fetchone()
        if owner is not None:
            break
    else:
        row, owner = rows[0], ("?",)
    return _bad(
        f"chunk key `{row[2]}` of document `{row[1]}` is already used by document `{owner[0]}`",
        "id",
        row[2],
        "document ids whose chunk keys (id or id#position) do not collide",
    )


def _insert_documents(
    conn: sqlite3.Connection,
    collection: str,
    docs: list[PreparedDocument],
    seq: int,
    first_ids: Mapping[str, int] | None = None,
) -> list[int]:
    """Insert documents and their chunks with one statement each (executemany); the new chunk ids in order.

    Chunk ids come from AUTOINCREMENT under the write lock: one statement's rows take the consecutive ids
    after the largest ever given (`sqlite_sequence`), so they are known without reading them back. With
    `first_ids` (a shard's write: doc id -> the id of its first chunk, handed out by the coordinator so ids
    follow the collection's write order across shards), chunk i of a document gets `first + i`.
    """
    if not docs:
        return []
    conn.executemany(
        _INSERT_DOC,
        [
            (
                collection,
                p.record.id,
                p.record.text,
                p.metadata_json,
                p.record.content_hash,
                p.record.source,
                p.record.page,
                seq,
            )
            for p in docs
        ],
    )
    images = [(collection, p.record.id, p.record.image) for p in docs if p.record.image is not None]
    conn.executemany(
        "INSERT INTO pages (collection, doc_id, digest, width, height) VALUES (?, ?, ?, ?, ?)",
        [(c, d, i.digest, i.width, i.height) for c, d, i in images],
    )
    rows = [(collection, p.record.id, *c[:6], seq, *c[6:]) for p in docs for c in p.chunks]
    if first_ids is not None:
        ids = [first_ids[p.record.id] + i for p in docs for i in range(len(p.chunks))]
        try:
            conn.executemany(_INSERT_CHUNK_AT, [(i, *r) for i, r in zip(ids, rows, strict=True)])
        except sqlite3.IntegrityError as e:
            raise _collision(conn, collection, rows) from e
        return ids
    first = _last_chunk_id(conn) + 1
    try:
        conn.executemany(_INSERT_CHUNK, rows)
    except sqlite3.IntegrityError as e:  # the only constraint a validated chunk can break: UNIQUE key
        raise _collision(conn, collection, rows) from e
    return list(range(first, first + len(rows)))


def _stored_hashes(conn: sqlite3.Connection, collection: str, ids: list[str]) -> dict[str, str]:
    sql = "SELECT id, content_hash FROM documents WHERE collection = ? AND id IN (SELECT value FROM json_each(?))"
    return dict(conn.execute(sql, (collection, json.dumps(ids))).fetchall())


def apply(
    conn: sqlite3.Connection,
    collection: str,
    seq: int,
    prepared: list[PreparedDocument],
    deletes: list[str],
    skip_unchanged: bool,
    first_ids: Mapping[str, int] | None = None,
) -> WriteResult:
    """Apply one write inside an open transaction; every row written carries ``seq``."""
    _check_dims(conn, collection, prepared)
    stored = _stored_hashes(conn, collection, [p.record.id for p in prepared])
    removed: list[int] = []
    skipped: list[str] = []
    fresh: list[PreparedDocument] = []
    for p in prepared:
        doc_id = p.record.id
        if skip_unchanged and stored.get(doc_id) == p.record.content_hash:
            skipped.append(doc_id)
            continue
        if doc_id in stored:
            removed += _remove_document(conn, collection, doc_id, seq)
        fresh.append(p)
    added = _insert_documents(conn, collection, fresh, seq, first_ids)
    for doc_id in deletes:
        removed += _remove_document(conn, collection, doc_id, seq)
    return WriteResult(seq, np.array(added, np.int64), np.array(removed, np.int64), skipped)
