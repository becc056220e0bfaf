"""The values that cross the store's boundary: what a caller writes and what reads return.

Vectors travel as numpy arrays with stated dtypes and shapes; the byte layout on disk is
:mod:`retrieval.store.codecs`' business. Types holding arrays compare by identity (``eq=False``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "VECTOR_KINDS",
    "ChunkRecord",
    "ChunkRow",
    "CollectionRow",
    "DocumentRecord",
    "DocumentRow",
    "PageImage",
    "SparseVector",
    "VectorKind",
    "WriteResult",
]

VectorKind = Literal["dense", "multivector", "sparse"]
"""A stored representation of a chunk; the names also select which vectors a read decodes."""

VECTOR_KINDS: tuple[VectorKind, ...] = ("dense", "multivector", "sparse")
"""Every :data:`VectorKind`, in storage order."""

SparseVector = dict[int, float]
"""One sparse vector: vocabulary token id -> weight."""

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False, slots=True)
class ChunkRecord:
    """One searchable piece of a document, as written; every vector is optional."""

    text: str  # the chunk's text (a slice of the document text, or "" for an image-only page)
    position: int  # 0-based order of the chunk inside its document; unique per document
    char_start: int  # offset of the chunk's first character in the document text
    char_end: int  # offset one past its last character (char_start <= char_end <= len(document text))
    page: int | None = None  # 1-based PDF page the chunk comes from, None for non-paged sources
    dense: npt.NDArray[Any] | None = None  # float32 (d,); other real dtypes are converted
    multivector: npt.NDArray[Any] | None = None  # float32 or float16 (m, d), stored as float16
    sparse: SparseVector | None = None  # {token_id: weight}, ids in [0, 2**31)


@dataclass(frozen=True, slots=True)
class PageImage:
    """The stored rendering of a PDF page document (the files live under ``<data_dir>/pages``)."""

    digest: str  # sha256 hex of the PNG; names the image and its thumbnail
    width: int  # image width in pixels
    height: int  # image height in pixels


@dataclass(frozen=True, eq=False, slots=True)
class DocumentRecord:
    """A document to upsert: its full text, metadata and the chunks that replace any previous ones."""

    id: str  # caller-visible document id, unique within the collection
    text: str  # the full text of the document
    metadata: dict[str, Any]  # JSON object; filters run over it
    content_hash: str  # digest of whatever determines the chunks (text, vectors, models); skips no-op upserts
    source: str | None = None  # original file name, None for JSON-posted documents
    page: int | None = None  # page number when the document is one page of a file
    chunks: tuple[ChunkRecord, ...] = ()  # the document's chunks; positions must be distinct
    image: PageImage | None = None  # the page's rendered image (files written before the commit), if any


@dataclass(frozen=True, eq=False, slots=True)
class ChunkRow:
    """One stored chunk as reads return it; vectors are None unless requested (or when not stored)."""

    chunk_id: int  # int64 id given to the indexes; never reused
    key: str  # id shown to clients: doc_id for a one-chunk document, else f"{doc_id}#{position}"
    doc_id: str  # id of the parent document
    position: int  # 0-based order inside the document
    page: int | None  # page number, None for non-paged sources
    char_start: int  # offset of the first character in the document text
    char_end: int  # offset one past the last character
    text: str  # the chunk's text
    metadata: dict[str, Any]  # metadata of the parent document
    source: str | None  # file name of the parent document
    seq: int  # sequence number of the write that stored the chunk
    dense: F32 | None = None  # float32 (d,) when requested and stored
    multivector: F32 | None = None  # float32 (m, d) (decoded from float16) when requested and stored
    sparse: SparseVector | None = None  # {token_id: weight} when requested and stored


@dataclass(frozen=True, slots=True)
class DocumentRow:
    """One stored document with the keys of its chunks."""

    id: str  # document id
    text: str  # full text
    metadata: dict[str, Any]  # JSON object
    content_hash: str  # digest stored at write time
    source: str | None  # file name, None for JSON-posted documents
    page: int | None  # page number when the document is one page of a file
    seq: int  # sequence number of the write that stored it
    chunk_keys: tuple[str, ...]  # keys of its chunks, by position


@dataclass(frozen=True, slots=True)
class CollectionRow:
    """A collection with its configuration and current sizes."""

    name: str  # collection name
    config: dict[str, Any]  # JSON configuration given at creation (models, chunking, index options)
    documents: int  # number of live documents
    chunks: int  # number of live chunks
    created_at: float = 0.0  # creation time, seconds since the epoch
    dims: dict[str, int] = field(default_factory=dict)  # pinned vector width per kind ("dense", "multivector")


@dataclass(frozen=True, eq=False, slots=True)
class WriteResult:
    """What one committed :meth:`~retrieval.store.store.Store.write` changed."""

    seq: int  # sequence number of the transaction; every row it wrote carries it
    added: I64 = field(default_factory=lambda: np.zeros(0, np.int64))  # int64 (n_added,) new chunk ids
    removed: I64 = field(default_factory=lambda: np.zeros(0, np.int64))  # int64 (n_removed,) chunk ids removed
    skipped: list[str] = field(default_factory=list)  # upserted doc ids left unchanged (same content_hash)
