"""`POST /rerank`, `/v1/rerank` (Jina-compatible) and `/v2/rerank` (Cohere-compatible)."""

from __future__ import annotations

import logging

from litestar import Request, post

from api.cancel import until_disconnect
from api.errors import ENCODE_ERRORS, error_responses
from api.schemas.score import RerankRequest, RerankResponse, plain, rerank_response
from retrieval import ModelRegistry
from retrieval.models.serving.scoring import rerank

__all__ = ["create_rerank"]

log = logging.getLogger(__name__)


@post(
    ["/rerank", "/v1/rerank", "/v2/rerank"],
    status_code=200,
    summary="Rerank documents (Jina / Cohere)",
    responses=error_responses(*ENCODE_ERRORS),
)
async def create_rerank(request: Request, data: RerankRequest, registry: ModelRegistry) -> RerankResponse:
    if request.url.path.startswith("/v1/"):
        log.info("/v1/rerank conforms to the Jina AI rerank API")
    engine = registry.get(data.model)
    work = rerank(engine, plain(data.query, "query"), plain(data.documents), data.top_n, data.score_options())  # type: ignore[arg-type]
    done = await until_disconnect(request, work)
    return rerank_response(engine.name, done.ranked, done.prompt_tokens, data)
