"""`POST /v1/collections/{name}/tune`: choose a collection's search defaults on judgments, as a background job."""

from __future__ import annotations

from litestar import Response, post

from api.errors import error_responses
from api.jobs import JobManager
from api.schemas.documents import JobCreated
from api.schemas.tune import TuneBody
from retrieval import ServiceConfig
from retrieval.evaluation.tune.tuner import TuneReport
from retrieval.ingest.uploads import UploadResult
from retrieval.service import RetrievalService

__all__ = ["tune_collection"]


@post(
    "/v1/collections/{name:str}/tune",
    status_code=202,
    responses=error_responses(400, 401, 403, 404, 413, 500, 503),
    summary="Tune fusion, candidates and rerank depth on your judgments (a job: poll GET /v1/jobs/{id})",
)
async def tune_collection(
    name: str,
    data: TuneBody,
    service: RetrievalService,
    jobs: JobManager[UploadResult | TuneReport],
    config: ServiceConfig,
) -> Response[JobCreated]:
    service.spec(name)  # an unknown collection is a 404 now, not a failed job later
    req = data.to_request(config.max_top_k)
    job = jobs.submit(
        lambda progress: service.tune(name, req, apply=data.apply, progress=progress),
        collection=service.resolve(name),
        kind="tune",
    )
    return Response(JobCreated(job.id), status_code=202)
