"""Background jobs: the JobManager's states, progress, safe failure messages and retention; a large upload run
as a job through the API and polled to done."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import pytest

from api.jobs import JobManager, Progress
from retrieval import ModelRegistry, ServiceConfig
from retrieval.errors import InvalidRequestError, JobNotFoundError
from tests.api._retrieval import assert_error, ranked_ids
from tests.api._server import live_server


def test_job_runs_through_its_states_with_progress() -> None:
    async def main() -> None:
        jobs: JobManager[str] = JobManager(max_running=1)
        gate = asyncio.Event()

        async def work(progress: Progress) -> str:
            progress(1, 3)
            await gate.wait()
            progress(3, 3)
            return "result"

        first, second = jobs.submit(work), jobs.submit(work)
        assert first.state == second.state == "queued"
        await asyncio.sleep(0.01)
        assert (jobs.get(first.id).state, jobs.get(first.id).done, jobs.get(first.id).total) == ("running", 1, 3)
        assert jobs.get(second.id).state == "queued"  # one at a time
        gate.set()
        await asyncio.sleep(0.01)
        done = jobs.get(first.id)
        assert (done.state, done.done, done.total, done.result, done.error) == ("done", 3, 3, "result", None)
        assert done.finished_at is not None and jobs.get(second.id).state == "done"

    asyncio.run(main())


def test_failures_record_a_safe_message_without_traceback() -> None:
    async def main() -> None:
        jobs: JobManager[None] = JobManager()

        async def bad_input(progress: Progress) -> None:
            raise InvalidRequestError("no uploaded file could be read", param="files")

        async def bug(progress: Progress) -> None:
            raise KeyError("secret internal detail")

        a, b = jobs.submit(bad_input), jobs.submit(bug)
        await asyncio.sleep(0.05)
        assert (jobs.get(a.id).state, jobs.get(a.id).error) == ("failed", "no uploaded file could be read")
        failed = jobs.get(b.id)
        assert failed.state == "failed" and failed.error == "internal error (KeyError)"

    asyncio.run(main())


def test_finished_jobs_are_bounded_and_close_cancels_running_ones() -> None:
    async def main() -> None:
        jobs: JobManager[int] = JobManager(max_running=4, max_finished=2)

        async def quick(progress: Progress) -> int:
            return 1

        ids = [jobs.submit(quick).id for _ in range(4)]
        await asyncio.sleep(0.01)
        with pytest.raises(JobNotFoundError):
            jobs.get(ids[0])
        assert [jobs.get(i).state for i in ids[2:]] == ["done", "done"] and len(jobs) == 2

        async def forever(progress: Progress) -> int:
            await asyncio.Event().wait()
            return 0

        slow = jobs.submit(forever)
        await asyncio.sleep(0.01)
        await jobs.close()
        assert jobs.get(slow.id).state == "failed" and "shut down" in (jobs.get(slow.id).error or "")

    asyncio.run(main())


@pytest.fixture(scope="module")
def client(minilm_registry: ModelRegistry) -> Iterator[httpx.Client]:
    with live_server(minilm_registry, ServiceConfig(sync_upload_bytes=1024)) as live, live.client() as c:
        yield c


def _poll(client: httpx.Client, job_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        assert job["state"] in ("queued", "running", "done", "failed")
        assert 0 <= job["done"] <= max(job["total"], job["done"])
        if job["state"] in ("done", "failed"):
            return dict(job)
        time.sleep(0.05)
    raise AssertionError("job did not finish")


def test_a_large_upload_runs_as_a_job_polled_to_done(client: httpx.Client) -> None:
    records = [json.dumps({"id": f"r{i}", "text": f"record {i} about lighthouse keepers"}) for i in range(150)]
    jsonl = ("\n".join(records) + "\n").encode()
    assert len(jsonl) > 1024
    files = [("f", ("records.jsonl", jsonl, "application/jsonl")), ("g", ("bad.pdf", b"%PDF-x", "application/pdf"))]
    resp = client.post("/v1/collections/default/files", files=files)
    assert resp.status_code == 202, resp.text
    job = _poll(client, resp.json()["job"])
    assert (job["state"], job["done"], job["total"]) == ("done", 150, 150), job
    result = job["result"]
    assert isinstance(result, dict) and sorted(result["ids"]) == sorted(f"r{i}" for i in range(150))
    assert [(f["name"], f["documents"]) for f in result["files"]] == [("records.jsonl", 150), ("bad.pdf", 0)]
    assert "error" not in job
    assert ranked_ids(client, "default", query="record 77 about lighthouse keepers", mode="bm25")[0] == "r77"
    assert client.get("/v1/collections/default").json()["documents"] == 150


def test_a_job_whose_files_all_fail_reports_the_reason(client: httpx.Client) -> None:
    resp = client.post("/v1/collections/default/files", files=[("f", ("junk.pdf", b"%PDF-" + b"\x00" * 2000, "a/b"))])
    assert resp.status_code == 202
    job = _poll(client, resp.json()["job"])
    assert job["state"] == "failed" and "junk.pdf" in str(job["error"]) and "Traceback" not in str(job["error"])
    assert "result" not in job
    assert_error(client.get("/v1/jobs/unknown"), 404, "unknown")


def test_cancel_stops_a_running_job_and_says_so() -> None:
    async def main() -> None:
        jobs: JobManager[str] = JobManager()
        started = asyncio.Event()

        async def slow(progress: Progress) -> str:
            progress(1, 10)
            started.set()
            await asyncio.sleep(60)
            return "never"

        job = jobs.submit(slow)
        await started.wait()
        cancelled = jobs.cancel(job.id)
        assert (cancelled.state, cancelled.error, cancelled.done) == ("failed", "cancelled by a client", 1)
        await asyncio.sleep(0.01)
        assert jobs.get(job.id).state == "failed" and jobs.get(job.id).result is None
        assert jobs.cancel(job.id).error == "cancelled by a client"  # a finished job is left as it is
        with pytest.raises(JobNotFoundError):
            jobs.cancel("nope")

    asyncio.run(main())
