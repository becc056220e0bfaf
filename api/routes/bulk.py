"""`POST /v1/collections/{name}/bulk`: load Parquet / JSONL / Arrow rows in large transactions.

Two bodies: JSON `{"path": ...}` names files under the server's `bulk_root` (admin keys only, when keys are
set); an Arrow IPC stream
(`Content-Type: application/vnd.apache.arrow.stream`, options in the query) is spooled to the data directory,
loaded, and removed. Answered once every batch is committed and indexed.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path
from typing import Any

import msgspec
from litestar import Request, post
from litestar.params import Parameter

from api.errors import WRITE_ERRORS, error_responses
from api.schemas.bulk import ARROW_STREAM, BulkRequest, BulkResponse, bulk_response
from api.scopes import Authorizer
from retrieval import ServiceConfig
from retrieval.common.access import Touch
from retrieval.errors import InvalidRequestError
from retrieval.service import RetrievalService

__all__ = ["bulk_load"]


def _request(raw: bytes) -> BulkRequest:
    try:
        return msgspec.json.decode(raw, type=BulkRequest)
    except msgspec.DecodeError as exc:
        raise InvalidRequestError(f"invalid bulk request: {exc}", param="body") from exc


async def _spool(request: Request[Any, Any, Any], folder: Path) -> Path:
    """The request body in a new file under `folder` (the body limit applies while it streams)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.arrows"
    with open(path, "wb") as f:
        async for chunk in request.stream():
            f.write(chunk)
    return path


@post(
    "/v1/collections/{name:str}/bulk",
    status_code=200,
    responses=error_responses(*WRITE_ERRORS, 409),
    summary="Bulk-load Parquet / JSONL / Arrow rows (server path under bulk_root, or an Arrow IPC stream body)",
    description="JSON body `{path, trust_vectors?, batch_documents?, id_column?, dense_column?}`, or an Arrow IPC "
    f"stream with `Content-Type: {ARROW_STREAM}` and the same options in the query.",
)
async def bulk_load(
    name: str,
    request: Request[Any, Any, Any],
    service: RetrievalService,
    config: ServiceConfig,
    authorizer: Authorizer,
    trust_vectors: bool = False,
    batch_documents: int = Parameter(default=10_000, ge=1),
    id_column: str | None = None,
    dense_column: str = "dense",
) -> BulkResponse:
    from retrieval.bulk import BulkOptions, open_inputs, open_stream_file
    from retrieval.bulk.source import bulk_root, path_under

    service.check_writable(name)  # unknown, being built, models not served: refused before the body is read
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == ARROW_STREAM:
        options = BulkOptions(batch_documents, trust_vectors, id_column, dense_column)
        spooled = await _spool(request, config.data_path / "bulk-uploads")
        try:
            inputs = await asyncio.to_thread(lambda: [open_stream_file(spooled, "request body")])
            return bulk_response(await service.bulk_load(name, inputs, options))
        finally:
            with contextlib.suppress(OSError):
                spooled.unlink()
    if kind not in ("application/json", ""):
        raise InvalidRequestError(
            f"send JSON or an Arrow IPC stream ({ARROW_STREAM}), not {kind}", param="content-type", received=kind
        )
    body = _request(await request.body())
    authorizer.check(Touch(body.path, "server_path"))  # the server's files: admin keys only
    options = BulkOptions(body.batch_documents, body.trust_vectors, body.id_column, body.dense_column)
    path = path_under(config.bulk_root, body.path)
    inputs = await asyncio.to_thread(open_inputs, [path], bulk_root(config.bulk_root))
    return bulk_response(await service.bulk_load(name, inputs, options))
