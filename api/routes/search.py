"""`POST /v1/collections/{name}/search` and `/evaluate` (JSON, or by `Accept` the table or the bar chart)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, post

from api.errors import QUERY_ERRORS, error_responses
from api.reports import JSON, ReportOperation, eval_report, report_form
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
from retrieval.evaluation.reports import eval_title
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
    answer, answered = await service.search_shards(name, plan)
    return search_response(answer, name, answered, service.spec(name).shards)


@post(
    "/v1/collections/{name:str}/evaluate",
    status_code=200,
    responses=error_responses(*QUERY_ERRORS),
    summary="nDCG@10, recall@100, MRR@10 per mode and fusion (JSON, or the table or bar chart by Accept)",
    operation_class=ReportOperation,
)
async def evaluate_collection(
    name: str, data: EvaluateRequest, service: RetrievalService, config: ServiceConfig, request: Request[Any, Any, Any]
) -> Response[EvalResponse]:
    form = report_form(request)
    req = data.to_request(_limits(config))
    rows = await service.evaluate(name, req)
    answer = eval_response(rows, req, await service.evaluation_warnings(name, req.qrels))
    if form == JSON:
        return Response(answer)
    table = [msgspec.to_builtins(r) for r in answer.data]
    return await eval_report(form, table, eval_title(name, answer.queries), answer.warnings)
