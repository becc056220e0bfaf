"""`GET /v1/jobs/{id}`: a background job's state and progress; `POST /v1/jobs/{id}/cancel` stops it.

Upload jobs live in memory (`api.jobs`); reindex jobs in the store (`retrieval.reindex.job`), so their ids
answer across restarts. A finished tune job's report also comes as the table or the bar chart (`Accept:
text/plain` / `image/png`, `api.reports`); every other job answers JSON whatever it asks for.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get, post

from api.errors import READ_ERRORS, error_responses
from api.jobs import Job, JobManager
from api.reports import JSON, ReportOperation, report_form, tune_report
from api.schemas.jobs import JobObject, job_object, reindex_job_object
from api.scopes import Authorizer
from retrieval.common.access import Grant, Touch
from retrieval.errors import JobNotFoundError
from retrieval.evaluation.reports import tune_title
from retrieval.evaluation.tune.tuner import TuneReport
from retrieval.ingest.uploads import UploadResult
from retrieval.reindex.job import Reindexer
from retrieval.store.reindex_jobs import ReindexJobRow

__all__ = ["cancel_job", "get_job"]


Jobs = JobManager[UploadResult | TuneReport]


def _find(job_id: str, jobs: Jobs, reindexer: Reindexer, grant: Grant) -> tuple[Job[Any] | ReindexJobRow, str | None]:
    """The job (an upload or tune job of the manager, else a reindex job of the store) and its collection; a job
    outside the key's scopes is as unknown (a scoped key sees only the jobs of its collections)."""
    try:
        job: Job[Any] | ReindexJobRow = jobs.get(job_id)
        collection = job.collection  # type: ignore[union-attr]
    except JobNotFoundError:
        job = reindexer.get(job_id)
        collection = job.source
    if not grant.sees_job(collection):
        raise JobNotFoundError(job_id)
    return job, collection


@get(
    "/v1/jobs/{job_id:str}",
    responses=error_responses(*READ_ERRORS),
    summary="A background job's state, progress and result (a finished tune job's report also as table or chart)",
    operation_class=ReportOperation,
)
async def get_job(
    job_id: str, jobs: Jobs, reindexer: Reindexer, grant: Grant, request: Request[Any, Any, Any]
) -> Response[JobObject]:
    job, collection = _find(job_id, jobs, reindexer, grant)
    answer = reindex_job_object(job) if isinstance(job, ReindexJobRow) else job_object(job)
    form = report_form(request)
    if form == JSON or answer.tune is None:
        return Response(answer)
    data = msgspec.to_builtins(answer.tune)
    return await tune_report(form, data, tune_title(collection or "", data))


@post(
    "/v1/jobs/{job_id:str}/cancel",
    status_code=200,
    responses=error_responses(400, 401, 403, 404, 500),
    summary="Cancel a job (a reindex deletes what it built; an upload keeps what it committed)",
)
async def cancel_job(job_id: str, jobs: Jobs, reindexer: Reindexer, grant: Grant, authorizer: Authorizer) -> JobObject:
    job, collection = _find(job_id, jobs, reindexer, grant)
    if collection is not None:
        authorizer.check(Touch(collection, "write"))
    if isinstance(job, ReindexJobRow):
        reindexer.cancel(job_id)
        return reindex_job_object(await reindexer.wait(job_id))
    return job_object(jobs.cancel(job_id))
