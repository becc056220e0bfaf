"""`GET /v1/jobs/{id}`: a background job's state and progress; `POST /v1/jobs/{id}/cancel` stops it.

Upload jobs live in memory (`retrieval.jobs`); reindex jobs in the store (`retrieval.reindex`), so their ids
answer across restarts.
"""

from __future__ import annotations

from litestar import get, post

from api.errors import READ_ERRORS, error_responses
from api.schemas.jobs import JobObject, job_object, reindex_job_object
from retrieval.access import Grant
from retrieval.errors import JobNotFoundError
from retrieval.jobs import JobManager
from retrieval.reindex import Reindexer
from retrieval.search.tune import TuneReport
from retrieval.uploads import UploadResult

__all__ = ["cancel_job", "get_job"]


@get(
    "/v1/jobs/{job_id:str}",
    responses=error_responses(*READ_ERRORS),
    summary="A background job's state, progress and result",
)
async def get_job(
    job_id: str, jobs: JobManager[UploadResult | TuneReport], reindexer: Reindexer, grant: Grant
) -> JobObject:
    try:
        job = jobs.get(job_id)
    except JobNotFoundError:
        row = reindexer.get(job_id)
        if not grant.sees_job(row.source):
            raise JobNotFoundError(job_id) from None  # a scoped key sees only the jobs of its collections
        return reindex_job_object(row)
    if not grant.sees_job(job.collection):
        raise JobNotFoundError(job_id)
    return job_object(job)


@post(
    "/v1/jobs/{job_id:str}/cancel",
    status_code=200,
    responses=error_responses(400, 401, 403, 404, 500),
    summary="Cancel a job (a reindex deletes what it built; an upload keeps what it committed)",
)
async def cancel_job(
    job_id: str, jobs: JobManager[UploadResult | TuneReport], reindexer: Reindexer, grant: Grant
) -> JobObject:
    try:
        job = jobs.get(job_id)
    except JobNotFoundError:
        row = reindexer.get(job_id)
        if not grant.sees_job(row.source):
            raise JobNotFoundError(job_id) from None
        grant.require(row.source, "write")
        reindexer.cancel(job_id)
        return reindex_job_object(await reindexer.wait(job_id))
    if not grant.sees_job(job.collection):
        raise JobNotFoundError(job_id)
    if job.collection is not None:
        grant.require(job.collection, "write")
    return job_object(jobs.cancel(job_id))
