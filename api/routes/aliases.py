"""`/v1/aliases`: list aliases, and change them atomically (Qdrant's actions: create, delete, rename)."""

from __future__ import annotations

import asyncio

from litestar import get, post

from api.errors import error_responses
from api.schemas.aliases import AliasList, ChangeAliases, alias_list
from retrieval.service import RetrievalService

__all__ = ["change_aliases", "list_aliases"]


@get("/v1/aliases", responses=error_responses(401, 500), summary="List aliases")
async def list_aliases(service: RetrievalService) -> AliasList:
    return alias_list(service.alias_pairs())


@post(
    "/v1/aliases",
    status_code=200,
    responses=error_responses(400, 401, 403, 404, 409, 500, 503, 507),
    summary="Create, delete and rename aliases, all actions in one transaction",
)
async def change_aliases(data: ChangeAliases, service: RetrievalService) -> AliasList:
    actions = data.to_actions()
    return alias_list(await asyncio.to_thread(service.change_aliases, actions))
