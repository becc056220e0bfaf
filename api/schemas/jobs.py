"""`GET /v1/jobs/{id}`: a background job's state and progress."""

from __future__ import annotations

import msgspec

from api.schemas.documents import UploadResponse, upload_response
from api.schemas.tune import TuneResult, tune_result
from retrieval.jobs import Job, JobState
from retrieval.search.tune import TuneReport
from retrieval.uploads import UploadResult

__all__ = ["JobObject", "job_object"]


class JobObject(msgspec.Struct, frozen=True, omit_defaults=True):
    id: str  # the job id
    state: JobState  # queued | running | done | failed
    done: int  # units finished (documents for an upload)
    total: int  # units known so far
    error: str | None = None  # why it failed (failed only)
    result: UploadResponse | None = None  # the upload's answer (upload jobs, done only)
    tune: TuneResult | None = None  # the tuning report (tune jobs, done only)


def job_object(job: Job[UploadResult | TuneReport]) -> JobObject:
    done = job.result
    result = upload_response(done) if isinstance(done, UploadResult) else None
    tune = tune_result(done) if isinstance(done, TuneReport) else None
    return JobObject(job.id, job.state, job.done, job.total, job.error, result, tune)
