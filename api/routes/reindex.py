"""`POST /v1/collections/{name}/reindex`: build a new collection from this one's stored documents as a job."""

from __future__ import annotations

from litestar import Response, post

from api.errors import error_responses
from api.schemas.jobs import JobObject, reindex_job_object
from api.scopes import Authorizer
from retrieval.common.access import Touch
from retrieval.reindex.job import Reindexer, ReindexRequest

__all__ = ["reindex_collection"]


@post(
    "/v1/collections/{name:str}/reindex",
    status_code=202,
    responses=error_responses(400, 401, 403, 404, 409, 500, 503, 507),
    summary="Rebuild a collection into a new one (other models or settings), then swap an alias; a job",
)
async def reindex_collection(
    name: str, data: ReindexRequest, reindexer: Reindexer, authorizer: Authorizer
) -> Response[JobObject]:
    swap = [Touch(data.swap_alias, "alias")] if data.swap_alias is not None else []
    authorizer.check(Touch(data.target, "create"), *swap)  # the source (`name`) is checked by the guard
    return Response(reindex_job_object(await reindexer.start(name, data)), status_code=202)
