"""`GET /v1/jobs/{id}`: a background job's state and progress."""

from __future__ import annotations

import msgspec

from api.schemas.documents import UploadResponse, upload_response
from retrieval.jobs import Job, JobState
from retrieval.uploads import UploadResult

__all__ = ["JobObject", "job_object"]


class JobObject(msgspec.Struct, frozen=True, omit_defaults=True):
    id: str  # the job id
    state: JobState  # queued | running | done | failed
    done: int  # units finished (documents for an upload)
    total: int  # units known so far
    error: str | None = None  # why it failed (failed only)
    result: UploadResponse | None = None  # the upload's answer (done only)


def job_object(job: Job[UploadResult]) -> JobObject:
    result = upload_response(job.result) if job.result is not None else None
    return JobObject(job.id, job.state, job.done, job.total, job.error, result)
