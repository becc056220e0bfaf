"""`/v1/collections`: create, list, get and delete collections."""

from __future__ import annotations

from litestar import delete, get, patch, post

from api.errors import READ_ERRORS, error_responses
from api.schemas.collections import (
    CollectionDeleted,
    CollectionList,
    CollectionObject,
    CreateCollection,
    UpdateCollection,
    collection_object,
)
from api.scopes import Authorizer
from retrieval.common.access import Grant, Touch
from retrieval.service import RetrievalService

__all__ = ["create_collection", "delete_collection", "get_collection", "list_collections", "update_collection"]


@post(
    "/v1/collections",
    status_code=201,
    responses=error_responses(400, 401, 403, 404, 409, 413, 500, 503, 507),
    summary="Create a collection",
)
async def create_collection(
    data: CreateCollection, service: RetrievalService, authorizer: Authorizer
) -> CollectionObject:
    authorizer.check(Touch(data.name, "create"))
    return collection_object(await service.create_collection(service.new_spec(data.fields())))


@get("/v1/collections", responses=error_responses(401, 500), summary="List collections")
async def list_collections(service: RetrievalService, grant: Grant) -> CollectionList:
    return CollectionList([collection_object(c) for c in service.collections() if grant.allows(c.spec.name, "read")])


@get("/v1/collections/{name:str}", responses=error_responses(*READ_ERRORS), summary="A collection with its sizes")
async def get_collection(name: str, service: RetrievalService) -> CollectionObject:
    return collection_object(service.collection(name))


@patch(
    "/v1/collections/{name:str}",
    status_code=200,
    responses=error_responses(400, 401, 403, 404, 500, 503, 507),
    summary="Change a collection's search defaults (fusion, reranker, candidates, rerank depth) without reindexing",
)
async def update_collection(name: str, data: UpdateCollection, service: RetrievalService) -> CollectionObject:
    return collection_object(await service.update_collection(name, data.to_update()))


@delete(
    "/v1/collections/{name:str}",
    status_code=200,
    responses=error_responses(400, 401, 403, 404, 500, 503, 507),
    summary="Delete a collection and everything in it",
)
async def delete_collection(name: str, service: RetrievalService) -> CollectionDeleted:
    await service.delete_collection(name)
    return CollectionDeleted(name)
