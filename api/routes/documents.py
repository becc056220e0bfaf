"""`/v1/collections/{name}/documents` (JSON upsert, get, delete) and `/files` (multipart upload, large ones as jobs)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from litestar import Response, delete, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body

from api.errors import READ_ERRORS, WRITE_ERRORS, error_responses
from api.jobs import JobManager
from api.schemas.documents import (
    DeletedDocument,
    DeletedDocuments,
    DeleteDocuments,
    DocumentObject,
    IngestDocuments,
    IngestResponse,
    JobCreated,
    UploadResponse,
    chunk_object,
    document_object,
    ingest_response,
    upload_response,
)
from retrieval import ServiceConfig
from retrieval.common.json_depth import check_json_depth
from retrieval.errors import DocumentNotFoundError, InvalidRequestError
from retrieval.evaluation.tune.tuner import TuneReport
from retrieval.ingest.uploads import UploadedFile, UploadResult
from retrieval.service import RetrievalService

__all__ = ["delete_document", "delete_documents", "get_document", "ingest_documents", "upload_files"]

_DOCS = "/v1/collections/{name:str}/documents"


@post(
    _DOCS,
    status_code=200,
    responses=error_responses(*WRITE_ERRORS),
    summary="Upsert documents (answered once durable and searchable)",
)
async def ingest_documents(
    name: str, data: IngestDocuments, service: RetrievalService, config: ServiceConfig
) -> IngestResponse:
    docs = data.to_sources(config.max_documents_per_request)
    return ingest_response(await service.add_documents(name, docs))


@post(f"{_DOCS}/delete", status_code=200, responses=error_responses(*WRITE_ERRORS), summary="Delete documents by id")
async def delete_documents(
    name: str, data: DeleteDocuments, service: RetrievalService, config: ServiceConfig
) -> DeletedDocuments:
    ids = data.checked(config.max_documents_per_request)
    return DeletedDocuments(len(set(ids)), await service.delete_documents(name, ids))


@get(
    f"{_DOCS}/{{doc_id:path}}",
    responses=error_responses(*READ_ERRORS),
    summary="A document, or one chunk by its `<doc>#<position>` id",
)
async def get_document(name: str, doc_id: str, service: RetrievalService) -> DocumentObject:
    doc_id = doc_id.lstrip("/")
    try:
        return document_object(service.get_document(name, doc_id))
    except DocumentNotFoundError:
        if "#" not in doc_id:
            raise
    return chunk_object(service.get_chunk(name, doc_id))


@delete(
    f"{_DOCS}/{{doc_id:path}}",
    status_code=200,
    responses=error_responses(400, 401, 403, 404, 500, 503, 507),
    summary="Delete one document",
)
async def delete_document(name: str, doc_id: str, service: RetrievalService) -> DeletedDocument:
    doc_id = doc_id.lstrip("/")
    if await service.delete_documents(name, [doc_id]) == 0:
        raise DocumentNotFoundError(name, doc_id)
    return DeletedDocument(doc_id)


def _form_metadata(raw: object) -> dict[str, Any]:
    if raw is None:
        return {}
    if isinstance(raw, str):
        check_json_depth(raw.encode("utf-8", "surrogatepass"), param="metadata", what="Form field `metadata`")
    try:
        value = json.loads(raw) if isinstance(raw, str) else None
    except ValueError as exc:
        raise InvalidRequestError(f"form field `metadata` is not JSON: {exc}", param="metadata") from exc
    if not isinstance(value, dict):
        raise InvalidRequestError("form field `metadata` must be a JSON object", param="metadata")
    return value


async def _files(form: dict[str, Any]) -> list[UploadedFile]:
    out = []
    for value in form.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, UploadFile):
                out.append(UploadedFile(item.filename or "upload", await item.read()))
    return out


@post(
    "/v1/collections/{name:str}/files",
    status_code=200,
    responses=error_responses(*WRITE_ERRORS),
    summary="Upload files (text, Markdown, PDF); large uploads run as a job",
)
async def upload_files(
    name: str,
    data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)],
    service: RetrievalService,
    jobs: JobManager[UploadResult | TuneReport],
    config: ServiceConfig,
) -> Response[UploadResponse | JobCreated]:
    service.check_writable(name)  # unknown, being built, models not served: refused now, not by a job later
    files, metadata = await _files(data), _form_metadata(data.get("metadata"))
    if sum(len(f.data) for f in files) <= config.sync_upload_bytes:
        return Response(upload_response(await service.add_files(name, files, metadata)))
    job = jobs.submit(
        lambda progress: service.add_files(name, files, metadata, progress), collection=service.resolve(name)
    )
    return Response(JobCreated(job.id), status_code=202)
