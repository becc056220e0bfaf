"""`POST /score` (and the deprecated alias `/v1/score`)."""

from __future__ import annotations

import logging

from litestar import Request, post

from api.cancel import until_disconnect
from api.errors import ENCODE_ERRORS, error_responses
from api.schemas.score import ScoreRequest, ScoreResponse, score_response
from retrieval import ModelRegistry
from retrieval.models.serving.scoring import score

__all__ = ["create_score"]

log = logging.getLogger(__name__)


@post(
    ["/score", "/v1/score"],
    status_code=200,
    summary="Score pairs (vLLM compatible)",
    responses=error_responses(*ENCODE_ERRORS),
)
async def create_score(request: Request, data: ScoreRequest, registry: ModelRegistry) -> ScoreResponse:
    if request.url.path.startswith("/v1/"):
        log.warning("/v1/score is deprecated; use /score")
    engine = registry.get(data.model)
    queries, documents = data.sides()
    result = await until_disconnect(request, score(engine, queries, documents, data.score_options()))
    return score_response(engine.name, result, data.request_id)
