"""The SQLite document store: the source of truth the indexes are derived from and replay by sequence number
(`Store`, its reads in `lookups`), the aliases and reindex job tables, page image files, and consistent
backups of a data directory (`backup`).

May import: `retrieval.common`, `retrieval.errors` only."""

from retrieval.store.codecs import (
    decode_dense,
    decode_multivector,
    decode_sparse,
    encode_dense,
    encode_multivector,
    encode_sparse,
)
from retrieval.store.db import SCHEMA_VERSION, Database
from retrieval.store.records import (
    VECTOR_KINDS,
    ChunkRecord,
    ChunkRow,
    CollectionRow,
    DocumentRecord,
    DocumentRow,
    PageImage,
    SparseVector,
    VectorKind,
    WriteResult,
)
from retrieval.store.store import Store
from retrieval.store.writes import MAX_ID_BYTES, check_document_id, chunk_key

__all__ = [
    "MAX_ID_BYTES",
    "SCHEMA_VERSION",
    "VECTOR_KINDS",
    "ChunkRecord",
    "ChunkRow",
    "CollectionRow",
    "Database",
    "DocumentRecord",
    "DocumentRow",
    "PageImage",
    "SparseVector",
    "Store",
    "VectorKind",
    "WriteResult",
    "check_document_id",
    "chunk_key",
    "decode_dense",
    "decode_multivector",
    "decode_sparse",
    "encode_dense",
    "encode_multivector",
    "encode_sparse",
]
