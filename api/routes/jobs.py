"""`GET /v1/jobs/{id}`: a background job's state and progress."""

from __future__ import annotations

from litestar import get

from api.errors import READ_ERRORS, error_responses
from api.schemas.jobs import JobObject, job_object
from retrieval.jobs import JobManager
from retrieval.search.tune import TuneReport
from retrieval.uploads import UploadResult

__all__ = ["get_job"]


@get(
    "/v1/jobs/{job_id:str}",
    responses=error_responses(*READ_ERRORS),
    summary="A background job's state, progress and result",
)
async def get_job(job_id: str, jobs: JobManager[UploadResult | TuneReport]) -> JobObject:
    return job_object(jobs.get(job_id))
