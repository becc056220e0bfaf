"""`POST /v1/collections/{name}/search` and `/evaluate`."""

from __future__ import annotations

from litestar import post

from api.errors import QUERY_ERRORS, error_responses
from api.schemas.search import (
    EvalResponse,
    EvaluateRequest,
    SearchLimits,
    SearchRequest,
    SearchResponse,
    eval_response,
    search_response,
)
from retrieval import ServiceConfig
from retrieval.service import RetrievalService

__all__ = ["evaluate_collection", "search_collection"]


def _limits(config: ServiceConfig) -> SearchLimits:
    return SearchLimits(max_top_k=config.max_top_k, max_query_chars=config.max_query_chars)


@post(
    "/v1/collections/{name:str}/search",
    status_code=200,
    responses=error_responses(*QUERY_ERRORS),
    summary="Search a collection",
)
async def search_collection(
    name: str, data: SearchRequest, service: RetrievalService, config: ServiceConfig
) -> SearchResponse:
    plan = data.to_plan(service.spec(name), _limits(config))
    hits, answered = await service.search_shards(name, plan)
    return search_response(hits, plan.mode, name, answered, service.spec(name).shards)


@post(
    "/v1/collections/{name:str}/evaluate",
    status_code=200,
    responses=error_responses(*QUERY_ERRORS),
    summary="nDCG@10, recall@100, MRR@10 per mode and fusion",
)
async def evaluate_collection(
    name: str, data: EvaluateRequest, service: RetrievalService, config: ServiceConfig
) -> EvalResponse:
    req = data.to_request(_limits(config))
    return eval_response(await service.evaluate(name, req), req)
