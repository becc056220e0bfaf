"""Row -> record decoding for the store's reads: which columns to select and how to turn them into ChunkRows."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from retrieval.errors import InvalidRequestError, StorageError
from retrieval.store.codecs import decode_dense, decode_multivector, decode_sparse
from retrieval.store.records import VECTOR_KINDS, ChunkRow, VectorKind

__all__ = ["as_chunk_ids", "check_vectors", "chunk_row", "chunk_select", "load_json"]

_BASE = (
    "c.chunk_id",
    "c.key",
    "c.doc_id",
    "c.position",
    "c.page",
    "c.char_start",
    "c.char_end",
    "c.text",
    "d.metadata",
    "d.source",
    "c.seq",
)
_VECTOR_COLUMNS: dict[str, tuple[str, ...]] = {
    "dense": ("c.dense",),
    "multivector": ("c.multivector", "c.mv_rows", "c.mv_dim"),
    "sparse": ("c.sparse_ids", "c.sparse_weights"),
}
_FROM = "FROM chunks c JOIN documents d ON d.collection = c.collection AND d.id = c.doc_id"


def check_vectors(vectors: Sequence[str]) -> tuple[VectorKind, ...]:
    """The requested vector kinds in storage order; an unknown name is an InvalidRequestError."""
    if isinstance(vectors, str) or any(v not in VECTOR_KINDS for v in vectors):
        raise InvalidRequestError(
            f"unknown vector kind in {vectors!r}", param="vectors", received=repr(vectors), allowed=list(VECTOR_KINDS)
        )
    return tuple(k for k in VECTOR_KINDS if k in vectors)


def chunk_select(vectors: tuple[VectorKind, ...]) -> str:
    """``SELECT <columns> FROM chunks c JOIN documents d ...``; append ``WHERE`` yourself."""
    columns = [*_BASE, *(col for kind in vectors for col in _VECTOR_COLUMNS[kind])]
    return f"SELECT {', '.join(columns)} {_FROM}"


def load_json(text: str, what: str) -> Any:
    """Parse JSON text stored by the store; a failure means a corrupt row."""
    try:
        return json.loads(text)
    except ValueError as e:
        raise StorageError(f"stored {what} is not valid JSON ({e})", received=text[:40]) from e


def _decode_vectors(row: sqlite3.Row | tuple[Any, ...], vectors: tuple[VectorKind, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    i = len(_BASE)
    for kind in vectors:
        if kind == "dense":
            out["dense"] = None if row[i] is None else decode_dense(row[i])
        elif kind == "multivector":
            out["multivector"] = None if row[i] is None else decode_multivector(row[i], row[i + 1], row[i + 2])
        else:
            out["sparse"] = None if row[i] is None else decode_sparse(row[i], row[i + 1])
        i += len(_VECTOR_COLUMNS[kind])
    return out


def chunk_row(row: tuple[Any, ...], vectors: tuple[VectorKind, ...]) -> ChunkRow:
    """One result row of :func:`chunk_select` as a :class:`ChunkRow` with the requested vectors decoded."""
    chunk_id, key, doc_id, position, page, start, end, text, metadata, source, seq = row[: len(_BASE)]
    return ChunkRow(
        chunk_id=chunk_id,
        key=key,
        doc_id=doc_id,
        position=position,
        page=page,
        char_start=start,
        char_end=end,
        text=text,
        metadata=load_json(metadata, f"metadata of `{doc_id}`"),
        source=source,
        seq=seq,
        **_decode_vectors(row, vectors),
    )


def as_chunk_ids(chunk_ids: Any) -> npt.NDArray[np.int64]:
    """``chunk_ids`` as a 1-D int64 array; anything else is an InvalidRequestError."""
    arr = np.asarray(chunk_ids)
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise InvalidRequestError(
            "chunk ids must be a 1-D integer array",
            param="chunk_ids",
            received=f"{arr.dtype} {arr.shape}",
            allowed="int64 (n,)",
        )
    return arr.astype(np.int64)
