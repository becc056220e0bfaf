"""`/v1/collections/{name}/documents` and `/files` bodies: JSON ingest, delete by ids, one document, uploads."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from retrieval.errors import LimitExceededError
from retrieval.ingest.documents import SourceDocument
from retrieval.ingest.uploads import UploadResult
from retrieval.service import IngestResult
from retrieval.store import ChunkRow, DocumentRow

__all__ = [
    "DeleteDocuments",
    "DeletedDocument",
    "DeletedDocuments",
    "DocumentIn",
    "DocumentObject",
    "FileOutcome",
    "IngestDocuments",
    "IngestResponse",
    "JobCreated",
    "UploadResponse",
    "chunk_object",
    "document_object",
    "ingest_response",
    "upload_response",
]


class DocumentIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One document to upsert."""

    text: str  # the full text (split into chunks, or truncated, as the collection says)
    id: str | None = None  # document id; absent = a new uuid4 hex; an existing id is replaced
    metadata: dict[str, Any] = {}  # JSON object kept with the document; filters run over it
    vectors: dict[str, Any] | None = None  # client vectors: {"dense": [...], "sparse": {id: w}, "multivector": [[...]]}
    source: str | None = None  # the file the document came from (returned with hits, for citations)
    page: int | None = None  # 1-based page of that file, when the document is one page

    def to_source(self) -> SourceDocument:
        return SourceDocument(
            id=self.id or uuid.uuid4().hex,
            text=self.text,
            metadata=dict(self.metadata),
            source=self.source,
            page=self.page,
            vectors=self.vectors,
        )


class IngestDocuments(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/collections/{name}/documents`."""

    documents: list[DocumentIn]  # at most `max_documents_per_request`

    def to_sources(self, max_documents: int) -> list[SourceDocument]:
        """The domain documents; over the per-request limit is a 400 naming it."""
        if len(self.documents) > max_documents:
            raise LimitExceededError("The number of documents", len(self.documents), max_documents, param="documents")
        return [d.to_source() for d in self.documents]


class IngestResponse(msgspec.Struct, frozen=True):
    """Answered once the write is durable and searchable."""

    ids: list[str]  # ids written (new or replaced)
    skipped: list[str]  # ids whose content was unchanged (not re-encoded)
    truncated: list[str]  # ids cut at the model's limit (truncate mode, client vectors)
    chunks: int  # chunks written


def ingest_response(result: IngestResult) -> IngestResponse:
    return IngestResponse(list(result.ids), list(result.skipped), list(result.truncated), result.chunks)


class DeleteDocuments(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/collections/{name}/documents/delete`."""

    ids: list[str]  # document ids; unknown ids are ignored

    def checked(self, max_documents: int) -> list[str]:
        if len(self.ids) > max_documents:
            raise LimitExceededError("The number of ids", len(self.ids), max_documents, param="ids")
        return list(self.ids)


class DeletedDocuments(msgspec.Struct, frozen=True):
    deleted: int  # ids named (unknown ids are ignored)
    chunks: int  # chunks removed


class DeletedDocument(msgspec.Struct, frozen=True):
    id: str  # the deleted document's id
    deleted: bool = True  # always true (an unknown id is a 404)


class DocumentObject(msgspec.Struct, frozen=True, omit_defaults=True):
    """A stored document (or one chunk of it, when asked by chunk id)."""

    id: str  # the id asked for
    text: str  # the document's full text, or the chunk's
    metadata: dict[str, Any]  # the document's metadata
    parent_id: str | None = None  # the document, when `id` is a chunk id
    page: int | None = None  # PDF page
    source: str | None = None  # the file it came from
    chunks: list[str] = []  # the document's chunk ids, by position (empty for a chunk)


def document_object(row: DocumentRow) -> DocumentObject:
    return DocumentObject(row.id, row.text, row.metadata, None, row.page, row.source, list(row.chunk_keys))


def chunk_object(row: ChunkRow) -> DocumentObject:
    return DocumentObject(row.key, row.text, row.metadata, row.doc_id, row.page, row.source)


class FileOutcome(msgspec.Struct, frozen=True):
    name: str  # the uploaded file's name
    documents: int  # documents it yielded (pages for a PDF)
    error: str | None  # why it could not be read; null on success


class UploadResponse(msgspec.Struct, frozen=True):
    """A small upload's answer (and a finished upload job's `result`)."""

    ids: list[str]  # document ids written (new or replaced)
    skipped: list[str]  # ids whose content was unchanged
    files: list[FileOutcome]  # one per uploaded file, in upload order


def upload_response(result: UploadResult) -> UploadResponse:
    files = [FileOutcome(f.name, f.documents, f.error) for f in result.files]
    return UploadResponse(list(result.ids), list(result.skipped), files)


class JobCreated(msgspec.Struct, frozen=True):
    """A large upload's answer (202): poll `GET /v1/jobs/{job}`."""

    job: str  # the job id
