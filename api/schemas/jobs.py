"""`GET /v1/jobs/{id}`: a background job's state and progress (an upload, or a reindex)."""

from __future__ import annotations

from typing import Literal

import msgspec

from api.jobs import Job, JobState
from api.schemas.documents import UploadResponse, upload_response
from api.schemas.tune import TuneResult, tune_result
from retrieval.evaluation.tune.tuner import TuneReport
from retrieval.ingest.uploads import UploadResult
from retrieval.store.reindex_jobs import ReindexJobRow, ReindexPhase

__all__ = ["JobObject", "job_object", "reindex_job_object"]


class JobObject(msgspec.Struct, frozen=True, omit_defaults=True):
    id: str  # the job id
    state: JobState  # queued | running | done | failed
    done: int  # units finished (documents for an upload or a reindex)
    total: int  # units known so far
    error: str | None = None  # why it failed (failed only)
    result: UploadResponse | None = None  # the upload's answer (upload jobs, done only)
    tune: TuneResult | None = None  # the tuning report (tune jobs, done only)
    kind: Literal["upload", "reindex", "tune"] = "upload"  # what the job does
    phase: ReindexPhase | None = None  # reindex: copy -> catch_up -> swap -> finished
    source: str | None = None  # reindex: the collection read from
    target: str | None = None  # reindex: the collection built
    swap_alias: str | None = None  # reindex: the alias pointed at the target when it ends


def job_object(job: Job[UploadResult | TuneReport]) -> JobObject:
    done = job.result
    result = upload_response(done) if isinstance(done, UploadResult) else None
    tune = tune_result(done) if isinstance(done, TuneReport) else None
    return JobObject(job.id, job.state, job.done, job.total, job.error, result, tune, kind=job.kind)


def reindex_job_object(row: ReindexJobRow) -> JobObject:
    return JobObject(
        row.id,
        row.state,
        row.done,
        row.total,
        row.error,
        kind="reindex",
        phase=row.phase,
        source=row.source,
        target=row.target,
        swap_alias=row.request.get("swap_alias"),
    )
