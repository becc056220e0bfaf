"""`GET /v1/collections/{name}/pages/{digest}/image` (PNG) and `/thumbnail` (JPEG): rendered PDF pages.

A page image is named by its sha256 digest (the URLs come with each page hit), so its bytes never change:
the answer may be cached for good. A digest that no document of the collection references is a 404.
"""

from __future__ import annotations

import asyncio

from litestar import Response, get

from api.errors import READ_ERRORS, error_responses
from retrieval.service import RetrievalService
from retrieval.store.page_files import PageFileKind

__all__ = ["get_page_image", "get_page_thumbnail"]

_PAGES = "/v1/collections/{name:str}/pages/{digest:str}"
_CACHE = {"Cache-Control": "private, max-age=31536000, immutable"}


async def _file(
    service: RetrievalService, name: str, digest: str, kind: PageFileKind, media_type: str
) -> Response[bytes]:
    data = await asyncio.to_thread(service.page_file, name, digest, kind)
    return Response(data, media_type=media_type, headers=_CACHE)


@get(f"{_PAGES}/image", responses=error_responses(*READ_ERRORS), summary="A rendered PDF page (PNG)")
async def get_page_image(name: str, digest: str, service: RetrievalService) -> Response[bytes]:
    return await _file(service, name, digest, "image", "image/png")


@get(f"{_PAGES}/thumbnail", responses=error_responses(*READ_ERRORS), summary="A rendered PDF page's thumbnail (JPEG)")
async def get_page_thumbnail(name: str, digest: str, service: RetrievalService) -> Response[bytes]:
    return await _file(service, name, digest, "thumbnail", "image/jpeg")
