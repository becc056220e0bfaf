"""`GET /v1/collections/{name}/export` streams a collection as a portable tar archive; `POST
/v1/collections/import?name=NEW` restores one (the archive is the request body) under a new name.

The export is read from one consistent snapshot of the store and of the collection's indexes (every write
acknowledged before the request is in it) into scratch files under the data directory, then streamed 1 MiB at a
time; the import is received to a scratch file, checked whole (checksums, spec, served models and their vector
widths) before anything is written, then written in one store transaction, its indexes adopted from the
archive's snapshots or built from the rows (`retrieval/transfer/`; the answer says which per index family).
Scratch files are removed when done, however the request ends (an error, a client gone before the first block).
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
from litestar import Request, get, post
from litestar.background_tasks import BackgroundTask
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType
from litestar.response import Stream

from api.errors import READ_ERRORS, WRITE_ERRORS, error_responses
from api.schemas.collections import ImportedCollection, collection_object
from api.scopes import Authorizer
from retrieval.common.access import Touch
from retrieval.service import RetrievalService
from retrieval.transfer import tar_stream

__all__ = ["export_collection", "import_collection"]

TAR = "application/x-tar"
_FLUSH = 1 << 20  # bytes of the request body gathered before one write to the scratch file


@dataclass
class _TarBody(Operation):
    """The import's OpenAPI operation: its request body is a tar archive (read as a stream, not decoded)."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={TAR: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY))},
            description="a collection archive written by `GET /v1/collections/{name}/export`",
            required=True,
        )


async def _remove(scratch: Path) -> None:
    await asyncio.to_thread(shutil.rmtree, scratch, True)


async def _blocks(chunks: Iterator[bytes], scratch: Path) -> AsyncIterator[bytes]:
    """`chunks` read off the event loop; the scratch folder goes when the stream ends, however it ends (the
    response's background task removes it too, for a stream cut off before its first block)."""
    try:
        while (block := await asyncio.to_thread(next, chunks, None)) is not None:
            yield block
    finally:
        await _remove(scratch)


def _attachment(name: str) -> str:
    """The Content-Disposition of collection `name`'s archive: a file name of letters, digits, `_`, `.`, `-`
    only (a name an older store accepted may hold a newline, which no header may carry).

    >>> _attachment("docs-v2"), _attachment("old\\n")
    ('attachment; filename="docs-v2.tar"', 'attachment; filename="old_.tar"')
    """
    return f'attachment; filename="{re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "collection"}.tar"'


@get(
    "/v1/collections/{name:str}/export",
    media_type=TAR,
    responses=error_responses(*READ_ERRORS, 503, 507),
    summary="Export a collection as a tar archive (documents, chunks, vectors, page images, index snapshots, manifest)",
)
async def export_collection(name: str, service: RetrievalService) -> Stream:
    scratch = service.transfer_scratch()
    try:
        members = await service.export_collection(name, scratch)
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, scratch, True)
        raise
    return Stream(
        _blocks(tar_stream(members), scratch),
        media_type=TAR,
        headers={"Content-Disposition": _attachment(name)},
        background=BackgroundTask(_remove, scratch),
    )


async def _receive(request: Request, path: Path) -> None:
    """Write the request body to `path` (the route's body size limit applies while it streams in)."""
    pending: list[bytes] = []
    size = 0
    with open(path, "wb") as out:
        async for chunk in request.stream():
            pending.append(chunk)
            size += len(chunk)
            if size >= _FLUSH:
                await asyncio.to_thread(out.write, b"".join(pending))
                pending, size = [], 0
        await asyncio.to_thread(out.write, b"".join(pending))


@post(
    "/v1/collections/import",
    status_code=201,
    responses=error_responses(*WRITE_ERRORS, 409),
    summary="Import a collection archive under a new name (checked whole before anything is written; says per index "
    "family whether it came from the archive's snapshot or was rebuilt)",
    operation_class=_TarBody,
)
async def import_collection(
    name: str,
    request: Request,
    service: RetrievalService,
    authorizer: Authorizer,
    shards: int | None = None,
) -> ImportedCollection:
    authorizer.check(Touch(name, "create"))
    scratch = service.transfer_scratch()
    try:
        await _receive(request, scratch / "upload.tar")
        info, origins = await asyncio.to_thread(
            service.import_collection, name, scratch / "upload.tar", scratch / "archive", shards
        )
    finally:
        await asyncio.to_thread(shutil.rmtree, scratch, True)
    indexes = {str(family): how for family, how in origins.items()}
    return ImportedCollection(**msgspec.structs.asdict(collection_object(info)), indexes=indexes)
